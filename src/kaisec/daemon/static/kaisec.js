/*
 * kaisec.js: the web apps' client of the kaisec API gateway.
 *
 *   const api = await kaisec.connect();
 *   const people = await api.contacts.find({ name: "Ada" });
 *   api.on("telephony", "callstatechange", (call) => ...);
 *   try { await api.telephony.dial({ number: "5551234" }); }
 *   catch (e) { if (e instanceof kaisec.PermissionError) console.log(e.permission); }
 *
 * Packaged apps get their token from their own origin; hosted PWAs from the
 * daemon's localhost origin (CORS, installed PWAs only). Every (re)connection
 * fetches a fresh single-use token. Protocol: docs/protocol.md.
 */
(function (global) {
  "use strict";

  const script = document.currentScript;
  const sharedUrl = script ? new URL(script.src) : new URL("http://shared.localhost:8081/");
  const port = sharedUrl.port || "80";
  const daemonOrigin = `http://localhost:${port}`;
  const packaged = location.hostname.endsWith(".localhost") && (location.port || "80") === port;

  class KaisecError extends Error {
    constructor(error) {
      super(error.message || error.code);
      this.name = "KaisecError";
      this.code = error.code;
      this.reason = error.reason || null;
      this.permission = error.permission || null;
    }
  }

  class PermissionError extends KaisecError {
    constructor(error) {
      super(error);
      this.name = "PermissionError";
    }
  }

  class ConnectionClosed extends Error {
    constructor(code, reason) {
      super(`connection closed (${code}${reason ? ": " + reason : ""})`);
      this.name = "ConnectionClosed";
      this.code = code;
    }
  }

  async function fetchToken() {
    const url = packaged ? "/.kaisec/token" : `${daemonOrigin}/.kaisec/token`;
    const response = await fetch(url, {
      headers: { "X-Kaisec-Token-Request": "1" },
      mode: packaged ? "same-origin" : "cors",
      credentials: "omit",
      cache: "no-store",
    });
    if (!response.ok) {
      throw new KaisecError({ code: "AUTH_REQUIRED", message: `token refused (${response.status})` });
    }
    return (await response.json()).token;
  }

  function wsUrl() {
    return packaged ? `ws://${location.host}/.kaisec/ws` : `ws://localhost:${port}/.kaisec/ws`;
  }

  class Session {
    constructor(options) {
      this.options = options || {};
      this.nextId = 1;
      this.pending = new Map();
      this.listeners = new Map();
      this.ws = null;
      this.ready = false;
      this.info = null;
      this.closed = false;
      this.retryDelay = 500;
      return new Proxy(this, {
        get(target, prop, receiver) {
          if (prop in target || typeof prop === "symbol") return Reflect.get(target, prop, receiver);
          return new Proxy({}, {
            get(_, method) {
              if (typeof method === "symbol") return undefined;
              return (params) => target.call(prop, method, params || {});
            },
          });
        },
      });
    }

    async open() {
      this.ready = false;
      const token = await fetchToken();
      const ws = new WebSocket(wsUrl());
      this.ws = ws;
      await new Promise((resolve, reject) => {
        ws.onopen = () => ws.send(JSON.stringify({ token }));
        ws.onerror = () => reject(new KaisecError({ code: "AUTH_REQUIRED", message: "cannot connect" }));
        ws.onclose = (ev) => reject(new ConnectionClosed(ev.code, ev.reason));
        ws.onmessage = (ev) => {
          const msg = JSON.parse(ev.data);
          if (msg.ready) {
            this.info = msg;
            this.ready = true;
            this.retryDelay = 500;
            ws.onmessage = (e) => this._dispatch(JSON.parse(e.data));
            ws.onclose = (e) => this._closed(e);
            resolve();
          }
        };
      });
      return this;
    }

    _dispatch(msg) {
      if (msg.event) {
        for (const cb of this.listeners.get(`${msg.service}:${msg.event}`) || []) {
          try { cb(msg.data); } catch (e) { console.error(e); }
        }
        return;
      }
      const waiter = this.pending.get(msg.id);
      if (!waiter) return;
      this.pending.delete(msg.id);
      if (msg.error) {
        const Cls = msg.error.code === "PERMISSION_DENIED" ? PermissionError : KaisecError;
        waiter.reject(new Cls(msg.error));
      } else {
        waiter.resolve(msg.result);
      }
    }

    _closed(ev) {
      for (const waiter of this.pending.values()) waiter.reject(new ConnectionClosed(ev.code, ev.reason));
      this.pending.clear();
      this.ws = null;
      this.ready = false;
      // reconnect with a fresh token, backing off, unless we were refused or asked to stop
      if (!this.closed && this.options.reconnect !== false && ev.code !== 4401) {
        this._retry();
      }
    }

    _retry() {
      const delay = this.retryDelay;
      this.retryDelay = Math.min(this.retryDelay * 2, 10000);
      setTimeout(() => {
        if (this.closed) return;
        this.open().catch(() => this._retry());
      }, delay);
    }

    call(service, method, params) {
      if (!this.ws || !this.ready || this.ws.readyState !== WebSocket.OPEN) {
        return Promise.reject(new ConnectionClosed(0, "not connected"));
      }
      const id = this.nextId++;
      return new Promise((resolve, reject) => {
        this.pending.set(id, { resolve, reject });
        this.ws.send(JSON.stringify({ id, service, method, params }));
      });
    }

    on(service, event, callback) {
      const key = `${service}:${event}`;
      if (!this.listeners.has(key)) this.listeners.set(key, new Set());
      this.listeners.get(key).add(callback);
      return () => this.listeners.get(key).delete(callback);
    }

    close() {
      this.closed = true;
      if (this.ws) this.ws.close(1000);
    }
  }

  async function connect(options) {
    const session = new Session(options);
    await session.open();
    return session;
  }

  global.kaisec = { connect, KaisecError, PermissionError, ConnectionClosed, fetchToken };
})(window);
