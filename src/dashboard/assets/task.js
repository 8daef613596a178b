// The task page: everything about one task, its delegation chain as a
// tree, and the actions a person needs (comment, complete, fail, reassign,
// release). Data sections re-render when the live stream reports a change
// to this task or its tree; the action forms are built once so a change
// arriving while someone types does not wipe their input.

import * as api from "./api.js";
import { onEvent, ready } from "./stream.js";
import {
  h, replace, labelled, field, time, agentName, statusBadge, json, safeLink, messageBox, debounce,
} from "./dom.js";
import { session } from "./session.js";

const EVIDENCE_KINDS = ["commit", "pr", "ci_check", "deploy_sha", "artifact_url", "command_output"];

export function mount(main, { params, focusHeading }) {
  const id = Number(params.id);
  const title = h("h1", {}, `Task #${id}`);
  const summary = h("div", { class: "summary" }, h("p", { class: "muted" }, "Loading…"));
  const loadMsg = messageBox();
  const sections = {
    chain: section("Delegation chain", "chain"),
    context: section("Context", "context"),
    history: section("Context history", "history"),
    comments: section("Comments", "comments"),
    links: section("Links", "links"),
    evidence: section("Completion evidence", "evidence"),
    deps: section("Dependencies and inputs", "deps"),
  };
  let current = null;

  const actions = actionPanel(id, () => reload());
  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/board" }, "← Board")),
    title, loadMsg,
    h("div", { class: "task-layout" },
      h("div", { class: "task-main" }, summary, sections.chain, sections.context, sections.history,
        sections.comments, sections.links, sections.evidence, sections.deps),
      h("aside", { class: "task-side", "aria-label": "Actions" }, actions.el)));
  focusHeading();

  async function reload() {
    let task;
    try {
      task = await api.get(`/tasks/${id}`);
    } catch (err) {
      replace(summary);
      loadMsg.show("error", err.status === 404
        ? `Task #${id} does not exist or is not visible to you.`
        : `Could not load task #${id}: ${err.describe()}`);
      return;
    }
    loadMsg.clear();
    current = task;
    replace(title, h("span", { class: "id" }, `#${task.id}`), " ", task.content);
    document.title = `#${task.id} ${task.content} · Delega`;
    renderSummary(summary, task);
    renderComments(sections.comments.body, task.comments || []);
    renderLinks(sections.links.body, task.links || []);
    renderEvidence(sections.evidence.body, task);
    actions.update(task);
    const [chain, ctx, history, inputs] = await Promise.allSettled([
      api.get(`/tasks/${id}/chain`),
      api.get(`/tasks/${id}/context`, { include: "provenance" }),
      api.get(`/tasks/${id}/context/history`, { limit: 20 }),
      (task.depends_on || []).length ? api.get(`/tasks/${id}/inputs`) : Promise.resolve([]),
    ]);
    settled(sections.chain.body, chain, (c) => renderChain(sections.chain.body, c, id));
    settled(sections.context.body, ctx, (c) => renderContext(sections.context.body, c));
    settled(sections.history.body, history, (hist) => renderHistory(sections.history.body, id, hist));
    settled(sections.deps.body, inputs, (inp) => renderDeps(sections.deps.body, task, inp));
  }

  // Anything that happens to this task or elsewhere in its tree.
  const refresh = debounce(reload, 300);
  const off = onEvent((ev) => {
    if (ev.type === "resync") return refresh();
    const t = ev.data && ev.data.task;
    if (!t) return;
    if (t.id === id || (current && t.root_task_id === current.root_task_id)) {
      if (ev.type === "task.deleted" && t.id === id) {
        loadMsg.show("error", `Task #${id} was deleted.`);
        return;
      }
      refresh();
    }
  });

  ready().then(reload);
  return () => { off(); refresh.cancel(); document.title = "Delega"; };
}

function section(title, key) {
  const body = h("div", { class: "section-body" }, h("p", { class: "muted" }, "Loading…"));
  const el = h("section", { class: `panel sec-${key}`, "aria-labelledby": `sec-${key}` },
    h("h2", { id: `sec-${key}` }, title), body);
  el.body = body;
  return el;
}

function settled(el, result, render) {
  if (result.status === "fulfilled") render(result.value);
  else replace(el, h("p", { class: "error" }, result.reason.describe ? result.reason.describe() : String(result.reason)));
}

function row(label, ...value) {
  return [h("dt", {}, label), h("dd", {}, ...value)];
}

function renderSummary(el, t) {
  const taskLink = (tid) => (tid ? h("a", { href: `#/tasks/${tid}` }, `#${tid}`) : "—");
  replace(el,
    h("dl", { class: "fields" },
      row("Status", statusBadge(t.status),
        t.blocked_reason ? h("span", { class: "muted" }, ` (${t.blocked_reason})`) : null),
      row("Priority", `P${t.priority}`),
      row("Assignee", agentName(t.assigned_to_agent, "unassigned")),
      row("Created by", agentName(t.created_by_agent, "project token"), " · ", time(t.created_at)),
      row("Accountable", agentName(t.accountable_agent)),
      row("Project", t.project ? `${t.project.emoji || ""} ${t.project.name}`.trim() : "—"),
      row("Labels", (t.labels || []).length ? h("ul", { class: "labels" }, t.labels.map((l) => h("li", {}, l))) : "—"),
      row("Due", t.due_date ? `${t.due_date}${t.due_time ? " " + t.due_time : ""}` : "—"),
      row("Claim", t.claimed_by_agent_id
        ? [t.claimed_by || `agent #${t.claimed_by_agent_id}`, " · lease until ", time(t.lease_expires_at),
          " · generation ", String(t.claim_generation)]
        : "not claimed"),
      row("Session state", t.session_state
        ? [t.session_state, t.session_state_detail ? ` — ${t.session_state_detail}` : ""] : "—"),
      row("Tree", "root ", taskLink(t.root_task_id), " · parent ", taskLink(t.parent_task_id),
        " · depth ", String(t.delegation_depth)),
      row("Updated", time(t.updated_at)),
      t.completed_at ? row("Completed", agentName(t.completed_by_agent, "project token"), " · ", time(t.completed_at)) : null,
      t.failure_reason ? row("Failure reason", t.failure_reason) : null,
      t.handoff ? row("Hand-off note", t.handoff) : null,
      t.evidence_policy ? row("Evidence policy", t.evidence_policy) : null),
    t.description ? h("div", { class: "description" }, h("h2", {}, "Description"), h("p", { class: "pre" }, t.description)) : null,
    (t.subtasks || []).length ? h("div", {}, h("h2", {}, "Checklist"),
      h("ul", { class: "checklist" }, t.subtasks.map((s) =>
        h("li", {}, s.completed ? "☑ " : "☐ ", s.content || s.title || JSON.stringify(s))))) : null);
}

/**
 * The chain as a tree: each task under its parent, with the hops that
 * brought work to it (from → to, kind, time). The current task is marked.
 */
function renderChain(el, chain, currentId) {
  const tasks = chain.tasks || [];
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const kids = new Map();
  const roots = [];
  for (const t of tasks) {
    if (t.parent_task_id && byId.has(t.parent_task_id)) {
      if (!kids.has(t.parent_task_id)) kids.set(t.parent_task_id, []);
      kids.get(t.parent_task_id).push(t);
    } else {
      roots.push(t);
    }
  }
  const hops = new Map();
  for (const e of chain.events || []) {
    if (!hops.has(e.task_id)) hops.set(e.task_id, []);
    hops.get(e.task_id).push(e);
  }
  const node = (t) => h("li", { class: "node", "data-task-id": t.id, "aria-current": t.id === currentId ? "true" : false },
    (hops.get(t.id) || []).map((e) => h("div", { class: "hop", "data-kind": e.kind },
      h("span", { class: "from" }, e.from || "project token"), " → ",
      h("span", { class: "to" }, e.to || "nobody"),
      " ", h("span", { class: "kind" }, e.kind),
      e.actor && e.actor !== e.from ? h("span", { class: "muted" }, ` by ${e.actor}`) : null,
      " · ", time(e.at),
      e.note ? h("span", { class: "muted" }, ` — ${e.note}`) : null)),
    h("div", { class: "node-task" },
      t.id === currentId
        ? h("strong", {}, `#${t.id} ${t.content}`)
        : h("a", { href: `#/tasks/${t.id}` }, `#${t.id} ${t.content}`),
      " ", statusBadge(t.status),
      h("span", { class: "muted" }, " · ", agentName(t.assigned_to_agent, "unassigned"))),
    kids.has(t.id) ? h("ul", {}, kids.get(t.id).map(node)) : null);
  replace(el,
    h("p", { class: "muted" }, `${chain.completed_count} of ${chain.total_count} done · depth ${chain.depth}`),
    tasks.length ? h("ul", { class: "tree", "aria-label": "Delegation tree" }, roots.map(node))
      : h("p", { class: "muted" }, "No tasks in this chain are visible to you."));
}

function renderContext(el, ctx) {
  const keys = Object.keys(ctx.context || {});
  const prov = ctx.provenance || {};
  replace(el,
    h("p", {}, "Version ", h("strong", { "data-testid": "context-version" }, String(ctx.version))),
    keys.length
      ? labelled(h("table", { class: "data" },
        h("thead", {}, h("tr", {}, ["Key", "Value", "Source", "Author", "Version", "Written"].map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, keys.map((k) => {
          const p = prov[k] || {};
          return h("tr", {},
            h("th", { scope: "row" }, k),
            h("td", {}, json(ctx.context[k])),
            h("td", {}, p.source || "—"),
            h("td", {}, p.author_name || (p.author_agent_id ? `agent #${p.author_agent_id}` : "project token")),
            h("td", {}, p.version != null ? String(p.version) : "—"),
            h("td", {}, time(p.created_at)));
        }))))
      : h("p", { class: "muted" }, "No context yet."));
}

function renderHistory(el, taskId, first) {
  const list = h("ol", { class: "history" });
  const more = h("button", { type: "button", class: "secondary" }, "Load older entries");
  const add = (page) => {
    for (const e of page.entries || []) {
      list.append(h("li", { class: e.superseded_at ? "superseded" : "" },
        h("span", { class: "badge" }, `v${e.version}`), " ",
        h("code", {}, e.key), " = ", h("code", {}, JSON.stringify(e.value)),
        h("span", { class: "muted" }, ` · ${e.source} · ${e.author_name || "project token"} · `), time(e.created_at),
        e.superseded_at ? h("span", { class: "muted" }, " · superseded ", time(e.superseded_at)) : null));
    }
    cursor = page.next_cursor;
    more.hidden = !cursor;
  };
  let cursor = null;
  more.addEventListener("click", async () => {
    try {
      add(await api.get(`/tasks/${taskId}/context/history`, { limit: 20, cursor }));
    } catch (err) {
      more.after(h("p", { class: "error", role: "alert" }, err.describe()));
    }
  });
  replace(el, list, more);
  add(first);
  if (!list.children.length) replace(el, h("p", { class: "muted" }, "No context written yet."));
}

function renderComments(el, comments) {
  replace(el, comments.length
    ? h("ol", { class: "comments" }, comments.map((c) => h("li", { "data-comment-id": c.id },
      h("div", { class: "meta" },
        h("strong", {}, c.author || agentLabel(c.author_agent_id)), " · ", time(c.created_at)),
      h("p", { class: "pre" }, c.content))))
    : h("p", { class: "muted" }, "No comments."));
}

function agentLabel(id) {
  if (id == null) return "project token";
  const a = session.agents?.find((x) => x.id === id);
  if (a) return a.name;
  if (session.me && session.me.id === id) return session.me.name;
  return `agent #${id}`;
}

function renderLinks(el, links) {
  replace(el, links.length
    ? h("ul", { class: "links" }, links.map((l) => h("li", {},
      h("span", { class: "badge" }, l.kind), " ",
      l.repo ? h("span", {}, l.repo, " ") : null,
      l.ref ? h("code", {}, l.ref, " ") : null,
      l.url ? safeLink(l.url) : null)))
    : h("p", { class: "muted" }, "No links."));
}

function renderEvidence(el, t) {
  const ev = t.completion_evidence || [];
  replace(el, ev.length
    ? h("ul", { class: "links" }, ev.map((e) => h("li", {},
      h("span", { class: "badge" }, e.kind), " ",
      /^https?:\/\//i.test(e.ref || "") ? safeLink(e.ref) : h("code", {}, e.ref || ""),
      e.summary ? h("span", { class: "muted" }, ` — ${e.summary}`) : null)))
    : h("p", { class: "muted" }, t.evidence_policy === "required"
      ? "None yet; this task needs a commit, pr, ci_check or deploy_sha to complete."
      : "None."));
}

function renderDeps(el, t, inputs) {
  const deps = t.depends_on || [];
  if (!deps.length) {
    replace(el, h("p", { class: "muted" }, "This task depends on nothing."));
    return;
  }
  replace(el,
    h("p", {}, "Depends on ", deps.map((d, i) => [i ? ", " : "", h("a", { href: `#/tasks/${d}` }, `#${d}`)])),
    labelled(h("table", { class: "data" },
      h("thead", {}, h("tr", {}, ["Task", "Status", "Completed by", "At", "Result (context)"].map((c) => h("th", { scope: "col" }, c)))),
      h("tbody", {}, inputs.map((i) => h("tr", {},
        h("th", { scope: "row" }, h("a", { href: `#/tasks/${i.task_id}` }, `#${i.task_id}`),
          i.content ? ` ${i.content}` : h("span", { class: "muted" }, " (not visible to you)")),
        h("td", {}, i.status ? statusBadge(i.status) : "—"),
        h("td", {}, i.completed_by || "—"),
        h("td", {}, time(i.completed_at)),
        h("td", {}, i.context ? json(i.context) : "—")))))));
}

/** The action forms. Every action is a real form with a labelled field and
 *  a button, so it works with the keyboard alone; the server's error, if
 *  any, is shown next to the action that caused it. */
function actionPanel(id, done) {
  const forms = [];
  const action = (name, label, fields, submitText, call) => {
    const msg = messageBox();
    const button = h("button", { type: "submit", "data-action": name }, submitText);
    const form = h("form", { class: `action action-${name}`, "aria-labelledby": `act-${name}`,
      onsubmit: async (e) => {
        e.preventDefault();
        button.disabled = true;
        msg.show("info", "Working…");
        try {
          const text = await call();
          msg.show("ok", text);
          form.querySelectorAll("input:not([type=hidden]), textarea").forEach((i) => { i.value = ""; });
          done();
        } catch (err) {
          msg.show("error", err.describe ? err.describe() : String(err));
        } finally {
          button.disabled = false;
        }
      } },
      h("h3", { id: `act-${name}` }, label), fields, button, msg);
    forms.push(form);
    return form;
  };

  const comment = h("textarea", { rows: 3, required: true, maxlength: 10000 });
  const kind = h("select", {}, h("option", { value: "" }, "no evidence"),
    EVIDENCE_KINDS.map((k) => h("option", { value: k }, k)));
  const ref = h("input", { placeholder: "sha, PR URL, check name…" });
  const summary = h("input", {});
  const reason = h("input", {});
  const assignee = h("input", { required: true, list: "agent-names", autocomplete: "off" });
  const agentList = h("datalist", { id: "agent-names" });
  const handoff = h("input", {});

  const el = h("div", { class: "actions" },
    h("h2", {}, "Actions"),
    action("comment", "Comment", field("Comment", comment), "Add comment", async () => {
      await api.post(`/tasks/${id}/comments`, { content: comment.value });
      return "Comment added.";
    }),
    action("complete", "Complete", [
      field("Evidence kind", kind),
      field("Evidence reference", ref),
      field("Evidence summary", summary)], "Complete task", async () => {
      const body = {};
      if (kind.value) body.evidence = [{ kind: kind.value, ref: ref.value, ...(summary.value ? { summary: summary.value } : {}) }];
      await api.post(`/tasks/${id}/complete`, body);
      return "Task completed.";
    }),
    action("fail", "Fail", field("Reason", reason), "Mark failed", async () => {
      await api.post(`/tasks/${id}/fail`, reason.value ? { reason: reason.value } : {});
      return "Task marked failed.";
    }),
    action("reassign", "Reassign", [field("New assignee (name or id)", assignee), agentList], "Reassign", async () => {
      const v = assignee.value.trim();
      await api.put(`/tasks/${id}`, { assigned_to_agent_id: /^\d+$/.test(v) ? Number(v) : v });
      return `Assigned to ${v}.`;
    }),
    action("release", "Release claim", field("Hand-off note", handoff), "Release", async () => {
      await api.post(`/tasks/${id}/release`, handoff.value ? { handoff: handoff.value } : {});
      return "Claim released; the task is open again.";
    }),
    action("reopen", "Reopen", [], "Reopen task", async () => {
      await api.post(`/tasks/${id}/uncomplete`);
      return "Task reopened.";
    }));

  const update = (task) => {
    replace(agentList, (session.agents || []).filter((a) => a.active).map((a) => h("option", { value: a.name })));
    // Reopening only applies to finished tasks; everything else stays
    // available and the server says why when it refuses.
    el.querySelector(".action-reopen").hidden = !["completed", "failed"].includes(task.status);
  };
  return { el, update };
}
