"""``rebalancer replay``: run a job's real passes over a recorded or generated market (see docs/replay.md)."""

from __future__ import annotations

import json
import sys

import click

from rebalancer.cli.shared import load
from rebalancer.errors import ConfigError


@click.command()
@click.argument("job_file", metavar="JOB", type=click.Path(dir_okay=False))
@click.option("--market", required=True, metavar="FILE|walk[:seed=N,hours=H,vol=X]", help="A recording or a walk.")
@click.option("--fill", type=click.Choice(["touch", "cross", "queue"]), default="touch", show_default=True)
@click.option("--latency", default="0s", show_default=True, metavar="DURATION", help="Batches land this late.")
@click.option("--balances", metavar="COIN=AMOUNT,…", help="The account [1000000 quote, as much base at the first mid].")
@click.option("--fee", default="0%", show_default=True, metavar="P%", help="Maker fee, taken in the quote coin.")
@click.option("--from", "start", metavar="TIME", help="ISO time, or a duration from the market's start (30m).")
@click.option("--to", "end", metavar="TIME", help="ISO time, or a duration from the market's start (2h).")
@click.option("--vary", metavar="KEY.PATH=V1,V2,…", help="One replay per value of a job key, on every core.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (an array with --vary).")
@click.option("--html", "html", metavar="OUT", type=click.Path(dir_okay=False), help="Also write the replay as a page.")
def replay(
    job_file: str,
    market: str,
    fill: str,
    latency: str,
    balances: str | None,
    fee: str,
    start: str | None,
    end: str | None,
    vary: str | None,
    as_json: bool,
    html: str | None,
) -> None:
    """Replay JOB's passes over a recorded market (FILE) or a generated walk, on a simulated account.

    \b
    Every wake-up runs the same pass as the daemon; fills come from the market's trades:
      touch  a resting buy fills when a trade prints at or below its price (sells mirror)
      cross  only strictly through its price
      queue  at its price, only after the depth that stood there when it joined
    """
    from rebalancer.replay import arguments
    from rebalancer.replay.driver import Options
    from rebalancer.replay.matching import FillModel

    job = load(job_file)
    if html:
        _refuse_overwriting_inputs(html, job_file, market)
    from_ms, from_relative = arguments.parse_moment(start, "--from") if start else (None, False)
    to_ms, to_relative = arguments.parse_moment(end, "--to") if end else (None, False)
    options = Options(
        fill=FillModel(fill),
        latency_ms=arguments.parse_latency(latency),
        fee=arguments.parse_fee(fee),
        balances=arguments.parse_balances(balances) if balances else None,
        from_ms=None if from_relative else from_ms,
        to_ms=None if to_relative else to_ms,
        from_offset_ms=from_ms if from_relative else None,
        to_offset_ms=to_ms if to_relative else None,
    )
    if vary:
        if html:
            raise ConfigError("--html draws one replay; leave out --vary")
        _replay_each(job_file, vary, market, options, as_json)
        return
    _replay_one(job, market, options, as_json, html)


def _refuse_overwriting_inputs(html: str, job_file: str, market: str) -> None:
    """``--html`` naming the job file or the recording would replace an input with the page: refused."""
    import os

    from rebalancer.errors import ConfigError

    for option, path in (("JOB", job_file), ("--market", market)):
        try:
            same = os.path.samefile(html, path)
        except OSError:  # either does not exist (a walk, a new page): not the same file
            same = False
        if same:
            raise ConfigError(f"--html {html}: that is the {option} file; the page would replace it")


def _replay_one(job: object, market: str, options: object, as_json: bool, html: str | None) -> None:
    import dataclasses

    from rebalancer.job import Job
    from rebalancer.replay.driver import Options, replay
    from rebalancer.replay.result import render_text
    from rebalancer.replay.source import open_market

    assert isinstance(job, Job) and isinstance(options, Options)
    if sys.stderr.isatty():
        options = dataclasses.replace(options, progress=_progress)
    if html:
        options = dataclasses.replace(options, keep_detail=True)
    with open_market(market, job) as (source, rules):
        run = replay(job, source, rules, options)
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)
    title = f"replay of {job.name} on {source.name} (fill {options.fill}, latency {options.latency_ms}ms)"
    if html:
        _write_page(html, job, title, run)
    if as_json:
        click.echo(json.dumps(run.result.to_json(), indent=2))
    else:
        click.echo(render_text(run.result, title), nl=False)


def _write_page(out: str, job: object, title: str, run: object) -> None:
    from pathlib import Path

    from rebalancer.job import Job
    from rebalancer.pictures.replay_page import Detail, render_page
    from rebalancer.replay.driver import Run
    from rebalancer.replay.result import flat_figures

    assert isinstance(job, Job) and isinstance(run, Run)
    ledger = run.ledger
    fills = [(f.t_ms, f.side.value, f.price) for f in ledger.fills]
    detail = Detail(ledger.curve, run.levels, fills, run.start_ms, run.end_ms)
    page = render_page(title[0].upper() + title[1:], f"symbol {job.symbol}", detail, flat_figures(run.result))
    try:
        Path(out).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html {out}: cannot write: {exc.strerror or exc}") from None


def _replay_each(job_file: str, text: str, market: str, options: object, as_json: bool) -> None:
    from rebalancer.replay.driver import Options
    from rebalancer.replay.result import render_rows
    from rebalancer.replay.vary import parse_vary, replay_each, vary_json

    assert isinstance(options, Options)
    vary = parse_vary(text)
    rows = replay_each(job_file, vary, market, options)
    if as_json:
        click.echo(json.dumps(vary_json(vary, rows), indent=2))
    else:
        click.echo(render_rows(vary.key, rows), nl=False)


def _progress(t_ms: int) -> None:
    from rebalancer.replay.timer import to_datetime

    click.echo(f"\rreplaying: market time {to_datetime(t_ms):%Y-%m-%d %H:%M:%S} UTC", nl=False, err=True)
