"""What ``rebalancer replay`` does between parsing its options and printing: the options as one value, one replay
(with its page) or one per ``--vary`` value, and the texts to print. The command line imports this one module when
the command runs, so ``rebalancer --help`` loads none of the replay."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

from rebalancer.errors import ConfigError
from rebalancer.job import Job
from rebalancer.pictures.replay_page import Detail, render_page
from rebalancer.replay import arguments
from rebalancer.replay.driver import Options, Run, replay
from rebalancer.replay.matching import FillModel
from rebalancer.replay.result import ReplayResult, flat_figures, render_rows, render_text
from rebalancer.replay.source import open_market
from rebalancer.replay.timer import to_datetime
from rebalancer.replay.vary import Vary, parse_vary, replay_each, vary_json


def options_of(fill: str, latency: str, fee: str, balances: str | None, start: str | None, end: str | None) -> Options:
    """The command's options as one value; ``ConfigError`` naming the option that cannot be read."""
    from_ms, from_relative = arguments.parse_moment(start, "--from") if start else (None, False)
    to_ms, to_relative = arguments.parse_moment(end, "--to") if end else (None, False)
    return Options(
        fill=FillModel(fill),
        latency_ms=arguments.parse_latency(latency),
        fee=arguments.parse_fee(fee),
        balances=arguments.parse_balances(balances) if balances else None,
        from_ms=None if from_relative else from_ms,
        to_ms=None if to_relative else to_ms,
        from_offset_ms=from_ms if from_relative else None,
        to_offset_ms=to_ms if to_relative else None,
    )


def refuse_overwriting_inputs(html: str, job_file: str, market: str) -> None:
    """``--html`` naming the job file or the recording would replace an input with the page: refused."""
    for option, path in (("JOB", job_file), ("--market", market)):
        try:
            same = os.path.samefile(html, path)
        except OSError:  # either does not exist (a walk, a new page): not the same file
            same = False
        if same:
            raise ConfigError(f"--html {html}: that is the {option} file; the page would replace it")


def replay_one(
    job: Job, market: str, options: Options, *, html: str | None, progress: Callable[[int], None] | None
) -> tuple[ReplayResult, str]:
    """Replay ``job`` once over ``market`` (writing the page to ``html`` when given); its result and its title."""
    if progress is not None:
        options = dataclasses.replace(options, progress=progress)
    if html:
        options = dataclasses.replace(options, keep_detail=True)
    with open_market(market, job) as (source, rules):
        run = replay(job, source, rules, options)
    title = f"replay of {job.name} on {source.name} (fill {options.fill}, latency {options.latency_ms}ms)"
    if html:
        write_page(html, job, title, run)
    return run.result, title


def write_page(out: str, job: Job, title: str, run: Run) -> None:
    """The replay as one self-contained page at ``out``; ``ConfigError`` when it cannot be written."""
    ledger = run.ledger
    fills = [(f.t_ms, f.side.value, f.price) for f in ledger.fills]
    detail = Detail(ledger.curve, run.levels, fills, run.start_ms, run.end_ms)
    page = render_page(title[0].upper() + title[1:], f"symbol {job.symbol}", detail, flat_figures(run.result))
    try:
        Path(out).write_text(page, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"--html {out}: cannot write: {exc.strerror or exc}") from None


def replay_varied(
    job_file: str, text: str, market: str, options: Options
) -> tuple[Vary, Sequence[tuple[str, ReplayResult]]]:
    """One replay per value of ``--vary`` (spread over the cores); the key varied and a row per value."""
    vary = parse_vary(text)
    return vary, replay_each(job_file, vary, market, options)


def one_text(result: ReplayResult, title: str, *, as_json: bool) -> str:
    """What ``replay`` prints for one replay: its JSON object, or the text table."""
    return json.dumps(result.to_json(), indent=2) + "\n" if as_json else render_text(result, title)


def varied_text(vary: Vary, rows: Sequence[tuple[str, ReplayResult]], *, as_json: bool) -> str:
    """What ``replay --vary`` prints: a JSON array with ``"vary"`` in each object, or one row per value."""
    return json.dumps(vary_json(vary, rows), indent=2) + "\n" if as_json else render_rows(vary.key, rows)


def progress_line(t_ms: int) -> str:
    """The progress line shown on a terminal while a long replay runs."""
    return f"\rreplaying: market time {to_datetime(t_ms):%Y-%m-%d %H:%M:%S} UTC"
