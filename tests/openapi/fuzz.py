"""Runs schemathesis against the live server that tests/with_server.sh
started (DELEGA_BASE_URL, DELEGA_PROJECT_TOKEN), driven by the document
the server serves. Exits with schemathesis's code: non-zero when an answer
was a 5xx or did not match its schema."""

import os
import subprocess
import sys
import time
from pathlib import Path

base = os.environ["DELEGA_BASE_URL"]
token = os.environ["DELEGA_PROJECT_TOKEN"]
examples = os.environ.get("FUZZ_EXAMPLES", "25")
seconds = os.environ.get("FUZZ_SECONDS", "150")
seed = os.environ.get("FUZZ_SEED", "")
schemathesis = Path(sys.executable).with_name("schemathesis")

cmd = [
    str(schemathesis),
    "run",
    f"{base}/api/openapi.json",
    "--url", base,
    "--checks", "not_a_server_error,response_schema_conformance",
    "--max-examples", examples,
    "--max-time", seconds,
    "--phases", "examples,coverage,fuzzing",
    "--workers", "2",
    "--request-timeout", "20",
    "--suppress-health-check", "all",
    "--no-shrink",
    "--header", f"Authorization: Bearer {token}",
    # A JSON page of /events, never its live stream.
    "--header", "Accept: application/json",
    "--warnings", "off",
]
if seed:
    cmd += ["--seed", seed]

print("schemathesis:", " ".join(c if token not in c else "Authorization: Bearer dlp_…" for c in cmd[1:]), flush=True)
started = time.monotonic()
rc = subprocess.call(cmd, env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
print(f"schemathesis finished with exit code {rc} in {time.monotonic() - started:.0f} s", flush=True)
sys.exit(rc)
