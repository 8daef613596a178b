#!/usr/bin/env bash
# Runs a Python check against a fresh `delega serve` (debug build, loopback,
# temporary database), in a virtualenv with the given PyPI requirements.
#
#   bash tests/with_server.sh VENV_DIR SCRIPT REQUIREMENT...
#
# The script gets DELEGA_BASE_URL, DELEGA_PROJECT_TOKEN (the token the
# server printed on first start) and DELEGA_BIN (the binary). Env knobs:
# DELEGA_SKIP_BUILD=1 (use the existing target/debug/delega),
# DELEGA_CHECK_TIMEOUT (seconds, default 300).
set -euo pipefail

VENV="$1"; SCRIPT="$2"; shift 2
REQUIREMENTS=("$@")
STARTUP_TIMEOUT=30
CHECK_TIMEOUT="${DELEGA_CHECK_TIMEOUT:-300}"
SKIP_BUILD="${DELEGA_SKIP_BUILD:-0}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
NAME="$(basename "$SCRIPT" .py)"

# The server must see only what we give it.
while IFS= read -r var; do
    case "$var" in DELEGA_SKIP_BUILD|DELEGA_CHECK_TIMEOUT) ;; *) unset "$var" ;; esac
done < <(compgen -e | grep '^DELEGA_' || true)

TMP="$(mktemp -d "${TMPDIR:-/tmp}/delega-check.XXXXXX")"
SERVER_PID=""
cleanup() {
    local rc=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
log() { echo "$NAME: $*" >&2; }

# --- Python venv with the requirements (pinned by the caller) ----------------
PY="$VENV/bin/python"
STAMP="$VENV/.requirements"
if ! { [[ -x "$PY" ]] && [[ "$(cat "$STAMP" 2>/dev/null)" == "${REQUIREMENTS[*]}" ]]; }; then
    log "creating venv $VENV with ${REQUIREMENTS[*]}"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check "${REQUIREMENTS[@]}"
    echo "${REQUIREMENTS[*]}" > "$STAMP"
fi

# --- Server --------------------------------------------------------------------
BIN="$ROOT/target/debug/delega"
if [[ "$SKIP_BUILD" != "1" ]]; then
    log "cargo build (debug)"
    (cd "$ROOT" && cargo build --quiet)
fi
[[ -x "$BIN" ]] || { log "no server binary at $BIN"; exit 1; }
OUT="$TMP/server.out"; ERR="$TMP/server.err"
: >"$OUT"; : >"$ERR"
(cd "$TMP" && exec env DELEGA_ALLOW_PRIVATE_WEBHOOKS=true \
    "$BIN" serve --port 0 --db "$TMP/delega.db" >"$OUT" 2>"$ERR" </dev/null) &
SERVER_PID=$!
BASE=""
deadline=$((SECONDS + STARTUP_TIMEOUT))
while (( SECONDS < deadline )); do
    BASE="$(sed -n 's/^delega listening on \(http:\/\/[^[:space:]]*\).*$/\1/p' "$OUT" | head -n1 || true)"
    [[ -n "$BASE" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || break
    sleep 0.2
done
if [[ -z "$BASE" ]]; then
    log "server did not report 'delega listening on' within ${STARTUP_TIMEOUT}s"
    cat "$OUT" >&2 || true; tail -n 50 "$ERR" >&2 || true
    exit 1
fi
TOKEN="$(grep -oE 'dlp_[A-Za-z0-9_-]{43}' "$OUT" | head -n1 || true)"
[[ -n "$TOKEN" ]] || { log "no dlp_ project token in the server's output"; cat "$OUT" >&2; exit 1; }
log "server at $BASE (pid $SERVER_PID)"

# --- The check -----------------------------------------------------------------
set +e
DELEGA_BASE_URL="$BASE" DELEGA_PROJECT_TOKEN="$TOKEN" DELEGA_BIN="$BIN" \
    timeout --kill-after=5 "$CHECK_TIMEOUT" "$PY" -u "$SCRIPT"
rc=$?
set -e
if (( rc != 0 )); then
    (( rc == 124 )) && log "$SCRIPT timed out after ${CHECK_TIMEOUT}s"
    log "--- server stderr (last 40 lines) ---"
    tail -n 40 "$ERR" >&2 || true
fi
exit "$rc"
