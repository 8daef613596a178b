// Fleet attention (SPEC §10): what needs a person, by bucket, with the
// reason and since when. It reloads when the live stream reports a task
// change (debounced) or when the tab becomes visible again — never on a
// timer.

import * as api from "./api.js";
import { onEvent, ready } from "./stream.js";
import { h, replace, time, statusBadge, agentName, messageBox, debounce } from "./dom.js";

const BUCKETS = [
  ["abandoned_claims", "Abandoned claims", "the lease ran out"],
  ["silent_holders", "Silent holders", "no heartbeat for half the lease"],
  ["errored", "Errored", "the agent reported an error"],
  ["waiting_input", "Waiting for input", "the agent is waiting for someone"],
  ["overdue", "Overdue", "past the due date"],
  ["looping", "Looping", "delegated back and forth"],
  ["blocked_by_failure", "Blocked by a failure", "a dependency failed"],
];

export function mount(main, { focusHeading }) {
  const msg = messageBox();
  const total = h("p", { "aria-live": "polite" });
  const body = h("div", { class: "buckets" });
  main.append(h("h1", {}, "Fleet attention"), total,
    h("button", { type: "button", class: "secondary", onclick: () => load() }, "Refresh"), msg, body);
  focusHeading();

  async function load() {
    try {
      const res = await api.get("/fleet/attention");
      msg.clear();
      total.textContent = res.count ? `${res.count} task(s) need attention.` : "Nothing needs attention.";
      replace(body, BUCKETS.map(([key, title, hint]) => {
        const tasks = (res.buckets && res.buckets[key]) || [];
        return h("section", { class: `panel bucket bucket-${key}`, "data-bucket": key, "aria-labelledby": `b-${key}` },
          h("h2", { id: `b-${key}` }, title, " ", h("span", { class: "count" }, String(tasks.length))),
          h("p", { class: "muted small" }, hint),
          tasks.length ? h("ul", { class: "attention" }, tasks.map((t) => h("li", { "data-task-id": t.id },
            h("a", { href: `#/tasks/${t.id}` }, `#${t.id} ${t.content}`), " ", statusBadge(t.status),
            h("div", {}, t.attention_reason || ""),
            h("div", { class: "muted small" }, agentName(t.assigned_to_agent, "unassigned"),
              t.since ? [" · since ", time(t.since)] : null))))
            : h("p", { class: "muted" }, "none"));
      }));
    } catch (err) {
      msg.show("error", err.describe());
    }
  }

  const refresh = debounce(load, 700);
  const off = onEvent((ev) => { if (ev.type === "resync" || ev.type.startsWith("task.")) refresh(); });
  const onVisible = () => { if (document.visibilityState === "visible") refresh(); };
  document.addEventListener("visibilitychange", onVisible);
  ready().then(load);
  return () => { off(); refresh.cancel(); document.removeEventListener("visibilitychange", onVisible); };
}
