"""The command line. Commands parse, call and print; ``Cli.invoke`` is the one place that maps errors to exit codes.

Heavy modules are imported inside the commands so that ``rebalancer --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rebalancer import __version__
from rebalancer.errors import ConfigError, JobFileError, RebalancerError

if TYPE_CHECKING:
    from rebalancer.core.plan import Plan
    from rebalancer.job import Job
    from rebalancer.state.store import StateStore


class Cli(click.Group):
    """A click group that turns the exception tree into one-line messages and exit code 1, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command; expected failures become ``Error: …`` on stderr and exit 1."""
        try:
            return super().invoke(ctx)
        except JobFileError as exc:
            for problem in exc.problems:
                click.echo(str(problem), err=True)
            ctx.exit(1)
        except RebalancerError as exc:
            from rebalancer.logs import redact

            click.echo(f"Error: {redact(str(exc))}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            ctx.exit(130)


def _color() -> bool:
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def _store() -> Iterator[StateStore]:
    from rebalancer.state.store import StateStore

    store = StateStore()
    try:
        yield store
    finally:
        store.close()


def _load(path: str) -> Job:
    from rebalancer.jobfile.load import load_job

    return load_job(path)


def _confirm(plan: Plan, yes: bool, what: str) -> bool:
    """Ask before touching money: ``--yes`` skips, a non-terminal without ``--yes`` is refused."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to {what} without confirmation: stdin is not a terminal (pass --yes)")
    answer = click.prompt(
        f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False
    )
    return bool(answer.strip() == "yes")


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="rebalancer")
def main() -> None:
    """Keep a declared ladder of limit orders standing on an /open/api exchange.

    \b
    validate → plan → apply for one pass; run keeps every job reconciled on its schedule.
    Jobs with `exchange.url: sandbox` use the embedded simulated exchange: no keys needed.
    """
    import logging

    from rebalancer import logs

    logs.setup("text", logging.WARNING)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the problems as a JSON list.")
def validate(paths: tuple[str, ...], as_json: bool) -> None:
    """Check job files (or folders of them) and list every problem as file:line:col: key.path: message."""
    from rebalancer.cli.output import problem_dict, problems_text
    from rebalancer.jobfile.load import check_paths, expand_paths

    problems = check_paths(list(paths))
    if as_json:
        click.echo(json.dumps([problem_dict(p) for p in problems], indent=2))
    elif problems:
        click.echo(problems_text(problems))
    else:
        files = expand_paths(list(paths))[0]
        click.echo(f"{len(files)} job file{'s' if len(files) != 1 else ''} valid.")
    sys.exit(1 if problems else 0)


@main.command()
@click.argument("job_path", metavar="JOB", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON (format_version 1).")
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, writable=True), help="Save the plan for `apply --plan`."
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 2 when the plan has changes, 0 when it has none."
)
def plan(job_path: str, as_json: bool, out: str | None, detailed_exitcode: bool) -> None:
    """Dry run: read the exchange and print the plan. Sends nothing."""
    from rebalancer.cli.render import render_text
    from rebalancer.connect import open_exchange
    from rebalancer.runner import run_pass

    job = _load(job_path)
    with open_exchange(job) as exchange, _store() as store:
        report = run_pass(job, exchange, store, apply=False)
    document = _plan_document(job, report.plan)
    if out:
        _write_plan(out, document)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        click.echo(render_text(report.plan, color=_color()))
        if out:
            click.echo(
                f"\nSaved the plan to {out}. Apply exactly it with: rebalancer apply {job_path} --plan {out}"
            )
    if detailed_exitcode and report.plan.has_changes:
        sys.exit(2)


@main.command()
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
    from rebalancer.connect import open_exchange
    from rebalancer.lease import job_lease
    from rebalancer.runner import run_pass

    job = _load(job_path)
    saved = _read_plan(plan_path, job) if plan_path else None
    color = _color()

    def approve(plan: Plan) -> bool:
        click.echo(render_text(plan, color=color))
        return _confirm(plan, yes, "apply this plan")

    with open_exchange(job) as exchange, _store() as store, job_lease(store, job.name):
        report = run_pass(job, exchange, store, apply=True, approve=approve, saved_plan=saved)
    if report.result == "no_changes":
        click.echo(render_text(report.plan, color=color))
        return
    if report.result == "declined":
        click.echo("Apply cancelled.")
        return
    assert report.execution is not None
    click.echo("")
    click.echo(execution_text(report.execution, color=color))
    sys.exit(1 if report.failed else 0)


@main.command()
@click.argument("job_path", metavar="JOB", type=click.Path())
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
def cancel(job_path: str, yes: bool) -> None:
    """Cancel every order the job owns (all open orders of the symbol, or only tracked ones)."""
    from rebalancer.cli.output import execution_text
    from rebalancer.cli.render import render_text
    from rebalancer.connect import open_exchange
    from rebalancer.lease import job_lease
    from rebalancer.runner import cancel_plan_job, run_pass

    job = _load(job_path)
    color = _color()

    def approve(plan: Plan) -> bool:
        click.echo(render_text(plan, color=color))
        return _confirm(plan, yes, "cancel these orders")

    with open_exchange(job) as exchange, _store() as store, job_lease(store, job.name):
        report = run_pass(cancel_plan_job(job), exchange, store, apply=True, mode="cancel", approve=approve)
    if report.result == "no_changes":
        click.echo("No orders to cancel.")
        return
    if report.result == "declined":
        click.echo("Cancel aborted.")
        return
    assert report.execution is not None
    click.echo(execution_text(report.execution, color=color, done="Cancel complete"))
    sys.exit(1 if report.failed else 0)


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--once", is_flag=True, help="Run every job once, then exit (0 if every pass succeeded).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--http", "http", metavar="HOST:PORT", help="Serve /metrics, /livez and /readyz, e.g. 127.0.0.1:9108."
)
@click.option("--watch/--no-watch", default=True, show_default=True, help="Reload when a job file changes.")
def run(paths: tuple[str, ...], once: bool, log_format: str, http: str | None, watch: bool) -> None:
    """The daemon: every job on its schedule until SIGTERM/SIGINT; SIGHUP reloads the job files."""
    from rebalancer import logs

    logs.setup(log_format)
    if once:
        from rebalancer.daemon.scheduler import run_once
        from rebalancer.daemon.supervisor import load

        jobs = load(paths)
        with _store() as store:
            ok = run_once(jobs, store)
        sys.exit(0 if ok else 1)
    from rebalancer.daemon.supervisor import Supervisor

    with _store() as store:
        supervisor = Supervisor(paths, store, http=http, watch=watch)
        supervisor.install_signals()
        supervisor.run()


def _job_name(given: str) -> str:
    """A job named directly, or by its job file (what plan, apply and cancel take)."""
    if given.endswith((".yaml", ".yml")) or Path(given).is_file():
        return _load(given).name
    return given


def _set_paused(given: str, paused: bool) -> None:
    name = _job_name(given)
    with _store() as store:
        if not paused and not store.is_paused(name):
            click.echo(f"{name} is not paused.")
            return
        store.set_paused(name, paused)
    click.echo(f"{'Paused' if paused else 'Resumed'} {name}.")


@main.command()
@click.argument("job", metavar="JOB")
def pause(job: str) -> None:
    """Stop a job's passes in every daemon on this state store (JOB: its name or file; orders stay as they are)."""
    _set_paused(job, True)


@main.command()
@click.argument("job", metavar="JOB")
def resume(job: str) -> None:
    """Let a paused job's passes run again (JOB: its name or file)."""
    _set_paused(job, False)


@main.command()
@click.argument("job", required=False)
@click.option(
    "--json", "as_json", is_flag=True, help="Print the passes (with their batches and results) as JSON."
)
@click.option(
    "--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many passes."
)
def history(job: str | None, as_json: bool, limit: int) -> None:
    """Past passes from the state store, newest first."""
    from rebalancer.cli.output import history_table

    with _store() as store:
        records = store.history(job, limit=limit)
        if as_json:
            details = [store.pass_detail(r.id) for r in records]
            click.echo(json.dumps([d.to_dict() for d in details if d is not None], indent=2))
        else:
            click.echo(history_table(records))


@main.command()
@click.option(
    "--port", default=8790, show_default=True, type=click.IntRange(0, 65535), help="Loopback port (0: any)."
)
@click.option("--seed", default=7, show_default=True, type=int, help="Seed of a fresh world's market.")
@click.option("--reset", is_flag=True, help="Start a fresh world instead of the saved one.")
def sandbox(port: int, seed: int, reset: bool) -> None:
    """Serve the simulated exchange (the same world `url: sandbox` jobs use) on 127.0.0.1 until Ctrl-C."""
    from rebalancer.connect import serve_sandbox

    serve_sandbox(port=port, seed=seed, reset=reset, echo=click.echo)


def _plan_document(job: Job, plan: Plan) -> dict[str, Any]:
    document = plan.to_json_dict()
    document.setdefault("job_hash", job.source_hash)
    document.setdefault("exchange", job.exchange.url)
    return document


def _write_plan(path: str, document: dict[str, Any]) -> None:
    try:
        Path(path).write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise click.FileError(path, hint=exc.strerror or str(exc)) from None


def _read_plan(path: str, job: Job) -> Plan:
    from rebalancer.core.plan import Plan

    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: not a saved plan ({exc})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a saved plan")
    for key, expected in (("job", job.name), ("symbol", job.symbol), ("exchange", job.exchange.url)):
        if document.get(key) != expected:
            raise ConfigError(f"{path}: saved plan is for {key} {document.get(key)!r}, not {expected!r}")
    return Plan.from_json_dict(document)
