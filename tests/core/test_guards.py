"""Market-data guards and held levels in compute_plan (rebalancer.core.guards), and the max_jump key of job files."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.cli.render import render_text, summary_line
from rebalancer.core.plan import Plan, compute_plan
from rebalancer.core.plan_codec import plan_from_json, plan_to_json
from rebalancer.engine.runner import cancel_plan_job
from rebalancer.job import Amount, Limits, Reference, ReferenceKind
from rebalancer.jobfile.load import load_job
from rebalancer.models import Order, Side, Ticker
from tests.core.kit import D, ab, job, order, pct, side_ladder, snapshot
from tests.depth import examples

B, S = Side.BUY, Side.SELL
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
JOB = job(buy=side_ladder(), sell=side_ladder(), limits=Limits(band=pct("5"), post_only=False))
PREV = D("30000.00")
# buy targets at mid 30000: 29850, 29775, 29700; sell: 30150, 30225, 30300; band ±1500
BOOK = (
    order("601", B, "29850.00", "0.0100"),  # exactly buy[0]
    order("602", S, "40000.00", "0.0100"),  # outside the band of 30000
    order("603", B, "29000.00", "0.0100"),  # inside the band, on no level
)
HELD = "until 10:42:05 UTC after 3 rejections (code 19: insufficient balance)"


def quote(bid: str | None, ask: str | None, last: str | None = "30000.00") -> Ticker:
    return Ticker(None if bid is None else D(bid), None if ask is None else D(ask), None if last is None else D(last))


def plan_on(
    ticker: Ticker, previous: Decimal | None = PREV, the_job: object = JOB, book: tuple[Order, ...] = BOOK
) -> Plan:
    return compute_plan(the_job, snapshot(book, ticker=ticker), None, previous_reference=previous)  # type: ignore[arg-type]


def rows(plan: Plan) -> list[tuple[str, str | None, str | None]]:
    return [(a.action, a.order_id or a.level, a.reason) for a in plan.actions]


PAUSE_CASES: list[tuple[str, Ticker, Decimal | None, str | None]] = [
    ("jump up", quote("33710.00", "33730.00"), PREV,
     "placements paused: reference moved 12.4% since the last pass (limit 10%): 30000.00 → 33720.00"),
    ("jump down", quote("26980.00", "27000.00"), PREV,
     "placements paused: reference moved 10.1% since the last pass (limit 10%): 30000.00 → 26990.00"),
    ("exactly the limit", quote("32990.00", "33010.00"), PREV, None),
    ("no previous pass", quote("33710.00", "33730.00"), None, None),
    ("crossed", quote("30010.00", "30000.00"), PREV,
     "placements paused: the book is crossed (bid 30010.00 ≥ ask 30000.00)"),
    ("locked (bid = ask)", quote("30000.00", "30000.00"), None,
     "placements paused: the book is crossed (bid 30000.00 ≥ ask 30000.00)"),
    ("empty bid side", quote(None, "30010.00"), PREV,
     "placements paused: no 'mid' price to hang the ladder from (bid none, ask 30010.00, last 30000.00)"),
    ("empty book", quote(None, None, None), None,
     "placements paused: no 'mid' price to hang the ladder from (bid none, ask none, last none)"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "ticker", "previous", "paused"), PAUSE_CASES, ids=[c[0] for c in PAUSE_CASES])
def test_when_placements_pause_and_what_the_plan_says(
    name: str, ticker: Ticker, previous: Decimal | None, paused: str | None
) -> None:
    plan = plan_on(ticker, previous)
    assert plan.paused == paused
    if paused is None:
        assert plan.summary["place"] > 0
        return
    assert plan.warnings[0] == paused
    assert plan.summary["place"] == 0
    assert plan_to_json(plan)["paused"] == paused


def test_a_jump_keeps_what_stands_and_cancels_only_outside_the_last_trusted_band() -> None:
    plan = plan_on(quote("33710.00", "33730.00"))
    assert rows(plan) == [("cancel", "602", "outside_band"), ("keep", "601", None)]
    assert plan.reference_price == PREV and plan.observed_reference == D("33720")
    assert "1 owned order(s) left as they stand while placements are paused: 603" in plan.warnings


def test_a_crossed_book_with_a_previous_reference_still_cancels_outside_its_band() -> None:
    plan = plan_on(quote("30010.00", "30000.00"))
    assert rows(plan) == [("cancel", "602", "outside_band"), ("keep", "601", None)]
    assert plan.observed_reference is None and plan.reference_price == PREV


@pytest.mark.parametrize("ticker", [quote("30010.00", "30000.00"), quote(None, None, None)], ids=["crossed", "empty"])
def test_without_any_trusted_reference_nothing_is_cancelled(ticker: Ticker) -> None:
    plan = plan_on(ticker, None)
    assert plan.actions == () and not plan.has_changes
    assert plan.reference_price == 0 and plan.observed_reference is None
    assert "3 owned order(s) left as they stand while placements are paused: 601, 602, 603" in plan.warnings


def test_a_move_within_the_limit_plans_as_if_there_were_no_previous_pass() -> None:
    ticker = quote("32990.00", "33010.00")
    assert plan_to_json(plan_on(ticker)) == plan_to_json(plan_on(ticker, None))


def test_max_jump_off_never_pauses_on_a_move() -> None:
    the_job = dataclasses.replace(JOB, limits=Limits(band=pct("5"), post_only=False, max_jump=None))
    assert plan_on(quote("59990.00", "60010.00"), the_job=the_job).paused is None


def test_an_absolute_max_jump_is_in_price_units() -> None:
    the_job = dataclasses.replace(JOB, limits=Limits(band=pct("5"), post_only=False, max_jump=ab("100")))
    plan = plan_on(quote("30140.00", "30160.00"), the_job=the_job)
    why = "reference moved 150.00 since the last pass (limit 100): 30000.00 → 30150.00"
    assert plan.paused == "placements paused: " + why
    assert plan_on(quote("30090.00", "30110.00"), the_job=the_job).paused is None


def test_a_fixed_reference_never_pauses() -> None:
    the_job = dataclasses.replace(JOB, reference=Reference(ReferenceKind.FIXED, D("30000")))
    for ticker in (quote("30010.00", "30000.00"), quote(None, None, None), quote("50000.00", "50010.00")):
        plan = plan_on(ticker, D("10000"), the_job=the_job)
        assert plan.paused is None and plan.summary["place"] == 5


@pytest.mark.parametrize("ticker", [quote("30010.00", "30000.00"), quote(None, None, None)], ids=["crossed", "empty"])
def test_a_job_with_nothing_to_place_cancels_everything_on_any_book(ticker: Ticker) -> None:
    plan = plan_on(ticker, PREV, the_job=cancel_plan_job(JOB))
    assert plan.paused is None
    assert sorted(plan.cancel_ids) == ["601", "602", "603"]


def test_a_paused_plan_is_valid_json_reads_back_and_renders_its_reason() -> None:
    plan = plan_on(quote("33710.00", "33730.00"))
    data = plan_to_json(plan)
    VALIDATOR.validate(data)
    back = plan_from_json(json.loads(json.dumps(data)))
    assert back.paused == plan.paused and back.observed_reference == D("33720.00")
    text = render_text(plan, color=False)
    assert f"  {plan.paused}\n" in text and text.count("reference moved 12.4%") == 1
    assert summary_line(plan) == "Plan: 0 to place, 1 to cancel, 1 unchanged (placements paused)."
    quiet = plan_on(quote(None, None, None), None)
    VALIDATOR.validate(plan_to_json(quiet))
    assert "reference none" in render_text(quiet, color=False)
    assert summary_line(quiet) == "No changes. Placements are paused; orders are left as they stand."


def test_an_unpaused_plan_says_paused_null() -> None:
    data = plan_to_json(plan_on(quote("29990.00", "30010.00")))
    assert data["paused"] is None and data["observed_reference"] == "30000.00"
    VALIDATOR.validate(data)


# Held levels.

HOLD_BOOK = (
    order("701", B, "29740.00", "0.0100"),  # 35 from buy[1] (tolerance 29.775): would be replaced by buy[1]
    order("702", S, "40000.00", "0.0100"),  # outside the band
)


def held_plan(held: dict[str, str]) -> Plan:
    return compute_plan(JOB, snapshot(HOLD_BOOK), None, held_levels=held)


def test_a_held_level_is_not_placed_and_the_order_it_would_replace_stays() -> None:
    free = held_plan({})
    assert ("cancel", "701", "price_out_of_tolerance") in rows(free) and ("place", "buy[1]", None) in rows(free)
    plan = held_plan({"buy[1]": HELD})
    assert ("place", "buy[1]", None) not in rows(plan)
    assert ("keep", "701", None) in rows(plan) and ("cancel", "702", "outside_band") in rows(plan)
    assert f"buy[1] held back {HELD}" in plan.warnings
    assert plan.summary == {"place": 5, "cancel": 1, "keep": 1}


def test_a_held_level_never_spares_an_order_outside_the_band() -> None:
    plan = held_plan({"sell[0]": HELD, "sell[1]": HELD})
    assert ("cancel", "702", "outside_band") in rows(plan)
    assert {a.level for a in plan.actions if a.action == "place"} == {"buy[0]", "buy[1]", "buy[2]", "sell[2]"}


def test_holding_a_level_that_is_not_in_the_plan_changes_nothing_but_a_warning_free_plan() -> None:
    assert plan_to_json(held_plan({"orders[7]": HELD})) == plan_to_json(held_plan({}))


# Properties.

_price = st.integers(min_value=25_000, max_value=35_000).map(D)
_orders = st.lists(st.tuples(st.sampled_from([B, S]), _price), max_size=8).map(
    lambda rows: tuple(order(str(800 + i), s, f"{p}.00", "0.0100") for i, (s, p) in enumerate(rows))
)


@st.composite
def tickers(draw: st.DrawFn) -> Ticker:
    bid = draw(st.one_of(st.none(), _price))
    ask = draw(st.one_of(st.none(), _price))
    return Ticker(bid, ask, draw(st.one_of(st.none(), _price)))


@settings(max_examples=examples(150), deadline=None)
@given(ticker=tickers(), previous=st.one_of(st.none(), _price), book=_orders)
def test_a_paused_plan_only_ever_cancels_outside_the_trusted_band(
    ticker: Ticker, previous: Decimal | None, book: tuple[Order, ...]
) -> None:
    plan = plan_on(ticker, previous, book=book)
    if plan.paused is None:
        assert plan.observed_reference == plan.reference_price
        if previous is not None and plan.reference_price:
            assert abs(plan.reference_price - previous) <= previous / 10
        return
    assert plan.paused.startswith("placements paused: ")
    assert not plan.placements
    trusted = plan.reference_price
    if not trusted:
        assert not plan.cancel_ids
    for a in plan.actions:
        if a.action == "cancel":
            assert a.reason == "outside_band" and abs(a.price - trusted) > trusted * 5 / 100
    kept_or_cancelled = {a.order_id for a in plan.actions}
    assert kept_or_cancelled <= {o.id for o in book}


LEVELS = [f"{side}[{i}]" for side in ("buy", "sell") for i in range(3)]


@settings(max_examples=examples(150), deadline=None)
@given(book=_orders, held=st.sets(st.sampled_from(LEVELS)))
def test_held_levels_are_never_placed_and_never_add_a_cancel(book: tuple[Order, ...], held: set[str]) -> None:
    free = compute_plan(JOB, snapshot(book), None)
    plan = compute_plan(JOB, snapshot(book), None, held_levels={level: HELD for level in held})
    assert {t.level for t in plan.placements} == {t.level for t in free.placements} - held
    assert set(plan.cancel_ids) <= set(free.cancel_ids)
    assert {a.order_id for a in plan.actions if a.action != "place"} == {
        a.order_id for a in free.actions if a.action != "place"
    }
    spared = len(free.cancel_ids) - len(plan.cancel_ids)
    assert spared <= len(held & {t.level for t in free.placements})


# The max_jump key of a job file.

HEADER = "version: 1\nname: t\nsymbol: btcusdt\nladder:\n  buy: {levels: 3, first: 1%, step: 1%, size: 1}\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", Amount(D(10), percent=True)),
        ("limits: {max_jump: null}\n", Amount(D(10), percent=True)),
        ("limits: {max_jump: 2.5%}\n", Amount(D("2.5"), percent=True)),
        ("limits: {max_jump: '250'}\n", Amount(D(250))),
        ("limits: {max_jump: 0%}\n", None),
        ("limits: {max_jump: 0}\n", None),
    ],
)
def test_max_jump_in_a_job_file(write_job: Callable[[str], Path], text: str, expected: Amount | None) -> None:
    assert load_job(write_job(HEADER + text)).limits.max_jump == expected


@pytest.fixture
def write_job(tmp_path: Path) -> Callable[[str], Path]:
    def _write(text: str) -> Path:
        path = tmp_path / "job.yaml"
        path.write_text(text)
        return path

    return _write
