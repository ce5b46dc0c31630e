"""The cluster on this machine: passes served per second, their lateness and their CPU with 1, 2 and 3 members, how
long a killed member's jobs take to continue on the others, and the single daemon's CPU per pass on the same jobs.

The sandbox is a child process (``daemon_bench.py --serve``: a real-clock engine, one symbol and one funded account
per job). Each run gets a fresh PostgreSQL database; each member is ``python -m rebalancer run DIR --cluster
--log-format json`` exactly as in production. Once every job has made a pass, a window of ``--seconds`` is
measured: passes per second and ``duration_ms`` percentiles from the state store (which records every pass, quiet
ones included), ``late_ms`` (start against the due time the dispatcher gave) from the members' JSON pass lines (the
passes that changed something: quiet ones are logged at debug), and the members' CPU (utime + stime), divided by the
passes: **CPU per pass**. Then, with two or more members, the first member is SIGKILLed and the takeover time of each
of its jobs is the time until another member's next pass of it.

The one-member run is measured side by side with one single daemon (``python -m rebalancer run DIR``, no
``--cluster``) running a copy of the jobs at the same time: the same number of jobs and schedule, on accounts and
symbols of their own on the same sandbox, with a fresh PostgreSQL database of its own, over the same window. So the
member's CPU per pass and the daemon's are measured on the same machine at the same moment (``member_vs_daemon``:
the member's figure over the daemon's): this machine's speed drifts by a fifth from one minute to the next, which a
daemon measured after the members would put into the ratio.

    python bench/cluster_bench.py [--jobs 60] [--interval 5] [--seconds 40] [--members 1,2,3] [--concurrency N]
                                  [--no-daemon] [--quick] [--out FILE]

``--quick`` (12 jobs, 10 s window, 1 member beside the daemon, then 2 members) is a smoke run. The machine is
shared: the load average at the start of each run is recorded with its figures; CPU time is less sensitive to that
than wall time.
"""

from __future__ import annotations

import argparse
import contextlib
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
from rebalancer.state.records import from_ms  # noqa: E402

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


def stored_passes(store: Any, mode: str, start: datetime, end: datetime) -> list[tuple[str, float]]:
    """(job, duration_ms) of every pass of ``mode`` the store recorded that started inside [start, end)."""
    from sqlalchemy import select

    from rebalancer.state import schema as t

    c = t.passes.c
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    query = select(c.job, c.duration_ms).where(c.mode == mode, c.started_at_ms >= lo, c.started_at_ms < hi)
    with store._db.tx(write=False) as conn:
        return [(str(job), float(duration or 0)) for job, duration in conn.execute(query).all()]


def stored_starts(store: Any, after: datetime) -> list[tuple[str, datetime]]:
    """(job, start) of every cluster pass stored that started after ``after``, earliest first."""
    from sqlalchemy import select

    from rebalancer.state import schema as t

    c = t.passes.c
    query = (
        select(c.job, c.started_at_ms)
        .where(c.mode == "cluster", c.started_at_ms > int(after.timestamp() * 1000))
        .order_by(c.started_at_ms)
    )
    with store._db.tx(write=False) as conn:
        return [(str(job), from_ms(int(ms))) for job, ms in conn.execute(query).all()]


def jobs_with_a_pass(store: Any, mode: str) -> int:
    """How many jobs have a stored pass of ``mode``."""
    from sqlalchemy import func, select

    from rebalancer.state import schema as t

    with store._db.tx(write=False) as conn:
        return int(conn.execute(select(func.count(t.passes.c.job.distinct())).where(t.passes.c.mode == mode)).scalar())


def member_passes(store: Any) -> dict[str, int]:
    """Passes recorded per member so far."""
    return {m.member: m.passes for m in store.members()}


def start_processes(
    count: int, extra: list[str], folder: Path, env: dict[str, str], logs: list[Path]
) -> tuple[list[subprocess.Popen[bytes]], list[IO[bytes]]]:
    """``count`` processes of ``python -m rebalancer run FOLDER --log-format json --no-watch EXTRA``."""
    handles: list[IO[bytes]] = [open(log, "wb") for log in logs[:count]]  # noqa: SIM115 - closed by the caller
    command = [sys.executable, "-m", "rebalancer", "run", str(folder), "--log-format", "json", "--no-watch", *extra]
    procs = [
        subprocess.Popen(command, env=env, stdout=h, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        for h in handles
    ]
    return procs, handles


def shut_down(procs: list[subprocess.Popen[bytes]], logs: list[IO[bytes]], db_name: str) -> None:
    """Stop the processes (SIGTERM, bounded), close their logs and drop their database."""
    for p in procs:
        stop(p, timeout=60)
    for h in logs:
        h.close()
    drop_database(db_name)


def wait_first_passes(store: Any, mode: str, jobs: int) -> None:
    """Wait (bounded) until every job has a stored pass of ``mode``."""
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and jobs_with_a_pass(store, mode) < jobs:
        time.sleep(0.5)


def measure(
    args: argparse.Namespace, runs: list[tuple[Any, str, list[subprocess.Popen[bytes]]]], sandbox_pid: int
) -> tuple[list[dict[str, Any]], datetime, datetime]:
    """Once every job of every run made a pass, one window of ``--seconds`` over all of them at once: each run's
    passes, durations and CPU (``runs``: its store, its pass mode and its processes)."""
    for store, mode, _ in runs:
        wait_first_passes(store, mode, args.jobs)
    time.sleep(1.0)  # the first passes' burst out of the window
    start = datetime.now(UTC)
    cpu_before = [sum(cpu_seconds(p.pid) for p in procs) for _, _, procs in runs]
    sandbox_before = cpu_seconds(sandbox_pid)
    members_before = [member_passes(store) for store, _, _ in runs]
    time.sleep(args.seconds)
    end = datetime.now(UTC)
    cpu = [
        sum(cpu_seconds(p.pid) for p in procs) - before for (_, _, procs), before in zip(runs, cpu_before, strict=True)
    ]
    sandbox_cpu = cpu_seconds(sandbox_pid) - sandbox_before
    window = (end - start).total_seconds()
    results = []
    for (store, mode, _), used, before in zip(runs, cpu, members_before, strict=True):
        passes = stored_passes(store, mode, start, end)
        durations = [duration for _, duration in passes]
        figures = {
            "passes_per_s": round(len(passes) / window, 2),
            "due_per_s": round(args.jobs / args.interval, 2),
            "duration_ms": {f"p{q}": percentile(durations, q) for q in (50, 95)},
            "cpu_s_per_s": round(used / window, 2),
            "cpu_ms_per_pass": round(1000 * used / len(passes), 2) if passes else None,
            "sandbox_cpu_s_per_s": round(sandbox_cpu / window, 2),
        }
        after = member_passes(store)
        if after:
            figures["passes_per_member"] = sorted(n - before.get(m, 0) for m, n in after.items())
        results.append(figures)
    return results, start, end


def process_env(env: dict[str, str], db_url: str, workdir: Path) -> dict[str, str]:
    """The environment of a member or daemon: the jobs' credentials and its state store."""
    return {
        **os.environ,
        **env,
        "REBALANCER_STATE_URL": db_url,
        "PYTHONPATH": str(ROOT),
        "REBALANCER_STATE_DIR": str(workdir / "state"),
        "NO_COLOR": "1",
    }


def run_members(
    args: argparse.Namespace,
    members: int,
    sandbox_pid: int,
    folders: tuple[Path, Path | None],
    env: dict[str, str],
    workdir: Path,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One measurement with ``members`` members on a fresh database; with a second job folder, the single daemon
    running those jobs at the same time on a database of its own, measured over the same window."""
    from rebalancer.state.store import StateStore

    folder, beside = folders
    db_name, db_url = fresh_database()
    logs = [workdir / f"m{members}-{i}.log" for i in range(members)]
    load = os.getloadavg()[0]
    concurrency = ["--concurrency", str(args.concurrency)] if args.concurrency else []
    procs, handles = start_processes(
        members, ["--cluster", *concurrency], folder, process_env(env, db_url, workdir), logs
    )
    daemon_db: tuple[str, str] | None = None
    daemon_procs: list[subprocess.Popen[bytes]] = []
    daemon_handles: list[IO[bytes]] = []
    if beside is not None:
        daemon_db = fresh_database()
        daemon_procs, daemon_handles = start_processes(
            1, [], beside, process_env(env, daemon_db[1], workdir), [workdir / "daemon.log"]
        )
    result: dict[str, Any] = {
        "members": members,
        "jobs": args.jobs,
        "interval_s": args.interval,
        "concurrency": args.concurrency or CLUSTER_PASSES_PER_CORE * (os.cpu_count() or 1),
        "load_average_at_start": round(load, 1),
    }
    daemon: dict[str, Any] | None = None
    try:
        with contextlib.ExitStack() as stores:
            store = stores.enter_context(StateStore(db_url))
            runs = [(store, "cluster", procs)]
            if daemon_db is not None:
                runs.append((stores.enter_context(StateStore(daemon_db[1])), "run", daemon_procs))
            figures, start, end = measure(args, runs, sandbox_pid)
            late = [float(r["late_ms"]) for r in pass_lines(logs) if start <= stamp(r) < end]
            result |= figures[0]
            result["late_ms_changed_passes"] = {f"p{q}": percentile(late, q) for q in (50, 95, 99)}
            if daemon_db is not None:
                daemon = {"daemon": 1, "jobs": args.jobs, "interval_s": args.interval, "beside_members": members}
                daemon |= figures[1]
            if members > 1:
                result["takeover_s"] = takeover(store, procs[0])
    finally:
        if daemon_db is not None:
            shut_down(daemon_procs, daemon_handles, daemon_db[0])
        shut_down(procs, handles, db_name)
    return result, daemon


def takeover(store: Any, victim: subprocess.Popen[bytes]) -> dict[str, float | int | None]:
    """SIGKILL ``victim``; for each job it ran last, the seconds until another member's next pass of it started (any
    pass that starts after the kill is another member's)."""
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
        for job, started in stored_starts(store, killed):
            if job in orphans and job not in waits:
                waits[job] = (started - killed).total_seconds()
        time.sleep(0.25)
    values = sorted(waits.values())
    return {
        "jobs": len(orphans),
        "taken_over": len(values),
        "median": percentile(values, 50),
        "max": values[-1] if values else None,
    }


def cpu_ratio(runs: list[dict[str, Any]], daemon: dict[str, Any] | None) -> float | None:
    """One member's CPU per pass over the single daemon's, when both were measured."""
    one = next((r for r in runs if r["members"] == 1), None)
    if one is None or daemon is None or not one["cpu_ms_per_pass"] or not daemon["cpu_ms_per_pass"]:
        return None
    return round(one["cpu_ms_per_pass"] / daemon["cpu_ms_per_pass"], 2)


def main() -> None:
    """Run the benchmark and print (and save) its figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=60)
    parser.add_argument("--interval", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=40)
    parser.add_argument("--members", default="1,2,3")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--concurrency", type=int, help="passes at once per member (default: the member's own)")
    parser.add_argument("--no-daemon", action="store_true", help="no single daemon beside the one-member run")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if args.quick:
        args.jobs, args.seconds, args.members = 12, 10, "1,2"
    args.server_limits = False
    counts = [int(n) for n in args.members.split(",")]
    if not args.no_daemon and 1 not in counts:
        counts.insert(0, 1)  # the daemon is measured beside one member
    with tempfile.TemporaryDirectory(prefix="cluster-bench-") as tmp:
        workdir = Path(tmp)
        sandbox_log = open(workdir / "sandbox.log", "wb")  # noqa: SIM115 - closed below
        jobs = args.jobs
        args.jobs = 2 * jobs  # accounts and symbols for the daemon's copy of the jobs too
        sandbox, url = start_sandbox(args, sandbox_log)
        args.jobs = jobs
        try:
            env = write_jobs(workdir / "all", 2 * jobs, url, args.interval, 3, 0.0)
            (workdir / "jobs").mkdir()
            beside = workdir / "daemon-jobs"
            beside.mkdir()
            for index in range(2 * jobs):  # the first half for the members, the second for the daemon beside them
                name = f"job{index:04d}.yaml"
                (workdir / "all" / name).rename((workdir / "jobs" if index < jobs else beside) / name)
            runs = []
            daemon = None
            for members in counts:
                paired = beside if members == 1 and not args.no_daemon else None
                run, measured = run_members(args, members, sandbox.pid, (workdir / "jobs", paired), env, workdir)
                runs.append(run)
                print(json.dumps(run), flush=True)
                if measured is not None:
                    daemon = measured
                    print(json.dumps(daemon), flush=True)
        finally:
            stop(sandbox)
            sandbox_log.close()
    report = {
        "machine": {"cores": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": runs,
        "daemon": daemon,
        "member_vs_daemon": cpu_ratio(runs, daemon),
    }
    out = args.out or ROOT / "bench" / "results" / ("cluster-quick.json" if args.quick else "cluster.json")
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
