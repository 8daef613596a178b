// Webhooks: the list, registration (secret shown once), and per hook the
// delivery log with status codes, redeliver, recover, test, enable and
// delete. Deliveries are not events on the stream, so the log refreshes
// when asked (a button), never on a timer.

import * as api from "./api.js";
import { h, replace, labelled, field, time, messageBox, secretOnce, json } from "./dom.js";

export function mount(main, ctx) {
  return ctx.params.id ? mountOne(main, ctx, Number(ctx.params.id)) : mountList(main, ctx);
}

function mountList(main, { focusHeading }) {
  const msg = messageBox();
  const secretSlot = h("div");
  const table = h("div", { class: "table-wrap" }, h("p", { class: "muted" }, "Loading…"));
  main.append(h("h1", {}, "Webhooks"), msg, secretSlot, createForm(), h("h2", {}, "Registered hooks"), table);
  focusHeading();

  async function load() {
    try {
      const hooks = await api.get("/webhooks");
      replace(table, hooks.length ? labelled(h("table", { class: "data" },
        h("thead", {}, h("tr", {}, ["Id", "URL", "Events", "Scope", "Signature", "State", "Created", "Actions"]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, hooks.map((w) => h("tr", { "data-webhook": w.id },
          h("td", {}, String(w.id)),
          h("th", { scope: "row" }, h("code", { class: "url" }, w.url),
            w.description ? h("div", { class: "muted small" }, w.description) : null),
          h("td", {}, (w.events || []).join(", ")),
          h("td", {}, w.scope || "—"),
          h("td", {}, w.signature_version),
          h("td", {}, hookState(w)),
          h("td", {}, time(w.created_at)),
          h("td", { class: "row-actions" },
            h("a", { href: `#/webhooks/${w.id}`, class: "button" }, "Deliveries"),
            h("button", { type: "button", class: "secondary", "aria-label": `${w.active ? "Disable" : "Enable"} webhook ${w.id}`,
              onclick: () => act(() => api.put(`/webhooks/${w.id}`, { active: !w.active }),
                `Webhook ${w.id} ${w.active ? "disabled" : "enabled"}.`) }, w.active ? "Disable" : "Enable"),
            h("button", { type: "button", class: "danger", "aria-label": `Delete webhook ${w.id}`,
              onclick: () => confirm(`Delete webhook ${w.id} (${w.url})?`) &&
                act(() => api.del(`/webhooks/${w.id}`), `Webhook ${w.id} deleted.`) }, "Delete")))))))
        : h("p", { class: "muted" }, "No webhooks visible to you."));
    } catch (err) {
      replace(table, h("p", { class: "error" }, err.describe()));
    }
  }

  async function act(call, text) {
    try {
      await call();
      msg.show("ok", text);
      load();
    } catch (err) {
      msg.show("error", err.describe());
    }
  }

  function createForm() {
    const url = h("input", { type: "url", required: true, placeholder: "https://example.com/delega-hook" });
    const events = h("input", { placeholder: "* (all), or task.completed, task.failed" });
    const description = h("input", {});
    const sig = h("select", {},
      h("option", { value: "" }, "default (v2 for /api)"),
      h("option", { value: "v2" }, "v2 (timestamp.body)"),
      h("option", { value: "v1" }, "v1 (body)"));
    const formMsg = messageBox();
    const form = h("form", { class: "inline-form", "aria-labelledby": "create-hook",
      onsubmit: async (e) => {
        e.preventDefault();
        const body = { url: url.value.trim() };
        const list = events.value.split(",").map((s) => s.trim()).filter(Boolean);
        if (list.length) body.events = list;
        if (description.value.trim()) body.description = description.value.trim();
        if (sig.value) body.signature_version = sig.value;
        try {
          const created = await api.post("/webhooks", body);
          formMsg.show("ok", `Registered webhook ${created.id} (signature ${created.signature_version}).`);
          form.reset();
          if (created.secret) {
            replace(secretSlot, secretOnce(`Signing secret for webhook ${created.id}`, created.secret));
            secretSlot.querySelector("input").focus();
          }
          load();
        } catch (err) {
          formMsg.show("error", err.describe());
        }
      } },
      h("h2", { id: "create-hook" }, "Register a webhook"),
      h("div", { class: "row wrap" },
        field("Target URL", url),
        field("Events (comma-separated)", events, "Empty means every event."),
        field("Description", description),
        field("Signature version", sig)),
      h("button", { type: "submit" }, "Register webhook"),
      formMsg);
    return form;
  }

  load();
  return null;
}

function hookState(w) {
  if (!w.active) return h("span", { class: "badge status-failed" }, "disabled",
    w.disabled_reason ? ` — ${w.disabled_reason}` : "");
  if (w.failing_since) return h("span", { class: "badge status-blocked", title: `failing since ${w.failing_since}` },
    `failing (${w.consecutive_failures})`);
  return h("span", { class: "badge status-completed" }, "healthy");
}

function mountOne(main, { focusHeading }, id) {
  const msg = messageBox();
  const info = h("div", { class: "summary" }, h("p", { class: "muted" }, "Loading…"));
  const log = h("div", { class: "table-wrap" });
  const since = h("input", { required: true, placeholder: "2026-03-17T10:00:00Z or an event id" });
  const recover = h("form", { class: "inline-form", "aria-labelledby": "recover-title",
    onsubmit: async (e) => {
      e.preventDefault();
      const v = since.value.trim();
      try {
        const res = await api.post(`/webhooks/${id}/recover`, { since: /^\d+$/.test(v) ? Number(v) : v });
        msg.show("ok", `Queued ${res.queued} event(s) for redelivery` +
          (res.through_event_id ? ` (through event ${res.through_event_id})` : "") +
          (res.more ? "; more remain — recover again from the last one." : "."));
        load();
      } catch (err) {
        msg.show("error", err.describe());
      }
    } },
    h("h2", { id: "recover-title" }, "Recover missed events"),
    h("p", { class: "muted" }, "Re-sends every event this hook would have received since then, in order, as new deliveries."),
    field("Since (RFC 3339 time or event id)", since),
    h("button", { type: "submit" }, "Recover"));

  main.append(
    h("nav", { class: "crumbs", "aria-label": "Breadcrumb" }, h("a", { href: "#/webhooks" }, "← Webhooks")),
    h("h1", {}, `Webhook #${id}`), msg, info,
    h("div", { class: "row" },
      h("button", { type: "button", onclick: () => load() }, "Refresh log"),
      h("button", { type: "button", class: "secondary", onclick: async () => {
        try {
          const r = await api.post(`/webhooks/${id}/test`);
          msg.show("ok", `Test event queued (delivery ${r.delivery_id}).`);
          setTimeout(load, 1500);
        } catch (err) {
          msg.show("error", err.describe());
        }
      } }, "Send test event")),
    h("h2", {}, "Delivery log"), log, recover);
  focusHeading();

  async function load() {
    try {
      const [hook, deliveries] = await Promise.all([
        api.get(`/webhooks/${id}`), api.get(`/webhooks/${id}/deliveries`)]);
      replace(info, h("dl", { class: "fields" },
        h("dt", {}, "URL"), h("dd", {}, h("code", {}, hook.url)),
        h("dt", {}, "Events"), h("dd", {}, (hook.events || []).join(", ")),
        h("dt", {}, "State"), h("dd", {}, hookState(hook)),
        h("dt", {}, "Signature"), h("dd", {}, hook.signature_version),
        hook.failing_since ? [h("dt", {}, "Failing since"), h("dd", {}, time(hook.failing_since))] : null));
      replace(log, deliveries.length ? labelled(h("table", { class: "data deliveries" },
        h("thead", {}, h("tr", {}, ["Log id", "Event", "Event id", "Attempt", "Status", "Result", "Error", "ms", "At", ""]
          .map((c) => h("th", { scope: "col" }, c)))),
        h("tbody", {}, deliveries.map((d) => h("tr", { "data-delivery": d.id, class: d.success ? "ok" : "failed" },
          h("td", {}, String(d.id)),
          h("td", {}, d.event),
          h("td", {}, String(d.event_id)),
          h("td", {}, String(d.attempt)),
          h("td", { class: "status-code" }, d.status_code != null ? String(d.status_code) : "—"),
          h("td", {}, d.success ? "delivered" : (d.state || "failed")),
          h("td", { class: "small" }, d.error || ""),
          h("td", {}, d.duration_ms != null ? String(d.duration_ms) : ""),
          h("td", {}, time(d.created_at)),
          h("td", { class: "row-actions" },
            h("button", { type: "button", class: "secondary", "aria-label": `Redeliver delivery ${d.id}`,
              onclick: async () => {
                try {
                  const r = await api.post(`/webhooks/${id}/deliveries/${d.id}/redeliver`);
                  msg.show("ok", `Redelivery queued (log id ${r.delivery_id}).`);
                  setTimeout(load, 1000);
                } catch (err) {
                  msg.show("error", err.describe());
                }
              } }, "Redeliver"),
            d.payload ? h("details", {}, h("summary", {}, "Payload"), json(d.payload)) : null))))))
        : h("p", { class: "muted" }, "No deliveries yet."));
    } catch (err) {
      msg.show("error", err.describe());
    }
  }
  load();
  return null;
}
