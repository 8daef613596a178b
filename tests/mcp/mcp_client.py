"""Delega's built-in MCP driven by the official Python MCP client.

PyPI `mcp` 2.3.0 — a client nobody here wrote — speaks both eras of the
protocol. One conversation per era (2026-07-28 via server/discover,
2025-11-25 via initialize, 2025-06-18 via a hand-driven initialize), the
2026-07-28 tasks extension, and the stdio bridge `delega mcp` spawned by
the same client's stdio transport. Every effect is checked over REST.

Environment: DELEGA_BASE_URL, DELEGA_PROJECT_TOKEN, DELEGA_BIN (for stdio).
"""
from __future__ import annotations

import asyncio
import json
import os
import secrets
import sys
import traceback
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any, Literal

import httpx2
import mcp.types as types
from mcp import Client, ClientSession, StdioServerParameters
from mcp.client import ClaimContext, ClientExtension, ResultClaim
from mcp.client.streamable_http import streamable_http_client

BASE = os.environ["DELEGA_BASE_URL"].rstrip("/")
TOKEN = os.environ["DELEGA_PROJECT_TOKEN"]
BIN = os.environ.get("DELEGA_BIN")
URL = f"{BASE}/mcp"
RUN = secrets.token_hex(3)
PASSED: list[str] = []
FAILED: list[str] = []


def rest(method: str, path: str, body: Any = None, key: str | None = None) -> Any:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-Agent-Key"] = key
    else:
        headers["Authorization"] = f"Bearer {TOKEN}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{method} {path}: {e.code} {e.read()[:300]!r}")


def agent(name: str, role: str) -> str:
    return rest("POST", "/api/agents", {"name": f"{name}-{RUN}", "role": role})["api_key"]


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


async def conversation(label: str, client_call, list_tools, worker_key: str, names: dict) -> None:
    """The same conversation, whatever the era or transport."""
    tools = await list_tools()
    by_name = {t.name: t for t in tools}
    check(len(tools) >= 41, f"{label}: {len(tools)} tools")
    for t in tools:
        check(t.input_schema.get("type") == "object", f"{t.name}: inputSchema")
        check((t.output_schema or {}).get("type") == "object", f"{t.name}: outputSchema")
    check("wait_for_task" in by_name and "recall" in by_name, f"{label}: tool names")

    # The tutorial's flow, by the tutorial's alias names.
    created = await client_call("delega_create_task", {
        "content": f"Summarise Q3 churn drivers ({label})", "priority": 1,
        "metadata": {"quarter": "Q3"}})
    check(not created.is_error, f"create: {created.content}")
    task = created.structured_content
    tid = task["id"]
    check(created.content[0].text.startswith(f"[#{tid}] Summarise Q3 churn drivers"),
          f"readable text: {created.content[0].text!r}")
    handed = await client_call("delega_delegate_task", {"task_id": tid, "agent_id": names["research"]})
    check(handed.structured_content["assigned_to"] == names["research"], f"delegate: {handed.structured_content}")
    chain = await client_call("delega_get_chain", {"task_id": tid})
    check(f"→ {names['research']}" in chain.content[0].text, f"chain text: {chain.content[0].text}")
    done = await client_call("delega_complete_task", {"task_id": tid, "metadata": {"summary": "pricing"}})
    check(done.structured_content["status"] == "completed", "complete")
    over_rest = rest("GET", f"/api/tasks/{tid}")
    check(over_rest["status"] == "completed", "REST sees it completed")
    check(over_rest["context"] == {"quarter": "Q3", "summary": "pricing"}, f"REST context {over_rest['context']}")
    hops = rest("GET", f"/v1/tasks/{tid}/chain")["chain"]
    check(hops and hops[0]["to"] == names["research"], f"REST hops {hops}")

    # Context and comments.
    t2 = (await client_call("create_task", {"content": f"context work {label}"})).structured_content["id"]
    upd = await client_call("update_task_context", {"task_id": t2, "context": {"rows": 1200}})
    check(upd.structured_content["context"] == {"rows": 1200}, "update_task_context")
    got = await client_call("get_task_context", {"task_id": t2, "include_provenance": True})
    check(got.structured_content["context"]["rows"] == 1200, f"get_task_context {got.structured_content}")
    c = await client_call("add_comment", {"task_id": t2, "content": "looks right", "author": "Claude"})
    check(not c.is_error, f"comment {c.content}")
    comments = rest("GET", f"/api/tasks/{t2}/comments")
    check(comments[-1]["content"] == "looks right" and comments[-1]["author"] == "Claude", f"REST comments {comments}")

    # A tool failure is a result, not a protocol error.
    missing = await client_call("get_task", {"task_id": 987654321})
    check(missing.is_error and "404" in missing.content[0].text, f"isError: {missing}")

    # Delegate, then await the result natively.
    t3 = (await client_call("create_task", {"content": f"await me {label}",
                                            "assigned_to_agent_id": names["research"]})).structured_content["id"]
    waiting = asyncio.create_task(client_call("wait_for_task", {"task_id": t3, "timeout_seconds": 30}))
    await asyncio.sleep(0.7)
    rest("POST", f"/api/tasks/{t3}/complete", {"metadata": {"answer": 42}}, key=worker_key)
    result = await waiting
    check(result.structured_content["finished"] is True, f"wait_for_task {result.structured_content}")
    check(result.structured_content["task"]["context"]["answer"] == 42, "the awaited result")


def http_client(key: str) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(headers={"X-Agent-Key": key}, timeout=httpx2.Timeout(30.0, read=120.0))


async def era_high_level(mode: str, expect: str, orch: str, worker: str, names: dict) -> None:
    async with http_client(orch) as http:
        async with Client(streamable_http_client(URL, http_client=http), mode=mode,
                          client_info=types.Implementation(name="delega-ci", version="1")) as client:
            check(client.protocol_version == expect, f"negotiated {client.protocol_version}, expected {expect}")

            async def list_tools():
                return (await client.list_tools()).tools
            await conversation(expect, client.call_tool, list_tools, worker, names)


async def era_2025_06_18(orch: str, worker: str, names: dict) -> None:
    async with http_client(orch) as http:
        async with streamable_http_client(URL, http_client=http) as (read, write):
            async with ClientSession(read, write) as session:
                init = await session.send_request(
                    types.InitializeRequest(params=types.InitializeRequestParams(
                        protocol_version="2025-06-18", capabilities=types.ClientCapabilities(),
                        client_info=types.Implementation(name="delega-ci", version="1"))),
                    types.InitializeResult)
                check(init.protocol_version == "2025-06-18", f"negotiated {init.protocol_version}")
                session.adopt(init)
                await session.send_notification(types.InitializedNotification())

                async def list_tools():
                    return (await session.list_tools()).tools
                await conversation("2025-06-18", session.call_tool, list_tools, worker, names)


# The 2026-07-28 tasks extension (SEP-2663) on the client's extension API.
class CreateTaskResult(types.Result):
    result_type: Literal["task"] = "task"
    task_id: str
    status: str
    poll_interval_ms: int | None = None


class GetTaskParams(types.RequestParams):
    task_id: str


class GetTaskRequest(types.Request[GetTaskParams, Literal["tasks/get"]]):
    method: Literal["tasks/get"] = "tasks/get"
    params: GetTaskParams
    name_param = "taskId"


class TaskState(types.Result):
    task_id: str
    status: str
    poll_interval_ms: int | None = None
    result: dict[str, Any] | None = None
    error: dict[str, Any] | None = None


class Tasks(ClientExtension):
    identifier = "io.modelcontextprotocol/tasks"
    seen: list[str] = []

    def claims(self) -> Sequence[ResultClaim[Any]]:
        return [ResultClaim(result_type="task", model=CreateTaskResult, resolve=self._poll)]

    async def _poll(self, created: CreateTaskResult, ctx: ClaimContext) -> types.CallToolResult:
        Tasks.seen.append(created.task_id)
        while True:
            await asyncio.sleep((created.poll_interval_ms or 500) / 1000)
            st = await ctx.session.send_request(GetTaskRequest(params=GetTaskParams(task_id=created.task_id)), TaskState)
            if st.status == "completed":
                return types.CallToolResult.model_validate(st.result)
            if st.status in ("failed", "cancelled"):
                return types.CallToolResult(content=[types.TextContent(text=st.status)], is_error=True)


async def tasks_extension(orch: str, worker: str, names: dict) -> None:
    tid = rest("POST", "/api/tasks", {"content": f"extension wait {RUN}", "assigned_to_agent_id": names["research"]},
               key=orch)["id"]
    async with http_client(orch) as http:
        async with Client(streamable_http_client(URL, http_client=http), mode="2026-07-28",
                          extensions=[Tasks()]) as client:
            waiting = asyncio.create_task(client.call_tool("wait_for_task", {"task_id": tid}))
            await asyncio.sleep(0.7)
            rest("POST", f"/api/tasks/{tid}/complete", {}, key=worker)
            result = await waiting
            check(Tasks.seen, "the call ran as an MCP task")
            check(result.structured_content["finished"] is True, f"task result {result.structured_content}")


async def stdio_bridge(orch: str, worker: str, names: dict) -> None:
    check(bool(BIN), "DELEGA_BIN is set")
    server = StdioServerParameters(command=BIN, args=["mcp"],
                                   env={"DELEGA_API_URL": BASE, "DELEGA_AGENT_KEY": orch})
    for mode, expect in (("auto", "2026-07-28"), ("legacy", "2025-11-25")):
        async with Client(server, mode=mode) as client:
            check(client.protocol_version == expect, f"stdio negotiated {client.protocol_version}")

            async def list_tools():
                return (await client.list_tools()).tools
            await conversation(f"stdio {expect}", client.call_tool, list_tools, worker, names)


async def main() -> int:
    names = {"orch": f"orchestrator-{RUN}", "research": f"research-agent-{RUN}"}
    orch = agent("orchestrator", "coordinator")
    worker = agent("research-agent", "worker")
    cases = [
        ("2026-07-28 over HTTP (server/discover)", lambda: era_high_level("auto", "2026-07-28", orch, worker, names)),
        ("2025-11-25 over HTTP (initialize)", lambda: era_high_level("legacy", "2025-11-25", orch, worker, names)),
        ("2025-06-18 over HTTP (hand-driven initialize)", lambda: era_2025_06_18(orch, worker, names)),
        ("2026-07-28 tasks extension: wait_for_task as an MCP task", lambda: tasks_extension(orch, worker, names)),
        ("stdio bridge `delega mcp`, both eras", lambda: stdio_bridge(orch, worker, names)),
    ]
    for label, run in cases:
        try:
            await asyncio.wait_for(run(), timeout=120)
            PASSED.append(label)
            print(f"ok - {label}", flush=True)
        except BaseException as e:  # noqa: BLE001 - report every failure
            FAILED.append(label)
            print(f"FAIL - {label}: {e!r}", flush=True)
            traceback.print_exc()
    print(f"{len(PASSED)} passed, {len(FAILED)} failed")
    return 1 if FAILED else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
