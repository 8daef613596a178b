// The tab's one live connection: GET /api/events as Server-Sent Events.
//
// A browser's EventSource cannot send headers, and the credential must not
// go in a URL, so the stream is read with fetch() and parsed here. Every
// view subscribes to this one stream (one connection per tab, no polling).
// After a disconnect it reconnects with Last-Event-ID, so the server
// resumes after the last event this tab saw and nothing is lost or
// repeated (SPEC §9).

import { apiBase, authHeaders, credential } from "./api.js";

const listeners = new Set();
const statusListeners = new Set();
/** The newest events this tab received, newest last (for the feed view). */
export const recent = [];
const RECENT_MAX = 300;

let controller = null;
let lastEventId = null;
/** Events a second the stream sends before it says "resync" instead. */
const MAX_RATE = 20;
let retryMs = 3000;
let state = "offline";

/** fn(event) for every event: {id, type, data}; returns an unsubscribe. */
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

/** fn(state) with "connecting" | "live" | "reconnecting" | "offline". */
export function onStatus(fn) {
  statusListeners.add(fn);
  fn(state);
  return () => statusListeners.delete(fn);
}

function setState(s) {
  state = s;
  statusListeners.forEach((fn) => fn(s));
}

/** Resolves once the stream is connected (or after `ms`, so a stream that
 *  cannot connect never blocks a view). Views load their first data after
 *  this, so no event falls between their load and the stream's start. */
export function ready(ms = 3000) {
  if (state === "live") return Promise.resolve();
  return new Promise((resolve) => {
    let off = null;
    const t = setTimeout(done, ms);
    off = onStatus((s) => { if (s === "live") done(); });
    function done() { clearTimeout(t); off?.(); resolve(); }
  });
}

export function start(onUnauthorized) {
  if (controller) return;
  controller = new AbortController();
  run(controller.signal, onUnauthorized);
}

export function stop() {
  controller?.abort();
  controller = null;
  lastEventId = null;
  recent.length = 0;
  setState("offline");
}

/** Waits `ms`, or less when the browser comes back online or the stream
 *  is stopped. */
const sleep = (ms, signal) => new Promise((resolve) => {
  const done = () => { clearTimeout(t); window.removeEventListener("online", done); resolve(); };
  const t = setTimeout(done, ms);
  window.addEventListener("online", done);
  signal.addEventListener("abort", done, { once: true });
});

/** The server sends a keep-alive comment every 15 s; a connection silent for
 *  three times that is dead (a half-open TCP connection never errors). */
const SILENCE_MS = 45000;

async function run(signal, onUnauthorized) {
  let failures = 0;
  let connected = false;
  while (!signal.aborted) {
    setState(failures ? "reconnecting" : "connecting");
    // This connection's own abort: the tab going offline or a silent
    // connection ends it, and the loop below reconnects.
    const conn = new AbortController();
    const abortConn = () => conn.abort();
    signal.addEventListener("abort", abortConn, { once: true });
    window.addEventListener("offline", abortConn);
    try {
      const headers = { Accept: "text/event-stream", ...authHeaders(credential()) };
      if (lastEventId !== null) headers["Last-Event-ID"] = String(lastEventId);
      // A person reads a handful of changes a second. Past MAX_RATE the
      // server drops the events of that second and sends one "resync"
      // instead, and the views reload (bounded pages): 50 open tabs then
      // cost the API a few small requests a second, not every task's
      // JSON 50 times over.
      const response = await fetch(`${apiBase}/api/events?max_rate=${MAX_RATE}`, {
        headers, signal: conn.signal, credentials: "omit", cache: "no-store",
      });
      if (response.status === 401) {
        onUnauthorized?.();
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setState("live");
      // A connection that resumes from a known event id misses nothing. One
      // that starts afresh after another dropped may have: tell the views
      // to reload once.
      if (connected && lastEventId === null) notify({ id: null, type: "resync", data: null });
      connected = true;
      failures = 0;
      await read(response.body, conn);
    } catch (e) {
      // network error, abort, or a dead connection: reconnect below
    } finally {
      signal.removeEventListener("abort", abortConn);
      window.removeEventListener("offline", abortConn);
    }
    if (signal.aborted) return;
    failures += 1;
    setState("reconnecting");
    // The server's `retry:` hint, backing off to 30 s while it stays down.
    const wait = Math.min(30000, retryMs * Math.min(failures, 10)) * (0.8 + Math.random() * 0.4);
    await sleep(wait, signal);
  }
}

/** Parses the text/event-stream format (WHATWG HTML §9.2) from a body. */
async function read(body, conn) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let data = [];
  let type = "";
  let id = null;
  let silence = setTimeout(() => conn.abort(), SILENCE_MS);
  try {
    while (!conn.signal.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      clearTimeout(silence);
      silence = setTimeout(() => conn.abort(), SILENCE_MS);
      parse(value);
    }
  } finally {
    clearTimeout(silence);
  }

  function parse(value) {
    buffer += value;
    // A "\r" at the very end may be half of a "\r\n" split across chunks.
    const lines = buffer.split(/\r\n|\r(?!$)|\n/);
    buffer = lines.pop(); // an unfinished line waits for the next chunk
    for (const line of lines) {
      if (line === "") {
        // As EventSource does: the id counts even for a block without data
        // (so a server may announce its position before any event).
        if (id !== null && /^\d+$/.test(id)) lastEventId = Number(id);
        if (data.length) dispatch(type || "message", data.join("\n"));
        data = [];
        type = "";
        continue;
      }
      if (line.startsWith(":")) continue; // comment / keep-alive
      const colon = line.indexOf(":");
      const name = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (name === "data") data.push(value);
      else if (name === "event") type = value;
      else if (name === "id") id = value;
      else if (name === "retry" && /^\d+$/.test(value)) retryMs = Number(value);
    }
  }
}

function dispatch(type, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    return;
  }
  const event = { id: lastEventId, type, data };
  recent.push(event);
  if (recent.length > RECENT_MAX) recent.shift();
  notify(event);
}

function notify(event) {
  listeners.forEach((fn) => {
    try {
      fn(event);
    } catch (e) {
      console.error("event listener failed", e);
    }
  });
}
