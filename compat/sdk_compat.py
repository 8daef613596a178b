#!/usr/bin/env python3
"""Delega Python SDK (delega==0.6.5) compatibility check.

Env: DELEGA_BASE_URL (e.g. http://127.0.0.1:18890), DELEGA_PROJECT_TOKEN (dlp_…).

The project token is used (plain urllib) only to create the agents; every
other call goes through the SDK, the way an SDK user would make it. Each
check prints `ok - <name>` or `FAIL - <name>: <reason>`; the last line is
`N passed, M failed`; the exit status is non-zero if anything failed.
"""

from __future__ import annotations

import base64
import http.server
import json
import os
import secrets
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request

from delega import (
    Delega,
    DelegaAPIError,
    DelegaAuthError,
    DelegaNotFoundError,
    DelegationChain,
    Task,
)
from delega.webhooks import verify_webhook
from standardwebhooks import Webhook as StandardWebhook, WebhookVerificationError

BASE = os.environ["DELEGA_BASE_URL"].rstrip("/")
TOKEN = os.environ["DELEGA_PROJECT_TOKEN"]
SUFFIX = secrets.token_hex(3)

PASSED = 0
FAILED = 0
S: dict = {}  # state shared between checks


# --------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------


class Prereq(Exception):
    pass


def need(*keys):
    missing = [k for k in keys if S.get(k) is None]
    if missing:
        raise Prereq(f"prerequisite missing ({', '.join(missing)}) - an earlier check failed")
    return [S[k] for k in keys] if len(keys) > 1 else S[keys[0]]


def describe(exc: BaseException) -> str:
    if isinstance(exc, (AssertionError, Prereq)):
        return str(exc)
    if isinstance(exc, DelegaAPIError):
        return f"{type(exc).__name__} (HTTP {exc.status_code}): {exc.error_message}"
    return f"{type(exc).__name__}: {exc}"


def check(name, fn):
    global PASSED, FAILED
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - every failure is reported
        FAILED += 1
        reason = describe(exc).replace("\n", " ")
        print(f"FAIL - {name}: {reason}")
        if os.environ.get("COMPAT_TRACE") and not isinstance(exc, (AssertionError, Prereq)):
            traceback.print_exc()
        return None
    PASSED += 1
    print(f"ok - {name}")
    return True if result is None else result


def eq(actual, expected, what):
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def truthy(value, what):
    if not value:
        raise AssertionError(f"{what}: expected a value, got {value!r}")


def expect_raises(exc_type, fn, what):
    try:
        result = fn()
    except exc_type as exc:
        return exc
    except Exception as exc:  # noqa: BLE001
        raise AssertionError(f"{what}: expected {exc_type.__name__}, got {describe(exc)}")
    raise AssertionError(f"{what}: expected {exc_type.__name__}, call succeeded with {result!r}")


def ids(items):
    return {x.id for x in items}


def raw(method, path, body=None, *, bearer=TOKEN, agent_key=None, timeout=15):
    """Plain-urllib request; returns (status, headers, parsed JSON or text)."""
    headers = {"Accept": "application/json"}
    if agent_key:
        headers["X-Agent-Key"] = agent_key
    elif bearer:
        headers["Authorization"] = f"Bearer {bearer}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(BASE + path, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            status, hdrs, text = resp.status, resp.headers, resp.read().decode()
    except urllib.error.HTTPError as exc:
        status, hdrs, text = exc.code, exc.headers, exc.read().decode(errors="replace")
    try:
        parsed = json.loads(text) if text else None
    except ValueError:
        parsed = text
    return status, hdrs, parsed


def sdk(key):
    return Delega(api_key=key, base_url=BASE)


# --------------------------------------------------------------------------
# setup: agents via the project token
# --------------------------------------------------------------------------


def setup_agents():
    def make(name, role):
        status, _, body = raw("POST", "/api/agents", {"name": name, "role": role})
        if status != 201 or not isinstance(body, dict) or not str(body.get("api_key", "")).startswith("dlg_"):
            raise AssertionError(
                f"POST /api/agents {{name:{name!r}, role:{role!r}}} with project token: "
                f"expected 201 with a dlg_ api_key, got {status} {body!r}"
            )
        return body

    admin = make(f"compat-admin-{SUFFIX}", "admin")
    w1 = make(f"compat-w1-{SUFFIX}", "worker")
    w2 = make(f"compat-w2-{SUFFIX}", "worker")
    S["admin_agent"], S["w1_agent"], S["w2_agent"] = admin, w1, w2
    S["admin"], S["w1"], S["w2"] = sdk(admin["api_key"]), sdk(w1["api_key"]), sdk(w2["api_key"])


# --------------------------------------------------------------------------
# agents
# --------------------------------------------------------------------------


def agents_section():
    def create():
        admin = need("admin")
        a = admin.agents.create(
            f"sdk-worker-{SUFFIX}",
            display_name="SDK Worker",
            description="created through the SDK",
            role="worker",
        )
        truthy(a.id, "Agent.id")
        eq(a.name, f"sdk-worker-{SUFFIX}", "Agent.name")
        eq(a.display_name, "SDK Worker", "Agent.display_name")
        eq(a.description, "created through the SDK", "Agent.description")
        eq(a.role, "worker", "Agent.role")
        truthy(a.api_key and a.api_key.startswith("dlg_"), "Agent.api_key starts with dlg_")
        S["sdk_agent"] = a

    def list_():
        admin, a = need("admin", "sdk_agent")
        agents = admin.agents.list()
        if a.id not in ids(agents):
            raise AssertionError(f"agents.list() lacks the new agent {a.id}: {sorted(ids(agents))}")
        listed = next(x for x in agents if x.id == a.id)
        eq(listed.api_key, None, "api_key in agents.list() (must not be returned)")

    def list_forbidden_for_worker():
        w1 = need("w1")
        exc = expect_raises(DelegaAuthError, w1.agents.list, "worker agents.list()")
        eq(exc.status_code, 403, "status of worker agents.list()")

    def update():
        admin, a = need("admin", "sdk_agent")
        u = admin.agents.update(a.id, display_name="SDK Worker (renamed)", description="updated")
        eq(u.id, a.id, "Agent.id")
        eq(u.display_name, "SDK Worker (renamed)", "display_name after update")
        eq(u.description, "updated", "description after update")

    def set_role():
        admin, a = need("admin", "sdk_agent")
        u = admin.agents.set_role(a.id, "coordinator")
        eq(u.role, "coordinator", "role after set_role('coordinator')")
        u = admin.agents.set_role(a.id, "worker")
        eq(u.role, "worker", "role after set_role('worker')")

    def worker_cannot_set_own_role():
        w1, w1a = need("w1", "w1_agent")
        exc = expect_raises(DelegaAuthError, lambda: w1.agents.set_role(w1a["id"], "admin"),
                            "worker set_role(self, 'admin')")
        eq(exc.status_code, 403, "status")

    def me():
        w1, w1a = need("w1", "w1_agent")
        m = w1.me()
        eq(m.get("id"), w1a["id"], "me()['id']")
        eq(m.get("name"), w1a["name"], "me()['name']")
        truthy(isinstance(m.get("agent"), dict), "me()['agent'] is an object")
        eq(m["agent"].get("id"), w1a["id"], "me()['agent']['id']")
        eq((m.get("account") or {}).get("plan"), "self-hosted", "me()['account']['plan']")

    def rotate_key():
        admin, a = need("admin", "sdk_agent")
        old_key = a.api_key
        truthy(sdk(old_key).me().get("id") == a.id, "old key works before rotation")
        r = admin.agents.rotate_key(a.id)
        truthy(isinstance(r, dict), "rotate_key() returns a dict")
        new_key = r.get("api_key")
        truthy(new_key and new_key.startswith("dlg_"), "rotate_key()['api_key'] starts with dlg_")
        truthy(new_key != old_key, "new key differs from old key")
        expect_raises(DelegaAuthError, sdk(old_key).me, "me() with the rotated-out key")
        eq(sdk(new_key).me().get("id"), a.id, "me()['id'] with the new key")

    def delete():
        admin, a = need("admin", "sdk_agent")
        truthy(admin.agents.delete(a.id) is True, "agents.delete() returns True")
        if a.id in ids(admin.agents.list()):
            raise AssertionError(f"deleted agent {a.id} still in agents.list()")

    check("agents.create", create)
    check("agents.list", list_)
    check("agents.list forbidden for worker (403)", list_forbidden_for_worker)
    check("agents.update", update)
    check("agents.set_role", set_role)
    check("agents.set_role on self by worker -> 403", worker_cannot_set_own_role)
    check("me()", me)
    check("agents.rotate_key (old key -> DelegaAuthError)", rotate_key)
    check("agents.delete", delete)


# --------------------------------------------------------------------------
# projects
# --------------------------------------------------------------------------


def projects_section():
    def create():
        admin = need("admin")
        p = admin.projects.create(f"Compat {SUFFIX}", emoji="🧪", color="#336699")
        truthy(p.id, "Project.id")
        eq(p.name, f"Compat {SUFFIX}", "Project.name")
        eq(p.emoji, "🧪", "Project.emoji")
        eq(p.color, "#336699", "Project.color")
        S["project"] = p

    def list_():
        w1, p = need("w1", "project")
        if p.id not in ids(w1.projects.list()):
            raise AssertionError(f"project {p.id} missing from projects.list() (worker)")

    check("projects.create", create)
    check("projects.list", list_)


# --------------------------------------------------------------------------
# tasks
# --------------------------------------------------------------------------


def tasks_section():
    def create():
        w1, w1a, p = need("w1", "w1_agent", "project")
        t = w1.tasks.create(
            f"Compat alpha {SUFFIX}: draft the 'launch' plan",
            description="Long description — ünïcode; DROP TABLE tasks;--",
            priority=1,
            labels=["compat", "alpha"],
            due_date="2030-01-15",
            project_id=p.id,
        )
        truthy(isinstance(t, Task) and t.id, "Task.id")
        eq(t.content, f"Compat alpha {SUFFIX}: draft the 'launch' plan", "content")
        eq(t.description, "Long description — ünïcode; DROP TABLE tasks;--", "description")
        eq(t.priority, 1, "priority")
        eq(sorted(t.labels), ["alpha", "compat"], "labels")
        eq(t.due_date, "2030-01-15", "due_date")
        eq(t.project_id, p.id, "project_id")
        eq(t.completed, False, "completed")
        eq(t.status, "open", "status")
        eq(t.created_by_agent_id, w1a["id"], "created_by_agent_id")
        eq(t.root_task_id, t.id, "root_task_id of a new root task")
        eq(t.delegation_depth, 0, "delegation_depth")
        eq(t.accountable_agent_id, w1a["id"], "Task.accountable_agent_id (the creator's by default)")
        eq(t.parent_id, None, "Task.parent_id of a root task")
        S["alpha"] = t

    def create_default_priority():
        w1 = need("w1")
        t = w1.tasks.create(f"Compat defaults {SUFFIX}")
        eq(t.priority, 2, "default priority")
        eq(t.labels, [], "default labels")
        eq(t.due_date, None, "default due_date")
        S["defaults"] = t

    def get():
        w1, a = need("w1", "alpha")
        t = w1.tasks.get(a.id)
        eq(t.id, a.id, "id")
        eq(t.content, a.content, "content")
        eq(t.description, a.description, "description")
        eq(sorted(t.labels), ["alpha", "compat"], "labels")
        eq(t.due_date, "2030-01-15", "due_date")
        eq(t.project_id, a.project_id, "project_id")
        t2 = w1.tasks.get(str(a.id))
        eq(t2.id, a.id, "get() with a string id")

    def update():
        w1, a = need("w1", "alpha")
        t = w1.tasks.update(a.id, description="Updated description", priority=3,
                            labels=["compat", "alpha", "edited"])
        eq(t.id, a.id, "id")
        eq(t.description, "Updated description", "description after update")
        eq(t.priority, 3, "priority after update")
        eq(sorted(t.labels), ["alpha", "compat", "edited"], "labels after update")
        eq(t.content, a.content, "content unchanged by partial update")
        t = w1.tasks.update(a.id, priority=1, status="in_progress")
        eq(t.priority, 1, "priority after second update")
        eq(t.status, "in_progress", "status after update(status='in_progress')")
        t = w1.tasks.update(a.id, status="open")
        eq(t.status, "open", "status after update(status='open')")

    def more_tasks():
        w1 = need("w1")
        S["beta"] = w1.tasks.create(f"Compat beta {SUFFIX}", priority=4, labels=["beta"],
                                    due_date="2030-06-01")
        S["gamma"] = w1.tasks.create(f"Compat gamma {SUFFIX} zebra", labels=["compat", "gamma"])

    def list_all():
        w1, a, b, g = need("w1", "alpha", "beta", "gamma")
        got = ids(w1.tasks.list())
        for t in (a, b, g):
            if t.id not in got:
                raise AssertionError(f"tasks.list() lacks task {t.id}; got {sorted(got)}")

    def list_priority():
        w1, a, b = need("w1", "alpha", "beta")
        got = w1.tasks.list(priority=4)
        truthy(b.id in ids(got), f"priority=4 includes beta {b.id}")
        truthy(a.id not in ids(got), f"priority=4 excludes alpha {a.id}")
        bad = [t.id for t in got if t.priority != 4]
        eq(bad, [], "tasks with priority != 4 in list(priority=4)")

    def list_search():
        w1, a, b = need("w1", "alpha", "beta")
        got = ids(w1.tasks.list(search=f"COMPAT ALPHA {SUFFIX}"))
        eq(got, {a.id}, "list(search=<alpha content, upper case>)")
        got = ids(w1.tasks.list(search="updated DESCRIPTION"))
        truthy(a.id in got and b.id not in got, f"search matches description (got {sorted(got)})")

    def list_label():
        w1, a, b, g = need("w1", "alpha", "beta", "gamma")
        got = ids(w1.tasks.list(label="beta"))
        truthy(b.id in got, f"label=beta includes beta (got {sorted(got)})")
        truthy(a.id not in got and g.id not in got, f"label=beta excludes alpha/gamma (got {sorted(got)})")

    def list_labels():
        w1, a, b, g = need("w1", "alpha", "beta", "gamma")
        got = ids(w1.tasks.list(labels=["compat", "alpha"]))
        truthy(a.id in got, f"labels=[compat, alpha] includes alpha (got {sorted(got)})")
        truthy(g.id not in got and b.id not in got,
               f"labels=[compat, alpha] excludes gamma/beta - all labels must match (got {sorted(got)})")
        got = ids(w1.tasks.list(labels=["compat"]))
        truthy(a.id in got and g.id in got and b.id not in got,
               f"labels=[compat] = alpha+gamma (got {sorted(got)})")

    def list_due():
        w1, a, b, g = need("w1", "alpha", "beta", "gamma")
        after = ids(w1.tasks.list(due_after="2030-03-01"))
        truthy(b.id in after and a.id not in after and g.id not in after,
               f"due_after=2030-03-01 -> beta only of alpha/beta/gamma (got {sorted(after)})")
        before = ids(w1.tasks.list(due_before="2030-03-01"))
        truthy(a.id in before and b.id not in before and g.id not in before,
               f"due_before=2030-03-01 -> alpha only of alpha/beta/gamma (got {sorted(before)})")
        both = ids(w1.tasks.list(due_after="2030-01-01", due_before="2030-12-31"))
        truthy(a.id in both and b.id in both, f"due range 2030 includes alpha+beta (got {sorted(both)})")

    def complete():
        w1, w1a, b = need("w1", "w1_agent", "beta")
        t = w1.tasks.complete(b.id)
        eq(t.id, b.id, "id")
        eq(t.completed, True, "completed")
        eq(t.status, "completed", "status")
        eq(t.completed_by_agent_id, w1a["id"], "completed_by_agent_id")

    def list_completed():
        w1, a, b = need("w1", "alpha", "beta")
        done = w1.tasks.list(completed=True)
        truthy(b.id in ids(done), f"list(completed=True) includes completed beta (got {sorted(ids(done))})")
        truthy(a.id not in ids(done), "list(completed=True) excludes open alpha")
        eq([t.id for t in done if not t.completed], [], "non-completed tasks in list(completed=True)")
        open_ = ids(w1.tasks.list(completed=False))
        truthy(a.id in open_ and b.id not in open_, f"list(completed=False) (got {sorted(open_)})")
        default = ids(w1.tasks.list())
        truthy(b.id not in default, "default list() hides completed tasks")

    def search_finds_completed():
        # The ecosystem's LangChain and OpenAI Agents examples look a task
        # up by search right after completing it.
        w1, b = need("w1", "beta")
        found = ids(w1.tasks.list(search=b.content))
        truthy(b.id in found, f"list(search=…) finds the completed task (got {sorted(found)})")
        found = ids(w1.tasks.search(b.content))
        truthy(b.id in found, f"tasks.search() finds the completed task (got {sorted(found)})")

    def uncomplete():
        w1, b = need("w1", "beta")
        t = w1.tasks.uncomplete(b.id)
        eq(t.completed, False, "completed after uncomplete")
        eq(t.status, "open", "status after uncomplete")
        eq(t.completed_by_agent_id, None, "completed_by_agent_id after uncomplete")
        truthy(b.id in ids(w1.tasks.list()), "uncompleted task is listed again")

    def search():
        w1, g = need("w1", "gamma")
        got = w1.tasks.search(f"gamma {SUFFIX} ZEBRA")
        eq(ids(got), {g.id}, "tasks.search()")

    def delete():
        w1, g = need("w1", "gamma")
        truthy(w1.tasks.delete(g.id) is True, "tasks.delete() returns True")
        expect_raises(DelegaNotFoundError, lambda: w1.tasks.get(g.id), "get() after delete")
        truthy(g.id not in ids(w1.tasks.list()), "deleted task not listed")
        S["gamma_deleted"] = True

    def get_unknown():
        w1 = need("w1")
        expect_raises(DelegaNotFoundError, lambda: w1.tasks.get(987654321), "get(unknown id)")

    def create_invalid():
        w1 = need("w1")
        exc = expect_raises(DelegaAPIError, lambda: w1.tasks.create("   "), "create(blank content)")
        eq(exc.status_code, 422, "status for blank content")
        exc = expect_raises(DelegaAPIError, lambda: w1.tasks.create("x", priority=9), "create(priority=9)")
        eq(exc.status_code, 422, "status for priority=9")

    check("tasks.create (description/priority/labels/due_date/project_id)", create)
    check("tasks.create defaults", create_default_priority)
    check("tasks.get", get)
    check("tasks.update", update)
    check("tasks.create (fixtures beta, gamma)", more_tasks)
    check("tasks.list", list_all)
    check("tasks.list(priority=)", list_priority)
    check("tasks.list(search=)", list_search)
    check("tasks.list(label=)", list_label)
    check("tasks.list(labels=[...])", list_labels)
    check("tasks.list(due_after=, due_before=)", list_due)
    check("tasks.complete", complete)
    check("tasks.list(completed=)", list_completed)
    check("tasks.list(search=) finds a completed task", search_finds_completed)
    check("tasks.uncomplete", uncomplete)
    check("tasks.search", search)
    check("tasks.delete (then get -> DelegaNotFoundError)", delete)
    check("tasks.get unknown id -> DelegaNotFoundError", get_unknown)
    check("tasks.create invalid -> 422", create_invalid)


# --------------------------------------------------------------------------
# comments
# --------------------------------------------------------------------------


def comments_section():
    text = "Looks good — \"quoted\" ünïcode ✓ '; DROP TABLE comments;--"

    def add():
        w1, a = need("w1", "alpha")
        c = w1.tasks.add_comment(a.id, text)
        truthy(c.id, "Comment.id")
        eq(c.task_id, a.id, "Comment.task_id")
        eq(c.content, text, "Comment.content")
        S["comment"] = c

    def list_():
        w1, a, c = need("w1", "alpha", "comment")
        got = w1.tasks.list_comments(a.id)
        match = [x for x in got if x.id == c.id]
        truthy(match, f"list_comments() lacks comment {c.id}")
        eq(match[0].content, text, "listed comment content")

    check("tasks.add_comment", add)
    check("tasks.list_comments", list_)


# --------------------------------------------------------------------------
# delegation (issue 3)
# --------------------------------------------------------------------------


def delegation_section():
    def delegate():
        w1, w2a = need("w1", "w2_agent")
        parent = w1.tasks.create(f"Compat parent {SUFFIX}: research competitors", labels=["deleg"])
        S["parent"] = parent
        child = w1.tasks.delegate(parent.id, f"Compat child {SUFFIX}: collect pricing pages",
                                  description="child work", priority=1, labels=["deleg", "child"],
                                  due_date="2030-02-02", assigned_to_agent_id=w2a["id"])
        truthy(isinstance(child, Task) and child.id and child.id != parent.id, "child Task with a new id")
        eq(child.parent_task_id, parent.id, "child.parent_task_id")
        eq(child.root_task_id, parent.id, "child.root_task_id")
        eq(child.delegation_depth, 1, "child.delegation_depth")
        eq(child.assigned_to_agent_id, w2a["id"], "child.assigned_to_agent_id")
        eq(child.priority, 1, "child.priority")
        eq(child.description, "child work", "child.description")
        eq(child.due_date, "2030-02-02", "child.due_date")
        S["child"] = child
        p = w1.tasks.get(parent.id)
        eq(p.status, "delegated", "parent status after delegate()")

    def delegate_by_name():
        w1, w2a, child = need("w1", "w2_agent", "child")
        gc = w1.tasks.delegate(child.id, f"Compat grandchild {SUFFIX}", assigned_to_agent_id=w2a["name"])
        eq(gc.parent_task_id, child.id, "grandchild.parent_task_id")
        eq(gc.root_task_id, child.root_task_id, "grandchild.root_task_id")
        eq(gc.delegation_depth, 2, "grandchild.delegation_depth")
        eq(gc.assigned_to_agent_id, w2a["id"], "assigned_to_agent_id when delegating by agent name")
        S["grandchild"] = gc

    def delegatee_reads_child():
        w2, child = need("w2", "child")
        eq(w2.tasks.get(child.id).id, child.id, "assignee can get the delegated child")

    def assign():
        w1, w2a = need("w1", "w2_agent")
        t = w1.tasks.create(f"Compat assign {SUFFIX}")
        a = w1.tasks.assign(t.id, w2a["id"])
        eq(a.assigned_to_agent_id, w2a["id"], "assigned_to_agent_id after assign(id)")
        a = w1.tasks.assign(t.id, None)
        eq(a.assigned_to_agent_id, None, "assigned_to_agent_id after assign(None)")
        a = w1.tasks.assign(t.id, str(w2a["id"]))
        eq(a.assigned_to_agent_id, w2a["id"], "assigned_to_agent_id after assign(<numeric string>)")
        a = w1.tasks.assign(t.id, None)
        eq(a.assigned_to_agent_id, None, "unassigned again")
        S["assign_task"] = t

    def assign_unknown_agent():
        w1, t = need("w1", "assign_task")
        exc = expect_raises(DelegaAPIError, lambda: w1.tasks.assign(t.id, 987654), "assign(unknown agent)")
        eq(exc.status_code, 422, "status for unknown agent")

    def chain():
        w1, parent, child, gc = need("w1", "parent", "child", "grandchild")
        c = w1.tasks.chain(child.id)
        truthy(isinstance(c, DelegationChain), "DelegationChain")
        eq(c.root_id, str(parent.id), "chain.root_id")
        eq(sorted(t.id for t in c.chain), sorted([parent.id, child.id, gc.id]), "task ids in chain.chain")
        truthy(all(isinstance(t, Task) for t in c.chain), "chain.chain holds Task objects")
        eq(c.chain[0].id, parent.id, "chain.chain[0] is the root (ordered by depth)")
        eq(c.depth, 2, "chain.depth")
        eq(c.total_count, 3, "chain.total_count")
        eq(c.completed_count, 0, "chain.completed_count")

    def chain_after_complete():
        w1, w2, parent, gc = need("w1", "w2", "parent", "grandchild")
        done = w2.tasks.complete(gc.id)
        eq(done.completed, True, "grandchild completed by its assignee")
        c = w1.tasks.chain(parent.id)
        eq(c.root_id, str(parent.id), "chain.root_id from the root")
        eq(c.completed_count, 1, "chain.completed_count after completing the grandchild")
        eq(c.total_count, 3, "chain.total_count")

    check("tasks.delegate (child, parent -> delegated)", delegate)
    check("tasks.delegate to agent name", delegate_by_name)
    check("delegatee can read delegated child", delegatee_reads_child)
    check("tasks.assign (id, None, numeric string)", assign)
    check("tasks.assign unknown agent -> 422", assign_unknown_agent)
    check("tasks.chain", chain)
    check("tasks.chain completed_count", chain_after_complete)


# --------------------------------------------------------------------------
# context
# --------------------------------------------------------------------------


def context_section():
    def update():
        w1 = need("w1")
        t = w1.tasks.create(f"Compat context {SUFFIX}")
        S["ctx_task"] = t
        m = w1.tasks.update_context(t.id, {"a": 1, "nested": {"x": 1}})
        eq(m, {"a": 1, "nested": {"x": 1}}, "first update_context() result")
        m = w1.tasks.update_context(t.id, {"b": "two", "nested": {"y": 2}})
        eq(m, {"a": 1, "b": "two", "nested": {"x": 1, "y": 2}}, "merged context after second update")
        m = w1.tasks.update_context(t.id, {"b": None})
        eq(m, {"a": 1, "nested": {"x": 1, "y": 2}}, "context after {'b': None} (merge-patch delete)")

    def get():
        w1, t = need("w1", "ctx_task")
        snap = w1.tasks.get_context(t.id)
        eq(snap.context, {"a": 1, "nested": {"x": 1, "y": 2}}, "get_context().context")
        eq(snap.version, 3, "get_context().version after three writes")
        eq(snap.provenance, None, "provenance without include_provenance")
        task = w1.tasks.get(t.id)
        eq(task.context, snap.context, "Task.context")
        eq(task.context_version, 3, "Task.context_version")

    def provenance():
        w1, w1a, t = need("w1", "w1_agent", "ctx_task")
        snap = w1.tasks.get_context(t.id, include_provenance=True)
        prov = snap.provenance
        truthy(isinstance(prov, dict), f"provenance is a dict (got {prov!r})")
        truthy("a" in prov and "nested" in prov, f"provenance keys a, nested (got {sorted(prov)})")
        eq(prov["a"].get("author_agent_id"), w1a["id"], "provenance['a'].author_agent_id")
        eq(prov["a"].get("author_name"), w1a["name"], "provenance['a'].author_name")
        eq(prov["a"].get("source"), "agent_inferred", "provenance['a'].source")
        eq(prov["a"].get("version"), 1, "provenance['a'].version")
        eq(prov["nested"].get("version"), 2, "provenance['nested'].version")

    def history():
        w1, t = need("w1", "ctx_task")
        full = w1.tasks.context_history(t.id)
        keys = sorted(e.key for e in full.entries)
        eq(keys, ["a", "b", "b", "nested", "nested"], "history keys (one entry per top-level key written)")
        versions = [e.version for e in full.entries]
        eq(versions, sorted(versions, reverse=True), "history newest first (versions)")
        eq(full.next_cursor, None, "next_cursor on a complete page")
        page = w1.tasks.context_history(t.id, limit=1)
        eq(len(page.entries), 1, "entries with limit=1")
        truthy(page.next_cursor, "next_cursor with limit=1")
        seen = [page.entries[0].id]
        cursor = page.next_cursor
        for _ in range(20):
            if not cursor:
                break
            page = w1.tasks.context_history(t.id, limit=1, cursor=cursor)
            seen += [e.id for e in page.entries]
            cursor = page.next_cursor
        eq(seen, [e.id for e in full.entries], "entry ids walked via next_cursor (limit=1)")
        only_a = w1.tasks.context_history(t.id, key="a")
        eq([e.key for e in only_a.entries], ["a"], "history(key='a') keys")
        eq(only_a.entries[0].value, 1, "history(key='a') value")

    def supersede():
        w1, t = need("w1", "ctx_task")
        e = w1.tasks.supersede_context(t.id, "a")
        eq(e.key, "a", "superseded entry key")
        eq(e.value, 1, "superseded entry value")
        truthy(e.superseded_at, "superseded entry superseded_at")
        snap = w1.tasks.get_context(t.id)
        eq(snap.context.get("a"), 1, "context value unchanged by supersede")

    def stale_version():
        w1, t = need("w1", "ctx_task")
        current = w1.tasks.get_context(t.id).version
        exc = expect_raises(DelegaAPIError,
                            lambda: w1.tasks.update_context(t.id, {"c": 3}, expected_version=current - 1),
                            "update_context(expected_version=stale)")
        eq(type(exc).__name__, "DelegaAPIError", "exception class")
        eq(exc.status_code, 409, "status for stale expected_version")
        truthy(str(current) in exc.error_message,
               f"409 message mentions current version {current} (got {exc.error_message!r})")
        m = w1.tasks.update_context(t.id, {"c": 3}, expected_version=current)
        eq(m.get("c"), 3, "update_context with the current expected_version")
        eq(w1.tasks.get_context(t.id).version, current + 1, "version after guarded write")

    def source():
        w1, t = need("w1", "ctx_task")
        w1.tasks.update_context(t.id, {"seen": True}, source="agent_observed")
        prov = w1.tasks.get_context(t.id, include_provenance=True).provenance or {}
        eq((prov.get("seen") or {}).get("source"), "agent_observed", "provenance source")
        exc = expect_raises(DelegaAuthError,
                            lambda: w1.tasks.update_context(t.id, {"h": 1}, source="human_stated"),
                            "worker update_context(source='human_stated')")
        eq(exc.status_code, 403, "status")

    check("tasks.update_context (merge, null deletes)", update)
    check("tasks.get_context", get)
    check("tasks.get_context(include_provenance=True)", provenance)
    check("tasks.context_history (+ cursor pagination)", history)
    check("tasks.supersede_context", supersede)
    check("tasks.update_context stale expected_version -> 409", stale_version)
    check("tasks.update_context(source=)", source)


# --------------------------------------------------------------------------
# links, dedup, scoping
# --------------------------------------------------------------------------


def links_section():
    def add():
        w1, a = need("w1", "alpha")
        l1 = w1.tasks.add_link(a.id, "pr", "42", repo="acme/widgets",
                               url="https://github.com/acme/widgets/pull/42")
        truthy(l1.id, "TaskLink.id")
        eq(l1.task_id, a.id, "TaskLink.task_id")
        eq((l1.kind, l1.ref, l1.repo), ("pr", "42", "acme/widgets"), "TaskLink kind/ref/repo")
        eq(l1.url, "https://github.com/acme/widgets/pull/42", "TaskLink.url")
        l2 = w1.tasks.add_link(a.id, "url", "https://example.com/spec")
        truthy(l2.id != l1.id, "second link has its own id")
        S["link1"], S["link2"] = l1, l2

    def duplicate():
        w1, a, l1 = need("w1", "alpha", "link1")
        again = w1.tasks.add_link(a.id, "pr", "42", repo="acme/widgets")
        eq(again.id, l1.id, "id of a duplicate add_link (same kind/repo/ref)")

    def list_():
        w1, a, l1, l2 = need("w1", "alpha", "link1", "link2")
        got = w1.tasks.list_links(a.id)
        eq(sorted(x.id for x in got), sorted([l1.id, l2.id]), "list_links() ids")

    def delete():
        w1, a, l1, l2 = need("w1", "alpha", "link1", "link2")
        truthy(w1.tasks.delete_link(a.id, l2.id) is True, "delete_link() returns True")
        eq([x.id for x in w1.tasks.list_links(a.id)], [l1.id], "links after delete_link()")

    check("tasks.add_link", add)
    check("tasks.add_link duplicate returns same id", duplicate)
    check("tasks.list_links", list_)
    check("tasks.delete_link", delete)


def dedup_section():
    def find():
        w1 = need("w1")
        t = w1.tasks.create("Write the quarterly revenue report for the finance team")
        r = w1.tasks.find_duplicates("write the quarterly revenue report for finance team")
        eq(r.has_duplicates, True, "has_duplicates for near-identical content")
        m = [x for x in r.matches if x.task_id == str(t.id)]
        truthy(m, f"matches include task {t.id} (got {r.matches!r})")
        truthy(0 < m[0].score <= 1.0 + 1e-9, f"score in (0, 1] (got {m[0].score})")
        r = w1.tasks.find_duplicates("xylophone quokka saxophone nebula")
        eq(r.has_duplicates, False, "has_duplicates for unrelated content")
        eq(r.matches, [], "matches for unrelated content")

    check("tasks.find_duplicates", find)


def scoping_section():
    def other_worker():
        # An unassigned open task is in every worker's claim queue and may be
        # read by id (SPEC §3/§10), so the private task is assigned to w1.
        w1, w2, w1a, a = need("w1", "w2", "w1_agent", "alpha")
        t = w1.tasks.create(f"Compat private {SUFFIX}")
        eq(w1.tasks.assign(t.id, w1a["id"]).assigned_to_agent_id, w1a["id"], "private task assigned to w1")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.get(t.id), "w2 get(w1's assigned task)")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.update(t.id, priority=4), "w2 update(w1's task)")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.complete(t.id), "w2 complete(w1's task)")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.list_comments(t.id), "w2 list_comments(w1's task)")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.get_context(t.id), "w2 get_context(w1's task)")
        expect_raises(DelegaNotFoundError, lambda: w2.tasks.chain(t.id), "w2 chain(w1's task)")
        listed = ids(w2.tasks.list())
        truthy(t.id not in listed and a.id not in listed,
               f"w1's tasks absent from w2's default tasks.list() (got {sorted(listed)})")
        truthy(t.id in ids(w1.tasks.list()), "w1 still lists its own task")

    def admin_sees_all():
        admin, a = need("admin", "alpha")
        eq(admin.tasks.get(a.id).id, a.id, "admin get(w1's task)")

    check("scoping: other worker gets DelegaNotFoundError", other_worker)
    check("scoping: admin reads any task", admin_sees_all)


# --------------------------------------------------------------------------
# webhooks (issue 4)
# --------------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    deliveries: list = []
    cond = threading.Condition()

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        with self.cond:
            self.deliveries.append((self.path, dict(self.headers.items()), body))
            self.cond.notify_all()
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):  # silence
        pass


def _wait_delivery(path_wanted, event, task_id, timeout=10):
    """The first delivery to `path_wanted` of `event` about task `task_id`."""
    deadline = time.monotonic() + timeout
    with _Receiver.cond:
        while True:
            for path, headers, raw_body in _Receiver.deliveries:
                if path != path_wanted:
                    continue
                try:
                    payload = json.loads(raw_body)
                except ValueError:
                    continue
                if payload.get("event") == event and (payload.get("task") or {}).get("id") == task_id:
                    return headers, raw_body, payload
            left = deadline - time.monotonic()
            if left <= 0:
                seen = [(p, b[:200]) for p, _, b in _Receiver.deliveries]
                raise AssertionError(f"no {event} delivery for task {task_id} at {path_wanted} within {timeout} s (received {seen!r})")
            _Receiver.cond.wait(left)


def webhooks_section():
    admin = S.get("admin")
    if admin is None:
        check("webhooks", lambda: need("admin"))
        return

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    recv = f"http://127.0.0.1:{srv.server_address[1]}"
    secret = "whsec_compat_" + secrets.token_hex(16)
    try:
        status, _, body = raw("POST", "/api/webhooks", {
            "url": f"{recv}/v2", "events": ["task.created"], "secret": secret,
            "signature_version": "v2", "description": "compat v2 receiver",
        })
        if status == 404:
            print("SKIP webhooks: not implemented")
            return

        def register():
            if status != 201 or not isinstance(body, dict) or not body.get("id"):
                raise AssertionError(f"POST /api/webhooks (v2, loopback): expected 201 with id, got {status} {body!r}")
            S["hook_v2"] = body

        def sdk_create():
            h = admin.webhooks.create(f"{recv}/sdk", events=["task.completed"], secret="sdk-secret-123")
            truthy(isinstance(h, dict) and h.get("id"), f"webhooks.create() returns a dict with id (got {h!r})")
            eq(h.get("url"), f"{recv}/sdk", "webhook url")
            eq(h.get("events"), ["task.completed"], "webhook events")
            S["hook_sdk"] = h

        def sdk_list():
            h, v2 = need("hook_sdk", "hook_v2")
            hooks = admin.webhooks.list()
            truthy(isinstance(hooks, list), "webhooks.list() returns a list")
            got = {x.get("id") for x in hooks}
            truthy(h["id"] in got and v2["id"] in got, f"webhooks.list() has both hooks (got {sorted(got)})")
            leaked = [x.get("id") for x in hooks if x.get("secret") in ("sdk-secret-123", secret)]
            eq(leaked, [], "hooks whose secret is returned by list()")

        def sdk_delete():
            h = need("hook_sdk")
            truthy(admin.webhooks.delete(h["id"]) is True, "webhooks.delete() returns True")
            got = {x.get("id") for x in admin.webhooks.list()}
            truthy(h["id"] not in got, "deleted hook absent from list()")

        def delivery():
            need("hook_v2")
            t = admin.tasks.create(f"Compat webhook {SUFFIX}")
            headers, raw_body, payload = _wait_delivery("/v2", "task.created", t.id)
            h = {k.lower(): v for k, v in headers.items()}
            sig, ts = h.get("x-delega-signature"), h.get("x-delega-timestamp")
            truthy(sig and ts, f"X-Delega-Signature/X-Delega-Timestamp headers (got {headers!r})")
            eq(h.get("x-delega-event"), "task.created", "X-Delega-Event")
            truthy(h.get("x-delega-delivery"), "X-Delega-Delivery header")
            truthy((h.get("content-type") or "").startswith("application/json"), "Content-Type json")
            try:
                ok = verify_webhook(raw_body, sig, ts, secret)
            except ValueError as exc:
                raise AssertionError(f"verify_webhook rejected a real v2 delivery: {exc} "
                                     f"(signature={sig!r}, timestamp={ts!r})")
            eq(ok, True, "verify_webhook()")
            try:
                verify_webhook(raw_body, sig, ts, secret + "x")
                raise AssertionError("verify_webhook accepted a wrong secret")
            except ValueError:
                pass
            truthy(payload.get("event_id"), "payload.event_id")
            truthy(payload.get("timestamp"), "payload.timestamp")
            eq((payload.get("agent") or {}).get("id"), S["admin_agent"]["id"], "payload.agent.id")
            eq(payload["task"].get("content"), t.content, "payload.task.content")

        def cleanup():
            v2 = need("hook_v2")
            st, _, b = raw("DELETE", f"/api/webhooks/{v2['id']}")
            if st not in (200, 204):
                raise AssertionError(f"DELETE /api/webhooks/{v2['id']}: expected 200/204, got {st} {b!r}")

        def sdk_create_defaults():
            # The SDK's webhooks.create(url) sends neither events nor a
            # secret nor a signature version (SPEC §9 defaults).
            h = admin.webhooks.create(f"{recv}/sdk-default")
            truthy(isinstance(h, dict) and h.get("id"), f"webhooks.create(url) returns a hook (got {h!r})")
            eq(h.get("events"), ["*"], "events default")
            eq(h.get("signature_version"), "v2", "signature_version default under /api")
            sec = h.get("secret") or ""
            truthy(sec.startswith("whsec_"), f"generated secret whsec_… (got {sec[:10]!r})")
            eq(len(base64.b64decode(sec[len("whsec_"):])), 32, "generated secret decodes to 32 bytes")
            S["hook_default"] = h

        def sdk_hook_delivery_verifies():
            h = need("hook_default")
            t = admin.tasks.create(f"Compat default hook {SUFFIX}")
            headers, raw_body, payload = _wait_delivery("/sdk-default", "task.created", t.id)
            hdr = {k.lower(): v for k, v in headers.items()}
            try:
                ok = verify_webhook(raw_body, hdr.get("x-delega-signature"), hdr.get("x-delega-timestamp"), h["secret"])
            except ValueError as exc:
                raise AssertionError(f"the SDK's verify_webhook rejected a delivery of a hook the SDK created: {exc}")
            eq(ok, True, "verify_webhook() on an SDK-created hook")
            try:
                got = StandardWebhook(h["secret"]).verify(raw_body, hdr)
            except WebhookVerificationError as exc:
                raise AssertionError(f"the standardwebhooks verifier rejected the delivery: {exc} (headers {hdr!r})")
            eq((got.get("task") or {}).get("id"), t.id, "standardwebhooks verify() returns the payload")
            try:
                StandardWebhook("whsec_" + base64.b64encode(b"x" * 32).decode()).verify(raw_body, hdr)
                raise AssertionError("standardwebhooks accepted a wrong secret")
            except WebhookVerificationError:
                pass
            st, _, b = raw("DELETE", f"/api/webhooks/{h['id']}")
            truthy(st in (200, 204), f"delete default hook: {st} {b!r}")

        check("webhooks: POST /api/webhooks (v2)", register)
        check("webhooks.create(url) without events: defaults", sdk_create_defaults)
        check("webhooks: SDK-created hook verifies with verify_webhook and standardwebhooks", sdk_hook_delivery_verifies)
        check("webhooks.create", sdk_create)
        check("webhooks.list (no secrets)", sdk_list)
        check("webhooks.delete", sdk_delete)
        check("webhooks: v2 delivery verifies with verify_webhook", delivery)
        check("webhooks: delete v2 hook", cleanup)
    finally:
        srv.shutdown()
        srv.server_close()



# --------------------------------------------------------------------------
# the work queue (SDK: claim, heartbeat, set_state, release) and a worker
# loop in the style of delega-examples' python/worker_loop.py
# --------------------------------------------------------------------------


def queue_section():
    label = f"queue-{SUFFIX}"

    def seed():
        admin = need("admin")
        S["queue_tasks"] = [
            admin.tasks.create(f"queue job {i}", priority=p, labels=[label])
            for i, p in enumerate([2, 1, 3])
        ]

    def claim_from_queue():
        w1 = need("w1")
        tasks = need("queue_tasks")
        t = w1.tasks.claim(labels=[label], lease_seconds=60)
        truthy(t, "tasks.claim() returned a task")
        eq(t.id, tasks[1].id, "the most urgent task first")
        eq(t.status, "claimed", "status")
        eq(str(t.claimed_by_agent_id), str(S["w1_agent"]["id"]), "claimed_by_agent_id")
        truthy(t.lease_expires_at, "lease_expires_at")
        S["claimed"] = t

    def heartbeat():
        w1, t = need("w1", "claimed")
        h = w1.tasks.heartbeat(t.id, lease_seconds=120)
        truthy(h.lease_expires_at > t.lease_expires_at, "heartbeat extends the lease")

    def set_state():
        w1, t = need("w1", "claimed")
        s = w1.tasks.set_state(t.id, "waiting_input", detail="which region?")
        eq(s.session_state, "waiting_input", "session_state")
        eq(s.session_state_detail, "which region?", "session_state_detail")

    def heartbeat_without_claim_is_409():
        w2, t = need("w2", "claimed")
        exc = expect_raises(DelegaAPIError, lambda: w2.tasks.heartbeat(t.id), "heartbeat by another agent")
        eq(exc.status_code, 409, "status")

    def release_by_another_is_403():
        w2, t = need("w2", "claimed")
        exc = expect_raises(DelegaAuthError, lambda: w2.tasks.release(t.id), "release by another agent")
        eq(exc.status_code, 403, "status")

    def release():
        w1, t = need("w1", "claimed")
        r = w1.tasks.release(t.id)
        eq(r.status, "open", "status after release")
        exc = expect_raises(DelegaAPIError, lambda: w1.tasks.release(t.id), "release again")
        eq(exc.status_code, 409, "status")

    def claim_by_id_and_409():
        w1, w2, t = need("w1", "w2", "claimed")
        c = w1.tasks.claim(task_id=t.id)
        eq(c.id, t.id, "claimed by id")
        exc = expect_raises(DelegaAPIError, lambda: w2.tasks.claim(task_id=t.id), "claim a held task")
        eq(exc.status_code, 409, "status")
        w1.tasks.release(t.id)

    def list_claimed():
        admin = need("admin")
        w1 = need("w1")
        t = w1.tasks.claim(labels=[label])
        claimed = admin.tasks.list(claimed=True)
        truthy(t.id in ids(claimed), "list(claimed=True) shows the claim")
        w1.tasks.release(t.id)

    def empty_queue_is_none():
        w2 = need("w2")
        eq(w2.tasks.claim(labels=[f"nothing-{SUFFIX}"]), None, "claim on an empty queue")

    def worker_loop():
        # delega-examples python/worker_loop.py, over raw HTTP: seed three
        # labelled tasks; claim, heartbeat, release the unsupported one,
        # complete the rest, stop after empty polls.
        key = need("w2_agent")["api_key"]
        loop_label = f"worker-demo-{SUFFIX}"
        for i, content in enumerate(["summarise", "translate", "UNSUPPORTED: fax it"]):
            st, _, b = raw("POST", "/api/tasks", {"content": content, "priority": i + 1,
                                                  "labels": [loop_label]}, agent_key=key)
            eq(st, 201, f"seed {content}")
        released, completed, empty = set(), [], 0
        while empty < 2:
            st, _, result = raw("POST", "/api/tasks/claim",
                                {"labels": [loop_label], "lease_seconds": 60}, agent_key=key)
            eq(st, 200, "POST /api/tasks/claim")
            task = result["task"]
            if task is None or task["id"] in released:
                if task is not None:
                    raw("POST", f"/api/tasks/{task['id']}/release", agent_key=key)
                empty += 1
                continue
            truthy(task["lease_expires_at"], "lease_expires_at")
            if task["content"].startswith("UNSUPPORTED:"):
                st, _, _ = raw("POST", f"/api/tasks/{task['id']}/release", agent_key=key)
                eq(st, 200, "release")
                released.add(task["id"])
                continue
            st, _, hb = raw("POST", f"/api/tasks/{task['id']}/heartbeat", {"lease_seconds": 60},
                            agent_key=key)
            eq(st, 200, "heartbeat")
            st, _, done = raw("POST", f"/api/tasks/{task['id']}/complete", agent_key=key)
            eq(st, 200, "complete")
            truthy(done["completed_at"], "completed_at on the complete answer")
            completed.append(task["content"])
        eq(sorted(completed), ["summarise", "translate"], "completed by the loop")
        eq(len(released), 1, "released the unsupported one")

    check("queue: seed labelled tasks", seed)
    check("tasks.claim (queue, most urgent first)", claim_from_queue)
    check("tasks.heartbeat", heartbeat)
    check("tasks.set_state", set_state)
    check("tasks.heartbeat without the claim: 409", heartbeat_without_claim_is_409)
    check("tasks.release by another agent: 403", release_by_another_is_403)
    check("tasks.release, and again: 409", release)
    check("tasks.claim(task_id=…), and a held task: 409", claim_by_id_and_409)
    check("tasks.list(claimed=True)", list_claimed)
    check("tasks.claim on an empty queue: None", empty_queue_is_none)
    check("worker loop (delega-examples python/worker_loop.py)", worker_loop)


# --------------------------------------------------------------------------
# recurrences
# --------------------------------------------------------------------------


def recurrences_section():
    def create():
        admin = need("admin")
        r = admin.recurrences.create(
            "Replace furnace filter", rule_type="monthly", timezone="America/Chicago",
            anchor_day=1, labels=["home-family"],
        )
        truthy(r.id, "id")
        eq(r.rule_type, "monthly", "rule_type")
        eq(r.timezone, "America/Chicago", "timezone")
        eq(r.anchor_day, 1, "anchor_day")
        eq(r.labels, ["home-family"], "labels")
        truthy(r.next_due_at, "next_due_at")
        eq(r.active, True, "active")
        eq(r.skip_if_open, True, "skip_if_open")
        S["recurrence"] = r

    def list_():
        admin, r = need("admin", "recurrence")
        truthy(r.id in {x.id for x in admin.recurrences.list()}, "listed")

    def get():
        admin, r = need("admin", "recurrence")
        g = admin.recurrences.get(r.id)
        eq(g.content, "Replace furnace filter", "content")

    def update():
        admin, r = need("admin", "recurrence")
        u = admin.recurrences.update(r.id, active=False)
        eq(u.active, False, "paused")

    def delete():
        admin, r = need("admin", "recurrence")
        truthy(admin.recurrences.delete(r.id), "delete")
        expect_raises(DelegaNotFoundError, lambda: admin.recurrences.get(r.id), "get after delete")

    check("recurrences.create", create)
    check("recurrences.list", list_)
    check("recurrences.get", get)
    check("recurrences.update(active=False)", update)
    check("recurrences.delete", delete)


# --------------------------------------------------------------------------


def main():
    print(f"# delega SDK compat against {BASE}")
    if check("setup: create agents with the project token", setup_agents) is None:
        # Nothing else can run without agent keys.
        pass
    else:
        agents_section()
        projects_section()
        tasks_section()
        comments_section()
        delegation_section()
        context_section()
        links_section()
        dedup_section()
        scoping_section()
        queue_section()
        recurrences_section()
        webhooks_section()
    print(f"{PASSED} passed, {FAILED} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
