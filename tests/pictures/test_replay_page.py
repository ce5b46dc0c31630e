"""``replay --html``: the page of one replay, rendered in a real headless Chromium.

A hand-built recording (see tests/replay/test_fill_models.py): one fixed buy of 1 at 100 fills under ``touch`` at
the first print. The page must show the mid path, the order's price as a resting level until it filled, one fill
mark at 100, and the inventory and PnL curves, with the figures of the ``--json`` output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.replay.conftest import depth, job_file, recording, replay_cli, rules_line, trade  # noqa: F401

JOB = """\
version: 1
name: fixed-buy
symbol: btcusdt
exchange: {url: sandbox}
schedule: {every: 1h}
orders:
  - {side: buy, price: "100", size: "1"}
limits: {band: 50%}
"""


def test_the_replay_page_draws_prices_orders_fills_and_curves(
    page: Any,
    tmp_path: Path,
    recording: Callable[..., Path],  # noqa: F811
    job_file: Callable[..., Path],  # noqa: F811
    replay_cli: Callable[..., Result],  # noqa: F811
) -> None:
    market = recording(
        [
            rules_line(),
            depth(0, [("100.5", "2"), ("100", "3")], [("101", "1")]),
            trade(1000, 1, "100", "2"),
            depth(2500, [("98.5", "1")], [("99.5", "1")]),
            depth(3000, [("101.5", "1")], [("102.5", "1")]),
        ]
    )
    out = tmp_path / "replay.html"
    result = replay_cli(
        str(job_file(JOB)), "--market", str(market), "--balances", "usdt=1000", "--json", "--html", str(out)
    )
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    html = out.read_text(encoding="utf-8")
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    page.goto(out.as_uri())
    page.wait_for_selector("svg.chart.price")
    assert page.locator("svg.chart.price polyline.mid").count() == 1
    assert page.locator("svg.chart.price line.level.buy").count() == 1
    fills = page.locator("svg.chart.price circle.fill.buy")
    assert fills.count() == figures["fills"]["count"] == 1
    assert fills.first.get_attribute("data-price") == "100.00"  # the price as placed, at the tick
    # The fill mark sits on the level's line: same height in the drawn page.
    level_box = page.locator("svg.chart.price line.level.buy").bounding_box()
    fill_box = fills.first.bounding_box()
    assert abs((fill_box["y"] + fill_box["height"] / 2) - level_box["y"]) < 2
    for chart in ("inventory", "pnl"):
        assert page.locator(f"svg.chart.{chart} polyline.curve").count() == 1
        assert page.locator(f"svg.chart.{chart}").bounding_box()["width"] > 500
    cells = {
        r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text()
        for r in page.locator("table.figures tr").all()
    }
    assert cells["pnl.total"] == figures["pnl"]["total"]
    assert cells["fills.count"] == "1"
