// Who is signed in, and the small lists every view shares (agents and
// projects, for names and pickers). Loaded once per sign-in and refreshed
// only when the live stream says they changed.

import * as api from "./api.js";
import { onEvent } from "./stream.js";

export const session = {
  /** GET /api/agent/me: the agent's fields, or role "admin" with agent
   *  null for the project token. */
  me: null,
  agents: null, // [agent] or null when the role may not list them
  projects: [],
};

export function isProjectToken() {
  return session.me && !session.me.agent;
}

/** Coordinators, admins and tasks.read_all read every task. */
export function readsAll() {
  const me = session.me;
  if (!me) return false;
  return me.role !== "worker" || (me.permissions || []).includes("tasks.read_all");
}

export function whoLabel() {
  const me = session.me;
  if (!me) return "";
  if (!me.agent) return "project token (admin)";
  return `${me.display_name || me.name} (${me.role})`;
}

export async function loadShared() {
  const [agents, projects] = await Promise.allSettled([
    readsAll() ? api.get("/agents") : Promise.reject(new Error("not listed")),
    api.get("/projects"),
  ]);
  session.agents = agents.status === "fulfilled" ? agents.value : null;
  session.projects = projects.status === "fulfilled" ? projects.value : [];
}

export function agentById(id) {
  return session.agents?.find((a) => a.id === id) || null;
}

/** Keep the shared lists current from the stream (admins get agent and
 *  project events; others keep what they loaded). */
let unsubscribe = null;
export function followShared() {
  unsubscribe?.();
  let pending = null;
  unsubscribe = onEvent((ev) => {
    if (!/^(agent|project)\./.test(ev.type)) return;
    clearTimeout(pending);
    pending = setTimeout(() => loadShared().catch(() => {}), 500);
  });
}

export function reset() {
  unsubscribe?.();
  unsubscribe = null;
  session.me = null;
  session.agents = null;
  session.projects = [];
}
