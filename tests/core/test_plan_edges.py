"""The Plan value at its edges: the fingerprints' exact canonical text (saved plans must verify across versions, so
the form is pinned, recomputed here from the JSON written out by hand), the action order against a reference
comparator written from the module docstring, the summary sentences, formatting past the symbol's places, batches
of one, and what compute_plan says about pending, unowned, price-limited and left-alone orders."""

from __future__ import annotations

import hashlib
import random
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.plan import Action, Plan, order_action, orders_fingerprint, plan_fingerprint, summary_line
from rebalancer.models import Order, OrderStatus, Side
from rebalancer.vocab import ActionKind, CancelReason
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
        oid = draw(st.sampled_from(["2", "10", "9", "a", "b", "010"]))
        level = draw(st.sampled_from(["buy[0]", "buy[1]", "sell[0]"]))
        if kind is ActionKind.CANCEL:
            out.append(Action(kind, side, price, D(1), order_id=oid, reason=CancelReason.NOT_IN_LADDER))
        elif kind is ActionKind.PLACE:
            out.append(Action(kind, side, price, D(1), level=level))
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
