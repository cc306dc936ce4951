/*
 * The dialer: a keypad, Call / Hang up, the call's states as the modem
 * reports them (telephony callstatechange events), the contact's name for a
 * number, and emergency numbers that always go through.
 *
 * A core app: no inline script or style (CSP). Keys: digits, * and # type;
 * Backspace or SoftLeft (F1) deletes; Enter calls; SoftRight (F2) or Escape
 * hangs up.
 */
(function () {
  "use strict";

  const EMERGENCY = new Set(["112", "911"]); // the daemon may know more (telephony.isEmergency)
  const $ = (sel) => document.querySelector(sel);

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
        if (api) {
          await api.open();
        } else {
          const session = await kaisec.connect({ reconnect: false });
          session.on("telephony", "callstatechange", (data) => onCall(data.call));
          api = session;
        }
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
  }

  function errorText(e) {
    if (e instanceof kaisec.PermissionError) {
      return `Not allowed: the dialer needs the \u201c${e.permission}\u201d permission.`;
    }
    if (e && e.code === "DEVICE_ERROR") {
      const reasons = {
        NO_SIM: "No SIM card: only emergency numbers (112, 911) can be called.",
        BAD_NUMBER: "That is not a number that can be dialed.",
        BUSY: "Too many calls at once.",
        NOT_FOUND: "No such call.",
      };
      return reasons[e.reason] || `The phone refused: ${e.reason || e.message}`;
    }
    if (e && e.code) return `${e.code}: ${e.message}`;
    return String((e && e.message) || e);
  }

  /** Say we wait for the user when a call takes long (a premium-rate confirmation). */
  async function asking(promise, what) {
    const timer = setTimeout(() => setStatus(`Waiting for your answer in the system app (${what})\u2026`, "waiting"), 300);
    try {
      return await promise;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- calls ---------------------------------------------------------------------------------

  const calls = new Map(); // id -> {call, states: []}
  let current = null; // the id of the call shown

  function onCall(c) {
    if (!c || !c.id) return;
    let entry = calls.get(c.id);
    if (!entry) {
      entry = { call: c, states: [] };
      calls.set(c.id, entry);
    }
    entry.call = c;
    if (entry.states[entry.states.length - 1] !== c.state) entry.states.push(c.state);
    if (current === null || current === c.id || c.state !== "disconnected") current = c.id;
    render();
  }

  function render() {
    const entry = current && calls.get(current);
    const panel = $("#call-panel");
    if (!entry) {
      panel.hidden = true;
      $("#hangup").disabled = true;
      return;
    }
    panel.hidden = false;
    panel.dataset.emergency = String(Boolean(entry.call.emergency));
    panel.dataset.call = entry.call.id;
    $("#call-number").textContent = entry.call.number + (entry.call.emergency ? " (emergency)" : "");
    const stateNode = $("#call-state");
    stateNode.dataset.state = entry.call.state;
    stateNode.textContent = entry.call.state;
    $("#call-states").replaceChildren(
      ...entry.states.map((s) => {
        const li = document.createElement("li");
        li.textContent = s;
        return li;
      }),
    );
    const active = entry.call.state !== "disconnected";
    $("#hangup").disabled = !active;
    document.body.dataset.callState = entry.call.state;
  }

  async function dial(number) {
    number = (number || "").trim();
    if (!number) {
      setStatus("Enter a number first.", "error");
      return;
    }
    const emergency = EMERGENCY.has(number);
    setStatus(emergency ? `Emergency call to ${number}\u2026` : `Calling ${number}\u2026`);
    $("#call-name").textContent = "";
    try {
      const c = await asking(call("telephony", "dial", { number }), "a charged call");
      current = c.id;
      onCall(c);
      setStatus("");
      lookUp(number, $("#call-name"));
    } catch (e) {
      setStatus(errorText(e), "error");
    }
  }

  async function hangUp() {
    const entry = current && calls.get(current);
    if (!entry || entry.call.state === "disconnected") return;
    try {
      onCall(await call("telephony", "hangUp", { call: entry.call.id }));
    } catch (e) {
      setStatus(errorText(e), "error");
    }
  }

  // --- the number field ----------------------------------------------------------------------

  let lookupTimer = null;
  let lookupSeq = 0;

  async function lookUp(number, target) {
    const seq = ++lookupSeq;
    target.textContent = "";
    if (number.replace(/\D/g, "").length < 3) return;
    try {
      const found = await call("contacts", "find", { number, limit: 1 });
      if (seq !== lookupSeq && target === $("#contact-name")) return;
      target.textContent = found.length ? found[0].name : "";
    } catch (e) {
      if (e instanceof kaisec.PermissionError) target.textContent = `(no names: needs ${e.permission})`;
    }
  }

  async function checkEmergency(number) {
    let emergency = EMERGENCY.has(number);
    if (!emergency && number) {
      try {
        emergency = (await call("telephony", "isEmergency", { number })).emergency;
      } catch (e) {
        emergency = false;
      }
    }
    if ($("#number").value.trim() === number) $("#emergency-hint").hidden = !emergency;
  }

  function numberChanged() {
    const number = $("#number").value.trim();
    clearTimeout(lookupTimer);
    lookupTimer = setTimeout(() => {
      lookUp(number, $("#contact-name"));
      checkEmergency(number);
    }, 250);
  }

  function typeKey(key) {
    const input = $("#number");
    if (input.value.length >= 32) return;
    input.value += key;
    numberChanged();
  }

  function backspace() {
    const input = $("#number");
    input.value = input.value.slice(0, -1);
    numberChanged();
  }

  function onKey(ev) {
    const inField = ev.target === $("#number");
    if (/^[0-9*#+]$/.test(ev.key)) {
      if (!inField) {
        ev.preventDefault();
        typeKey(ev.key);
      }
      return;
    }
    switch (ev.key) {
      case "Enter":
      case "Call":
        // Enter calls, except on the buttons that do something else
        if (ev.target instanceof Element && ev.target.matches("#hangup, #emergency, .softkey")) return;
        ev.preventDefault();
        dial($("#number").value);
        return;
      case "Backspace":
        if (!inField) {
          ev.preventDefault();
          backspace();
        }
        return;
      case "SoftLeft":
      case "F1":
        ev.preventDefault();
        backspace();
        return;
      case "SoftRight":
      case "F2":
      case "Escape":
      case "EndCall":
        ev.preventDefault();
        hangUp();
        return;
      default:
    }
  }

  function start() {
    for (const button of document.querySelectorAll("#keypad button")) {
      button.addEventListener("click", () => typeKey(button.dataset.key));
    }
    $("#number").addEventListener("input", numberChanged);
    $("#call").addEventListener("click", () => dial($("#number").value));
    $("#hangup").addEventListener("click", hangUp);
    $("#emergency").addEventListener("click", () => dial("112"));
    $("#softkey-left").addEventListener("click", backspace);
    $("#softkey-right").addEventListener("click", hangUp);
    document.addEventListener("keydown", onKey);
    setInterval(() => {
      // connection lost (a daemon restart): reconnect in the background, with a fresh token
      if (api && !isOpen() && !opening) ready().catch(() => {});
      setConn();
    }, 1500);
    ready().then(
      async () => {
        // calls still going on from before a reload
        try {
          for (const c of await call("telephony", "calls")) if (c.state !== "disconnected") onCall(c);
        } catch (e) {
          setStatus(errorText(e), "error");
        }
      },
      (e) => setStatus(`Cannot reach the phone: ${errorText(e)}`, "error"),
    );
  }

  start();
})();
