"""``rebalancer replay``: run a job's real passes over a recorded or generated market (see docs/replay.md)."""

from __future__ import annotations

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
    from rebalancer.replay import command

    job = load(job_file)
    if html:
        command.refuse_overwriting_inputs(html, job_file, market)
    options = command.options_of(fill, latency, fee, balances, start, end)
    if vary:
        if html:
            raise ConfigError("--html draws one replay; leave out --vary")
        varied, rows = command.replay_varied(job_file, vary, market, options)
        click.echo(command.varied_text(varied, rows, as_json=as_json), nl=False)
        return
    terminal = sys.stderr.isatty()

    def progress(t_ms: int) -> None:
        click.echo(command.progress_line(t_ms), nl=False, err=True)

    result, title = command.replay_one(job, market, options, html=html, progress=progress if terminal else None)
    if terminal:
        click.echo("\r\033[K", nl=False, err=True)
    click.echo(command.one_text(result, title, as_json=as_json), nl=False)
