"""Commands that look at job files and the state store: ``validate``, ``history``, ``pause``, ``resume``."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rebalancer import notify
from rebalancer.cli.params import Since
from rebalancer.cli.shared import known_job, load, open_store
from rebalancer.vocab import STORED_PASS_RESULTS, NotifyKind

if TYPE_CHECKING:
    from rebalancer.core.fills import Fill
    from rebalancer.job import Job
    from rebalancer.state.store import StateStore


@click.command()
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


def _set_paused(given: str, paused: bool) -> None:
    """Set or clear the job's pause switch, and tell its webhook (``notify``): this command is what paused it.

    The webhook is known from the job file given, or else from the file a running daemon loaded the job from.
    """

    by_file = given.endswith((".yaml", ".yml")) or Path(given).is_file()
    named: Job | None = load(given) if by_file else None
    with open_store() as store:
        # a misspelt name is refused before anything is written
        name = named.name if named is not None else known_job(given, store)
        if not paused and not store.is_paused(name):
            click.echo(f"{name} is not paused.")
            return
        store.set_paused(name, paused)
        if not paused:  # a resume clears a guard's pause and starts a new loss count (limits.max_loss)
            store.set_risk(name, paused_by=None, reason=None, now=datetime.now(UTC), restart_count=True)
        job = named or _daemon_job(name, store)
    word = NotifyKind.PAUSED if paused else NotifyKind.RESUMED
    click.echo(f"{word.capitalize()} {name}.")
    if job is None:
        click.echo(
            f"Note: no job file of {name} is known here, so its webhook (notify), if any, was not told; "
            "name the job by its file to tell it.",
            err=True,
        )
        return
    notify.post(job, word, f"{name} {word} by `rebalancer {'pause' if paused else 'resume'}`")


def _daemon_job(name: str, store: StateStore) -> Job | None:
    """The job of the file a live daemon schedules ``name`` from; None when there is none or it does not read."""
    from rebalancer.jobfile.load import read_job_file

    files = [s.scheduled.source for s in store.job_statuses(also=[name]) if s.job == name and s.scheduled]
    for file in files:
        read = read_job_file(file)
        if read.job is not None and read.job.name == name:
            return read.job
    return None


@click.command()
@click.argument("job", metavar="JOB")
def pause(job: str) -> None:
    """Stop a job's passes in every daemon on this state store (JOB: its name or file; orders stay as they are)."""
    _set_paused(job, True)


@click.command()
@click.argument("job", metavar="JOB")
def resume(job: str) -> None:
    """Let a paused job's passes run again (JOB: its name or file)."""
    _set_paused(job, False)


@click.command()
@click.argument("job", metavar="[JOB]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print the passes (with their batches and results) as JSON.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10000), help="How many passes.")
@click.option("--since", type=Since(), help="Only passes started since then: an age (30m, 1h, 2d) or an ISO time.")
@click.option(
    "--result",
    type=click.Choice(sorted(r.value for r in STORED_PASS_RESULTS)),  # the words, not the enum's member names
    help="Only passes that ended so.",
)
def history(job: str | None, as_json: bool, limit: int, since: datetime | None, result: str | None) -> None:
    """Past passes from the state store, newest first (JOB: a job's name or file; every job without it)."""
    from rebalancer.cli.output import history_table
    from rebalancer.logs import redact, redact_value, register_environment_secrets

    # Rows written before secrets were redacted on the way in may still quote one: redact on the way out too.
    register_environment_secrets()
    with open_store() as store:
        name = known_job(job, store) if job else None
        records = store.history(name, limit=limit, since=since, result=result)
        if as_json:
            details = [store.pass_detail(r.id) for r in records]
            click.echo(json.dumps(redact_value([d.to_dict() for d in details if d is not None]), indent=2))
        else:
            filled = {r.id: _filled(store.fills(r.job, pass_id=r.id)) for r in records}
            shown = {k: v for k, v in filled.items() if v}
            click.echo(redact(history_table(records, shown, filtered=bool(name or since or result))))


def _filled(fills: Sequence[Fill]) -> str:
    """``BUY 0.03 SELL 0.01``: the volume a pass learnt was filled, per side (empty when none)."""
    from rebalancer.core.fills import filled_by_side
    from rebalancer.models import format_decimal

    return " ".join(f"{side} {format_decimal(v)}" for side, v in sorted(filled_by_side(fills).items()))
