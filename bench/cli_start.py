"""Cold start of the CLI: ``rebalancer --help`` and ``rebalancer validate jobs/`` as fresh subprocesses.

Each command runs ``--runs`` times (``python -m rebalancer ...`` with this interpreter, so the venv's package is
the one measured); the table shows the median and the spread. Each command is also run once under
``python -X importtime``: the modules with the largest cumulative import time go into the JSON, and are printed when
a command misses.

    python bench/cli_start.py [--runs 20] [--quick] [--out FILE]

Target: median under 300 ms for each command.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "cli_start.json"
TARGET_MS = 300.0
COMMANDS: dict[str, list[str]] = {
    "rebalancer --help": ["--help"],
    "rebalancer validate jobs/": ["validate", str(ROOT / "jobs")],
}
TIMEOUT_SECONDS = 60.0


def child_env() -> dict[str, str]:
    """The environment of each run: no bytecode writes (the cache is warm, as after install), no colour."""
    return {**os.environ, "NO_COLOR": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def time_once(args: list[str]) -> float:
    """Milliseconds from spawning ``python -m rebalancer args`` to its exit; a non-zero exit is an error."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rebalancer", *args],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise SystemExit(f"rebalancer {' '.join(args)} exited {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


def baseline_ms(runs: int) -> float:
    """Median start-up of a bare interpreter (``python -c pass``): the floor no CLI can go under."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], env=child_env(), timeout=TIMEOUT_SECONDS, check=True)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def import_offenders(args: list[str], top: int = 12) -> list[dict[str, Any]]:
    """The modules with the largest cumulative import time (``-X importtime``) for one run of ``args``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rebalancer", *args],
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    rows = []
    for line in done.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cumulative_us, name = line.removeprefix("import time:").split("|", 2)
        cumulative_ms = int(cumulative_us) / 1000
        rows.append({"module": name.strip(), "self_ms": int(self_us) / 1000, "cumulative_ms": cumulative_ms})
    rows.sort(key=lambda r: r["cumulative_ms"], reverse=True)
    return rows[:top]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Time every command, print the table, write the JSON; returns the document."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="runs per command")
    parser.add_argument("--quick", action="store_true", help="CI smoke: 3 runs per command")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    runs = 3 if args.quick else args.runs
    time_once(["--help"])  # one warm-up run fills the OS page cache and __pycache__
    rows = []
    for label, command in COMMANDS.items():
        times = [time_once(command) for _ in range(runs)]
        median = statistics.median(times)
        row: dict[str, Any] = {
            "command": label,
            "runs": runs,
            "median_ms": round(median, 1),
            "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1),
            "target_ms": TARGET_MS,
            "meets_target": median < TARGET_MS,
        }
        row["import_offenders"] = import_offenders(command)
        rows.append(row)
    floor = baseline_ms(runs)
    print("| command | runs | median ms | min | max | target |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        verdict = "ok" if r["meets_target"] else "MISS"
        cells = f"{r['median_ms']:.0f} | {r['min_ms']:.0f} | {r['max_ms']:.0f}"
        print(f"| `{r['command']}` | {r['runs']} | {cells} | <{TARGET_MS:.0f} {verdict} |")
    print(f"| `python -c pass` (floor) | {runs} | {floor:.0f} | | | |")
    for r in rows:
        for offender in r["import_offenders"] if not r["meets_target"] else []:
            print(f"  {r['command']}: {offender['module']} {offender['cumulative_ms']:.1f} ms cumulative")
    document = {
        "benchmark": "cli_start",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "interpreter_floor_ms": round(floor, 1),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {args.out}")
    return document


if __name__ == "__main__":
    main()
