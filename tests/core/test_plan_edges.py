"""The Plan value at its edges: the fingerprints' exact canonical text (saved plans must verify across versions, so
the form is pinned, recomputed here from the JSON written out by hand), the action order against a reference
comparator written from the module docstring, the summary sentences, formatting past the symbol's places, batches
of one, and what compute_plan says about pending, unowned, price-limited and left-alone orders."""

from __future__ import annotations

import dataclasses
import hashlib
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.lifecycle import Lifecycle
from rebalancer.core.plan import (
    Action,
    Plan,
    compute_plan,
    draft_plan,
    finish_plan,
    order_action,
    orders_fingerprint,
    plan_fingerprint,
    summary_line,
)
from rebalancer.job import Inventory, Limits, Ownership
from rebalancer.models import Balance, Balances, Order, OrderStatus, Side, Ticker
from rebalancer.vocab import ActionKind, CancelReason, PausedBy
from tests.core.kit import job, order, pct, side_ladder, snapshot
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL


def _sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


BOOK = (
    Order("9", S, D("0.50"), D("10.00"), D("0"), OrderStatus.NEW),
    Order("10", B, D("0.4990"), D("2"), D("0.500"), OrderStatus.PARTIALLY_FILLED),
    Order("x7", B, D("1E+1"), D("0.000"), D("0.000"), OrderStatus.CANCEL_PENDING),
)


def test_the_orders_fingerprint_is_the_sha256_of_a_canonical_json_text() -> None:
    """Rows [id, side, price, volume, deal volume, status] with decimals normalised ("0" for zero), sorted, under
    the job file's hash; keys sorted, no spaces."""
    text = (
        '{"job":"h1","orders":['
        '["10","BUY","0.499","2","0.5",3],'
        '["9","SELL","0.5","10","0",1],'
        '["x7","BUY","10","0","0",5]]}'
    )
    assert orders_fingerprint("h1", BOOK) == _sha(text)
    assert orders_fingerprint("h1", ()) == _sha('{"job":"h1","orders":[]}')


def test_the_plan_fingerprint_is_the_sha256_of_the_book_fingerprint_and_the_canonical_actions() -> None:
    actions = (
        Action(ActionKind.KEEP, S, D("0.50"), D("10.00"), order_id="9", level="sell[0]"),
        Action(ActionKind.CANCEL, B, D("0.4990"), D("1.500"), order_id="10", reason=CancelReason.NOT_IN_LADDER),
        Action(ActionKind.PLACE, B, D("0.4980"), D("2.0"), level="buy[1]"),
    )
    book = orders_fingerprint("h1", BOOK)
    text = (
        '{"book":"' + book + '","actions":['
        '["cancel","BUY","0.499","1.5","10",""],'
        '["keep","SELL","0.5","10","9","sell[0]"],'
        '["place","BUY","0.498","2","","buy[1]"]]}'
    )
    assert plan_fingerprint("h1", BOOK, actions) == _sha(text)
    assert plan_fingerprint("h1", BOOK, ()) == _sha('{"book":"' + book + '","actions":[]}')


def _reference_order(actions: list[Action]) -> list[Action]:
    """The module docstring's order, applied as stable sorts from the last key to the first."""
    out = sorted(actions, key=lambda a: a.level or "")
    out = sorted(out, key=lambda a: a.order_id or "")
    # numeric ids by their value, before any other id
    out = sorted(out, key=lambda a: int(a.order_id) if (a.order_id or "").isdigit() else -1)
    out = sorted(out, key=lambda a: not (a.order_id or "").isdigit())
    # nearest the reference first: buys by descending price, sells by ascending price
    out = sorted(out, key=lambda a: a.price, reverse=False)
    buys = sorted([a for a in out if a.side is B], key=lambda a: a.price, reverse=True)
    sells = [a for a in out if a.side is S]
    grouped = []
    for kind in (ActionKind.CANCEL, ActionKind.PLACE, ActionKind.KEEP):
        grouped += [a for a in buys if a.action is kind] + [a for a in sells if a.action is kind]
    return grouped


@st.composite
def actions(draw: st.DrawFn) -> list[Action]:
    """Actions on a tiny grid of sub-1 prices, numeric and other ids, so that every tie-break is reached."""
    out = []
    for _ in range(draw(st.integers(0, 10))):
        kind = draw(st.sampled_from(list(ActionKind)))
        side = draw(st.sampled_from([B, S]))
        price = D(draw(st.integers(1, 3))) / 10
        oid = draw(st.sampled_from(["2", "10", "9", "a", "b", "010", "A"]))
        level = draw(st.sampled_from(["buy[0]", "buy[1]", "sell[0]"]))
        if kind is ActionKind.CANCEL:
            out.append(Action(kind, side, price, D(1), order_id=oid, reason=CancelReason.NOT_IN_LADDER))
        elif kind is ActionKind.PLACE:
            # a placement read back from a plan may carry an order id
            out.append(Action(kind, side, price, D(1), order_id=draw(st.sampled_from([None, oid])), level=level))
        else:
            out.append(Action(kind, side, price, D(1), order_id=oid, level=level))
    return out


@settings(max_examples=examples(200), deadline=None)
@given(actions(), st.randoms(use_true_random=False))
def test_actions_are_put_in_the_documented_order_whatever_order_they_come_in(
    given_actions: list[Action], rnd: random.Random
) -> None:
    shuffled = list(given_actions)
    rnd.shuffle(shuffled)
    got = order_action(shuffled)
    expected = _reference_order(given_actions)
    # equal actions may come in either order; compare what is there, position by position
    assert list(got) == expected


def test_order_table_ties_on_price_go_by_numeric_id_then_text_then_level() -> None:
    keep = [
        Action(ActionKind.KEEP, B, D("0.5"), D(1), order_id=oid, level=level)
        for oid, level in [("b", "buy[0]"), ("10", "buy[0]"), ("a", "buy[1]"), ("a", "buy[0]"), ("9", "buy[0]")]
    ]
    assert [(a.order_id, a.level) for a in order_action(keep)] == [
        ("9", "buy[0]"),
        ("10", "buy[0]"),
        ("a", "buy[0]"),
        ("a", "buy[1]"),
        ("b", "buy[0]"),
    ]
    places = [Action(ActionKind.PLACE, S, D("0.5"), D(1), level=lv) for lv in ("sell[1]", "sell[0]")]
    assert [a.level for a in order_action(places)] == ["sell[0]", "sell[1]"]


def _plan(actions: tuple[Action, ...] = (), paused: str | None = None, places: int = 2) -> Plan:
    return Plan("j", "s", D("0.5"), None, None, "sha256:" + "0" * 64, actions, paused=paused, price_places=places)


KEEP = Action(ActionKind.KEEP, B, D("0.5"), D(1), order_id="1", level="buy[0]")
PLACE = Action(ActionKind.PLACE, S, D("0.6"), D(1), level="sell[0]")
CANCEL = Action(ActionKind.CANCEL, S, D("0.7"), D(1), order_id="2", reason=CancelReason.OUTSIDE_BAND)


@pytest.mark.parametrize(
    ("plan", "sentence"),
    [
        (_plan(), "No changes. Open orders match the target ladder."),
        (_plan((KEEP,)), "No changes. Open orders match the target ladder."),
        (_plan((KEEP,), paused="placements paused: x"),
         "No changes. Placements are paused; orders are left as they stand."),
        (_plan((KEEP, PLACE, CANCEL)), "Plan: 1 to place, 1 to cancel, 1 unchanged."),
        (_plan((CANCEL,), paused="placements paused: x"),
         "Plan: 0 to place, 1 to cancel, 0 unchanged (placements paused)."),
        (_plan((PLACE, PLACE, KEEP)), "Plan: 2 to place, 0 to cancel, 1 unchanged."),
    ],
)  # fmt: skip
def test_summary_sentences(plan: Plan, sentence: str) -> None:
    assert summary_line(plan) == sentence


@pytest.mark.parametrize(
    ("actions", "changes"),
    [((), False), ((KEEP,), False), ((KEEP, PLACE), True), ((CANCEL,), True), ((PLACE,), True)],
)
def test_has_changes_unless_every_action_keeps(actions: tuple[Action, ...], changes: bool) -> None:
    plan = _plan(actions)
    assert plan.has_changes is changes
    assert plan.summary == {
        "place": sum(a is PLACE for a in actions),
        "cancel": sum(a is CANCEL for a in actions),
        "keep": sum(a is KEEP for a in actions),
    }


@pytest.mark.parametrize(
    ("value", "places", "shown"),
    [
        ("0.5", 2, "0.50"),
        ("0.123", 2, "0.123"),  # more places than the symbol: shown as is, never rounded
        ("0.00000001", 0, "0.00000001"),
        ("1E+30", 2, "1000000000000000000000000000000"),  # too many digits to pad: as is
        ("30000", 0, "30000"),
    ],
)
def test_formatting_pads_to_the_symbols_places_and_never_rounds(value: str, places: int, shown: str) -> None:
    plan = Plan("j", "s", D(1), None, None, "sha256:", (), price_places=places, volume_places=places)
    assert plan.format_price(D(value)) == shown and plan.format_volume(D(value)) == shown


def test_batches_of_one_and_a_batch_limit_below_one() -> None:
    plan = _plan((PLACE, CANCEL, KEEP))
    batches = plan.batches(limit=1)
    assert [(b.cancel_ids, tuple(t.level for t in b.place)) for b in batches] == [(("2",), ("sell[0]",))]
    with pytest.raises(ValueError, match=r"^batch limit must be positive$"):
        plan.batches(limit=0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"action": "move", "order_id": "1"}, "unknown action 'move'"),
        ({"action": ActionKind.KEEP, "level": "buy[0]"}, "a keep action needs an order_id"),
        ({"action": ActionKind.CANCEL, "order_id": "", "reason": CancelReason.MAX_AGE},
         "a cancel action needs an order_id"),
        ({"action": ActionKind.PLACE}, "a place action needs a level"),
        ({"action": ActionKind.KEEP, "order_id": "1", "level": ""}, "a keep action needs a level"),
        ({"action": ActionKind.CANCEL, "order_id": "1"}, "unknown cancel reason None"),
        ({"action": ActionKind.CANCEL, "order_id": "1", "reason": "because"}, "unknown cancel reason 'because'"),
    ],
)  # fmt: skip
def test_an_action_that_cannot_be_is_refused_with_its_words(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        Action(side=B, price=D(1), volume=D(1), **kwargs)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_a_cancel_reason_given_as_text_becomes_the_enum() -> None:
    action = Action(ActionKind.CANCEL, B, D(1), D(1), order_id="1", reason="max_age")  # type: ignore[arg-type]
    assert action.reason is CancelReason.MAX_AGE
    assert Action("keep", B, D(1), D(1), "1", "b[0]").action is ActionKind.KEEP  # type: ignore[arg-type]


def test_at_a_zero_price_the_side_still_puts_buys_first() -> None:
    """Cancels read back from a plan may have a zero price, where buys and sells are equally near the reference."""
    sell = Action(ActionKind.CANCEL, S, D(0), D(1), order_id="1", reason=CancelReason.NOT_IN_LADDER)
    buy = Action(ActionKind.CANCEL, B, D(0), D(1), order_id="2", reason=CancelReason.NOT_IN_LADDER)
    assert order_action([sell, buy]) == (buy, sell)


def test_placements_carrying_order_ids_sort_numeric_ids_then_none_then_text() -> None:
    """Placements read back from a plan may carry an order id: numeric ids first, then no id, then other ids."""
    bare = Action(ActionKind.PLACE, B, D("0.5"), D(1), level="buy[0]")
    named = [Action(ActionKind.PLACE, B, D("0.5"), D(1), order_id=i, level="buy[0]") for i in ("A", "7", "a")]
    assert order_action([*named, bare]) == (named[1], bare, named[0], named[2])


# compute_plan, draft_plan and finish_plan: what the plan says beyond its actions.

BOOK_30K = (
    order("1", B, "29850.00", "0.0100"),  # buy[0] exactly
    order("2", B, "29700.00", "0.0100", status=OrderStatus.CANCEL_PENDING),
    order("3", S, "30150.00", "0.0100", status=OrderStatus.CANCEL_PENDING),
    order("4", S, "31000.00", "0.0100"),  # not in the ladder
)


def test_pending_orders_are_named_in_one_warning_and_counted() -> None:
    plan = compute_plan(job(buy=side_ladder(), sell=side_ladder()), snapshot(BOOK_30K), None)
    assert "2 order(s) already pending cancellation were left alone: 2, 3" in plan.warnings
    assert plan.pending_orders == 2 and plan.unowned_orders == 0


def test_orders_not_owned_are_counted_and_invisible() -> None:
    plan = compute_plan(job(buy=side_ladder(), sell=side_ladder()), snapshot(BOOK_30K), frozenset({"1", "4"}))
    assert plan.unowned_orders == 2 and plan.pending_orders == 0
    assert [(a.action, a.order_id) for a in plan.actions if a.order_id] == [("cancel", "4"), ("keep", "1")]


def test_the_plan_carries_the_jobs_hash_ownership_and_the_observed_reference() -> None:
    the_job = dataclasses.replace(job(buy=side_ladder(levels=1)), ownership=Ownership.SYMBOL)
    plan = compute_plan(the_job, snapshot(), None)
    assert (plan.job_hash, plan.ownership) == ("abc123", Ownership.SYMBOL)
    assert plan.observed_reference == D(30000) and plan.paused is None and plan.paused_by is None


def test_a_cancel_job_hangs_from_the_market_when_it_can_read_it() -> None:
    """A job with nothing to place still reads its reference: the plan says it, and cancels every owned order."""
    plan = compute_plan(job(), snapshot(BOOK_30K[:1]), None)
    assert (plan.reference_price, plan.observed_reference) == (D(30000), D(30000))
    assert [(a.action, a.reason) for a in plan.actions] == [("cancel", CancelReason.NOT_IN_LADDER)]


def test_a_cancel_job_without_a_reference_cancels_everything_as_not_in_the_ladder_not_by_the_band() -> None:
    empty = Ticker(bid=None, ask=None, last=None)
    the_job = job(limits=Limits(band=pct("1"), post_only=False))
    plan = compute_plan(the_job, snapshot(BOOK_30K, ticker=empty), None)
    assert (plan.reference_price, plan.observed_reference, plan.paused) == (D(0), None, None)
    assert [(a.order_id, a.reason) for a in plan.actions if a.action is ActionKind.CANCEL] == [
        ("1", CancelReason.NOT_IN_LADDER),
        ("4", CancelReason.NOT_IN_LADDER),
    ]


def test_a_venue_problem_pauses_only_a_job_that_reads_another_venue() -> None:
    troubled = dataclasses.replace(snapshot(), reference_problem="the other venue is unreachable")
    plan = compute_plan(job(buy=side_ladder(levels=1)), troubled, None)
    assert plan.paused is None and len(plan.placements) == 1


def test_orders_over_max_orders_are_cancelled_as_such() -> None:
    the_job = job(buy=side_ladder(), limits=Limits(max_orders=1, post_only=False))
    plan = compute_plan(the_job, snapshot((order("5", B, "29775.00", "0.0100"),)), None)
    assert [(a.order_id, a.reason) for a in plan.actions if a.action is ActionKind.CANCEL] == [
        ("5", CancelReason.OVER_MAX_ORDERS)
    ]


SKEWED = Inventory(target_base=D(50), range=D(20))
HEAVY = Balances({"btc": Balance(D(1)), "usdt": Balance(D(20000))})  # base 60 % of the value at 30000: buys × 0.5


def test_a_paused_plan_keeps_the_orders_of_the_skewed_ladder_its_last_reference_implies() -> None:
    """The reference jumped (30000 → 40000): placements pause and the ladder hangs from 30000, with the inventory
    skew applied there too, so an order of buy[0]'s skewed size is kept, not left alone."""
    the_job = job(buy=side_ladder(levels=1), inventory=SKEWED)
    book = (order("1", B, "29850.00", "0.0050"),)
    jumped = Ticker(bid=D("39990.00"), ask=D("40010.00"), last=D("40000.00"))
    plan = compute_plan(the_job, snapshot(book, ticker=jumped, balances=HEAVY), None, previous_reference=D(30000))
    assert plan.paused is not None and plan.paused_by is PausedBy.MARKET_DATA
    assert [(a.action, a.order_id, a.level) for a in plan.actions] == [("keep", "1", "buy[0]")]
    assert plan.inventory is not None and plan.inventory.buy_factor == D("0.5")


def test_without_a_trusted_reference_there_is_no_skew() -> None:
    crossed = Ticker(bid=D("30010.00"), ask=D("29990.00"), last=None)
    plan = compute_plan(
        job(buy=side_ladder(levels=1), inventory=SKEWED), snapshot(ticker=crossed, balances=HEAVY), None
    )
    assert plan.paused is not None and plan.inventory is None and plan.actions == ()


def test_a_fill_delay_holds_a_placement_back_and_says_so_after_the_other_warnings() -> None:
    now = datetime(2026, 1, 5, 10, 41, 5, tzinfo=UTC)
    life = Lifecycle(now, fill_delay=timedelta(seconds=60), last_fill={"buy[0]": now})
    the_job = job(buy=side_ladder(levels=2))
    draft = draft_plan(the_job, snapshot(), None, held_levels={"buy[1]": "until 10:50:00"}, life=life)
    assert draft.result.place == ()
    assert len(draft.warnings) == 2 and draft.warnings[1] == "buy[0] waits until 10:42:05 UTC after a fill"
    assert "buy[1]" in draft.warnings[0]


def test_finish_plan_funds_from_the_balances_it_is_given_not_the_snapshots() -> None:
    the_job = job(buy=side_ladder(levels=3))
    draft = draft_plan(the_job, snapshot(), None)
    assert draft.needs_balances
    poor = Balances({"usdt": Balance(D("300")), "btc": Balance(D(0))})
    plan = finish_plan(draft, poor)
    assert [t.level for t in plan.placements] == ["buy[0]"]
    assert [d.level for d in plan.dropped] == ["buy[2]", "buy[1]"]
    assert len(finish_plan(draft, draft.snapshot.balances).placements) == 3
