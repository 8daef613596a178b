// The board: tasks by status, filtered, kept current from the live stream.
//
// The first load is one GET /api/tasks with the filters; after that every
// task event carries the whole task, so the board updates itself from the
// stream without asking the API again.

import * as api from "./api.js";
import { onEvent, ready } from "./stream.js";
import { h, replace, field, agentName, time, messageBox } from "./dom.js";
import { session, readsAll } from "./session.js";

export const COLUMNS = ["open", "claimed", "in_progress", "delegated", "blocked", "completed", "failed"];
const ACTIVE_LIMIT = 80;
const DONE_LIMIT = 25;

export function mount(main, { query, navigate, focusHeading }) {
  const filters = {
    agent: query.agent || "",
    project: query.project || "",
    label: query.label || "",
    q: query.q || "",
  };
  const tasks = new Map();
  const msg = messageBox();
  const note = h("p", { class: "muted small", "aria-live": "polite" });
  const columns = {};
  const grid = h("div", { class: "board" }, COLUMNS.map((status) => {
    const list = h("ol", { class: "cards", "aria-labelledby": `col-${status}` });
    const count = h("span", { class: "count" }, "0");
    columns[status] = { list, count };
    return h("section", { class: `column col-${status}`, "data-status": status },
      h("h2", { id: `col-${status}` }, status.replace("_", " "), " ", count),
      list);
  }));

  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Board"), note),
    filterForm(filters, navigate),
    msg,
    grid);
  focusHeading();

  function matches(t) {
    if (filters.agent) {
      const a = filters.agent.toLowerCase();
      const who = [String(t.assigned_to_agent_id ?? ""), (t.assigned_to || "").toLowerCase()];
      if (!who.includes(a)) return false;
    }
    if (filters.project && String(t.project_id ?? "") !== filters.project) return false;
    if (filters.label && !(t.labels || []).includes(filters.label)) return false;
    if (filters.q) {
      const hay = `${t.content || ""}\n${t.description || ""}`.toLowerCase();
      if (!hay.includes(filters.q.toLowerCase())) return false;
    }
    return true;
  }

  function render() {
    const by = Object.fromEntries(COLUMNS.map((s) => [s, []]));
    for (const t of tasks.values()) (by[t.status] || by.open).push(t);
    for (const status of COLUMNS) {
      by[status].sort(order);
      const { list, count } = columns[status];
      count.textContent = String(by[status].length);
      replace(list, by[status].map(card));
      if (!by[status].length) list.append(h("li", { class: "empty muted" }, "none"));
    }
  }

  let changed = new Set();
  function card(t) {
    const li = h("li", { class: "card" + (changed.has(t.id) ? " flash" : ""), "data-task-id": t.id },
      h("a", { href: `#/tasks/${t.id}`, class: "title" }, h("span", { class: "id" }, `#${t.id}`), " ", t.content),
      h("div", { class: "meta" },
        h("span", { class: `prio p${t.priority}`, title: "priority (1 = most urgent)" }, `P${t.priority}`),
        h("span", { title: "assignee" }, "→ ", agentName(t.assigned_to_agent, "unassigned")),
        t.project ? h("span", { class: "project" }, t.project.emoji ? t.project.emoji + " " : "", t.project.name) : null,
        t.delegation_depth ? h("span", { title: "delegation depth" }, `depth ${t.delegation_depth}`) : null,
        t.claimed_by_agent_id ? h("span", { title: "claimed" }, "claimed by ", t.claimed_by || `#${t.claimed_by_agent_id}`) : null,
        t.session_state ? h("span", { class: `state state-${t.session_state}` }, t.session_state.replace("_", " ")) : null),
      (t.labels || []).length ? h("ul", { class: "labels", "aria-label": "labels" },
        t.labels.map((l) => h("li", {}, l))) : null,
      h("div", { class: "meta muted" }, "updated ", time(t.updated_at, { relative: true })));
    return li;
  }

  let nextPages = [];
  const moreButton = h("button", { type: "button", class: "secondary", hidden: true,
    onclick: () => loadMore() }, "Load more tasks");
  grid.after(moreButton);

  async function load() {
    msg.clear();
    const query = {
      assigned_to: filters.agent,
      project_id: filters.project,
      label: filters.label,
      search: filters.q,
    };
    try {
      // Two bounded pages keep the first load small however big the
      // database is: the work in flight, and the most recent finished.
      // "Load more" follows the server's Link: rel=next cursors.
      const [active, done] = await Promise.all([
        api.list("/tasks", { ...query, include_completed: "false", limit: ACTIVE_LIMIT }),
        api.list("/tasks", { ...query, completed: "true", limit: DONE_LIMIT }),
      ]);
      tasks.clear();
      [...active.items, ...done.items].forEach((t) => tasks.set(t.id, t));
      nextPages = [active.next, done.next].filter(Boolean);
      note.textContent = (readsAll() ? "All tasks" : "Tasks you created, hold, were given or handed on") +
        " · updates live";
      moreButton.hidden = !nextPages.length;
      render();
    } catch (err) {
      msg.show("error", "Could not load tasks: ", err.describe ? err.describe() : String(err));
    }
  }

  async function loadMore() {
    try {
      const pages = await Promise.all(nextPages.map((p) => api.list(p)));
      pages.forEach((pg) => pg.items.forEach((t) => { if (!tasks.has(t.id)) tasks.set(t.id, t); }));
      nextPages = pages.map((pg) => pg.next).filter(Boolean);
      moreButton.hidden = !nextPages.length;
      render();
    } catch (err) {
      msg.show("error", "Could not load more tasks: ", err.describe());
    }
  }

  let flashTimer = null;
  const off = onEvent((ev) => {
    if (ev.type === "resync") return load();
    const t = ev.data && ev.data.task;
    if (!t || typeof t.id !== "number") return;
    if (ev.type === "task.deleted") tasks.delete(t.id);
    else if (matches(t)) tasks.set(t.id, t);
    else tasks.delete(t.id);
    changed.add(t.id);
    render();
    clearTimeout(flashTimer);
    flashTimer = setTimeout(() => { changed = new Set(); }, 1500);
  });

  ready().then(load);
  return () => { off(); clearTimeout(flashTimer); };
}

function order(a, b) {
  return (a.priority - b.priority) || (b.updated_at || "").localeCompare(a.updated_at || "") || (b.id - a.id);
}

function filterForm(filters, navigate) {
  let agentInput;
  if (session.agents) {
    agentInput = h("select", { name: "agent" },
      h("option", { value: "" }, "any agent"),
      session.agents.map((a) => h("option", { value: a.name, selected: a.name === filters.agent },
        a.display_name ? `${a.display_name} (${a.name})` : a.name)));
  } else {
    agentInput = h("input", { name: "agent", value: filters.agent, placeholder: "name or id" });
  }
  const project = h("select", { name: "project" },
    h("option", { value: "" }, "any project"),
    session.projects.map((p) => h("option", { value: String(p.id), selected: String(p.id) === filters.project },
      (p.emoji ? p.emoji + " " : "") + p.name)));
  const label = h("input", { name: "label", value: filters.label, placeholder: "one label" });
  const q = h("input", { name: "q", type: "search", value: filters.q, placeholder: "words in title or description" });
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter tasks",
    onsubmit: (e) => {
      e.preventDefault();
      navigate("/board", { agent: agentInput.value.trim(), project: project.value,
        label: label.value.trim(), q: q.value.trim() });
    } },
    field("Assignee", agentInput),
    field("Project", project),
    field("Label", label),
    field("Search", q),
    h("div", { class: "field buttons" },
      h("button", { type: "submit" }, "Apply filters"),
      h("button", { type: "button", class: "secondary", onclick: () => navigate("/board") }, "Clear")));
  return form;
}
