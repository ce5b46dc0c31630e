"""``plan --html``: the page a trader reads, rendered in a real headless Chromium.

The plans come from the sandbox through the CLI: a 20-level ladder on an empty book (all places), then the same job
reshaped over the orders it placed (places, cancels with their reasons, and keeps).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from click.testing import Result

from tests.jobtext import ladder_job

ROW = "svg.ladder g.row"


def _write(tmp_path: Path, url: str, name: str, **kw: Any) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(ladder_job(name, url, **kw), encoding="utf-8")
    return path


def _open(page: Any, path: Path) -> None:
    page.goto(path.as_uri())
    page.wait_for_selector("svg.ladder")


def _count(page: Any, selector: str) -> int:
    return int(page.locator(selector).count())


def test_a_twenty_level_ladder_is_drawn_as_an_order_book(
    page: Any, cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    job = _write(tmp_path, sandbox.url, "picture", levels=10, ownership="tracked")
    html = tmp_path / "plan.html"
    result = cli("plan", str(job), "--html", str(html), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    _open(page, html)
    assert _count(page, f"{ROW}.place") == 20
    assert _count(page, f"{ROW}.place.buy") == 10 and _count(page, f"{ROW}.place.sell") == 10
    assert _count(page, "svg.ladder rect.band") == 20
    assert page.locator("svg.ladder g.marker.reference").get_attribute("data-price") == plan["reference_price"]
    # an order book: every sell is drawn above the reference line, every buy below it, highest price on top
    ref_y = page.locator("svg.ladder g.marker.reference line").bounding_box()["y"]
    tops = {}
    for row in page.locator(f"{ROW}.place").all():
        box = row.bounding_box()
        side = row.get_attribute("data-side")
        assert (box["y"] < ref_y) if side == "SELL" else (box["y"] > ref_y)
        tops[row.get_attribute("data-level")] = box["y"]
    for side in ("buy", "sell"):
        ys = [tops[f"{side}[{i}]"] for i in range(10)]
        assert ys == (sorted(ys) if side == "buy" else sorted(ys, reverse=True))
    drawn = {(r.get_attribute("data-level"), r.get_attribute("data-price")) for r in page.locator(f"{ROW}.place").all()}
    assert drawn == {(a["level"], a["price"]) for a in plan["actions"]}
    assert page.locator(".fingerprint").inner_text() == plan["fingerprint"]
    assert "Plan: 20 to place, 0 to cancel, 0 unchanged." in page.locator(".summary").inner_text()
    page.screenshot(path=str(tmp_path / "plan.png"), full_page=True)
    assert (tmp_path / "plan.png").stat().st_size > 10_000


def test_a_plan_with_places_cancels_and_keeps(
    page: Any, cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    first = _write(tmp_path, sandbox.url, "reshape", levels=6, ownership="tracked")
    assert cli("apply", str(first), "--yes").exit_code == 0
    # the same job with fewer levels and a wider step: level 0 stays, the others move, the far ones go
    reshaped = first.read_text(encoding="utf-8").replace(
        "levels: 6, first: 0.5%, step: 0.25%", "levels: 4, first: 0.5%, step: 0.6%"
    )
    first.write_text(reshaped, encoding="utf-8")
    html = tmp_path / "reshape.html"
    result = cli("plan", str(first), "--html", str(html), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    summary = plan["summary"]
    assert summary["place"] > 0 and summary["cancel"] > 0 and summary["keep"] > 0
    _open(page, html)
    for kind in ("place", "cancel", "keep"):
        assert _count(page, f"{ROW}.{kind}") == summary[kind]
    cancels = page.locator(f"{ROW}.cancel").all()
    wanted = {(a["order_id"], a["reason"]) for a in plan["actions"] if a["action"] == "cancel"}
    assert {(c.get_attribute("data-order-id"), c.get_attribute("data-reason")) for c in cancels} == wanted
    for cancel in cancels:
        assert f"({cancel.get_attribute('data-reason')})" in cancel.text_content()
    keeps = {(a["order_id"], a["level"]) for a in plan["actions"] if a["action"] == "keep"}
    drawn = {
        (k.get_attribute("data-order-id"), k.get_attribute("data-level")) for k in page.locator(f"{ROW}.keep").all()
    }
    assert drawn == keeps
    text = page.locator("body").inner_text()
    assert f"Plan: {summary['place']} to place, {summary['cancel']} to cancel, {summary['keep']} unchanged." in text
    page.screenshot(path=str(tmp_path / "reshape.png"), full_page=True)


def test_an_unwritable_html_path_is_one_line_and_sends_nothing(
    cli: Callable[..., Result], sandbox: Any, tmp_path: Path
) -> None:
    job = _write(tmp_path, sandbox.url, "nowhere", levels=2, ownership="tracked")
    result = cli("plan", str(job), "--html", str(tmp_path / "missing" / "dir" / "plan.html"))
    assert result.exit_code != 0
    assert "Error" in result.output and "Traceback" not in result.output
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()
