#!/usr/bin/env bash
# The dashboard's browser tests: headless Debian Chromium driven by
# Playwright (PyPI), against a real `delega` server on a free loopback port
# with a fresh database.
#
#   bash tests/browser/run.sh                 # UI served by the server at /
#   DELEGA_UI_SERVE=python bash tests/browser/run.sh
#                                             # UI served by devserve.py on
#                                             # another port (CORS), for a
#                                             # binary that does not embed it
#   DELEGA_UI_SERVE=proxy bash tests/browser/run.sh
#                                             # devserve.py serves the UI and
#                                             # forwards /api to the server:
#                                             # one origin, as with the binary
#
# DELEGA_BIN   the server binary (default target/debug/delega)
# Extra arguments go to pytest (e.g. -k board -x).
#
# Installs what it needs: Debian's chromium (apt-get) when /usr/bin/chromium
# is missing, and a venv with the pinned requirements in tests/browser/.venv.
# Screenshots of failures go to tests/browser/artifacts/, the README's to
# artifacts/screenshots/ (DELEGA_SCREENSHOTS_DIR=docs/screenshots refreshes
# the committed ones). Servers it starts bind 127.0.0.1, are stopped by PID on
# exit, and stop by themselves after $LIFETIME seconds in any case.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
cd "$ROOT"

BIN="${DELEGA_BIN:-target/debug/delega}"
MODE="${DELEGA_UI_SERVE:-server}"
LIFETIME="${DELEGA_TEST_LIFETIME:-1500}"
VENV="$HERE/.venv"
ARTIFACTS="$HERE/artifacts"

if [ ! -x "$BIN" ]; then
    echo "run.sh: no server binary at $BIN (build it, or set DELEGA_BIN)" >&2
    exit 2
fi

# --- the browser: Debian's package, never a download by Playwright
if [ ! -x /usr/bin/chromium ]; then
    echo "run.sh: installing Debian's chromium"
    SUDO=""
    if [ "$(id -u)" != 0 ]; then
        if command -v sudo >/dev/null; then SUDO="sudo -n"; else
            echo "run.sh: /usr/bin/chromium is missing and I am not root (no sudo)" >&2; exit 2; fi
    fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi

# --- Python: a venv with the pinned Playwright and pytest
if [ ! -x "$VENV/bin/pytest" ] || ! cmp -s "$HERE/requirements.txt" "$VENV/requirements.txt"; then
    echo "run.sh: preparing $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$HERE/requirements.txt"
    cp "$HERE/requirements.txt" "$VENV/requirements.txt"
fi

free_port() {
    "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
answers() {  # answers URL: true once URL answers 2xx
    "$VENV/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1" 2>/dev/null
}

TMP="$(mktemp -d)"
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

PORT="$(free_port)"
export DELEGA_URL="http://127.0.0.1:$PORT"
unset DELEGA_UI_URL
# Webhook tests deliver to a receiver on loopback.
export DELEGA_ALLOW_PRIVATE_WEBHOOKS=1
unset DELEGA_PROJECT_TOKEN DELEGA_CONFIG DELEGA_CORS_ORIGINS
case "$MODE" in
    server) ;;
    python) UI_PORT="$(free_port)"; export DELEGA_CORS_ORIGINS="http://127.0.0.1:$UI_PORT" ;;
    proxy) UI_PORT="$(free_port)" ;;
    *) echo "run.sh: DELEGA_UI_SERVE must be server, python or proxy" >&2; exit 2 ;;
esac

timeout "$LIFETIME" "$BIN" serve --bind 127.0.0.1 --port "$PORT" --db "$TMP/delega.db" >"$TMP/server.log" 2>&1 &
PIDS+=($!)

# The first start prints the project token once; read it from there.
TOKEN=""
for _ in $(seq 1 100); do
    TOKEN="$(grep -o 'dlp_[A-Za-z0-9_-]\{43\}' "$TMP/server.log" | head -n1 || true)"
    if [ -n "$TOKEN" ] && answers "$DELEGA_URL/health"; then break; fi
    sleep 0.1
done
if [ -z "$TOKEN" ]; then
    echo "run.sh: the server did not start or print a token:" >&2
    cat "$TMP/server.log" >&2
    exit 1
fi
export DELEGA_TOKEN="$TOKEN"

if [ "$MODE" = python ]; then
    timeout "$LIFETIME" "$VENV/bin/python" "$HERE/devserve.py" --port "$UI_PORT" --api "$DELEGA_URL" \
        --lifetime "$LIFETIME" >"$TMP/devserve.log" 2>&1 &
    PIDS+=($!)
    export DELEGA_UI_URL="http://127.0.0.1:$UI_PORT/"
    for _ in $(seq 1 50); do answers "$DELEGA_UI_URL" && break; sleep 0.1; done
    echo "run.sh: UI from devserve.py at $DELEGA_UI_URL, API at $DELEGA_URL"
elif [ "$MODE" = proxy ]; then
    timeout "$LIFETIME" "$VENV/bin/python" "$HERE/devserve.py" --port "$UI_PORT" --proxy "$DELEGA_URL" \
        --lifetime "$LIFETIME" >"$TMP/devserve.log" 2>&1 &
    PIDS+=($!)
    # Everything, the tests' REST calls included, goes through the one origin.
    export DELEGA_URL="http://127.0.0.1:$UI_PORT"
    for _ in $(seq 1 50); do answers "$DELEGA_URL/health" && break; sleep 0.1; done
    echo "run.sh: UI and API (forwarded) from devserve.py at $DELEGA_URL/"
else
    echo "run.sh: UI and API from the server at $DELEGA_URL/"
fi

rm -rf "$ARTIFACTS"
# The README's screenshots go to the artifacts unless asked for in place
# (DELEGA_SCREENSHOTS_DIR=docs/screenshots), so a test run leaves the
# committed ones alone.
export ARTIFACTS_DIR="$ARTIFACTS" CHROMIUM=/usr/bin/chromium
export SCREENSHOTS_DIR="$(realpath -m "${DELEGA_SCREENSHOTS_DIR:-$ARTIFACTS/screenshots}")"
set +e
(cd "$HERE" && "$VENV/bin/pytest" -p no:cacheprovider -q -ra "$@")
status=$?
set -e
if [ "$status" != 0 ]; then
    mkdir -p "$ARTIFACTS"
    cp "$TMP/server.log" "$ARTIFACTS/server.log" 2>/dev/null || true
    echo "run.sh: browser tests failed; screenshots and logs in $ARTIFACTS" >&2
fi
exit "$status"
