/*
 * Weather, a hosted PWA: "Weather here" asks the phone for its position
 * through the kaisec gateway (geolocation.getCurrentPosition; not
 * navigator.geolocation), then shows a made-up forecast for it.
 *
 * A PWA is untrusted: geolocation is a PROMPT permission, so the first
 * request waits for the user's answer in the system app ("asking...") and
 * a denial arrives as a kaisec.PermissionError.
 * Keys: Enter, or the center key, asks for the weather here.
 */
(function () {
  "use strict";

  const $ = (sel) => document.querySelector(sel);
  const SKIES = ["Sunny", "Partly cloudy", "Cloudy", "Light rain", "Showers", "Windy", "Fog"];
  const DAYS = ["Today", "Tomorrow", "In 2 days", "In 3 days"];

  let api = null;
  let opening = null;

  function isOpen() {
    // not while (re)opening: the socket is open before the token handshake is done
    return Boolean(!opening && api && api.ws && api.ws.readyState === WebSocket.OPEN);
  }

  /** A connected session (reconnecting with a fresh token when needed). */
  function ready() {
    if (isOpen()) return Promise.resolve(api);
    if (!opening) {
      opening = (async () => {
        if (api) await api.open();
        else api = await kaisec.connect({ reconnect: false });
      })().finally(() => {
        opening = null;
      });
    }
    return opening.then(() => api);
  }

  function setStatus(text, kind) {
    const node = $("#status");
    node.textContent = text;
    node.className = `status ${kind || ""}`;
    node.dataset.kind = kind || "";
  }

  /** A deterministic, made-up forecast for a place. */
  function forecast(lat, lon) {
    let seed = Math.abs(Math.round(lat * 1000) * 31 + Math.round(lon * 1000) * 17);
    const next = () => {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      return seed / 2147483648;
    };
    const base = Math.round(28 - Math.abs(lat) * 0.4);
    return DAYS.map((day) => {
      const high = base + Math.round(next() * 6 - 2);
      return { day, sky: SKIES[Math.floor(next() * SKIES.length)], high, low: high - 4 - Math.round(next() * 5) };
    });
  }

  function place(lat, lon) {
    const ns = lat >= 0 ? "N" : "S";
    const ew = lon >= 0 ? "E" : "W";
    return `${Math.abs(lat).toFixed(4)}\u00b0${ns}, ${Math.abs(lon).toFixed(4)}\u00b0${ew}`;
  }

  function show(pos) {
    const days = forecast(pos.lat, pos.lon);
    $("#place").textContent = place(pos.lat, pos.lon);
    $("#accuracy").textContent = `within ${Math.round(pos.accuracy)} m`;
    $("#now").textContent = `${days[0].high}\u00b0C ${days[0].sky.toLowerCase()}`;
    $("#days").replaceChildren(
      ...days.map((d) => {
        const li = document.createElement("li");
        const name = document.createElement("span");
        name.textContent = `${d.day}: ${d.sky}`;
        const temp = document.createElement("span");
        temp.className = "temp";
        temp.textContent = `${d.high}\u00b0 / ${d.low}\u00b0`;
        li.append(name, temp);
        return li;
      }),
    );
    const section = $("#forecast");
    section.dataset.lat = String(pos.lat);
    section.dataset.lon = String(pos.lon);
    section.hidden = false;
  }

  async function here() {
    const button = $("#here");
    button.disabled = true;
    $("#forecast").hidden = true;
    setStatus("Finding where you are\u2026");
    const waiting = setTimeout(
      () => setStatus("Asking\u2026 answer in the system app to share your location.", "waiting"),
      250,
    );
    try {
      const session = await ready();
      const pos = await session.geolocation.getCurrentPosition();
      show(pos);
      setStatus("Here is your weather.", "ok");
    } catch (e) {
      if (e instanceof kaisec.PermissionError) {
        setStatus(`Location denied (${e.permission}): no local weather.`, "error");
      } else {
        setStatus(`Cannot get your location: ${(e && (e.code || e.message)) || e}`, "error");
      }
    } finally {
      clearTimeout(waiting);
      button.disabled = false;
    }
  }

  $("#here").addEventListener("click", here);
  document.addEventListener("keydown", (ev) => {
    if ((ev.key === "Enter" || ev.key === "Accept") && ev.target === document.body) {
      ev.preventDefault();
      here();
    }
  });
  $("#here").focus();
})();
