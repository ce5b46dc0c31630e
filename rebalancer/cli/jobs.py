"""Commands that reconcile a job: ``plan`` (dry run), ``apply`` (one pass), ``cancel``, and ``run`` (the daemon)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rebalancer import logs
from rebalancer.cli.shared import color, confirm, load, log_level, open_store
from rebalancer.defaults import CLUSTER_PG_SESSION, JOBS_PER_WORKER, MAX_WORKERS
from rebalancer.errors import ConfigError, Declined, LeaseLost
from rebalancer.state.paths import default_url
from rebalancer.vocab import Mode, PassResult

MAX_PLAN_BYTES = 16 * 1024 * 1024
"""A longer file is no saved plan: a plan of thousands of orders is well under a megabyte."""

AUTO = "auto"
"""``run --workers auto``: as many worker processes as the jobs need, up to the cores available."""


class WorkerCount(click.IntRange):
    """``--workers``: an integer 1–``MAX_WORKERS``, or ``auto`` (None to the command)."""

    name = "integer"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """None for ``auto``, else the integer in range (click's own messages for anything else)."""
        if value is None or (isinstance(value, str) and value.strip().lower() == AUTO):
            return None
        return super().convert(value, param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        """How ``--help`` names the value."""
        return f"[1-{MAX_WORKERS}|auto]"


if TYPE_CHECKING:
    from rebalancer.core.plan import Plan
    from rebalancer.engine.runner import PassReport
    from rebalancer.job import Job


@click.command()
@click.argument("job_path", metavar="JOB", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (format_version 1).")
@click.option("--out", "out", type=click.Path(dir_okay=False, writable=True), help="Save the plan for `apply --plan`.")
@click.option("--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes, 0 when it has none.")
@click.option(
    "--html",
    "html_out",
    type=click.Path(dir_okay=False, writable=True),
    help="Also write the plan as one self-contained HTML page with a picture of the ladder.",
)
def plan(job_path: str, as_json: bool, out: str | None, detailed_exitcode: bool, html_out: str | None) -> None:
    """Dry run: read the exchange and print the plan. Sends nothing."""
    from rebalancer.cli.render import render_text
    from rebalancer.engine.connect import open_exchange
    from rebalancer.engine.runner import run_pass

    job = load(job_path)
    for option, path in (("--out", out), ("--html", html_out)):
        if path is not None and _same_file(path, job_path):
            raise ConfigError(f"{option} {path}: that is the job file; the plan would replace it")
    with open_exchange(job) as exchange, open_store() as store:
        report = run_pass(job, exchange, store, apply=False)
    document = _plan_document(job, report.plan)
    if out:
        _write_plan(out, document)
    if html_out:
        _write_page(html_out, job, report.plan)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(render_text(report.plan, color=color()))
        if out:
            click.echo(f"\nSaved the plan to {out}. Apply exactly it with: rebalancer apply {job_path} --plan {out}")
    if detailed_exitcode and report.plan.has_changes:
        sys.exit(2)


@click.command()
@click.argument("job_path", metavar="JOB", type=click.Path())
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(exists=True, dir_okay=False),
    help="Apply a plan saved by `plan --out`.",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def apply(job_path: str, plan_path: str | None, yes: bool) -> None:
    """One reconcile pass: show the plan, confirm, send it as one batch, and report every order."""
    from rebalancer.cli.output import execution_text
    from rebalancer.cli.render import render_text
    from rebalancer.engine.lease import open_session

    job = load(job_path)
    saved = _read_plan(plan_path, job) if plan_path else None
    tint = color()

    def approve(plan: Plan) -> bool:
        click.echo(render_text(plan, color=tint))
        return confirm(plan, yes, "apply this plan")

    with open_store() as store, open_session(job, store) as session:
        report = session.run(Mode.APPLY, approve=approve, recheck=not yes, saved_plan=saved)
    _raise_if_fenced(report)
    if report.result == PassResult.NO_CHANGES:
        click.echo(render_text(report.plan, color=tint))
        return
    if report.result == PassResult.DECLINED:
        raise Declined("apply cancelled: the plan was not confirmed; nothing was sent")
    assert report.execution is not None
    click.echo("")
    click.echo(execution_text(report.execution, color=tint))
    sys.exit(1 if report.failed else 0)


@click.command()
@click.argument("job_path", metavar="JOB", type=click.Path())
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cancel(job_path: str, yes: bool) -> None:
    """Cancel every order the job owns (all open orders of the symbol, or only tracked ones)."""
    from rebalancer.cli.output import execution_text
    from rebalancer.cli.render import render_text
    from rebalancer.engine.lease import open_session

    job = load(job_path)
    tint = color()

    def approve(plan: Plan) -> bool:
        click.echo(render_text(plan, color=tint))
        return confirm(plan, yes, "cancel these orders")

    with open_store() as store, open_session(job, store) as session:
        report = session.run(Mode.CANCEL, cancel=True, approve=approve, recheck=not yes)
    _raise_if_fenced(report)
    if report.result == PassResult.NO_CHANGES:
        click.echo("No orders to cancel.")
        return
    if report.result == PassResult.DECLINED:
        raise Declined("cancel aborted: not confirmed; nothing was sent")
    assert report.execution is not None
    click.echo(execution_text(report.execution, color=tint, done="Cancel complete"))
    sys.exit(1 if report.failed else 0)


@click.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--once", is_flag=True, help="Run every job once, then exit (0 if every pass succeeded).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--http", "http", metavar="HOST:PORT", help="Serve /metrics, /livez and /readyz, e.g. 127.0.0.1:9108.")
@click.option("--watch/--no-watch", default=True, show_default=True, help="Reload when a job file changes.")
@click.option(
    "--cluster",
    is_flag=True,
    help="Join every member on the PostgreSQL state store (REBALANCER_STATE_URL) and share the jobs with them.",
)
@click.option(
    "--concurrency", type=click.IntRange(1, 1024), help="With --cluster: passes run at once [default: 4 per CPU core]."
)
@click.option(
    "--workers",
    type=WorkerCount(1, MAX_WORKERS),
    default=AUTO,
    show_default=True,
    help=(
        "Worker processes on this machine, each running a share of the jobs (one process uses one core). auto: one "
        f"per {JOBS_PER_WORKER} jobs loaded at start, up to the cores this process may use; one with --once or "
        "--cluster."
    ),
)
def run(
    paths: tuple[str, ...],
    once: bool,
    log_format: str,
    http: str | None,
    watch: bool,
    cluster: bool,
    concurrency: int | None,
    workers: int | None,
) -> None:
    """The daemon: every job on its schedule until SIGTERM/SIGINT; SIGHUP reloads the job files."""
    import logging

    logs.setup(log_format, log_level(logging.INFO))
    if workers is not None and workers > 1 and (cluster or once):
        other = "--cluster" if cluster else "--once"
        raise ConfigError(f"--workers starts worker processes of one daemon; it does not go with {other}")
    if cluster:
        _run_cluster(paths, http=http, watch=watch, once=once, concurrency=concurrency)
        return
    if concurrency is not None:
        raise ConfigError("--concurrency only applies with --cluster")
    if once:
        from rebalancer.daemon.scheduler import run_once
        from rebalancer.scheduler.watch import load as load_jobs

        jobs = load_jobs(paths)
        with open_store() as store:
            ok = run_once(jobs, store)
        sys.exit(0 if ok else 1)
    from rebalancer.daemon.fleet import run_daemon

    sys.exit(run_daemon(paths, workers=workers, http=http, watch=watch))


def _run_cluster(paths: tuple[str, ...], *, http: str | None, watch: bool, once: bool, concurrency: int | None) -> None:
    """``run --cluster``: this process becomes one member of the cluster on the shared PostgreSQL state store."""
    from rebalancer.cluster.supervisor import ClusterSupervisor, require_postgresql
    from rebalancer.state.store import StateStore

    if once:
        raise ConfigError("--once runs every job here and now; it does not go with --cluster")
    url = default_url()
    require_postgresql(url)
    with StateStore(url, pg_settings=CLUSTER_PG_SESSION) as store:
        supervisor = ClusterSupervisor(paths, store, url, concurrency=concurrency, http=http, watch=watch)
        supervisor.install_signals()
        supervisor.run()


def _raise_if_fenced(report: PassReport) -> None:
    """A pass that lost its lease before sending is an error of the command (it was recorded as ``fenced``)."""

    if report.result is PassResult.FENCED:
        raise LeaseLost(report.error or "the job's lease was lost; nothing more was sent")


def _plan_document(job: Job, plan: Plan) -> dict[str, Any]:
    from rebalancer.core.plan_codec import plan_to_json

    document = plan_to_json(plan)
    document.setdefault("job_hash", job.source_hash)
    document.setdefault("exchange", job.exchange.url)
    return document


def _same_file(a: str, b: str) -> bool:
    """Whether two paths name one existing file (a link or another spelling included)."""
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _write_plan(path: str, document: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.FileError(path, hint=exc.strerror or str(exc)) from None


def _read_plan(path: str, job: Job) -> Plan:
    from rebalancer.core.plan_codec import plan_from_json, shown

    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_PLAN_BYTES + 1)
        if len(raw) > MAX_PLAN_BYTES:
            raise ConfigError(f"{path}: not a saved plan (longer than {MAX_PLAN_BYTES // 1024 // 1024} MiB)")
        document = json.loads(raw.decode("utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a saved plan ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not a saved plan (JSON nested too deeply)") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a saved plan")
    for key, expected in (("job", job.name), ("symbol", job.symbol), ("exchange", job.exchange.url)):
        if document.get(key) != expected:
            claimed = shown(document.get(key), within=60)
            raise ConfigError(f"{path}: saved plan is for {key} {claimed}, not {expected!r}")
    return plan_from_json(document)


def _write_page(path: str, job: Job, plan: Plan) -> None:
    """Write the plan's HTML page (``plan --html``); a path that cannot be written is a one-line error."""
    from rebalancer.pictures.plan_page import render_page

    page = render_page(plan, tolerance=job.tolerance, ownership=job.ownership.value)
    try:
        Path(path).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise click.FileError(path, hint=exc.strerror or str(exc)) from None
