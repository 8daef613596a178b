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

Environment: PAGE_SIZE=N creates the database with that page size.
Needs valgrind; Python's sqlite3 must read the schema (SQLite 3.31 or
newer). Output goes to a temporary directory, printed first.
"""
import glob
import http.client
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
TOKEN = "dlp_" + "a" * 40
DIR = tempfile.mkdtemp(prefix="delega-callgrind-")
DB = os.path.join(DIR, "db.sqlite")
print(f"callgrind output and the server's log go to {DIR}", flush=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def start(prefix):
    env = {k: v for k, v in os.environ.items() if not k.startswith("DELEGA_")}
    env["DELEGA_PROJECT_TOKEN"] = TOKEN
    port = free_port()
    proc = subprocess.Popen(
        prefix + [BIN, "serve", "--bind", "127.0.0.1", "--port", str(port), "--db", DB],
        env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(DIR, "server.log"), "a"))
    for _ in range(1200):  # valgrind starts slowly
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("GET", "/health")
            c.getresponse().read()
            return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"the server did not answer; see {DIR}/server.log")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def control(proc, *args):
    subprocess.run(["callgrind_control", *args, str(proc.pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)


if os.environ.get("PAGE_SIZE"):
    c = sqlite3.connect(DB)
    c.execute(f"PRAGMA page_size = {int(os.environ['PAGE_SIZE'])}")
    c.execute("PRAGMA journal_mode = WAL")
    c.close()
stop(start([])[0])  # the schema
c = sqlite3.connect(DB)
c.execute(
    """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
       INSERT INTO tasks (content, priority, labels, status, created_at, updated_at,
                          completed_at, root_task_id)
       SELECT 'bulk task ' || i, 1 + i % 4, json_array('work'),
              CASE WHEN i < ?2 THEN 'completed' ELSE 'open' END,
              '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',
              CASE WHEN i < ?2 THEN '2026-01-01T00:00:00.000Z' END, 1 + i FROM n""",
    (TASKS, TASKS * 9 // 10))
c.commit()
c.close()

proc, port = start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={DIR}/callgrind.out"])
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
for path in glob.glob(f"{DIR}/callgrind.out.*"):
    lines = open(path, errors="replace").read().splitlines()
    trigger = next((l for l in lines if l.startswith("desc: Trigger:")), "")
    if "kind-" in trigger:
        kind = int(trigger.rsplit("kind-", 1)[1])
        totals[kind] = next(int(l.split()[1]) for l in lines
                            if l.startswith(("summary:", "totals:")))
print(f"{BIN}: {TASKS} tasks ({TASKS * 9 // 10} completed)")
for i, (name, count, _) in enumerate(KINDS):
    print(f"  {name:40} {totals[i] / count / 1000:8.1f} k instructions/request")
