#!/usr/bin/env python3
"""Instructions per claim -> complete job, counted by callgrind.

Throughput on this shared 2-core machine moves by 15-30 % between runs of
the same binary, which hides any change under ~10 %. Instruction counts do
not move with the neighbours: this script starts the real server (a release
binary) under `valgrind --tool=callgrind`, drains TASKS queued tasks with
WORKERS keep-alive HTTP clients (claim, then complete with the claim's
generation), and prints the instructions per job of the server's threads,
the most first (the writer). Repeated runs of one binary mostly agree within 1 %; now
and then one is off by ~5 % (the batches the writer forms, and so the
pages each commit writes, depend a little on timing): run each side
twice.

    python3 bench/callgrind/claim.py target/release/delega [TASKS] [WORKERS]

Environment: PAGE_SIZE=N creates the database with that page size.
Needs valgrind (Debian's package). The queue is filled through the
server's schema with Python's own sqlite3 module, which must read it
(SQLite 3.31 or newer: generated columns). Output files stay in a
temporary directory whose path is printed first (for callgrind_annotate).
"""
import glob
import http.client
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

BIN = sys.argv[1]
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
WORKERS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
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


def call(conn, method, path, key, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"X-Agent-Key": key, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


if os.environ.get("PAGE_SIZE"):
    c = sqlite3.connect(DB)
    c.execute(f"PRAGMA page_size = {int(os.environ['PAGE_SIZE'])}")
    c.execute("PRAGMA journal_mode = WAL")
    c.close()

# Workers, on a server outside valgrind; then the queue, through the schema.
proc, port = start([])
admin = http.client.HTTPConnection("127.0.0.1", port)
keys = []
for i in range(WORKERS):
    status, body = call(admin, "POST", "/api/agents", TOKEN, {"name": f"worker-{i}"})
    assert status == 201, (status, body)
    keys.append(body["api_key"])
stop(proc)
c = sqlite3.connect(DB)
c.execute(
    """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
       INSERT INTO tasks (content, priority, labels, status, created_at, updated_at, root_task_id)
       SELECT 'bulk task ' || i, 1 + i % 4, json_array('work'), 'open',
              '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z', 1 + i FROM n""",
    (TASKS,))
c.commit()
c.close()

out = os.path.join(DIR, "callgrind.out")
# Names written out in every thread's file (by default a name appears only
# in the first file that uses it, and threads could not be told apart).
proc, port = start(["valgrind", "--tool=callgrind", "--separate-threads=yes",
                    "--compress-strings=no", f"--callgrind-out-file={out}"])
time.sleep(1)
subprocess.run(["callgrind_control", "--zero", str(proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
done = []
lock = threading.Lock()


def work(key):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    while True:
        status, body = call(conn, "POST", "/api/tasks/claim", key, {})
        assert status == 200, (status, body)
        task = body.get("task")
        if not task:
            return
        status, body = call(conn, "POST", f"/api/tasks/{task['id']}/complete", key,
                            {"claim_generation": task["claim_generation"]})
        assert status == 200, (status, body)
        with lock:
            done.append(task["id"])


threads = [threading.Thread(target=work, args=(k,)) for k in keys]
for t in threads:
    t.start()
for t in threads:
    t.join()
subprocess.run(["callgrind_control", "--dump", str(proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
time.sleep(1)
stop(proc)

assert len(done) == len(set(done)) == TASKS, "each task claimed and completed exactly once"
print(f"{BIN}: {TASKS} jobs, {WORKERS} workers")
rows = []
for path in glob.glob(out + ".1-*"):  # the dump after --zero, one file per thread
    text = open(path, errors="replace").read()
    total = next((int(line.split()[1]) for line in text.splitlines()
                  if line.startswith(("summary:", "totals:"))), 0)
    # By what each ran after the counters were zeroed (a thread's own
    # entry point ran before, and may not be named).
    name = ("writer" if "store::tasks::write_state" in text else
            "HTTP worker" if "actix_server" in text else
            "checkpointer" if "walCheckpoint" in text else "other")
    rows.append((total, name, os.path.basename(path)))
for total, name, file in sorted(rows, reverse=True):
    if total / TASKS >= 1000:
        print(f"  {name:13} {total / TASKS / 1000:7.1f} k instructions/job  ({file})")
