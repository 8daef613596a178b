#!/usr/bin/env python3
"""Instructions per claim -> complete job, counted by callgrind.

Throughput on this shared 2-core machine moves by 15-30 % between runs of
the same binary, which hides any change under ~10 %. Instruction counts do
not move with the neighbours: this script starts the real server (a release
binary) under `valgrind --tool=callgrind`, drains TASKS queued tasks with
WORKERS keep-alive HTTP clients (claim, then complete with the claim's
generation), and prints the instructions per job of the server's threads,
the most first (the writer). Repeated runs of one binary mostly agree
within 1 %; now and then one is off by ~5 % (the batches the writer forms,
and so the pages each commit writes, depend a little on timing): run each
side twice.

    python3 bench/callgrind/claim.py target/release/delega [TASKS] [WORKERS]

TASKS defaults to 1000 and WORKERS to 4 (about 20 s); BENCHMARKS.md's
figures use 2000 16, closer to the batches of the real 16-worker drain.

Environment: PAGE_SIZE=N creates the database with that page size. Needs
valgrind (Debian's package); see server.py for the rest.
"""
import glob
import http.client
import json
import os
import sys
import threading
import time

from server import TOKEN, Workspace, control, stop

BIN = sys.argv[1]
TASKS = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
WORKERS = int(sys.argv[3]) if len(sys.argv) > 3 else 4
work = Workspace(BIN)


def call(conn, method, path, key, body=None):
    conn.request(method, path, body=None if body is None else json.dumps(body),
                 headers={"X-Agent-Key": key, "Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    return r.status, json.loads(data) if data else None


# Workers, on a server outside valgrind; then the queue, through the schema.
proc, port = work.start()
admin = http.client.HTTPConnection("127.0.0.1", port)
keys = []
for i in range(WORKERS):
    status, body = call(admin, "POST", "/api/agents", TOKEN, {"name": f"worker-{i}"})
    assert status == 201, (status, body)
    keys.append(body["api_key"])
stop(proc)
work.fill(TASKS)

# Names written out in every thread's file (by default a name appears only
# in the first file that uses it, and threads could not be told apart).
proc, port = work.start_under_callgrind("--separate-threads=yes", "--compress-strings=no")
time.sleep(1)
control(proc, "--zero")
done = []
lock = threading.Lock()


def drain(key):
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


threads = [threading.Thread(target=drain, args=(k,)) for k in keys]
for t in threads:
    t.start()
for t in threads:
    t.join()
control(proc, "--dump")
time.sleep(1)
stop(proc)

assert len(done) == len(set(done)) == TASKS, "each task claimed and completed exactly once"
print(f"{BIN}: {TASKS} jobs, {WORKERS} workers")
rows = []
for path in glob.glob(os.path.join(work.dir, "callgrind.out.1-*")):  # after --zero, per thread
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
