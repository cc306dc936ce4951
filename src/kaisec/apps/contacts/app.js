/*
 * Contacts: the address book, and a photo per contact.
 *
 * A photo is taken with the camera (camera.takePicture, a PNG in base64),
 * stored in this app's own device storage (storage.add, area "pictures"),
 * and referenced from the contact as "pictures:<file name>". This app is a
 * signed app: camera and device storage are PROMPT permissions, so the
 * first use waits for the user's answer in the system app; we say so.
 *
 * Keys: Up/Down move between the form and the contacts, Enter activates,
 * SoftLeft (F1) "New", SoftRight (F2) "Photo" for the focused contact.
 */
(function () {
  "use strict";

  const PHOTO_SIZE = 96; // small: a stored file travels as base64 in one message
  const $ = (sel, root) => (root || document).querySelector(sel);

  // --- the connection (reconnects with a fresh token when needed) ---------------------------

  let api = null;
  let opening = null;

  function isOpen() {
    // not while (re)opening: the socket is open before the token handshake is done
    return Boolean(!opening && api && api.ws && api.ws.readyState === WebSocket.OPEN);
  }

  function ready() {
    if (isOpen()) return Promise.resolve(api);
    if (!opening) {
      opening = (async () => {
        if (api) await api.open();
        else api = await kaisec.connect({ reconnect: false });
      })().finally(() => {
        opening = null;
        setConn();
      });
    }
    return opening.then(() => api);
  }

  async function call(service, method, params) {
    const session = await ready();
    return session.call(service, method, params || {});
  }

  function setConn() {
    const what = isOpen() ? "online" : api ? "offline" : "connecting";
    const node = $("#conn");
    node.dataset.state = what;
    node.textContent = what;
    document.body.dataset.connected = String(what === "online");
  }

  function setStatus(text, kind) {
    const node = $("#status");
    node.textContent = text || "";
    node.className = `status ${kind || ""}`;
    node.dataset.kind = kind || "";
  }

  function errorText(e) {
    if (e instanceof kaisec.PermissionError) return `Not allowed: ${e.permission}.`;
    if (e && e.code === "DEVICE_ERROR") return `The phone refused: ${e.reason || e.message}`;
    if (e && e.code) return `${e.code}: ${e.message}`;
    return String((e && e.message) || e);
  }

  /** Run a call that may raise a prompt; say we wait for the user when it takes a moment. */
  async function asking(promise, what) {
    const timer = setTimeout(
      () => setStatus(`Waiting for your answer in the system app (${what})\u2026`, "waiting"),
      250,
    );
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- the list ------------------------------------------------------------------------------

  const photos = new Map(); // file name -> data: URL

  function letter(name) {
    const node = document.createElement("span");
    node.className = "photo letter";
    node.setAttribute("aria-hidden", "true");
    node.textContent = (String(name).trim().charAt(0) || "?").toUpperCase();
    return node;
  }

  function contactNode(c) {
    const li = document.createElement("li");
    li.tabIndex = 0;
    li.dataset.id = c.id;
    li.dataset.name = c.name;
    const photoSlot = letter(c.name);
    const who = document.createElement("div");
    who.className = "who";
    const name = document.createElement("div");
    name.className = "name";
    name.textContent = c.name;
    const numbers = document.createElement("div");
    numbers.className = "numbers";
    numbers.textContent = (c.numbers || []).join(", ");
    who.append(name, numbers);
    const button = document.createElement("button");
    button.type = "button";
    button.className = "take-photo";
    button.textContent = c.photo ? "New photo" : "Add photo";
    button.addEventListener("click", () => takePhoto(c));
    li.append(photoSlot, who, button);
    if (c.photo) li.dataset.photo = c.photo;
    return li;
  }

  async function showPhoto(li, ref) {
    const name = ref.slice("pictures:".length);
    let url = photos.get(name);
    if (!url) {
      const file = await asking(call("storage", "get", { area: "pictures", name }), "reading photos");
      url = `data:${file.mime || "image/png"};base64,${file.data}`;
      photos.set(name, url);
    }
    const img = document.createElement("img");
    img.className = "photo";
    img.alt = `Photo of ${li.dataset.name}`;
    img.src = url;
    li.firstChild.replaceWith(img);
    li.dataset.photoShown = "true";
  }

  async function load() {
    let people;
    try {
      people = await call("contacts", "find", { limit: 500 });
    } catch (e) {
      setStatus(errorText(e), "error");
      return;
    }
    people.sort((a, b) => a.name.localeCompare(b.name));
    const list = $("#contact-list");
    const focusedId = document.activeElement && document.activeElement.closest("#contact-list li")
      ? document.activeElement.closest("li").dataset.id
      : null;
    list.replaceChildren(...people.map(contactNode));
    $("#empty").hidden = people.length > 0;
    if (focusedId) {
      const again = list.querySelector(`li[data-id="${CSS.escape(focusedId)}"]`);
      if (again) again.focus();
    }
    // photos one after the other: the first read may wait for a prompt
    for (const li of list.children) {
      if (!li.dataset.photo || !li.dataset.photo.startsWith("pictures:")) continue;
      try {
        await showPhoto(li, li.dataset.photo);
        if ($("#status").dataset.kind === "waiting") setStatus("");
      } catch (e) {
        setStatus(`Cannot show photos: ${errorText(e)}`, "error");
        break;
      }
    }
  }

  async function add(ev) {
    ev.preventDefault();
    const name = $("#name").value.trim();
    const number = $("#phone").value.trim();
    if (!name) {
      setStatus("A contact needs a name.", "error");
      return;
    }
    const contact = { name };
    if (number) contact.numbers = [number];
    try {
      const added = await call("contacts", "add", { contact });
      setStatus(`Added ${added.name}.`, "ok");
      $("#name").value = "";
      $("#phone").value = "";
      await load();
    } catch (e) {
      setStatus(errorText(e), "error");
    }
  }

  async function takePhoto(c) {
    setStatus(`Taking a photo of ${c.name}\u2026`);
    try {
      const picture = await asking(
        call("camera", "takePicture", { width: PHOTO_SIZE, height: PHOTO_SIZE }),
        "camera",
      );
      const name = `contact-${c.id}-${Date.now()}.png`;
      setStatus("Saving the photo\u2026");
      await asking(
        call("storage", "add", { area: "pictures", name, data: picture.data, type: picture.type || "image/png" }),
        "storing pictures",
      );
      await call("contacts", "update", { id: c.id, fields: { photo: `pictures:${name}` } });
      setStatus(`Photo saved for ${c.name}.`, "ok");
      await load();
    } catch (e) {
      setStatus(errorText(e), "error");
    }
  }

  // --- keys ----------------------------------------------------------------------------------

  function focusables() {
    return Array.from(document.querySelectorAll("main input, main button, #contact-list li")).filter(
      (n) => !n.disabled && n.getClientRects().length > 0,
    );
  }

  function onKey(ev) {
    const target = ev.target instanceof Element ? ev.target : document.body;
    switch (ev.key) {
      case "ArrowDown":
      case "ArrowUp": {
        ev.preventDefault();
        const items = focusables();
        if (!items.length) return;
        const at = items.indexOf(document.activeElement);
        const step = ev.key === "ArrowDown" ? 1 : -1;
        const next = at < 0 ? 0 : (at + step + items.length) % items.length;
        items[next].focus();
        items[next].scrollIntoView({ block: "nearest" });
        return;
      }
      case "Enter":
        if (target.matches("#contact-list li")) {
          ev.preventDefault();
          target.querySelector(".take-photo").click();
        }
        return;
      case "SoftLeft":
      case "F1":
        ev.preventDefault();
        $("#name").focus();
        return;
      case "SoftRight":
      case "F2": {
        ev.preventDefault();
        const li = target.closest("#contact-list li") || $("#contact-list li");
        if (li) li.querySelector(".take-photo").click();
        return;
      }
      default:
    }
  }

  function start() {
    $("#add-form").addEventListener("submit", add);
    $("#softkey-left").addEventListener("click", () => $("#name").focus());
    $("#softkey-right").addEventListener("click", () => {
      const li = $("#contact-list li");
      if (li) li.querySelector(".take-photo").click();
    });
    document.addEventListener("keydown", onKey);
    setInterval(() => {
      // connection lost (a daemon restart): reconnect in the background, with a fresh token
      if (api && !isOpen() && !opening) ready().catch(() => {});
      setConn();
    }, 1500);
    ready().then(load, (e) => setStatus(`Cannot reach the phone: ${errorText(e)}`, "error"));
  }

  start();
})();
