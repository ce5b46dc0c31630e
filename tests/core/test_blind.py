"""core.blind: when a job is blind (``limits.max_blind``), when it enters and leaves blindness, what its plan says;
and the guards' pause for a ticker that could not be read (``MarketSnapshot.market_problem``)."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import jsonschema
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.cli.render import render_text
from rebalancer.core.blind import Blind, Sight, Turn, blindness, turn
from rebalancer.core.plan import compute_plan
from rebalancer.core.plan_codec import plan_from_json, plan_to_json
from rebalancer.job import Job, Limits, OnBlind, Reference, ReferenceKind
from rebalancer.models import Side, Ticker
from rebalancer.vocab import PausedBy
from tests.core.kit import D, job, order, pct, side_ladder, snapshot

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
EMPTY = Ticker(None, None, None)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def blind_job(max_blind: str | None = "30", on_blind: OnBlind = OnBlind.KEEP) -> Job:
    limits = Limits(band=pct("5"), post_only=False, on_blind=on_blind)
    limits = dataclasses.replace(limits, max_blind_seconds=None if max_blind is None else D(max_blind))
    return job(buy=side_ladder(), sell=side_ladder(), limits=limits)


BLINDNESS = [
    # name, max_blind, sight, sees now, now (s), expected (since, seconds, seen) or None
    ("no max_blind", None, Sight(at(0), at(0), at(0)), False, 999, None),
    ("sees a price now", "30", Sight(at(0), at(0), at(0)), True, 999, None),
    ("under max_blind", "30", Sight(at(0), at(20), at(0)), False, 29.999, None),
    ("exactly max_blind", "30", Sight(at(0), at(20), at(0)), False, 30, (at(0), 30, True)),
    ("past it, seconds rounded down", "30", Sight(at(0), at(20), at(0)), False, 45.9, (at(0), 45, True)),
    ("counted from the last price seen", "30", Sight(at(100), at(120), at(0)), False, 129, None),
    ("never seen: from the first pass", "30", Sight(None, at(20), at(5)), False, 35, (at(5), 30, False)),
    ("no pass recorded: from now", "30", Sight(), False, 10, None),
    ("a fraction of a second", "0.5", Sight(at(0), at(0), at(0)), False, 0.5, (at(0), 0, True)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "max_blind", "sight", "sees", "now", "expected"), BLINDNESS, ids=[c[0] for c in BLINDNESS]
)
def test_blindness(
    name: str, max_blind: str | None, sight: Sight, sees: bool, now: float, expected: tuple[datetime, int, bool] | None
) -> None:
    found = blindness(blind_job(max_blind), sight, sees, at(now))
    if expected is None:
        assert found is None
    else:
        assert found is not None and (found.since, found.seconds, found.seen) == expected
        assert found.max_blind == D(max_blind or "0") and found.on_blind is OnBlind.KEEP


TURNS = [
    # name, sight of the newest recorded pass, blind now, expected
    ("blind after a pass that saw a price", Sight(at(0), at(0), at(0)), True, Turn.ENTERED),
    ("blind after a pass not yet blind", Sight(at(0), at(20), at(0)), True, Turn.ENTERED),
    ("blind after a blind pass", Sight(at(0), at(30), at(0)), True, None),
    ("sees after a blind pass", Sight(at(0), at(30), at(0)), False, Turn.LEFT),
    ("sees after a pass short of blind", Sight(at(0), at(29), at(0)), False, None),
    ("first pass of the job", Sight(), False, None),
    ("never saw, the last pass blind", Sight(None, at(40), at(0)), True, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "sight", "is_blind", "expected"), TURNS, ids=[c[0] for c in TURNS])
def test_turn(name: str, sight: Sight, is_blind: bool, expected: Turn | None) -> None:
    blind = Blind(at(0), 40, D(30), OnBlind.KEEP) if is_blind else None
    assert turn(blind_job("30"), sight, blind) is expected
    assert turn(blind_job(None), sight, blind) is None


@given(
    max_blind=st.integers(1, 60),
    steps=st.lists(st.tuples(st.integers(1, 40), st.booleans()), min_size=1, max_size=40),
)
def test_over_any_run_of_passes_entering_and_leaving_alternate_and_match_the_blind_streaks(
    max_blind: int, steps: list[tuple[int, bool]]
) -> None:
    """Passes at increasing times, each seeing a price or not, with the store's sight kept as the store keeps it:
    a pass is blind exactly when it sees nothing ``max_blind`` after the last price (or the first pass), each
    streak of blind passes is entered once, and left once when a price is seen again."""
    the_job = blind_job(str(max_blind))
    sight, now, turns, streaks, was = Sight(), at(0), [], 0, False
    for gap, sees in steps:
        now += timedelta(seconds=gap)
        blind = blindness(the_job, sight, sees, now)
        since = sight.seen_at or sight.first_pass or now
        assert (blind is not None) == (not sees and (now - since).total_seconds() >= max_blind)
        if blind is not None:
            assert blind.seconds >= max_blind and blind.since == since
        streaks += blind is not None and not was
        turned = turn(the_job, sight, blind)
        if turned is not None:
            turns.append(turned)
        was = blind is not None
        sight = Sight(now if sees else sight.seen_at, now, sight.first_pass or now)
    assert turns[::2] == [Turn.ENTERED] * len(turns[::2]) and Turn.ENTERED not in turns[1::2]
    assert turns.count(Turn.ENTERED) == streaks


def test_the_sentence_and_the_json_of_each_on_blind() -> None:
    cancel = Blind(at(0), 45, D(30), OnBlind.CANCEL)
    assert cancel.sentence() == (
        "blind for 45s: no trusted price since 2026-03-01 12:00:00 UTC; "
        "orders cancelled, nothing placed until prices return (on_blind: cancel)"
    )
    keep = Blind(at(0), 45, D("30.5"), OnBlind.KEEP, seen=False)
    assert keep.sentence() == (
        "blind for 45s: no trusted price since the job's first pass at 2026-03-01 12:00:00 UTC; "
        "orders left as they stand, nothing placed until prices return (on_blind: keep)"
    )
    assert keep.to_dict() == {
        "since": "2026-03-01T12:00:00+00:00", "seen": False, "seconds": 45, "max_blind": "30.5", "on_blind": "keep",
    }  # fmt: skip


BOOK = (order("601", Side.BUY, "29850.00", "0.0100"), order("602", Side.SELL, "40000.00", "0.0100"))
UNREAD = "the market data could not be read (get_ticker: HTTP 500)"


@pytest.mark.parametrize(
    "reference", [Reference(ReferenceKind.MID), Reference(ReferenceKind.FIXED, D("30000"))], ids=["mid", "fixed"]
)
def test_a_ticker_that_could_not_be_read_pauses_placements_and_observes_no_price(reference: Reference) -> None:
    the_job = dataclasses.replace(blind_job(), reference=reference)
    unread = dataclasses.replace(snapshot(BOOK, ticker=EMPTY), market_problem=UNREAD)
    plan = compute_plan(the_job, unread, None, previous_reference=D("30000.00"))
    assert plan.paused == "placements paused: " + UNREAD and plan.paused_by is PausedBy.MARKET_DATA
    assert plan.observed_reference is None and plan.summary["place"] == 0
    assert plan.cancel_ids == ("602",), "only what is outside the band of the last trusted reference"
    read = compute_plan(the_job, snapshot(BOOK), None, previous_reference=D("30000.00"))
    assert read.paused is None and read.observed_reference == D("30000.00")


def test_a_blind_plan_is_valid_json_says_so_in_text_once_and_its_json_reads_back() -> None:
    unread = dataclasses.replace(snapshot(BOOK, ticker=EMPTY), market_problem=UNREAD)
    paused = compute_plan(blind_job(), unread, None, previous_reference=D("30000.00"))
    assert "blind" not in plan_to_json(paused), "a plan that is not blind has no blind key"
    blind = Blind(at(0), 45, D(30), OnBlind.KEEP)
    plan = dataclasses.replace(paused, blind=blind, warnings=(blind.sentence(), *paused.warnings))
    data = plan_to_json(plan)
    VALIDATOR.validate(data)
    assert data["blind"]["seconds"] == 45 and data["paused_by"] == "market_data"
    text = render_text(plan, color=False)
    assert text.count("blind for 45s") == 1 and f"  {blind.sentence()}\n" in text
    assert plan_from_json(json.loads(json.dumps(data))).fingerprint == plan.fingerprint
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate({**data, "blind": {**data["blind"], "on_blind": "sometimes"}})
    assert Decimal(data["blind"]["max_blind"]) == 30


def test_a_job_that_places_nothing_is_never_blind_and_never_turns() -> None:
    """``rebalancer cancel`` plans with an empty target: it cancels everything whatever the market says."""
    empty = dataclasses.replace(blind_job(), buy=None, sell=None, orders=())
    long_ago = Sight(at(0), at(100), at(0))
    assert blindness(empty, long_ago, False, at(200)) is None
    assert turn(empty, long_ago, None) is None and turn(blind_job(), long_ago, None) is Turn.LEFT
