#!/usr/bin/env bash
# The built-in MCP driven by the official Python MCP client (PyPI `mcp`,
# both eras) over HTTP and through the stdio bridge `delega mcp`.
#
#   bash tests/mcp/run.sh
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
exec bash "$HERE/../with_server.sh" "${DELEGA_MCP_VENV:-$HERE/.venv}" "$HERE/mcp_client.py" "mcp==2.3.0"
