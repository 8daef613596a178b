// DOM helpers: build elements in code, never from HTML strings, so text
// that comes from the API (task content, comments, context values) is
// always inserted as text and cannot run as markup.

/**
 * h("a", {href: "#/tasks/1", class: "card"}, "text", child, [more])
 * Attributes: `class`, `for`, `on<event>` (listener), booleans (true sets
 * the attribute, false/null/undefined omits it); everything else is
 * setAttribute. Children: strings, numbers, nodes, arrays, null (skipped).
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith("on") && typeof v === "function") {
      el.addEventListener(k.slice(2).toLowerCase(), v);
    } else if (k === "class") {
      el.className = v;
    } else if (k === "for") {
      el.htmlFor = v;
    } else if (k === "value") {
      el.value = v;
    } else {
      el.setAttribute(k, v === true ? "" : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A `<time>` with the local time as text and the exact instant on hover. */
export function time(iso, { relative = false } = {}) {
  if (!iso) return h("span", { class: "muted" }, "—");
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h("span", {}, iso);
  return h("time", { datetime: iso, title: d.toISOString() },
    relative ? ago(d) : localTime(d));
}

export function localTime(d) {
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ` +
    `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

export function ago(d) {
  const s = Math.round((Date.now() - d.getTime()) / 1000);
  if (s < 5) return "just now";
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return localTime(d);
}

/** An agent reference from a task's nested {id,name,display_name}. */
export function agentName(a, fallback = "—") {
  if (!a) return fallback;
  return a.display_name ? `${a.display_name} (${a.name})` : a.name;
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}` }, status.replace("_", " "));
}

/** Pretty JSON for a value shown to a person. */
export function json(value) {
  return h("pre", { class: "json" },
    typeof value === "string" ? value : JSON.stringify(value, null, 2));
}

/** Only http(s) URLs become links: a `javascript:` URL stored in a task
 *  link must never be clickable. */
export function safeLink(url, text) {
  if (typeof url === "string" && /^https?:\/\//i.test(url)) {
    return h("a", { href: url, rel: "noopener noreferrer", target: "_blank" }, text || url);
  }
  return h("span", {}, text || url || "");
}

/** A labelled form field: <label for=id>text</label><input id=id …>. */
export function field(label, input, hint) {
  const id = input.id || (input.id = uid());
  return h("div", { class: "field" },
    h("label", { for: id }, label), input,
    hint ? h("small", { class: "hint" }, hint) : null);
}

let counter = 0;
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

/** A region that announces results of an action (errors as alerts). */
export function messageBox() {
  const el = h("div", { class: "message", "aria-live": "polite" });
  el.show = (kind, ...content) => {
    el.setAttribute("role", kind === "error" ? "alert" : "status");
    el.className = `message ${kind}`;
    replace(el, ...content);
  };
  el.clear = () => { el.className = "message"; el.removeAttribute("role"); replace(el); };
  return el;
}

/** Runs `fn` at most once per `ms`, after the last call (trailing). */
export function debounce(fn, ms) {
  let t = null;
  const wrapped = (...args) => {
    clearTimeout(t);
    t = setTimeout(() => { t = null; fn(...args); }, ms);
  };
  wrapped.cancel = () => clearTimeout(t);
  return wrapped;
}

/** A read-only secret with a copy button: agent keys and webhook secrets
 *  are shown once, here, and nowhere else. */
export function secretOnce(title, value, onDone) {
  const input = h("input", { type: "text", readonly: true, value, class: "secret",
    "aria-label": title, spellcheck: "false", autocomplete: "off" });
  const status = h("span", { class: "copied", "aria-live": "polite" });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
    } catch {
      input.select();
      document.execCommand("copy");
    }
    status.textContent = "Copied.";
  };
  const box = h("div", { class: "secret-once", role: "region", "aria-label": title },
    h("h3", {}, title),
    h("p", {}, h("strong", {}, "Shown only this once."),
      " Copy it now: the server keeps only a hash and cannot show it again."),
    h("div", { class: "row" }, input,
      h("button", { type: "button", onclick: copy }, "Copy"),
      h("button", { type: "button", class: "secondary", onclick: () => { box.remove(); onDone?.(); } },
        "Done, hide it")),
    status);
  return box;
}

/** Copies each column's header text onto its cells (data-label), so a
 *  table stacked into cards on a phone still says what each value is. */
export function labelled(table) {
  const heads = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
  for (const tr of table.querySelectorAll("tbody tr")) {
    [...tr.children].forEach((cell, i) => {
      if (heads[i]) cell.dataset.label = heads[i];
    });
  }
  return table;
}
