"""`rebalancer --help` stays light: no database, HTTP, schema or scheduler library is imported to print it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEAVY = [
    "sqlalchemy",
    "requests",
    "urllib3",
    "jsonschema",
    "werkzeug",
    "apscheduler",
    "yaml",
    "prometheus_client",
    "websockets",
]

PROBE = """
import json, runpy, sys
heavy, sys.argv = json.loads(sys.argv[1]), ["rebalancer", *sys.argv[2:]]
code = 0
try:
    runpy.run_module("rebalancer", run_name="__main__")
except SystemExit as stop:
    code = stop.code
loaded = {name.split(".")[0] for name in sys.modules}
print(json.dumps({"heavy": sorted(loaded & set(heavy)), "code": code}), file=sys.stderr)
"""


def _start(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )
    report: dict[str, object] = json.loads(done.stderr.strip().splitlines()[-1])
    return report


def test_help_and_version_import_nothing_heavy():
    for args in (["--help"], ["plan", "--help"], ["init", "--help"], ["--version"]):
        assert _start(*args) == {"heavy": [], "code": 0}, args
