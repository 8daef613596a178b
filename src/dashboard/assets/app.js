// Entry point: sign-in, the page frame, and the hash router.
//
// Routes live in the URL fragment (#/board, #/tasks/42, …) so the server
// serves one index.html at / and never needs to know the app's routes.
// Filters may appear in the fragment (they are not secrets); credentials
// never do.

import * as api from "./api.js";
import * as stream from "./stream.js";
import { h, replace, field, messageBox } from "./dom.js";
import { session, loadShared, followShared, reset, whoLabel } from "./session.js";
import * as board from "./board.js";

// The board is the landing page and comes with the first load; the other
// views are fetched the first time they are opened.
const lazy = (path) => () => import(path);
const boardView = () => Promise.resolve(board);
const routes = [
  { pattern: /^\/?$/, view: boardView, nav: "board" },
  { pattern: /^\/board$/, view: boardView, nav: "board" },
  { pattern: /^\/tasks\/(\d+)$/, view: lazy("./task.js"), nav: "board", params: ["id"] },
  { pattern: /^\/attention$/, view: lazy("./attention.js"), nav: "attention" },
  { pattern: /^\/events$/, view: lazy("./feed.js"), nav: "events" },
  { pattern: /^\/agents$/, view: lazy("./agents.js"), nav: "agents" },
  { pattern: /^\/webhooks$/, view: lazy("./webhooks.js"), nav: "webhooks" },
  { pattern: /^\/webhooks\/(\d+)$/, view: lazy("./webhooks.js"), nav: "webhooks", params: ["id"] },
];

const NAV = [
  ["board", "#/board", "Board"],
  ["attention", "#/attention", "Attention"],
  ["events", "#/events", "Events"],
  ["agents", "#/agents", "Agents"],
  ["webhooks", "#/webhooks", "Webhooks"],
];

const root = document.getElementById("app");
let main = null;
let nav = null;
let cleanup = null;

/** The fragment as {path, query}: "#/board?label=x" → "/board", {label}. */
export function currentRoute() {
  const raw = location.hash.replace(/^#/, "");
  const [path, qs] = raw.split("?");
  return { path: path || "/", query: Object.fromEntries(new URLSearchParams(qs || "")) };
}

export function navigate(path, query) {
  const qs = query ? new URLSearchParams(
    Object.entries(query).filter(([, v]) => v !== "" && v != null)).toString() : "";
  location.hash = "#" + path + (qs ? "?" + qs : "");
}

let routing = 0;

async function route() {
  if (!session.me) return;
  const mine = ++routing;
  cleanup?.();
  cleanup = null;
  const { path, query } = currentRoute();
  const match = routes.map((r) => ({ r, m: path.match(r.pattern) })).find((x) => x.m);
  for (const a of nav.querySelectorAll("a")) {
    if (match && a.dataset.nav === match.r.nav) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  replace(main);
  if (!match) {
    main.append(h("h1", { tabindex: "-1" }, "Not found"),
      h("p", {}, "No such page. ", h("a", { href: "#/board" }, "Go to the board.")));
    focusHeading();
    return;
  }
  const params = {};
  (match.r.params || []).forEach((name, i) => { params[name] = match.m[i + 1]; });
  const ctx = { params, query, navigate, focusHeading };
  let view;
  try {
    view = await match.r.view();
  } catch (err) {
    main.append(h("h1", { tabindex: "-1" }, "Could not load this page"),
      h("p", { class: "error", role: "alert" }, String(err.message || err)));
    return;
  }
  if (mine !== routing || !session.me) return; // another route won meanwhile
  cleanup = view.mount(main, ctx) || null;
}

/** After a route change, move focus to the new page's heading so a
 *  keyboard or screen-reader user starts at the top of the new view. */
function focusHeading() {
  const heading = main.querySelector("h1");
  if (heading) {
    heading.setAttribute("tabindex", "-1");
    heading.focus({ preventScroll: true });
  }
}

function shell() {
  const status = h("span", { class: "live", role: "status", "aria-live": "polite" }, "offline");
  stream.onStatus((s) => {
    status.textContent = { live: "● live", connecting: "connecting…", reconnecting: "reconnecting…",
      offline: "offline" }[s];
    status.dataset.state = s;
  });
  nav = h("nav", { "aria-label": "Main" },
    h("ul", {}, NAV.map(([key, href, text]) =>
      h("li", {}, h("a", { href, "data-nav": key }, text)))));
  main = h("main", { id: "main", tabindex: "-1" });
  const skip = h("button", { type: "button", class: "skip",
    onclick: () => (main.querySelector("h1") || main).focus() }, "Skip to content");
  replace(root,
    skip,
    h("header", { class: "top" },
      h("a", { href: "#/board", class: "brand" }, "Delega"),
      nav,
      h("div", { class: "who" },
        status,
        h("span", { class: "me", "data-testid": "who" }, whoLabel()),
        h("button", { type: "button", class: "secondary", onclick: () => signOut() }, "Sign out"))),
    main);
}

function signInForm(message) {
  const input = h("input", { type: "password", name: "credential", required: true,
    autocomplete: "off", spellcheck: "false", placeholder: "dlg_… or dlp_…" });
  const msg = messageBox();
  const submit = h("button", { type: "submit" }, "Sign in");
  const form = h("form", { class: "signin", method: "post", "aria-labelledby": "signin-title",
    onsubmit: async (e) => {
      e.preventDefault();
      const cred = input.value.trim();
      if (!cred) return;
      submit.disabled = true;
      msg.show("info", "Checking…");
      try {
        const me = await api.request("GET", "/agent/me", undefined, { cred });
        api.saveCredential(cred);
        input.value = "";
        await enter(me);
      } catch (err) {
        msg.show("error", err.status === 401
          ? "That key or token was refused (401). Check it and try again."
          : err.describe());
        submit.disabled = false;
        input.focus();
      }
    } },
    h("h1", { id: "signin-title" }, "Sign in to Delega"),
    h("p", {}, "Use an agent key (", h("code", {}, "dlg_…"), ") or the project token (",
      h("code", {}, "dlp_…"), ", acts as admin). You will see exactly what that credential may see."),
    field("Agent key or project token", input,
      "Kept in this tab's session storage only and sent as a header; closing the tab forgets it."),
    submit,
    msg);
  replace(root, h("main", { id: "main", class: "signin-page" }, form));
  if (message) msg.show("error", message);
  input.focus();
}

async function enter(me) {
  session.me = me;
  await loadShared();
  followShared();
  stream.start(() => expired());
  shell();
  if (!location.hash || location.hash === "#") navigate("/board");
  else route();
}

function signOut(message) {
  stream.stop();
  cleanup?.();
  cleanup = null;
  api.clearCredential();
  reset();
  signInForm(message);
}

const EXPIRED = "The server no longer accepts this credential (401). Sign in again.";

function expired() {
  if (session.me) signOut(EXPIRED);
}

api.setUnauthorizedHandler(expired);
window.addEventListener("hashchange", route);

async function boot() {
  const cred = api.credential();
  if (!cred) return signInForm();
  try {
    await enter(await api.get("/agent/me"));
  } catch (err) {
    api.clearCredential();
    signInForm(err.status === 401 ? EXPIRED : err.describe());
  }
}

boot();
