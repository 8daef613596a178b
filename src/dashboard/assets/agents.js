// Agents: who exists, their role, whether they are active and how much
// open work they hold; create one (its key shown once), rotate a key,
// deactivate or reactivate.

import * as api from "./api.js";
import { onEvent } from "./stream.js";
import { h, replace, labelled, field, time, messageBox, secretOnce, debounce } from "./dom.js";
import { session, loadShared } from "./session.js";

export function mount(main, { focusHeading }) {
  const msg = messageBox();
  const secretSlot = h("div");
  const table = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("h1", {}, "Agents"), msg, secretSlot, createForm(), h("h2", {}, "All agents"), table);
  focusHeading();

  function showKey(title, key) {
    replace(secretSlot, secretOnce(title, key));
    secretSlot.querySelector("input").focus();
    secretSlot.querySelector("input").select();
  }

  async function load() {
    let agents;
    try {
      agents = await api.get("/agents");
    } catch (err) {
      replace(table, h("p", { class: err.status === 403 ? "muted" : "error" },
        err.status === 403
          ? "Your role may not list agents (admins, coordinators and tasks.read_all may). You are signed in as "
            + (session.me.name || "—") + "."
          : err.describe()));
      return;
    }
    replace(table, labelled(h("table", { class: "data agents" },
      h("thead", {}, h("tr", {}, ["Name", "Role", "Active", "Open tasks", "Key", "Created", "Updated", "Actions"]
        .map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, agents.map((a) => h("tr", { "data-agent": a.name, class: a.active ? "" : "inactive" },
        h("th", { scope: "row" }, a.name, a.display_name ? h("div", { class: "muted" }, a.display_name) : null,
          a.description ? h("div", { class: "muted small" }, a.description) : null),
        h("td", {}, a.role, (a.permissions || []).length ? h("div", { class: "muted small" }, a.permissions.join(", ")) : null),
        h("td", {}, a.active ? "active" : "deactivated"),
        h("td", {}, a.open_task_count != null ? String(a.open_task_count) : "—"),
        h("td", {}, h("code", {}, `${a.key_prefix}…`)),
        h("td", {}, time(a.created_at)),
        h("td", {}, time(a.updated_at, { relative: true })),
        h("td", { class: "row-actions" },
          h("button", { type: "button", class: "secondary", "aria-label": `Rotate key of ${a.name}`,
            onclick: () => rotate(a) }, "Rotate key"),
          h("button", { type: "button", class: a.active ? "danger" : "secondary",
            "aria-label": `${a.active ? "Deactivate" : "Activate"} ${a.name}`,
            onclick: () => setActive(a, !a.active) }, a.active ? "Deactivate" : "Activate"))))))));
  }

  async function rotate(a) {
    if (!confirm(`Rotate the key of ${a.name}? Its current key stops working at once.`)) return;
    try {
      const res = await api.post(`/agents/${a.id}/rotate-key`);
      showKey(`New key for ${a.name}`, res.api_key);
      msg.show("ok", `Rotated the key of ${a.name}.`);
      load();
    } catch (err) {
      msg.show("error", err.describe());
    }
  }

  async function setActive(a, active) {
    if (!active && !confirm(`Deactivate ${a.name}? Its key stops working until it is activated again.`)) return;
    try {
      await api.patch(`/agents/${a.id}`, { active });
      msg.show("ok", `${a.name} is now ${active ? "active" : "deactivated"}.`);
      load();
      loadShared().catch(() => {});
    } catch (err) {
      msg.show("error", err.describe());
    }
  }

  function createForm() {
    const name = h("input", { required: true, pattern: "[a-z0-9][a-z0-9_-]*", autocomplete: "off",
      placeholder: "research-agent" });
    const display = h("input", { autocomplete: "off" });
    const role = h("select", {}, ["worker", "coordinator", "admin"].map((r) => h("option", { value: r }, r)));
    const description = h("input", { autocomplete: "off" });
    const formMsg = messageBox();
    const form = h("form", { class: "inline-form", "aria-labelledby": "create-agent",
      onsubmit: async (e) => {
        e.preventDefault();
        try {
          const body = { name: name.value.trim(), role: role.value };
          if (display.value.trim()) body.display_name = display.value.trim();
          if (description.value.trim()) body.description = description.value.trim();
          const created = await api.post("/agents", body);
          formMsg.show("ok", `Created ${created.name}.`);
          form.reset();
          showKey(`API key for ${created.name}`, created.api_key);
          load();
          loadShared().catch(() => {});
        } catch (err) {
          formMsg.show("error", err.describe());
        }
      } },
      h("h2", { id: "create-agent" }, "Create an agent"),
      h("div", { class: "row wrap" },
        field("Name (unique slug)", name),
        field("Display name", display),
        field("Role", role),
        field("Description", description)),
      h("button", { type: "submit" }, "Create agent"),
      formMsg);
    return form;
  }

  const refresh = debounce(load, 1000);
  const off = onEvent((ev) => {
    if (ev.type === "resync" || ev.type.startsWith("agent.") || ["task.assigned", "task.delegated", "task.completed", "task.failed",
      "task.created", "task.deleted"].includes(ev.type)) refresh();
  });
  load();
  return () => { off(); refresh.cancel(); };
}
