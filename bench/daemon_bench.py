"""The daemon at scale: N jobs on one schedule against one sandbox, each in its own process, for a few minutes.

The sandbox is served by a child process (this script with ``--serve``): a real-clock ``Engine`` with one symbol
and one funded account per job, so that neither the per-key rate limits nor other jobs' orders couple the jobs. The
sandbox's own rate limits are off unless ``--server-limits``: it limits unsigned reads (the ticker, the symbol list)
per client address, and every job of one daemon shares that address, so with them on the limit is the server's.
The daemon is a second child, exactly as in production: ``python -m rebalancer run DIR --log-format json --http
127.0.0.1:PORT`` with each job's credentials in its own environment variables. Once ``/readyz`` answers (every job
has made its first pass) a measuring window of ``--seconds`` starts; after it the daemon gets SIGTERM.

From the window: pass latency p50/p95/p99 (``duration_ms`` of the JSON pass lines), lateness against the schedule
p50/p99 (``late_ms``), passes made versus due and the passes the daemon reported skipped, passes per job (fewest,
median, most, and Jain's fairness index: 1 when every job got as many), jobs one core serves at the interval, CPU of
both processes (utime+stime from /proc/PID/stat over the window; with ``--workers`` the workers' too) and the
daemon's resident memory (VmRSS; with ``--workers`` the PSS of every process summed; total and per job).
``/metrics`` is scraped every ``SCRAPE_SECONDS`` through the window, as Prometheus would: the first scrape and the
last are timed. After SIGTERM: how long the exit took and how many leases were still held.

``--source DIR`` runs the daemon from another checkout (the sandbox always runs from this one); ``--against DIR``
runs the same profile twice in one go, the daemon from DIR first and then from this checkout, and prints the two
side by side.

    python bench/daemon_bench.py [--jobs 200] [--seconds 180] [--interval 5] [--levels 5] [--jitter S]
                                 [--server-limits] [--quick] [--out FILE] [--keep DIR] [--against DIR]

The default profile is 200 jobs for 3 minutes; ``--jobs 1000`` is the scale run; ``--quick`` (10 jobs, 10 s, 2 s
interval) is the CI smoke.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import requests

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
START_PRICE = Decimal(100)
SCRAPE_SECONDS = 15.0
JOB = """\
version: 1
name: {name}
symbol: {symbol}
exchange: {{url: "{url}", api_key_env: {key_env}, secret_key_env: {secret_env}}}
schedule: {{every: {interval}s{jitter}}}
reference: mid
ladder:
  buy: {{levels: {levels}, first: 0.2%, step: 0.1%, size: "1"}}
  sell: {{levels: {levels}, first: 0.2%, step: 0.1%, size: "1"}}
tolerance: {{price: 0.05%, size: 10%}}
ownership: symbol
on_stop: keep
"""


def credentials(index: int) -> tuple[str, str]:
    """A deterministic API key and secret for job ``index`` (benchmark accounts protect nothing)."""
    key = hashlib.sha256(f"bench-key-{index}".encode()).hexdigest()[:32]
    secret = hashlib.sha256(f"bench-secret-{index}".encode()).hexdigest()[:32]
    return key, secret


def symbol_of(index: int) -> str:
    """The symbol job ``index`` trades: one per job."""
    return f"b{index:04d}usdt"


def serve(jobs: int, seed: int, server_limits: bool) -> None:
    """``--serve``: the sandbox with one symbol and one account per job, until SIGTERM; prints its URL first."""
    from rebalancer.sandbox.engine import Engine
    from rebalancer.sandbox.faults import Faults
    from rebalancer.sandbox.market import SymbolSpec
    from rebalancer.sandbox.server import SandboxServer

    specs = [SymbolSpec(symbol_of(i), f"b{i:04d}", "usdt", 2, 4, Decimal("0.0001"), START_PRICE) for i in range(jobs)]
    engine = Engine.create(seed=seed, clock="real", symbols=specs)
    for i in range(jobs):
        key, secret = credentials(i)
        engine.add_account(key, secret, {"usdt": 10**7, f"b{i:04d}": 10**5})
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    with SandboxServer(engine, Faults(rate_limits=server_limits)) as server:
        print(f"url: {server.url}", flush=True)
        stop.wait()


def write_jobs(directory: Path, jobs: int, url: str, interval: int, levels: int, jitter: float) -> dict[str, str]:
    """One job file per job; returns the environment variables holding their credentials."""
    directory.mkdir(parents=True, exist_ok=True)
    env = {}
    for i in range(jobs):
        key, secret = credentials(i)
        env[f"BENCH_KEY_{i:04d}"], env[f"BENCH_SECRET_{i:04d}"] = key, secret
        text = JOB.format(
            name=f"job{i:04d}",
            symbol=symbol_of(i),
            url=url,
            key_env=f"BENCH_KEY_{i:04d}",
            secret_env=f"BENCH_SECRET_{i:04d}",
            interval=interval,
            jitter=f", jitter: {jitter}s" if jitter else "",
            levels=levels,
        )
        (directory / f"job{i:04d}.yaml").write_text(text)
    return env


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of ``pid`` so far (/proc/PID/stat fields 14 and 15)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    """Resident memory of ``pid`` in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (``run --workers``' worker processes), from /proc/PID/task/*/children."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in task.read_text().split():
                found += tree(int(child))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of ``pid`` and its descendants so far (a worker that exited is no longer counted)."""
    return sum(_or_zero(cpu_seconds, each) for each in tree(pid))


def tree_rss_mib(pid: int) -> float:
    """Memory of ``pid`` and its descendants: its VmRSS when alone; with worker processes the sum of their PSS
    (forked workers share pages with their parent; PSS splits each shared page between them, RSS counts it in each)."""
    pids = tree(pid)
    return rss_mib(pid) if len(pids) == 1 else sum(_or_zero(pss_mib, each) for each in pids)


def pss_mib(pid: int) -> float:
    """Proportional set size of ``pid`` in MiB (/proc/PID/smaps_rollup)."""
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _or_zero(measure: Callable[[int], float], pid: int) -> float:
    try:
        return measure(pid)
    except OSError:  # it exited meanwhile
        return 0.0


def start_sandbox(args: argparse.Namespace, log: IO[bytes]) -> tuple[subprocess.Popen[bytes], str]:
    """The sandbox child and its URL (read from its first line, with a generous bound)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--jobs", str(args.jobs)]
    command += ["--seed", str(args.seed)] + (["--server-limits"] if args.server_limits else [])
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    assert process.stdout is not None
    found: list[str] = []
    reader = threading.Thread(target=lambda: found.append(process.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(120)
    if not found or not found[0].startswith("url: "):
        process.kill()
        raise SystemExit(f"the sandbox did not start: {found}")
    return process, found[0].removeprefix("url: ").strip()


def scrape(url: str, timeout: float = 60.0) -> tuple[str, float | None]:
    """One Prometheus scrape of a daemon at work: its text and the seconds it took ("" and None if it failed)."""
    started = time.monotonic()
    try:
        text = requests.get(url, timeout=timeout).text
    except requests.RequestException:
        return "", None
    return text, round(time.monotonic() - started, 3)


def leases_held(state_db: Path) -> int:
    """Leases in the state store that have not expired (after the daemon's exit: the ones it failed to release)."""
    now_ms = int(time.time() * 1000)
    with contextlib.closing(sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)) as db:
        return int(db.execute("SELECT count(*) FROM leases WHERE expires_at_ms > ?", (now_ms,)).fetchone()[0])


def daemon_command(jobs: Path, http: str, workers: str = "1") -> list[str]:
    """``rebalancer run`` as in production (passes are counted from the state store, not from the log), with
    ``--workers`` always given: the daemon's own default depends on its version."""
    command = [sys.executable, "-m", "rebalancer", "run", str(jobs), "--log-format", "json", "--http", http]
    return [*command, "--workers", workers]


def wait_ready(url: str, daemon: subprocess.Popen[bytes], timeout: float) -> float | None:
    """Poll ``/readyz`` until every job made its first pass; the seconds it took, or None if not within ``timeout``
    (a daemon that cannot keep up never gets there: a result to measure, not a reason to give up)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if daemon.poll() is not None:
            raise SystemExit(f"the daemon exited with {daemon.returncode} before it was ready")
        try:
            if requests.get(f"{url}/readyz", timeout=5).status_code == 200:
                return time.monotonic() - started
        except requests.RequestException:
            pass
        time.sleep(0.25)
    return None


def stop(process: subprocess.Popen[bytes], timeout: float = 120.0) -> int:
    """SIGTERM, then wait (bounded); a process that does not stop is killed."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(10)


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0–100) by the nearest-rank method; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


def stored_passes(state_db: Path, start: datetime, end: datetime) -> list[tuple[str, float]]:
    """(job, duration_ms) of every pass the daemon recorded that started inside [start, end).

    The state store records every pass, quiet ones included (the log shows those only at debug level, and the
    daemon runs at its production level here), so this is the count the figures rest on.
    """
    lo, hi = int(start.timestamp() * 1000), int(end.timestamp() * 1000)
    with contextlib.closing(sqlite3.connect(f"file:{state_db}?mode=ro", uri=True)) as db:
        rows = db.execute(
            "SELECT job, duration_ms FROM passes WHERE started_at_ms >= ? AND started_at_ms < ? AND mode = 'run'",
            (lo, hi),
        ).fetchall()
    return [(str(job), float(duration or 0)) for job, duration in rows]


def analyse(
    passes: list[tuple[str, float]], lines: list[str], start: datetime, end: datetime, jobs: int, period: float
) -> dict[str, Any]:
    """Pass figures of the window [start, end): counts and durations from the state store's ``passes``, lateness,
    errors and skips from the JSON log lines stamped inside it. ``period`` is a job's mean period in seconds.

    Lateness is known for the passes the log shows at its production level: those that changed something.
    APScheduler adds a job's jitter (uniform in [0, jitter]) to each interval, after the previous jittered run:
    ``every: 5s, jitter: 5s`` comes due every 7.5 s on average, and that is what "due" counts.
    """
    durations = [duration for _, duration in passes]
    per_job: dict[str, int] = {}
    for job, _ in passes:
        per_job[job] = per_job.get(job, 0) + 1
    late: list[float] = []
    changed = errors = skipped = 0
    for line in lines:
        try:
            record = json.loads(line)
            stamp = datetime.fromisoformat(record["ts"])
        except (ValueError, KeyError, TypeError):
            continue
        if not start <= stamp < end:
            continue
        message = record.get("msg", "")
        if message == "pass":
            if "late_ms" in record:
                late.append(float(record["late_ms"]))
            changed += record.get("placed", 0) + record.get("cancelled", 0) > 0
        elif message in ("pass failed", "pass crashed"):
            errors += 1
        elif message.startswith("pass skipped"):
            skipped += 1
    window = (end - start).total_seconds()

    def spread(values: list[float], keys: tuple[int, ...]) -> dict[str, float | None]:
        result: dict[str, float | None] = {f"p{k}": percentile(values, k) for k in keys}
        result["max"] = max(values) if values else None
        return result

    return {
        "passes": len(durations),
        "due": int(jobs * window / period),
        "changed": changed,
        "errors": errors,
        "skipped": skipped,
        "jobs_without_a_pass": jobs - len(per_job),
        "passes_per_job": spread_counts(per_job, jobs),
        "jain_fairness": jain(per_job, jobs),
        "duration_ms": spread(durations, (50, 95, 99)),
        "late_ms": spread(late, (50, 95, 99)),
    }


def jain(per_job: dict[str, int], jobs: int) -> float | None:
    """Jain's fairness index of passes per job, jobs without a pass counted as 0: 1 when all got as many."""
    counts = [*per_job.values(), *([0] * (jobs - len(per_job)))]
    squares = sum(c * c for c in counts)
    return round(sum(counts) ** 2 / (len(counts) * squares), 4) if squares else None


def spread_counts(per_job: dict[str, int], jobs: int) -> dict[str, int]:
    """Fewest, median and most passes a job got in the window (jobs without a pass count as 0)."""
    counts = sorted([*per_job.values(), *([0] * (jobs - len(per_job)))])
    return {"min": counts[0], "median": counts[len(counts) // 2], "max": counts[-1]} if counts else {}


def limit_verdict(stats: dict[str, Any], resources: dict[str, Any], interval: int, workers: int = 1) -> str:
    """Which resource bounds the run, read from the figures (one Python process uses at most one core; the machine's
    cores are shared with whatever else runs: its load average says how much)."""
    daemon, sandbox = resources["daemon_cpu_percent_of_one_core"], resources["sandbox_cpu_percent_of_one_core"]
    behind = stats["passes"] < 0.95 * stats["due"] or (stats["late_ms"]["p99"] or 0) > 500 * interval
    window = resources["window_s"]
    rate = f"{stats['passes'] / window:.1f} passes/s made, {stats['due'] / window:.1f} due"
    load, cores = resources["load_average_end"], resources["cores"] or 1
    if daemon >= 85 * workers or sandbox >= 85:
        gil = "one core under the GIL" if workers == 1 else f"{workers} worker processes, a core each at most"
        where = f"the daemon's CPU ({gil})" if daemon >= sandbox else "the sandbox's CPU"
        state = "saturated" if behind else "near"
        return f"{state}: {where} (daemon {daemon} %, sandbox {sandbox} % of a core; {rate})"
    if behind and load >= cores:
        return (
            f"behind schedule on a full machine (load average {load} on {cores} cores; daemon {daemon} %, sandbox "
            f"{sandbox} % of a core; {rate}): the processes wait for a core"
        )
    if behind:
        return (
            f"behind schedule with CPU to spare (daemon {daemon} %, sandbox {sandbox} % of a core; {rate}): "
            "the daemon's 16 worker threads are busy waiting (HTTP, the state store's locks), not computing"
        )
    ms = resources["daemon_cpu_ms_per_pass"]
    capacity = f"; at {ms} ms CPU per pass one core serves ~{int(1000 / ms)} passes/s" if ms else ""
    return f"not reached: daemon {daemon} %, sandbox {sandbox} % of one core{capacity}"


def run(args: argparse.Namespace, workdir: Path, source: Path = ROOT, workers: str = "1") -> dict[str, Any]:
    """Start both processes (the daemon from the checkout ``source``), measure the window, stop them, analyse."""
    sandbox_log = open(workdir / "sandbox.log", "wb")  # noqa: SIM115 - closed below
    daemon_log_path = workdir / "daemon.log"
    daemon_log = open(daemon_log_path, "wb")  # noqa: SIM115 - closed below
    sandbox, url = start_sandbox(args, sandbox_log)
    daemon: subprocess.Popen[bytes] | None = None
    try:
        env = write_jobs(workdir / "jobs", args.jobs, url, args.interval, args.levels, args.jitter)
        http = f"127.0.0.1:{free_port()}"
        daemon_env = {**os.environ, **env, "REBALANCER_STATE_DIR": str(workdir / "state"), "NO_COLOR": "1"}
        daemon_env["PYTHONPATH"] = str(source)
        daemon = subprocess.Popen(
            daemon_command(workdir / "jobs", http, workers),
            env=daemon_env,
            stdout=daemon_log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=source,  # ``python -m`` puts the working directory first on the import path
        )
        ready_s = wait_ready(f"http://{http}", daemon, timeout=max(30.0, args.jobs * 0.1))
        startup_rss = tree_rss_mib(daemon.pid)
        processes = len(tree(daemon.pid))  # ``--workers auto`` decides at start
        time.sleep(args.interval)  # let the start-up burst settle out of the window
        window_start = datetime.now(UTC)
        load_start = os.getloadavg()[0]
        cpu0, sandbox_cpu0, t0 = tree_cpu_seconds(daemon.pid), cpu_seconds(sandbox.pid), time.monotonic()
        peak_rss = 0.0
        scrapes: list[float | None] = []
        while time.monotonic() - t0 < args.seconds:
            peak_rss = max(peak_rss, tree_rss_mib(daemon.pid))
            if time.monotonic() - t0 >= SCRAPE_SECONDS * len(scrapes):
                scrapes.append(scrape(f"http://{http}/metrics")[1])
            time.sleep(min(1.0, args.seconds))
        window = time.monotonic() - t0
        cpu, sandbox_cpu = tree_cpu_seconds(daemon.pid) - cpu0, cpu_seconds(sandbox.pid) - sandbox_cpu0
        end_rss = tree_rss_mib(daemon.pid)
        peak_rss = max(peak_rss, end_rss)
        window_end = datetime.now(UTC)
        metrics_text, metrics_s = scrape(f"http://{http}/metrics")
        stopped = time.monotonic()
        exit_code = stop(daemon)
        stop_s = time.monotonic() - stopped
        held = leases_held(workdir / "state" / "state.db")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        stop(sandbox)
        sandbox_log.close()
        daemon_log.close()
    lines = daemon_log_path.read_text(errors="replace").splitlines()
    period = args.interval + args.jitter / 2
    passes = stored_passes(workdir / "state" / "state.db", window_start, window_end)
    stats = analyse(passes, lines, window_start, window_end, args.jobs, period)
    resources = {
        "window_s": round(window, 1),
        "cores": os.cpu_count(),
        "load_average_start": round(load_start, 1),
        "load_average_end": round(os.getloadavg()[0], 1),
        "daemon_cpu_s": round(cpu, 2),
        "daemon_cpu_percent_of_one_core": round(100 * cpu / window, 1),
        "daemon_cpu_ms_per_pass": round(1000 * cpu / stats["passes"], 2) if stats["passes"] else None,
        # Jobs one core could serve at this period: passes per CPU-second times the period.
        "jobs_per_core_at_interval": round(stats["passes"] / cpu * args.interval) if cpu else None,
        "sandbox_cpu_percent_of_one_core": round(100 * sandbox_cpu / window, 1),
        "daemon_rss_mib_after_start": round(startup_rss, 1),
        "daemon_rss_mib_peak": round(peak_rss, 1),
        "daemon_rss_mib_end": round(end_rss, 1),
        "daemon_rss_kib_per_job": round(1024 * end_rss / args.jobs, 1),
    }
    return {
        "benchmark": "daemon",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "profile": {
            "jobs": args.jobs,
            "workers": int(workers) if workers.isdigit() else workers,
            "processes": processes,
            "seconds": args.seconds,
            "interval_s": args.interval,
            "levels_per_side": args.levels,
            "jitter_s": args.jitter,
            "server_rate_limits": args.server_limits,
            "mean_period_s": period,
        },
        "startup": {"ready_after_s": None if ready_s is None else round(ready_s, 1)},
        "passes": stats,
        "resources": resources,
        "lateness_metric_exported": "rebalancer_pass_lateness_seconds_count" in metrics_text,
        "metrics_scrape_s": metrics_s,
        "metrics_first_scrape_s": scrapes[0] if scrapes else None,
        "leases_held_after_exit": held,
        "source": str(source),
        "daemon_exit_code": exit_code,
        "stop_s": round(stop_s, 1),
        "limit": limit_verdict(stats, resources, args.interval, processes),
        "window": [window_start.isoformat(), window_end.isoformat()],
    }


def table(doc: dict[str, Any], against: dict[str, Any] | None = None) -> str:
    """The main figures as a Markdown table; with ``against``, its figures in a column before ``doc``'s."""
    p, r = doc["passes"], doc["resources"]
    rows = [
        ("jobs × interval", f"{doc['profile']['jobs']} × {doc['profile']['interval_s']} s, window {r['window_s']} s"),
        ("passes made / due", f"{p['passes']} / {p['due']} ({p['changed']} changed, {p['errors']} errors)"),
        ("skipped (reported by the daemon)", str(p["skipped"])),
        ("jobs without a pass in the window", str(p["jobs_without_a_pass"])),
        ("passes per job min / median / max", _counts(p)),
        ("Jain fairness of passes per job", str(p["jain_fairness"])),
        ("pass latency p50 / p95 / p99", " / ".join(str(p["duration_ms"][k]) for k in ("p50", "p95", "p99")) + " ms"),
        ("lateness p50 / p99 / max (passes that changed something)", _spread(p["late_ms"], ("p50", "p99", "max"))),
        ("daemon CPU", f"{r['daemon_cpu_percent_of_one_core']} % of one core ({r['daemon_cpu_ms_per_pass']} ms/pass)"),
        ("jobs per core at this interval", str(r["jobs_per_core_at_interval"])),
        ("sandbox CPU", f"{r['sandbox_cpu_percent_of_one_core']} % of one core"),
        ("load average (1 min) at the window's start / end", f"{r['load_average_start']} / {r['load_average_end']}"),
        ("daemon RSS (workers: PSS summed) end / peak", f"{r['daemon_rss_mib_end']} / {r['daemon_rss_mib_peak']} MiB"),
        ("RSS per job", f"{r['daemon_rss_kib_per_job']} KiB"),
        ("ready after start (every job's first pass made)", f"{doc['startup']['ready_after_s']} s"),
        (
            "SIGTERM → exit",
            f"code {doc['daemon_exit_code']} in {doc['stop_s']} s, {doc['leases_held_after_exit']} leases still held",
        ),
        (
            f"/metrics scrape, first / at the end (scraped every {SCRAPE_SECONDS:g} s)",
            f"{doc['metrics_first_scrape_s']} / {doc['metrics_scrape_s']} s (None: no answer in 60 s)",
        ),
        ("limit", doc["limit"]),
    ]
    if against is None:
        return "\n".join(["| measure | value |", "|---|---|", *(f"| {k} | {v} |" for k, v in rows)])
    before, after = table(against).splitlines()[2:], table(doc).splitlines()[2:]
    head = f"| measure | {against['source']} | {doc['source']} |"
    lines = [f"{row} {line.rsplit('|', 2)[1].strip()} |" for row, line in zip(before, after, strict=True)]
    return "\n".join([head, "|---|---|---|", *lines])


def _spread(values: dict[str, Any], keys: tuple[str, ...]) -> str:
    return " / ".join(str(values[k]) for k in keys) + " ms"


def _counts(passes: dict[str, Any]) -> str:
    return " / ".join(str(passes["passes_per_job"].get(k)) for k in ("min", "median", "max"))


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    """Run the benchmark (or serve the sandbox with ``--serve``), print the table, write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the measuring window")
    parser.add_argument("--interval", type=int, default=5, help="every job's schedule, in seconds")
    parser.add_argument("--levels", type=int, default=5, help="ladder levels per side")
    parser.add_argument("--jitter", type=float, default=0.0, help="schedule jitter in seconds (0: none)")
    parser.add_argument("--seed", type=int, default=7)
    limits_help = "the sandbox enforces its rate limits (unsigned reads per client address: all jobs share one)"
    parser.add_argument("--server-limits", action="store_true", help=limits_help)
    parser.add_argument("--quick", action="store_true", help="CI smoke: 10 jobs, 10 s, 2 s interval")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="keep job files, logs and state in this directory")
    parser.add_argument("--source", type=Path, default=ROOT, help="run the daemon from this checkout")
    parser.add_argument("--against", type=Path, default=None, help="first run the daemon from this checkout")
    workers_help = "run --workers N (or auto) for the --source daemon (main's, with --against, runs as one process)"
    parser.add_argument("--workers", default="1", help=workers_help)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.jobs, args.seed, args.server_limits)
        return None
    if args.quick:
        args.jobs, args.seconds, args.interval = 10, 10.0, 2
    out = args.out or RESULTS_DIR / f"daemon_{args.jobs}.json"
    sources = [args.source] if args.against is None else [args.against, args.source]
    docs = []
    for index, source in enumerate(sources):
        with tempfile.TemporaryDirectory(prefix="daemon-bench-") as tmp:
            workdir = (args.keep / str(index) if args.against else args.keep) if args.keep else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            workers = args.workers if index == len(sources) - 1 else "1"
            docs.append(run(args, workdir.resolve(), source.resolve(), workers))
    doc = docs[-1]
    print(table(doc, docs[0] if args.against else None))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc if args.against is None else {"against": docs[0], "this": doc}, indent=2) + "\n")
    print(f"wrote {out}")
    return doc


if __name__ == "__main__":
    main()
