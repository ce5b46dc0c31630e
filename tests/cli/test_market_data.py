"""Market-data keys through the CLI against the sandbox and local JSON servers: a reference from another venue
(an /open/api deployment or any JSON endpoint), what happens when it is unreachable, stale or garbled, inventory
skew and the price ceiling / floor."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from werkzeug.wrappers import Response

from rebalancer.models import Side
from tests.cli.conftest import Answer


def _json(body: object, status: int = 200) -> Answer:
    return lambda request: Response(json.dumps(body), status=status, mimetype="application/json")


def _plan(cli: Callable[..., Result], path: Path) -> dict[str, Any]:
    result = cli("plan", str(path), "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def _reference(source: str) -> str:
    return f"reference:\n  source: {source}\n"


def test_a_reference_from_another_open_api_venue_with_a_factor(
    cli: Callable[..., Result], write_job: Callable[..., Path], sandbox: Any
) -> None:
    # ethusdt's mid on the other venue is 2000; × 15 = 30000
    job = write_job(levels=1, extra=f"""
        reference: {{source: "{sandbox.url}", symbol: ethusdt, price: mid, factor: "15"}}
    """)  # fmt: skip
    text = job.read_text().replace("reference: mid\n", "")
    job.write_text(text)
    plan = _plan(cli, job)
    mid = sandbox.engine.mid("ethusdt") * 15
    assert plan["reference_price"] == f"{mid:.2f}"
    assert plan["paused_by"] is None


def test_a_reference_from_a_json_endpoint(
    cli: Callable[..., Result], write_job: Callable[..., Path], venue: Callable[[Answer], str]
) -> None:
    url = venue(_json({"data": {"book": [{"bid": "29000.5", "ask": 29001.5}]}}))
    job = write_job(levels=1)
    job.write_text(job.read_text().replace("reference: mid\n", "") + (
        f"reference:\n  source: {{url: \"{url}/q\", bid: /data/book/0/bid, ask: /data/book/0/ask}}\n"
    ))  # fmt: skip
    plan = _plan(cli, job)
    assert plan["reference_price"] == "29001.00"
    # 29001 × 0.995 = 28855.995, rounded down
    assert [a["price"] for a in plan["actions"] if a["side"] == "BUY"] == ["28855.99"]


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        (_json({"oops": True}, status=503), "is unavailable: HTTP 503"),
        (_json({"data": {"bid": "abc", "ask": "2"}}), "the value at /data/bid is not a number"),
        (_json({"data": {"ask": "2"}}), "nothing at /data/bid in the answer"),
        (lambda request: Response("<html>", mimetype="text/html"), "answer is not JSON"),
        (_json({"data": {"bid": "31000", "ask": "30000"}}), "the book is crossed"),
    ],
    ids=["http-error", "non-numeric", "pointer-finds-nothing", "not-json", "crossed"],
)
def test_an_unusable_json_reference_pauses_placements_and_says_why(
    cli: Callable[..., Result],
    write_job: Callable[..., Path],
    venue: Callable[[Answer], str],
    sandbox: Any,
    answer: Answer,
    why: str,
) -> None:
    url = venue(answer)
    job = write_job(levels=2)
    job.write_text(job.read_text().replace("reference: mid\n", "") + (
        f"reference:\n  source: {{url: \"{url}\", bid: /data/bid, ask: /data/ask}}\n"
    ))  # fmt: skip
    result = cli("plan", str(job))
    assert result.exit_code == 0, result.output
    assert "placements paused:" in result.output and why in result.output
    plan = _plan(cli, job)
    assert plan["paused_by"] == "market_data" and plan["summary"]["place"] == 0
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()


def test_an_unreachable_venue_pauses_placements(cli: Callable[..., Result], write_job: Callable[..., Path]) -> None:
    job = write_job(levels=2)
    job.write_text(job.read_text().replace("reference: mid\n", "") + _reference('"http://127.0.0.1:9"'))
    plan = _plan(cli, job)
    assert plan["paused_by"] == "market_data"
    assert plan["paused"].startswith("placements paused: the reference from 127.0.0.1:9 btcusdt is unavailable")


def test_a_stale_quote_pauses_placements_and_keeps_the_orders_inside_the_band(
    cli: Callable[..., Result], write_job: Callable[..., Path], venue: Callable[[Answer], str], sandbox: Any
) -> None:
    job = write_job(levels=2)
    assert cli("apply", str(job), "--yes").exit_code == 0  # the ladder stands, hung from this venue
    old = int(time.time() * 1000) - 60_000
    ticker = {"code": "0", "msg": "suc", "data": {"buy": "29990", "sell": "30010", "last": "30000", "time": old}}
    url = venue(_json(ticker))
    job.write_text(job.read_text().replace("reference: mid\n", "") + _reference(f'"{url}"') + "  max_age: 10s\n")
    plan = _plan(cli, job)
    assert plan["paused_by"] == "market_data"
    assert "s old, older than max_age 10s" in plan["paused"]
    assert plan["summary"] == {"place": 0, "cancel": 0, "keep": 4}


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ('{source: {url: "http://127.0.0.1:1", bid: data/bid, ask: /a}}', "reference.source.bid: expected a JSON"),
        ('{source: "http://127.0.0.1:1", factor: "-2"}', "reference.factor: expected a number greater than 0"),
        ('{source: "http://127.0.0.1:1", factor: abc}', "reference.factor: expected a number greater than 0"),
        ('{source: "ftp://127.0.0.1"}', 'reference.source: an http(s) URL or "sandbox"'),
        ('{source: "http://127.0.0.1:1", price: best}', "reference.price: expected one of mid, bid, ask, last"),
        ("{symbol: btcusdt}", "reference: missing required key 'source'"),
    ],
)  # fmt: skip
def test_bad_reference_values_are_positioned_problems(
    cli: Callable[..., Result], write_job: Callable[..., Path], reference: str, message: str
) -> None:
    job = write_job(levels=1)
    job.write_text(job.read_text().replace("reference: mid\n", f"reference: {reference}\n"))
    result = cli("validate", str(job))
    assert result.exit_code == 1
    assert f"{job}:" in result.output and message in result.output
    assert "Traceback" not in result.output


def test_inventory_and_the_price_limits_through_the_cli(
    cli: Callable[..., Result], write_job: Callable[..., Path], sandbox: Any
) -> None:
    from decimal import Decimal

    # a manual buy above the ceiling; the job owns every order on the symbol (ownership: symbol)
    sandbox.engine.place(sandbox.api_key, "btcusdt", Side.BUY, Decimal("29950.00"), Decimal("0.01"))
    job = write_job(levels=3, extra="""
        inventory: {target_base: 50%, range: 20%}
    """)  # fmt: skip
    job.write_text(job.read_text().replace(
        "limits: {max_orders: 200, band: 10%, post_only: true}",
        'limits: {max_orders: 200, band: 10%, post_only: true, price_ceiling: "29800", price_floor: "30200"}',
    ))  # fmt: skip
    result = cli("plan", str(job))
    assert result.exit_code == 0, result.output
    assert "inventory: base " in result.output and "(target 50% ±20%) → buy ×" in result.output
    assert "(price_limit)" in result.output
    plan = _plan(cli, job)
    assert plan["inventory"]["target"] == "50%"
    assert [a["reason"] for a in plan["actions"] if a["action"] == "cancel"] == ["price_limit"]
    assert all(float(a["price"]) < 29800 for a in plan["actions"] if a["side"] == "BUY" and a["action"] == "place")
    assert cli("apply", str(job), "--yes").exit_code == 0
    book = sandbox.engine.open_orders(sandbox.api_key, "btcusdt")
    assert all(o.price < Decimal("29800") for o in book if o.side is Side.BUY)
    assert all(o.price > Decimal("30200") for o in book if o.side is Side.SELL)
