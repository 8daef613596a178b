// The live event feed: every event this tab's stream delivered, newest
// first, with a type filter and a pause switch. Earlier events can be
// paged in from GET /api/events once an event id is known.

import * as api from "./api.js";
import { onEvent, recent } from "./stream.js";
import { h, replace, field, time, agentName } from "./dom.js";

const MAX = 300;

export function mount(main, { focusHeading }) {
  const events = [...recent];
  let paused = false;
  const filter = h("input", { type: "search", placeholder: "task.completed, agent., …" });
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false" }, "Pause");
  const older = h("button", { type: "button", class: "secondary" }, "Load earlier events");
  const list = h("ol", { class: "feed", "aria-live": "off" });
  const note = h("p", { class: "muted small" });
  main.append(h("h1", {}, "Live events"),
    h("div", { class: "row wrap" }, field("Filter by type", filter), pause, older), note, list);
  focusHeading();

  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    if (!paused) render();
  });
  filter.addEventListener("input", render);
  older.addEventListener("click", async () => {
    const known = events.map((e) => e.id).filter((x) => typeof x === "number");
    if (!known.length) {
      note.textContent = "No event has arrived in this tab yet, so there is no position to page back from.";
      return;
    }
    const lowest = Math.min(...known);
    const since = Math.max(0, lowest - 101);
    try {
      const page = await api.get("/events", { since, limit: 100 });
      const add = page.filter((p) => p.event_id < lowest)
        .map((p) => ({ id: p.event_id, type: p.event, data: p }));
      events.unshift(...add);
      note.textContent = add.length ? `Loaded ${add.length} earlier event(s).` :
        (since === 0 ? "That was the first event." : "No earlier events visible to you in that range.");
      if (since === 0) older.hidden = true;
      render();
    } catch (err) {
      note.textContent = err.describe();
    }
  });

  function item(ev) {
    const d = ev.data || {};
    const t = d.task;
    const subject = t ? h("a", { href: `#/tasks/${t.id}` }, `#${t.id} ${t.content}`)
      : d.agent_subject ? h("span", {}, "agent ", d.agent_subject.name)
        : d.project ? h("span", {}, "project ", d.project.name) : null;
    return h("li", { "data-event-id": ev.id ?? "" },
      h("span", { class: "muted" }, time(d.timestamp)), " ",
      h("code", { class: "etype" }, ev.type), " ", subject,
      d.agent ? h("span", { class: "muted" }, ` by ${agentName(d.agent)}`) : null,
      d.reason ? h("span", { class: "muted" }, ` (${d.reason})`) : null);
  }

  function render() {
    const f = filter.value.trim();
    const shown = events.filter((e) => !f || e.type.includes(f)).slice(-MAX).reverse();
    replace(list, shown.map(item));
    if (!shown.length) list.append(h("li", { class: "muted" }, "Waiting for events…"));
  }

  const off = onEvent((ev) => {
    if (ev.type === "resync") return;
    events.push(ev);
    if (events.length > MAX * 2) events.splice(0, events.length - MAX);
    if (!paused) render();
  });
  render();
  return off;
}
