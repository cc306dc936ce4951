/*
 * The system app: permission prompts, installed apps, per-app permissions,
 * the audit log, developer mode and the device PIN.
 *
 * It is a core app served under a CSP without 'unsafe-inline': no inline
 * script, no inline style, no eval. Everything an app or a manifest says
 * (names, descriptions, origins) is untrusted text: it only ever reaches the
 * page through textContent and attribute setters, never as HTML.
 *
 * Keys (a feature phone): Up/Down move the focus among the items of the
 * current view, Enter activates, Left/Right switch views, SoftLeft/SoftRight
 * (F1/F2 on a desktop keyboard) run the two actions shown in the bottom bar.
 */
(function () {
  "use strict";

  const VIEWS = ["prompts", "apps", "permissions", "audit", "settings"];
  const PROMPT_SECONDS = 30; // the daemon's default prompt timeout: then it denies
  const ANSWERS = {
    once: { label: "Allow once", params: { action: "allow" }, done: "allowed once" },
    allow: { label: "Allow", params: { action: "allow", remember: true }, done: "allowed" },
    hour: {
      label: "Allow for 1 hour",
      params: { action: "allow", remember: true, duration: 3600 },
      done: "allowed for 1 hour",
    },
    deny: { label: "Deny", params: { action: "deny" }, done: "denied" },
    "deny-remember": {
      label: "Deny and remember",
      params: { action: "deny", remember: true },
      done: "denied for good",
    },
  };

  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  /** A DOM element; attributes via setAttribute, text via textContent (never HTML). */
  function h(tag, attrs, children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key === "on") for (const [ev, fn] of Object.entries(value)) node.addEventListener(ev, fn);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children || []) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  const state = {
    view: "prompts",
    returnTo: null, // the view to go back to once every prompt is answered
    prompts: [], // {data, deadline, node}
    apps: [],
    permApp: null, // app id shown in the Permissions view
    devMode: null,
  };

  // --- the connection ----------------------------------------------------------------------

  let api = null;
  let opening = null;
  let watchedWs = null;
  let downSince = null;
  let sessions = 0; // connections made so far (shown as data-sessions, for tests and debugging)
  let promptsSeen = 0;

  function isOpen() {
    // not while (re)opening: the socket is open before the token handshake is done
    return Boolean(!opening && api && api.ws && api.ws.readyState === WebSocket.OPEN);
  }

  /** A connected session (reconnecting with a fresh token when needed). */
  function ready() {
    if (isOpen()) return Promise.resolve(api);
    if (!opening) {
      opening = (async () => {
        if (api) {
          await api.open();
        } else {
          const session = await kaisec.connect({ reconnect: false });
          session.on("permissions", "prompt", addPrompt);
          session.on("permissions", "promptclosed", (data) => removePrompt(data.id, data));
          session.on("apps", "installprogress", installProgress);
          api = session;
        }
      })().finally(() => {
        opening = null;
      });
    }
    return opening.then(() => api);
  }

  async function call(service, method, params) {
    const session = await ready();
    return session.call(service, method, params || {});
  }

  function setConn(what) {
    const node = $("#conn");
    if (node.dataset.state === what) return;
    node.dataset.state = what;
    node.textContent = what;
    document.body.dataset.connected = what === "online" ? "true" : "false";
  }

  /** A new connection: watch for prompts again (the daemon forgets a closed session's watch). */
  async function onConnected() {
    watchedWs = api.ws;
    setConn("online");
    sessions += 1;
    document.body.dataset.sessions = String(sessions);
    try {
      const res = await call("permissions", "watch");
      syncPrompts(res.pending || []);
      document.body.dataset.watching = "true";
    } catch (e) {
      showMessage(`Cannot watch for prompts: ${describe(e)}`, "error");
    }
    refreshView();
  }

  function tick() {
    if (isOpen()) {
      downSince = null;
      if (api.ws !== watchedWs) onConnected();
    } else if (!opening) {
      setConn(api ? "offline" : "connecting");
      document.body.dataset.watching = "false";
      if (downSince === null) downSince = Date.now();
      // connection lost (a daemon restart): try again every 1.5 s, with a fresh token
      else if (Date.now() - downSince > 1500) {
        downSince = Date.now();
        ready().catch(() => {});
      }
    }
    updateCountdowns();
  }

  function describe(e) {
    if (e instanceof kaisec.PermissionError) return `not allowed (${e.permission})`;
    if (e && e.code) return `${e.code}: ${e.message}`;
    return String((e && e.message) || e);
  }

  let messageTimer = null;
  function showMessage(text, kind) {
    const node = $("#message");
    node.textContent = text;
    node.className = `message ${kind || ""}`;
    node.hidden = false;
    clearTimeout(messageTimer);
    messageTimer = setTimeout(() => {
      node.hidden = true;
    }, 8000);
  }

  // --- origins and icons ---------------------------------------------------------------------

  /** The browser origin of a registry origin (packaged apps: add the daemon's port). */
  function browserOrigin(origin) {
    try {
      const url = new URL(origin);
      if (url.hostname.endsWith(".localhost") && !url.port) url.port = location.port;
      return url.origin;
    } catch (e) {
      return null;
    }
  }

  function letterIcon(name) {
    const letter = (String(name || "?").trim().charAt(0) || "?").toUpperCase();
    return h("span", { class: "icon letter", "aria-hidden": "true", text: letter });
  }

  /**
   * The app's icon from its own origin, or its initial. Packaged apps' files
   * carry Cross-Origin-Resource-Policy: same-origin, so only our own icon and
   * hosted apps' icons can load here; the others get their initial.
   */
  function iconNode(origin, path, name) {
    const base = browserOrigin(origin);
    if (!path || !base) return letterIcon(name);
    let url;
    try {
      url = new URL(path, `${base}/`);
    } catch (e) {
      return letterIcon(name);
    }
    const packaged = url.hostname.endsWith(".localhost");
    if (url.origin !== base || !/^https?:$/.test(url.protocol)) return letterIcon(name);
    if (packaged && url.origin !== location.origin) return letterIcon(name);
    const img = h("img", { class: "icon", alt: "", src: url.href });
    img.addEventListener("error", () => img.replaceWith(letterIcon(name)));
    return img;
  }

  function badge(cls) {
    return h("span", { class: `badge ${cls}`, text: cls });
  }

  // --- prompts -------------------------------------------------------------------------------

  function syncPrompts(pending) {
    const ids = new Set(pending.map((p) => p.id));
    for (const p of state.prompts.slice()) if (!ids.has(p.data.id)) removePrompt(p.data.id);
    for (const p of pending) addPrompt(p);
    renderPromptCount();
  }

  function addPrompt(data) {
    if (!data || state.prompts.some((p) => p.data.id === data.id)) return;
    const entry = { data, deadline: Date.now() + PROMPT_SECONDS * 1000, node: null };
    entry.node = promptNode(entry);
    state.prompts.push(entry);
    promptsSeen += 1;
    document.body.dataset.promptsSeen = String(promptsSeen);
    $("#prompt-list").append(entry.node);
    renderPromptCount();
    if (state.view !== "prompts") {
      state.returnTo = state.view;
      showView("prompts");
    }
    if (state.prompts.length === 1) entry.node.focus();
    updateCountdowns();
  }

  function removePrompt(id, closed) {
    const idx = state.prompts.findIndex((p) => p.data.id === id);
    if (idx < 0) return;
    const [entry] = state.prompts.splice(idx, 1);
    const hadFocus = entry.node.contains(document.activeElement);
    entry.node.remove();
    if (closed && closed.reason === "timeout") {
      showMessage(`No answer in time: ${entry.data.app} was denied ${entry.data.permission}.`, "error");
    }
    renderPromptCount();
    if (state.prompts.length) {
      if (hadFocus) state.prompts[0].node.focus();
    } else if (state.returnTo && state.view === "prompts") {
      const back = state.returnTo;
      state.returnTo = null;
      showView(back);
    }
  }

  function renderPromptCount() {
    const n = state.prompts.length;
    const count = $("#prompt-count");
    count.textContent = String(n);
    count.hidden = n === 0;
    $("#prompts-empty").hidden = n > 0;
    const queue = $("#prompts-queue");
    queue.hidden = n < 2;
    queue.textContent = n > 1 ? `${n} questions waiting` : "";
    document.body.dataset.prompts = String(n);
    renderSoftkeys();
  }

  function promptNode(entry) {
    const p = entry.data;
    const answers = p.remember_allowed ? ["once", "allow", "hour", "deny", "deny-remember"] : ["once", "deny"];
    const origin = browserOrigin(p.origin) || p.origin;
    const reason = p.reason && p.reason !== "permission" ? p.reason : null;
    const node = h(
      "article",
      {
        class: "prompt",
        tabindex: "0",
        "data-id": p.id,
        "data-permission": p.permission,
        "data-app": p.app,
        "aria-label": `${p.app} asks for ${p.permission}`,
      },
      [
        h("div", { class: "prompt-head" }, [
          iconNode(p.origin, p.icon, p.app),
          h("div", {}, [
            h("span", { class: "prompt-app", text: p.app }),
            badge(p.class),
            h("div", { class: "origin", text: origin }),
          ]),
        ]),
        h("p", { class: "prompt-question" }, [
          "wants to use ",
          h("span", { class: "perm", text: p.permission }),
        ]),
        p.description ? h("p", { class: "prompt-why", text: `\u201c${p.description}\u201d` }) : null,
        reason
          ? h("p", {
              class: "prompt-reason",
              text: `${reason.charAt(0).toUpperCase()}${reason.slice(1)}: asked every time, never remembered.`,
            })
          : null,
        h("div", { class: "countdown" }, [
          h("progress", { max: String(PROMPT_SECONDS), value: String(PROMPT_SECONDS) }),
          h("span", { class: "seconds", text: `${PROMPT_SECONDS} s` }),
        ]),
        h(
          "div",
          { class: "prompt-actions" },
          answers.map((key) =>
            h("button", {
              type: "button",
              "data-answer": key,
              text: ANSWERS[key].label,
              on: { click: () => answer(p.id, key) },
            }),
          ),
        ),
      ],
    );
    return node;
  }

  function updateCountdowns() {
    const now = Date.now();
    for (const entry of state.prompts.slice()) {
      const left = Math.max(0, Math.ceil((entry.deadline - now) / 1000));
      $(".countdown progress", entry.node).value = left;
      $(".countdown .seconds", entry.node).textContent = `${left} s`;
      entry.node.dataset.secondsLeft = String(left);
      if (left <= 0) {
        // the daemon denies it now (and says so with promptclosed): it goes away
        removePrompt(entry.data.id, { reason: "timeout" });
      }
    }
  }

  async function answer(id, key) {
    const entry = state.prompts.find((p) => p.data.id === id);
    if (!entry) return;
    const spec = ANSWERS[key];
    for (const b of $$("button", entry.node)) b.disabled = true;
    try {
      const res = await call("permissions", "answer", { id, ...spec.params });
      if (res.answered) {
        showMessage(`${entry.data.app}: ${entry.data.permission} ${spec.done}.`, "ok");
      } else {
        showMessage("That question had already closed.", "error");
      }
      removePrompt(id);
    } catch (e) {
      for (const b of $$("button", entry.node)) b.disabled = false;
      showMessage(`Could not answer: ${describe(e)}`, "error");
    }
  }

  function answerFirst(key) {
    const first = state.prompts[0];
    if (first) answer(first.data.id, key);
  }

  // --- apps ----------------------------------------------------------------------------------

  async function loadApps() {
    try {
      state.apps = await call("apps", "list");
    } catch (e) {
      showMessage(`Cannot list apps: ${describe(e)}`, "error");
      return;
    }
    const list = $("#app-list");
    list.replaceChildren(...state.apps.map(appNode));
    fillAppSelect($("#perm-app"), false);
    fillAppSelect($("#audit-app"), true);
  }

  function signerText(app) {
    if (app.signer_subject) return `signed by ${app.signer_subject}`;
    if (app.signer) return `signer key ${app.signer.slice(0, 12)}\u2026`;
    return app.class === "pwa" ? "hosted, not signed" : "not signed";
  }

  function appNode(app) {
    const uninstall = h("button", {
      type: "button",
      class: "danger",
      "data-act": "uninstall",
      text: "Uninstall",
      disabled: !app.removable,
      title: app.removable ? null : "a preloaded app cannot be removed",
    });
    uninstall.addEventListener("click", (ev) => {
      ev.stopPropagation();
      if (uninstall.dataset.confirm !== "yes") {
        uninstall.dataset.confirm = "yes";
        uninstall.textContent = "Confirm uninstall";
        setTimeout(() => {
          uninstall.dataset.confirm = "";
          uninstall.textContent = "Uninstall";
        }, 5000);
        return;
      }
      uninstallApp(app);
    });
    const perms = h("button", {
      type: "button",
      "data-act": "permissions",
      text: "Permissions",
      on: {
        click: (ev) => {
          ev.stopPropagation();
          openPermissions(app.id);
        },
      },
    });
    const node = h(
      "li",
      {
        class: "app",
        tabindex: "0",
        "data-app": app.id,
        "data-name": app.name,
        "data-class": app.class,
        "data-activate": "",
      },
      [
        iconNode(app.origin, app.icon, app.name),
        h("div", { class: "app-main" }, [
          h("div", {}, [h("span", { class: "app-name", text: app.name }), badge(app.class)]),
          h("div", { class: "meta", text: `version ${app.version || "-"} \u00b7 ${signerText(app)}` }),
          h("div", { class: "origin", text: browserOrigin(app.origin) || app.origin }),
          h("div", { class: "app-actions" }, [perms, uninstall]),
        ]),
      ],
    );
    node.addEventListener("click", () => openPermissions(app.id));
    return node;
  }

  function fillAppSelect(select, withAll) {
    const current = select.value;
    const options = state.apps.map((a) => h("option", { value: a.id, text: a.name }));
    if (withAll) options.unshift(h("option", { value: "", text: "All apps" }));
    select.replaceChildren(...options);
    if ([...select.options].some((o) => o.value === current)) select.value = current;
  }

  async function uninstallApp(app) {
    try {
      await call("apps", "uninstall", { app: app.id });
      showMessage(`${app.name} was uninstalled.`, "ok");
    } catch (e) {
      showMessage(`Cannot uninstall ${app.name}: ${describe(e)}`, "error");
    }
    loadApps();
  }

  let installing = null;
  function installProgress(data) {
    if (!installing || data.url !== installing) return;
    const bar = $("#install-progress");
    bar.hidden = false;
    bar.value = Math.max(0, Math.min(1, Number(data.progress) || 0));
    bar.dataset.stages = [bar.dataset.stages, data.stage].filter(Boolean).join(",");
    $("#install-status").textContent = `${data.stage}\u2026`;
  }

  async function install(ev) {
    ev.preventDefault();
    const url = $("#install-url").value.trim();
    const status = $("#install-status");
    const bar = $("#install-progress");
    if (!url) return;
    installing = url;
    bar.hidden = false;
    bar.value = 0;
    bar.dataset.stages = "";
    status.className = "status";
    status.textContent = "Installing\u2026";
    $("#install-button").disabled = true;
    try {
      const app = await call("apps", "install", { url });
      bar.value = 1;
      status.className = "status ok";
      status.textContent = `Installed ${app.name} (${app.class}, version ${app.version || "-"}).`;
      $("#install-url").value = "";
    } catch (e) {
      status.className = "status error";
      status.textContent = `Not installed: ${describe(e)}`;
      bar.hidden = true;
    } finally {
      installing = null;
      $("#install-button").disabled = false;
    }
    loadApps();
  }

  // --- per-app permissions -------------------------------------------------------------------

  function openPermissions(appId) {
    state.permApp = appId;
    showView("permissions");
  }

  async function loadPermissions() {
    if (!state.apps.length) await loadApps();
    const select = $("#perm-app");
    if (state.permApp && [...select.options].some((o) => o.value === state.permApp)) {
      select.value = state.permApp;
    }
    state.permApp = select.value || null;
    if (!state.permApp) return;
    let res;
    try {
      res = await call("permissions", "list", { app: state.permApp });
    } catch (e) {
      showMessage(`Cannot read permissions: ${describe(e)}`, "error");
      return;
    }
    const app = res.app;
    const listed = state.apps.find((a) => a.id === app.id) || app;
    $("#perm-app-info").replaceChildren(
      iconNode(app.origin, listed.icon, app.name),
      h("div", {}, [
        h("div", {}, [h("span", { class: "app-name", text: app.name }), badge(app.class)]),
        h("div", { class: "origin", text: browserOrigin(app.origin) || app.origin }),
      ]),
    );
    const names = Object.keys(res.permissions).sort();
    const explicit = names.filter((n) => res.permissions[n].explicit);
    const implicit = names.filter((n) => !res.permissions[n].explicit);
    $("#perm-explicit").replaceChildren(
      ...(explicit.length
        ? explicit.map((n) => explicitNode(app, n, res.permissions[n]))
        : [h("li", { class: "empty", text: "Nothing to decide for this app." })]),
    );
    $("#perm-implicit").replaceChildren(...implicit.map((n) => implicitNode(n, res.permissions[n])));
  }

  function expiryText(info) {
    if (info.expiry === "until" && info.expires_at) {
      return `until ${new Date(info.expires_at * 1000).toLocaleTimeString()}`;
    }
    if (info.expiry === "once") return "for one use";
    if (info.expiry === "session") return "until the phone restarts";
    return null;
  }

  function explicitNode(app, permission, info) {
    const choices = [
      ["allow", "Allow"],
      ["prompt", "Ask"],
      ["deny", "Deny"],
    ];
    const group = h(
      "div",
      { class: "segmented", role: "radiogroup", "aria-label": permission },
      choices.map(([action, label]) =>
        h("button", {
          type: "button",
          role: "radio",
          "data-action": action,
          "aria-checked": info.action === action ? "true" : "false",
          text: label,
          on: {
            click: () => {
              if (info.action !== action) setPermission(app, permission, action, null);
            },
          },
        }),
      ),
    );
    const expiry = expiryText(info);
    return h("li", { class: "perm explicit", "data-permission": permission, "data-action": info.action }, [
      h("div", { class: "perm-name", text: permission }),
      h("div", { class: "perm-why", text: info.why }),
      expiry ? h("div", { class: "perm-expiry", text: expiry }) : null,
      group,
    ]);
  }

  function implicitNode(permission, info) {
    return h(
      "li",
      { class: "perm implicit", tabindex: "0", "data-permission": permission, "data-action": info.action },
      [
        h("div", {}, [
          h("div", { class: "perm-name", text: permission }),
          h("div", { class: "perm-why", text: info.why }),
        ]),
        badge(info.action),
      ],
    );
  }

  async function setPermission(app, permission, action, pin) {
    const params = { app: app.id, permission, action };
    if (pin) params.pin = pin;
    try {
      const res = await call("permissions", "set", params);
      showMessage(`${app.name}: ${permission} is now ${res.action}.`, "ok");
    } catch (e) {
      if (e.code === "PIN_REQUIRED") {
        const entered = await askPin(
          `Allowing ${permission} for ${app.name} needs your PIN.`,
          pin ? "Wrong PIN. Try again." : "",
        );
        if (entered !== null) return setPermission(app, permission, action, entered);
        showMessage("Not changed.", "");
      } else {
        showMessage(`Cannot change ${permission}: ${describe(e)}`, "error");
      }
    }
    return loadPermissions();
  }

  // --- the PIN dialog ------------------------------------------------------------------------

  /** Ask for the PIN; resolves to the digits, or null when cancelled. */
  function askPin(why, error) {
    const dialog = $("#pin-dialog");
    const form = $("#pin-dialog-form");
    const input = $("#pin-dialog-input");
    const errorNode = $("#pin-dialog-error");
    $("#pin-dialog-why").textContent = why;
    errorNode.textContent = error || "";
    input.value = "";
    return new Promise((resolve) => {
      function done(value) {
        form.removeEventListener("submit", onSubmit);
        dialog.removeEventListener("close", onClose);
        $("#pin-dialog-cancel").removeEventListener("click", onCancel);
        if (dialog.open) dialog.close();
        resolve(value);
      }
      function onSubmit(ev) {
        ev.preventDefault();
        const value = input.value.trim();
        if (!/^[0-9]{4,32}$/.test(value)) {
          errorNode.textContent = "A PIN is 4 to 32 digits.";
          return;
        }
        done(value);
      }
      function onClose() {
        done(null);
      }
      function onCancel() {
        done(null);
      }
      form.addEventListener("submit", onSubmit);
      dialog.addEventListener("close", onClose);
      $("#pin-dialog-cancel").addEventListener("click", onCancel);
      dialog.showModal();
      input.focus();
    });
  }

  // --- audit ---------------------------------------------------------------------------------

  function appName(origin) {
    const app = state.apps.find((a) => a.origin === origin);
    return app ? app.name : origin;
  }

  function auditClass(decision) {
    if (/deny|refused/.test(decision)) return "deny";
    if (/allow|granted|installed/.test(decision)) return "allow";
    return "";
  }

  async function loadAudit(ev) {
    if (ev) ev.preventDefault();
    if (!state.apps.length) await loadApps();
    const params = { limit: 200 };
    const app = $("#audit-app").value;
    const permission = $("#audit-permission").value.trim();
    if (app) params.app = app;
    if (permission) params.permission = permission;
    let entries;
    try {
      entries = await call("permissions", "audit", params);
    } catch (e) {
      showMessage(`Cannot read the audit log: ${describe(e)}`, "error");
      return;
    }
    entries.reverse(); // newest first
    if (!$("#audit-self").checked && api && api.info) {
      // the system app's own calls (listing apps, reading this log...) are noise here
      entries = entries.filter((e) => !(e.origin === api.info.origin && e.actor === "gateway"));
    }
    $("#audit-summary").textContent = `${entries.length} entr${entries.length === 1 ? "y" : "ies"}, newest first`;
    $("#audit-list").replaceChildren(
      ...entries.map((e) =>
        h(
          "li",
          {
            tabindex: "0",
            class: "audit-entry",
            "data-origin": e.origin,
            "data-permission": e.permission,
            "data-decision": e.decision,
            "data-actor": e.actor,
          },
          [
            h("div", { class: "line1" }, [
              h("span", { class: "who", text: appName(e.origin) }),
              h("span", { class: "time", text: new Date(e.time * 1000).toLocaleTimeString() }),
            ]),
            h("div", {}, [
              h("span", { class: "perm", text: `${e.permission} ` }),
              h("span", { class: `decision ${auditClass(e.decision)}`, text: e.decision }),
            ]),
            h("div", { class: "detail", text: [e.actor, e.detail].filter(Boolean).join(" \u00b7 ") }),
          ],
        ),
      ),
    );
    const seen = [...new Set(entries.map((e) => e.permission))].sort();
    $("#audit-permissions").replaceChildren(...seen.map((p) => h("option", { value: p })));
  }

  // --- settings: developer mode and the PIN ---------------------------------------------------

  function renderDevMode() {
    const on = state.devMode;
    $("#dev-state").textContent = on === null ? "unknown" : on ? "on" : "off";
    $("#dev-toggle").textContent = on ? "Turn off" : "Turn on";
    $("#dev-toggle").disabled = on === null;
  }

  async function loadSettings() {
    try {
      const res = await call("permissions", "developerMode", {});
      state.devMode = Boolean(res.on);
    } catch (e) {
      state.devMode = null;
      showMessage(`Developer mode: ${describe(e)}`, "error");
    }
    renderDevMode();
  }

  async function toggleDevMode(pin) {
    const want = !state.devMode;
    const params = { on: want };
    if (pin) params.pin = pin;
    try {
      const res = await call("permissions", "developerMode", params);
      state.devMode = Boolean(res.on);
      showMessage(`Developer mode is ${state.devMode ? "on" : "off"}.`, "ok");
    } catch (e) {
      if (e.code === "PIN_REQUIRED") {
        const entered = await askPin(
          "Turning developer mode on needs your PIN.",
          pin ? "Wrong PIN. Try again." : "",
        );
        if (entered !== null) return toggleDevMode(entered);
      } else {
        showMessage(`Developer mode: ${describe(e)}`, "error");
      }
    }
    return renderDevMode();
  }

  async function setPin(ev) {
    ev.preventDefault();
    const status = $("#pin-status");
    const old = $("#pin-old").value.trim();
    const fresh = $("#pin-new").value.trim();
    const again = $("#pin-repeat").value.trim();
    status.className = "status error";
    if (!/^[0-9]{4,32}$/.test(fresh)) {
      status.textContent = "A PIN is 4 to 32 digits.";
      return;
    }
    if (fresh !== again) {
      status.textContent = "The two new PINs differ.";
      return;
    }
    const params = { new: fresh };
    if (old) params.old = old;
    try {
      await call("permissions", "setPin", params);
      status.className = "status ok";
      status.textContent = "PIN set.";
      for (const id of ["#pin-old", "#pin-new", "#pin-repeat"]) $(id).value = "";
    } catch (e) {
      status.textContent =
        e.code === "PIN_REQUIRED"
          ? "The current PIN is missing or wrong."
          : e.code === "PIN_LOCKED"
            ? "Too many wrong PINs: wait and try again."
            : describe(e);
    }
  }

  // --- views, focus, keys --------------------------------------------------------------------

  function viewNode(name) {
    return $(`#view-${name || state.view}`);
  }

  function showView(name) {
    state.view = name;
    for (const v of VIEWS) {
      viewNode(v).hidden = v !== name;
      $(`#tab-${v}`).setAttribute("aria-selected", v === name ? "true" : "false");
    }
    document.body.dataset.view = name;
    if (name !== "prompts") state.returnTo = null;
    // the view takes the focus: Left/Right keep switching until Down enters it
    if (!(name === "prompts" && state.prompts.length)) viewNode(name).focus({ preventScroll: true });
    else state.prompts[0].node.focus();
    renderSoftkeys();
    refreshView();
  }

  function refreshView() {
    if (!isOpen()) return;
    if (state.view === "apps") loadApps();
    else if (state.view === "permissions") loadPermissions();
    else if (state.view === "audit") loadAudit();
    else if (state.view === "settings") loadSettings();
  }

  function visible(node) {
    return node.getClientRects().length > 0 && !node.closest("[hidden]");
  }

  function focusables() {
    return $$(
      "button, input, select, textarea, [tabindex='0']",
      viewNode(),
    ).filter((n) => !n.disabled && visible(n));
  }

  function moveFocus(step) {
    const items = focusables();
    if (!items.length) return;
    const at = items.indexOf(document.activeElement);
    const next = at < 0 ? (step > 0 ? 0 : items.length - 1) : (at + step + items.length) % items.length;
    items[next].focus();
    items[next].scrollIntoView({ block: "nearest" });
  }

  function switchView(step) {
    const at = VIEWS.indexOf(state.view);
    showView(VIEWS[(at + step + VIEWS.length) % VIEWS.length]);
  }

  function softkeys() {
    switch (state.view) {
      case "prompts":
        return state.prompts.length
          ? { left: ["Deny", () => answerFirst("deny")], center: "Select", right: ["Allow once", () => answerFirst("once")] }
          : { left: null, center: "", right: null };
      case "apps":
        return {
          left: ["Install", () => $("#install-url").focus()],
          center: "Select",
          right: ["Refresh", loadApps],
        };
      case "permissions":
        return { left: ["Apps", () => showView("apps")], center: "Select", right: ["Refresh", loadPermissions] };
      case "audit":
        return { left: ["Filter", () => $("#audit-app").focus()], center: "Select", right: ["Refresh", () => loadAudit()] };
      default:
        return { left: ["PIN", () => $("#pin-old").focus()], center: "Select", right: ["Refresh", loadSettings] };
    }
  }

  function renderSoftkeys() {
    const keys = softkeys();
    $("#softkey-left").textContent = keys.left ? keys.left[0] : "";
    $("#softkey-right").textContent = keys.right ? keys.right[0] : "";
    $("#softkey-center").textContent = keys.center || "";
  }

  function runSoftkey(side) {
    const keys = softkeys();
    const key = keys[side];
    if (key) key[1]();
  }

  function isTextField(node) {
    return node.matches("textarea, input:not([type=button]):not([type=submit]):not([type=checkbox]):not([type=radio])");
  }

  function onKey(ev) {
    const dialog = $("#pin-dialog");
    if (dialog.open) {
      if (ev.key === "SoftLeft" || ev.key === "F1") {
        ev.preventDefault();
        $("#pin-dialog-cancel").click();
      } else if (ev.key === "SoftRight" || ev.key === "F2") {
        ev.preventDefault();
        $("#pin-dialog-form").requestSubmit();
      }
      return;
    }
    const target = ev.target instanceof Element ? ev.target : document.body;
    switch (ev.key) {
      case "SoftLeft":
      case "F1":
        ev.preventDefault();
        runSoftkey("left");
        return;
      case "SoftRight":
      case "F2":
        ev.preventDefault();
        runSoftkey("right");
        return;
      case "ArrowDown":
      case "ArrowUp":
        ev.preventDefault();
        moveFocus(ev.key === "ArrowDown" ? 1 : -1);
        return;
      case "ArrowLeft":
      case "ArrowRight": {
        const step = ev.key === "ArrowRight" ? 1 : -1;
        if (isTextField(target)) return; // the caret moves
        ev.preventDefault();
        if (target.matches("select")) {
          const next = target.selectedIndex + step;
          if (next >= 0 && next < target.options.length) {
            target.selectedIndex = next;
            target.dispatchEvent(new Event("change", { bubbles: true }));
          }
          return;
        }
        switchView(step);
        return;
      }
      case "Enter":
        if (target.matches("[data-activate]")) {
          ev.preventDefault();
          target.click();
        }
        return;
      default:
    }
  }

  // --- start ---------------------------------------------------------------------------------

  function start() {
    for (const v of VIEWS) $(`#tab-${v}`).addEventListener("click", () => showView(v));
    $("#softkey-left").addEventListener("click", () => runSoftkey("left"));
    $("#softkey-right").addEventListener("click", () => runSoftkey("right"));
    $("#install-form").addEventListener("submit", install);
    $("#perm-app").addEventListener("change", () => {
      state.permApp = $("#perm-app").value;
      loadPermissions();
    });
    $("#audit-filter").addEventListener("submit", loadAudit);
    $("#audit-app").addEventListener("change", () => loadAudit());
    $("#audit-self").addEventListener("change", () => loadAudit());
    $("#dev-toggle").addEventListener("click", () => toggleDevMode(null));
    $("#pin-form").addEventListener("submit", setPin);
    document.addEventListener("keydown", onKey);
    showView("prompts");
    setConn("connecting");
    setInterval(tick, 500);
    ready().then(tick, (e) => {
      setConn("offline");
      showMessage(`Cannot reach the runtime: ${describe(e)}`, "error");
    });
  }

  start();
})();
