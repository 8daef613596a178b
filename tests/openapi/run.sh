#!/usr/bin/env bash
# The document is first validated as OpenAPI 3.1 (PyPI
# openapi-spec-validator). Schema fuzzing: schemathesis (PyPI, pinned) generates requests from the
# server's own OpenAPI document (GET /openapi.json) and sends them to a
# fresh `delega serve` with the project token, checking that no answer is
# a 5xx and that every answer matches the document's schema for it
# (tests/openapi/fuzz.py). Bounded: a few examples per operation and a
# time budget, well under five minutes on a small machine.
#
#   bash tests/openapi/run.sh
#
# Env knobs: DELEGA_OPENAPI_VENV (venv dir, default tests/openapi/.venv),
#            DELEGA_SKIP_BUILD=1 (use the existing target/debug/delega),
#            DELEGA_FUZZ_EXAMPLES (max examples per operation, default 25),
#            DELEGA_FUZZ_SECONDS (time budget of the run, default 150),
#            DELEGA_FUZZ_SEED (the seed; default a fixed one, so CI
#              replays the same cases and stays green or red for a
#              reason; "random" explores new ones).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# with_server.sh clears DELEGA_*; hand the knobs over under other names.
export FUZZ_EXAMPLES="${DELEGA_FUZZ_EXAMPLES:-25}"
export FUZZ_SECONDS="${DELEGA_FUZZ_SECONDS:-150}"
SEED="${DELEGA_FUZZ_SEED:-303484842817711382137674053263258741764}"
[[ "$SEED" == random ]] && SEED=""
export FUZZ_SEED="$SEED"
export DELEGA_CHECK_TIMEOUT="${DELEGA_CHECK_TIMEOUT:-$((FUZZ_SECONDS + 120))}"
exec bash "$HERE/../with_server.sh" "${DELEGA_OPENAPI_VENV:-$HERE/.venv}" \
    "$HERE/fuzz.py" "schemathesis==4.32.5" "openapi-spec-validator==0.9.0"
