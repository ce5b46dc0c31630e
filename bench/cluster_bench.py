"""The cluster on this machine: passes served per second and their lateness with 1, 2 and 3 members, and how long a
killed member's jobs take to continue on the others.

The sandbox is a child process (``daemon_bench.py --serve``: a real-clock engine, one symbol and one funded account
per job). Each run gets a fresh PostgreSQL database; each member is ``python -m rebalancer run DIR --cluster
--log-format json`` exactly as in production. Once every job has made a pass, a window of ``--seconds`` is
measured from the members' JSON pass lines: passes per second, ``late_ms`` (start against the due time the
dispatcher gave) and ``duration_ms`` percentiles, plus the members' CPU. Then, with two or more members, the first
member is SIGKILLed and the takeover time of each of its jobs is the time until another member's next pass of it.

    python bench/cluster_bench.py [--jobs 60] [--interval 5] [--seconds 40] [--members 1,2,3] [--concurrency N]
                                  [--quick] [--out FILE]

``--quick`` (12 jobs, 10 s window, 1 and 2 members) is a smoke run. The machine is shared: the load average at the
start of each run is recorded with its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from daemon_bench import cpu_seconds, percentile, start_sandbox, stop, write_jobs  # noqa: E402

from rebalancer.defaults import CLUSTER_PASSES_PER_CORE  # noqa: E402

ADMIN_URL = os.environ.get("REBALANCER_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def fresh_database() -> tuple[str, str]:
    """A new empty database: (its name, its SQLAlchemy URL)."""
    import psycopg

    name = f"rb_cluster_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    base = ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return name, f"{base}/{name}"


def drop_database(name: str) -> None:
    """Drop a database made by ``fresh_database``."""
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def pass_lines(logs: list[Path]) -> list[dict[str, Any]]:
    """Every JSON ``pass`` line of the members' logs."""
    records = []
    for log in logs:
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("{") and '"msg": "pass"' in line:
                records.append(json.loads(line))
    return records


def stamp(record: dict[str, Any]) -> datetime:
    """When a log line was written."""
    return datetime.fromisoformat(record["ts"])


def run_members(
    args: argparse.Namespace, members: int, sandbox_pid: int, folder: Path, env: dict[str, str], workdir: Path
) -> dict[str, Any]:
    """One measurement with ``members`` members on a fresh database."""
    from rebalancer.state.store import StateStore

    db_name, db_url = fresh_database()
    logs = [workdir / f"m{members}-{i}.log" for i in range(members)]
    handles: list[IO[bytes]] = [open(log, "wb") for log in logs]  # noqa: SIM115 - closed below
    member_env = {
        **os.environ,
        **env,
        "REBALANCER_STATE_URL": db_url,
        "PYTHONPATH": str(ROOT),
        "REBALANCER_STATE_DIR": str(workdir / "state"),
    }
    load = os.getloadavg()[0]
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rebalancer",
                "run",
                str(folder),
                "--cluster",
                "--log-format",
                "json",
                "--no-watch",
                *concurrency,
            ],
            env=member_env,
            stdout=h,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        for h in handles
    ]
    result: dict[str, Any] = {
        "members": members,
        "jobs": args.jobs,
        "interval_s": args.interval,
        "concurrency": args.concurrency or CLUSTER_PASSES_PER_CORE * (os.cpu_count() or 1),
        "load_average_at_start": round(load, 1),
    }
    try:
        with StateStore(db_url) as store:
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline:
                jobs = store.cluster_jobs()
                if len(jobs) == args.jobs and all(j.last_pass_at is not None for j in jobs):
                    break
                time.sleep(0.5)
            start = datetime.now(UTC)
            cpu_before = [cpu_seconds(p.pid) for p in procs]
            sandbox_before = cpu_seconds(sandbox_pid)
            time.sleep(args.seconds)
            end = datetime.now(UTC)
            cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(cpu_before)
            sandbox_cpu = cpu_seconds(sandbox_pid) - sandbox_before
            window = [r for r in pass_lines(logs) if start <= stamp(r) < end]
            late = [float(r["late_ms"]) for r in window]
            durations = [float(r["duration_ms"]) for r in window]
            per_member: dict[str, int] = {}
            for r in window:
                per_member[r["member"]] = per_member.get(r["member"], 0) + 1
            result |= {
                "passes_per_s": round(len(window) / args.seconds, 2),
                "due_per_s": round(args.jobs / args.interval, 2),
                "late_ms": {f"p{q}": percentile(late, q) for q in (50, 95, 99)},
                "duration_ms": {f"p{q}": percentile(durations, q) for q in (50, 95)},
                "passes_per_member": sorted(per_member.values()),
                "cpu_s_per_s": round(cpu / args.seconds, 2),
                "sandbox_cpu_s_per_s": round(sandbox_cpu / args.seconds, 2),
            }
            if members > 1:
                result["takeover_s"] = takeover(store, procs[0], logs[1:])
    finally:
        for p in procs:
            stop(p, timeout=60)
        for h in handles:
            h.close()
        drop_database(db_name)
    return result


def takeover(store: Any, victim: subprocess.Popen[bytes], others: list[Path]) -> dict[str, float | int | None]:
    """SIGKILL ``victim``; for each job it ran last, the seconds until another member's next pass of it."""
    import socket

    name = f"{socket.gethostname()}:{victim.pid}:cluster"
    time.sleep(1.0)
    orphans = {j.job for j in store.cluster_jobs() if j.last_member == name}
    killed = datetime.now(UTC)
    victim.send_signal(signal.SIGKILL)
    victim.wait(10)
    waits: dict[str, float] = {}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(waits) < len(orphans):
        for record in pass_lines(others):
            job = record["job"]
            if job in orphans and job not in waits and stamp(record) > killed:
                waits[job] = (stamp(record) - killed).total_seconds()
        time.sleep(0.25)
    values = sorted(waits.values())
    return {
        "jobs": len(orphans),
        "taken_over": len(values),
        "median": percentile(values, 50),
        "max": values[-1] if values else None,
    }


def main() -> None:
    """Run the benchmark and print (and save) its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--members", default="1,2,3")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, help="passes at once per member (default: the member's own)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seconds, args.members = 12, 10, "1,2"
    args.server_limits = False
    counts = [int(n) for n in args.members.split(",")]
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        workdir = Path(tmp)
        sandbox_log = open(workdir / "sandbox.log", "wb")  # noqa: SIM115 - closed below
        sandbox, url = start_sandbox(args, sandbox_log)
        try:
            env = write_jobs(workdir / "jobs", args.jobs, url, args.interval, 3, 0.0)
            runs = []
            for members in counts:
                runs.append(run_members(args, members, sandbox.pid, workdir / "jobs", env, workdir))
                print(json.dumps(runs[-1]), flush=True)
        finally:
            stop(sandbox)
            sandbox_log.close()
    report = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
    }
    out = args.out or ROOT / "bench" / "results" / ("cluster-quick.json" if args.quick else "cluster.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
