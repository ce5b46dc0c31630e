"""``rebalancer init``: a commented job file to start from, that validates and plans against the sandbox as written."""

from __future__ import annotations

import re
from pathlib import Path
from string import Template

import click

from rebalancer.errors import ConfigError

_SYMBOL = re.compile(r"[a-z0-9]+")  # the job schema's symbol pattern (matched whole)


def job_template(symbol: str) -> str:
    """The commented job file for ``symbol`` (named ``SYMBOL-ladder``), read from the package's templates."""
    from importlib.resources import files

    if not _SYMBOL.fullmatch(symbol):
        raise ConfigError(f"--symbol {symbol!r}: expected a lower-case symbol such as btcusdt")
    text = files("rebalancer").joinpath("templates", "job.yaml").read_text(encoding="utf-8")
    return Template(text).substitute(symbol=symbol, name=f"{symbol}-ladder")


@click.command()
@click.option("--symbol", default="btcusdt", show_default=True, help="The symbol the ladder stands on.")
@click.option("--out", type=click.Path(dir_okay=False), help="Write the job file here instead of printing it.")
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
def init(symbol: str, out: str | None, force: bool) -> None:
    """Write a commented job file (every key explained) that runs against the embedded sandbox as written."""
    text = job_template(symbol)
    if out is None:
        click.echo(text, nl=False)
        return
    path = Path(out)
    try:
        with path.open("w" if force else "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        raise ConfigError(f"{out} exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}") from None
    click.echo(f"Wrote {out}. Next: rebalancer validate {out} && rebalancer plan {out}")
