#!/usr/bin/env bash
# Python SDK compatibility check: drives a fresh `delega serve` through the
# published `delega==0.6.5` SDK (compat/sdk_compat.py).
#
#   bash compat/run.sh
#
# Env knobs: DELEGA_COMPAT_VENV (venv dir, default compat/.venv),
#            DELEGA_COMPAT_SKIP_BUILD=1 (use the existing target/debug/delega).
set -euo pipefail

SDK_VERSION="0.6.5"
# A Standard Webhooks verifier written by others (PyPI), for the deliveries.
STANDARDWEBHOOKS_VERSION="1.1.0"
STARTUP_TIMEOUT=30   # seconds to wait for "delega listening on"
CHECK_TIMEOUT=180    # seconds for the whole Python check

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="${DELEGA_COMPAT_VENV:-$HERE/.venv}"
SKIP_BUILD="${DELEGA_COMPAT_SKIP_BUILD:-0}"

# The server must see only what we give it.
while IFS= read -r var; do
    unset "$var"
done < <(compgen -e | grep '^DELEGA_' || true)

TMP="$(mktemp -d "${TMPDIR:-/tmp}/delega-compat.XXXXXX")"
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

log() { echo "compat: $*" >&2; }

# --- Python venv with the SDK -------------------------------------------------
PY="$VENV/bin/python"
if ! { [[ -x "$PY" ]] && "$PY" -c "import sys, delega, standardwebhooks; sys.exit(delega.__version__ != '$SDK_VERSION')" 2>/dev/null; }; then
    log "creating venv $VENV with delega==$SDK_VERSION standardwebhooks==$STANDARDWEBHOOKS_VERSION"
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$PY" -m pip install --quiet --disable-pip-version-check \
        "delega==$SDK_VERSION" "standardwebhooks==$STANDARDWEBHOOKS_VERSION"
fi
"$PY" -c "import delega; print('compat: SDK delega', delega.__version__)" >&2

# --- Server binary -------------------------------------------------------------
BIN="$ROOT/target/debug/delega"
if [[ "$SKIP_BUILD" != "1" ]]; then
    log "cargo build (debug)"
    (cd "$ROOT" && cargo build --quiet)
fi
[[ -x "$BIN" ]] || { log "no server binary at $BIN"; exit 1; }

# --- Start the server ----------------------------------------------------------
OUT="$TMP/server.out"
ERR="$TMP/server.err"
: >"$OUT"
: >"$ERR"
(cd "$TMP" && exec env DELEGA_ALLOW_PRIVATE_WEBHOOKS=true \
    "$BIN" serve --port 0 --db "$TMP/delega.db" >"$OUT" 2>"$ERR" </dev/null) &
SERVER_PID=$!

BASE=""
deadline=$((SECONDS + STARTUP_TIMEOUT))
while (( SECONDS < deadline )); do
    BASE="$(sed -n 's/^delega listening on \(http:\/\/[^[:space:]]*\).*$/\1/p' "$OUT" | head -n1 || true)"
    [[ -n "$BASE" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        break
    fi
    sleep 0.2
done
if [[ -z "$BASE" ]]; then
    log "server did not report 'delega listening on' within ${STARTUP_TIMEOUT}s"
    log "--- stdout ---"; cat "$OUT" >&2 || true
    log "--- stderr ---"; tail -n 50 "$ERR" >&2 || true
    exit 1
fi
TOKEN="$(grep -oE 'dlp_[A-Za-z0-9_-]{43}' "$OUT" | head -n1 || true)"
if [[ -z "$TOKEN" ]]; then
    log "no dlp_ project token in the server's first-start output:"
    cat "$OUT" >&2
    exit 1
fi
log "server at $BASE (pid $SERVER_PID)"

# --- Run the checks ------------------------------------------------------------
set +e
DELEGA_BASE_URL="$BASE" DELEGA_PROJECT_TOKEN="$TOKEN" \
    timeout --kill-after=5 "$CHECK_TIMEOUT" "$PY" -u "$HERE/sdk_compat.py"
rc=$?
set -e
if (( rc != 0 )); then
    (( rc == 124 )) && log "sdk_compat.py timed out after ${CHECK_TIMEOUT}s"
    log "--- server stderr (last 40 lines) ---"
    tail -n 40 "$ERR" >&2 || true
fi
exit "$rc"
