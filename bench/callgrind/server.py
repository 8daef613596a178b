"""What claim.py and requests.py share: a throwaway database filled
through the server's schema, and the real server on it, outside or under
valgrind. Standard library only.

The server starts with the project token below and none of the caller's
DELEGA_* settings (they would change what is measured). Everything a run
makes stays in the /tmp/delega-callgrind-* directory it prints first:
db.sqlite, server.log, and callgrind's files. The numbered ones are the
dumps taken after the counters were zeroed, which the scripts report:
callgrind.out.1-<thread> for claim.py (one per thread), callgrind.out.<n>
for requests.py (one per request kind). callgrind.out and
callgrind.out-<thread>, written at exit, cover the whole run. Delete the
directory afterwards."""
import http.client
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

# The project token every server here starts with (DELEGA_PROJECT_TOKEN).
TOKEN = "dlp_" + "a" * 40


class Workspace:
    """A temporary directory holding the database, the server's log and
    callgrind's output; `PAGE_SIZE=N` in the environment creates the
    database with that page size."""

    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="delega-callgrind-")
        self.db = os.path.join(self.dir, "db.sqlite")
        print(f"callgrind output and the server's log go to {self.dir}", flush=True)
        if os.environ.get("PAGE_SIZE"):
            c = sqlite3.connect(self.db)
            c.execute(f"PRAGMA page_size = {int(os.environ['PAGE_SIZE'])}")
            c.execute("PRAGMA journal_mode = WAL")
            c.close()

    def start(self, prefix=()):
        """Starts the server (after `prefix`, e.g. valgrind's command) on a
        free port; returns the process and the port once /health answers."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELEGA_")}
        env["DELEGA_PROJECT_TOKEN"] = TOKEN
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen(
            [*prefix, self.binary, "serve", "--bind", "127.0.0.1", "--port", str(port),
             "--db", self.db],
            env=env, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.dir, "server.log"), "a"))
        for _ in range(1200):  # valgrind starts slowly
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("GET", "/health")
                c.getresponse().read()
                return proc, port
            except OSError:
                time.sleep(0.1)
        proc.kill()
        sys.exit(f"the server did not answer; see {self.dir}/server.log")

    def start_under_callgrind(self, *options):
        out = os.path.join(self.dir, "callgrind.out")
        return self.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
                           *options])

    def fill(self, tasks, completed=0):
        """Inserts `tasks` tasks labelled `work` into the stopped server's
        database through its schema (triggers, generated columns and
        indexes do their work), the first `completed` of them completed.
        Python's sqlite3 must read the schema (SQLite 3.31 or newer)."""
        c = sqlite3.connect(self.db)
        c.execute(
            """WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?1)
               INSERT INTO tasks (content, priority, labels, status, created_at, updated_at,
                                  completed_at, root_task_id)
               SELECT 'bulk task ' || i, 1 + i % 4, json_array('work'),
                      CASE WHEN i < ?2 THEN 'completed' ELSE 'open' END,
                      '2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z',
                      CASE WHEN i < ?2 THEN '2026-01-01T00:00:00.000Z' END, 1 + i FROM n""",
            (tasks, completed))
        c.commit()
        c.close()


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)


def control(proc, *args):
    """`callgrind_control ARGS PID` (--zero, --dump=NAME)."""
    subprocess.run(["callgrind_control", *args, str(proc.pid)],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
