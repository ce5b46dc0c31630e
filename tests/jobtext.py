"""The text of a two-sided ladder job file aimed at a test sandbox, shared by the command, daemon and reliability
suites (each used to keep its own near-copy)."""

from __future__ import annotations


def ladder_job(
    name: str,
    url: str,
    *,
    symbol: str = "btcusdt",
    every: str = "1s",
    levels: int = 3,
    size: str = "0.01",
    ownership: str = "symbol",
    on_stop: str = "keep",
    limits: str = "{max_orders: 200, band: 10%, post_only: true}",
) -> str:
    """A symmetric ladder (first 0.5 %, step 0.25 %, flat sizes, tolerance 0.1 % / 10 %) as YAML text."""
    return f"""\
version: 1
name: {name}
symbol: {symbol}
exchange: {{url: "{url}"}}
schedule: {{every: {every}}}
reference: mid
ladder:
  buy: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "{size}"}}
  sell: {{levels: {levels}, first: 0.5%, step: 0.25%, size: "{size}"}}
tolerance: {{price: 0.1%, size: 10%}}
limits: {limits}
ownership: {ownership}
on_stop: {on_stop}
"""
