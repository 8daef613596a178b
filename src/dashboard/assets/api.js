// The REST client: one place that knows where the API is, how the
// credential is sent, and what the server's errors look like.
//
// The credential lives in sessionStorage (this tab only, gone when it
// closes) and travels in a request header — never in a URL, never in a
// cookie, so a cross-site request from another page carries nothing.

const STORAGE_KEY = "delega.credential";

/** Where the API is: same origin unless index.html names another
 *  (non-secret) base in <meta name="delega-api-base">, which the
 *  development server sets. */
export const apiBase = (document.querySelector('meta[name="delega-api-base"]')?.content || "")
  .replace(/\/+$/, "");

export function credential() {
  return sessionStorage.getItem(STORAGE_KEY);
}

export function saveCredential(value) {
  sessionStorage.setItem(STORAGE_KEY, value);
}

export function clearCredential() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** Agent keys go in X-Agent-Key, the project token as a bearer token. */
export function authHeaders(cred = credential()) {
  if (!cred) return {};
  return cred.startsWith("dlg_") ? { "X-Agent-Key": cred } : { Authorization: `Bearer ${cred}` };
}

/** The server's error body, {error, code, status, detail}, as an Error. */
export class ApiError extends Error {
  constructor(status, body) {
    const message = (body && body.error) || `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = (body && body.code) || null;
    this.detail = body ? body.detail : null;
    this.body = body;
  }

  /** One line a person can act on: "409 conflict — task 3 is not claimed". */
  describe() {
    let text = `${this.status}${this.code ? " " + this.code : ""}: ${this.message}`;
    if (this.detail && typeof this.detail === "object" && this.detail.field && this.detail.reason) {
      const same = this.message.includes(this.detail.reason);
      if (!same) text += ` (${this.detail.field}: ${this.detail.reason})`;
    }
    return text;
  }
}

/** Called when the server refuses the stored credential (401). */
let onUnauthorized = () => {};
export function setUnauthorizedHandler(fn) {
  onUnauthorized = fn;
}

function url(path, query) {
  let u = apiBase + "/api" + path;
  if (query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) {
      if (v === undefined || v === null || v === "") continue;
      if (Array.isArray(v)) v.forEach((x) => q.append(k, x));
      else q.append(k, String(v));
    }
    const s = q.toString();
    if (s) u += "?" + s;
  }
  return u;
}

/**
 * request("POST", "/tasks/1/comments", {content}) → parsed JSON.
 * Options: query (object), cred (a credential to try, for sign-in),
 * raw (return {data, response}).
 */
export async function request(method, path, body, { query, cred, raw = false } = {}) {
  const headers = { Accept: "application/json", ...authHeaders(cred ?? credential()) };
  const init = { method, headers, credentials: "omit", cache: "no-store" };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(url(path, query), init);
  } catch (e) {
    throw new ApiError(0, { error: `cannot reach the server (${e.message})`, code: "network" });
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = { error: text.slice(0, 200) };
    }
  }
  if (!response.ok) {
    const err = new ApiError(response.status, data);
    if (response.status === 401 && cred === undefined) onUnauthorized(err);
    throw err;
  }
  return raw ? { data, response } : data;
}

export const get = (path, query) => request("GET", path, undefined, { query });
export const post = (path, body = {}) => request("POST", path, body);
export const put = (path, body) => request("PUT", path, body);
export const patch = (path, body) => request("PATCH", path, body);
export const del = (path) => request("DELETE", path);

/** A list endpoint's page, and the path of the next one when the server
 *  has more (`Link: </api/tasks?…&cursor=…>; rel="next"`), else null. */
export async function list(path, query) {
  const { data, response } = await request("GET", path, undefined, { query, raw: true });
  const link = response.headers.get("Link") || "";
  const m = link.match(/<([^>]*)>\s*;\s*rel="?next"?/);
  let next = null;
  if (m) {
    const u = new URL(m[1], location.href);
    next = u.pathname.replace(/^\/(api|v1)/, "") + u.search;
  }
  return { items: data || [], more: Boolean(next), next };
}
