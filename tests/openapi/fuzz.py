"""Validates the document the live server serves against the OpenAPI 3.1
specification (PyPI openapi-spec-validator), then runs schemathesis
against that server (tests/with_server.sh started it: DELEGA_BASE_URL,
DELEGA_PROJECT_TOKEN), driven by the same document. Exits non-zero when
the document is invalid, an answer was a 5xx, or an answer did not match
its schema."""

import json
import os
import urllib.request
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

from openapi_spec_validator import OpenAPIV31SpecValidator  # noqa: E402

with urllib.request.urlopen(f"{base}/openapi.json", timeout=10) as resp:
    document = json.load(resp)
errors = list(OpenAPIV31SpecValidator(document).iter_errors())
for e in errors[:20]:
    print(f"openapi: invalid at {'/'.join(map(str, e.absolute_path))}: {e.message}", flush=True)
if errors or not document.get("openapi", "").startswith("3.1"):
    print(f"openapi: the document is not valid OpenAPI 3.1 ({len(errors)} errors)", flush=True)
    sys.exit(1)
print(f"openapi: {document['openapi']} document valid, {len(document['paths'])} paths", flush=True)

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
