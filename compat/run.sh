#!/usr/bin/env bash
# Python SDK compatibility check: drives a fresh `delega serve` through the
# published `delega==0.6.5` SDK (compat/sdk_compat.py), verifying webhook
# deliveries with the SDK's verify_webhook and PyPI's standardwebhooks.
#
#   bash compat/run.sh
#
# Env knobs: DELEGA_COMPAT_VENV (venv dir, default compat/.venv),
#            DELEGA_SKIP_BUILD=1 (use the existing target/debug/delega).
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/../tests/with_server.sh" "${DELEGA_COMPAT_VENV:-$HERE/.venv}" \
    "$HERE/sdk_compat.py" "delega==0.6.5" "standardwebhooks==1.1.0"
