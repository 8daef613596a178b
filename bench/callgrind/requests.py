#!/usr/bin/env python3
"""Instructions per request for the everyday requests, counted by callgrind.

The companion of claim.py for reads and creates: fills a database with
TASKS tasks (nine in ten completed) through the server's schema, starts
the real server under `valgrind --tool=callgrind`, and for each kind of
request below zeroes the counters, sends the requests one after another
over one keep-alive connection, and dumps. It prints the whole server's
instructions per request of each kind (every thread: HTTP workers, reader
pool, writer, checkpointer).

    python3 bench/callgrind/requests.py target/release/delega [TASKS]

TASKS defaults to 100000 (BENCHMARKS.md also uses 1000000; the fill and
the first requests grow with it).

Environment: PAGE_SIZE=N creates the database with that page size. Needs
valgrind; see server.py for the rest.
"""
import glob
import http.client
import json
import os
import random
import sys
import time

from server import TOKEN, Workspace, control, stop

BIN = sys.argv[1]
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
work = Workspace(BIN)
stop(work.start()[0])  # the schema
work.fill(TASKS, completed=TASKS * 9 // 10)

proc, port = work.start_under_callgrind()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
ids = random.Random(7)


def call(method, path, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"Authorization": f"Bearer {TOKEN}",
                          "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    assert r.status < 300, (method, path, r.status, data[:200])


KINDS = [
    ("GET /api/tasks/{id}", 400, lambda: call("GET", f"/api/tasks/{ids.randint(1, TASKS)}")),
    ("GET /api/tasks?limit=50", 100, lambda: call("GET", "/api/tasks?limit=50")),
    ("GET /api/tasks?claimable=true&limit=10", 100,
     lambda: call("GET", "/api/tasks?claimable=true&limit=10")),
    ("GET /api/stats", 50, lambda: call("GET", "/api/stats")),
    ("POST /api/tasks", 400, lambda: call("POST", "/api/tasks", {
        "content": "a new task", "labels": ["work"], "description": "d" * 300})),
]
for i, (_, count, send) in enumerate(KINDS):
    control(proc, "--zero")
    for _ in range(count):
        send()
    control(proc, f"--dump=kind-{i}")
time.sleep(1)
stop(proc)

totals = {}
for path in glob.glob(os.path.join(work.dir, "callgrind.out.*")):
    lines = open(path, errors="replace").read().splitlines()
    trigger = next((l for l in lines if l.startswith("desc: Trigger:")), "")
    if "kind-" in trigger:
        kind = int(trigger.rsplit("kind-", 1)[1])
        totals[kind] = next(int(l.split()[1]) for l in lines
                            if l.startswith(("summary:", "totals:")))
print(f"{BIN}: {TASKS} tasks ({TASKS * 9 // 10} completed)")
for i, (name, count, _) in enumerate(KINDS):
    print(f"  {name:40} {totals[i] / count / 1000:8.1f} k instructions/request")
