#!/usr/bin/env bash
# Reference drain of two PostgreSQL job queues (graphile-worker, pg-boss) on a
# private, throwaway PostgreSQL 15 cluster:
#
#   bash bench/compare/run.sh [JOBS] [WORKERS]      # defaults 20000 16
#
# Environment (all optional):
#   PG_BIN            PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   PG_USER           OS user that runs the cluster when this script runs as
#                     root (initdb refuses root; default: postgres)
#   QUEUES            which drains, in order (default "graphile-worker pg-boss";
#                     "pg-boss-work" adds pg-boss's own work() loop, which
#                     sleeps 0.5 s after every job: keep JOBS small for it)
#   DRAIN_TIMEOUT_S   per-drain limit inside node (default 600)
#   POLL_MS           idle poll interval of the workers (default 10)
#   VERBOSE=1         pg-boss: report how many fetches came back empty
#
# Each queue gets its own fresh database in the same cluster. The cluster
# listens on 127.0.0.1 only (no Unix socket), on a free port, with password
# authentication; fsync and synchronous_commit are left at their defaults.
# The cluster is stopped and its directory deleted on every exit path.
set -euo pipefail

JOBS=${1:-20000}
WORKERS=${2:-16}
QUEUES=${QUEUES:-"graphile-worker pg-boss"}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
DRAIN_TIMEOUT_S=${DRAIN_TIMEOUT_S:-600}
export DRAIN_TIMEOUT_S POLL_MS="${POLL_MS:-10}"

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

[[ $JOBS =~ ^[1-9][0-9]*$ && $WORKERS =~ ^[1-9][0-9]*$ ]] ||
    { echo "usage: $0 [JOBS] [WORKERS]" >&2; exit 2; }
for b in initdb pg_ctl psql; do
    [[ -x $PG_BIN/$b ]] || { echo "$PG_BIN/$b not found (set PG_BIN)" >&2; exit 2; }
done
[[ -d $HERE/node_modules/graphile-worker && -d $HERE/node_modules/pg-boss ]] ||
    { echo "run 'npm install' in $HERE first" >&2; exit 2; }

# initdb/postgres refuse to run as root: run the cluster as an existing
# unprivileged user then.
if [[ $(id -u) -eq 0 ]]; then
    PG_USER=${PG_USER:-postgres}
    id "$PG_USER" >/dev/null 2>&1 ||
        { echo "running as root: set PG_USER to an existing non-root user" >&2; exit 2; }
    as_pg() { runuser -u "$PG_USER" -- "$@"; }
else
    PG_USER=$(id -un)
    as_pg() { "$@"; }
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/delega-pgcompare.XXXXXX")
DATA=$TMP/data
LOG=$TMP/postgres.log
NODE_PID=

cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [[ -n $NODE_PID ]] && kill -0 "$NODE_PID" 2>/dev/null; then
        kill "$NODE_PID" 2>/dev/null || true
        wait "$NODE_PID" 2>/dev/null || true
    fi
    if [[ -f $DATA/postmaster.pid ]]; then
        as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m fast -t 30 -w stop >/dev/null 2>&1 ||
            as_pg "$PG_BIN/pg_ctl" -D "$DATA" -m immediate -t 30 -w stop >/dev/null 2>&1 || true
        # Last resort: the postmaster's own pid, from its pid file.
        if [[ -f $DATA/postmaster.pid ]]; then
            local pm
            pm=$(head -n1 "$DATA/postmaster.pid" 2>/dev/null || true)
            [[ $pm =~ ^[0-9]+$ ]] && kill -KILL "$pm" 2>/dev/null || true
        fi
    fi
    if [[ $rc -ne 0 && -f $LOG ]]; then
        echo "--- last lines of the PostgreSQL log ---" >&2
        tail -n 20 "$LOG" >&2 || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A free loopback port (asked of the kernel, released right away).
PORT=$(node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
PASSWORD=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')

chmod 700 "$TMP"
chown "$PG_USER" "$TMP"
printf '%s\n' "$PASSWORD" > "$TMP/pwfile"
chown "$PG_USER" "$TMP/pwfile"
chmod 600 "$TMP/pwfile"

as_pg "$PG_BIN/initdb" -D "$DATA" -U bench --pwfile="$TMP/pwfile" \
    --auth-local=reject --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$TMP/initdb.log" 2>&1 ||
    { cat "$TMP/initdb.log" >&2; exit 1; }
rm -f "$TMP/pwfile"
cat >>"$DATA/postgresql.conf" <<EOF

# delega bench/compare: loopback only, no Unix socket; everything else default
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = ''
EOF

as_pg timeout 90 "$PG_BIN/pg_ctl" -D "$DATA" -l "$LOG" -t 60 -w start >/dev/null

export PGPASSWORD=$PASSWORD
PSQL=("$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U bench)
SERVER_VERSION=$("${PSQL[@]}" -At -d postgres -c 'SHOW server_version')
echo "PostgreSQL $SERVER_VERSION on 127.0.0.1:$PORT (fsync=$("${PSQL[@]}" -At -d postgres -c 'SHOW fsync'), synchronous_commit=$("${PSQL[@]}" -At -d postgres -c 'SHOW synchronous_commit')), node $(node --version), $(nproc) CPUs"

status=0
for q in $QUEUES; do
    db=bench_${q//-/_}
    "${PSQL[@]}" -d postgres -c "CREATE DATABASE $db"
    # Bounded: node's own deadline first, then a hard limit on the process.
    DATABASE_URL="postgres://bench:$PASSWORD@127.0.0.1:$PORT/$db" \
        timeout -k 10 $((DRAIN_TIMEOUT_S + 120)) node "$HERE/drain.js" "$q" "$JOBS" "$WORKERS" &
    NODE_PID=$!
    if ! wait "$NODE_PID"; then
        echo "$q: drain failed" >&2
        status=1
    fi
    NODE_PID=
done
exit "$status"
