"""fills.learn_fills, Fill.to_dict and filled_by_side: tables at the exact boundaries (a deal volume unchanged, grown,
shrunk; an order gone, unreadable, listed open again) and properties against a per-order model and over several
passes (the fills of an order add up to what its deal volume grew by, whatever the passes saw)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.fills import Fill, Learnt, Seen, filled_by_side, learn_fills
from rebalancer.models import Order, OrderStatus, Side
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
NOW = datetime(2026, 1, 5, 10, 41, 5, tzinfo=UTC)


def _open(oid: str, side: Side, price: str, volume: str, deal: str) -> Order:
    status = OrderStatus.PARTIALLY_FILLED if D(deal) > 0 else OrderStatus.NEW
    return Order(oid, side, D(price), D(volume), D(deal), status)


def _gone(oid: str, side: Side, price: str, volume: str, deal: str, status: OrderStatus) -> Order:
    return Order(oid, side, D(price), D(volume), D(deal), status)


def test_an_order_seen_for_the_first_time_is_watched_from_its_deal_volume_and_brings_no_fill() -> None:
    learnt = learn_fills({}, [_open("7", B, "0.00012345", "3", "1.5")], {}, NOW)
    assert learnt == Learnt((), (Seen("7", B, D("0.00012345"), D("1.5"), volume=D("3")),), (), {})


def test_an_unchanged_deal_volume_is_no_fill_and_a_grown_one_is_a_fill_of_the_difference() -> None:
    watched = {
        "1": Seen("1", B, D("0.5"), D("0.25"), "buy[0]"),
        "2": Seen("2", S, D("0.7"), D("0.25"), "sell[0]"),
    }
    orders = [_open("1", B, "0.5", "1", "0.25"), _open("2", S, "0.7", "1", "0.2500001")]
    learnt = learn_fills(watched, orders, {}, NOW)
    assert learnt.fills == (Fill("2", S, D("0.7"), D("0.0000001"), D("0.2500001"), NOW, "sell[0]"),)
    assert learnt.watch == (
        Seen("1", B, D("0.5"), D("0.25"), "buy[0]", D("1")),
        Seen("2", S, D("0.7"), D("0.2500001"), "sell[0]", D("1")),
    )
    assert learnt.forget == () and learnt.previous == watched


def test_a_deal_volume_that_went_backwards_is_no_fill_and_the_watch_keeps_the_larger_one() -> None:
    """A lagging list may show less than was already learnt: nothing is unlearnt, and the fill is not learnt twice."""
    watched = {"1": Seen("1", B, D("100"), D("0.4"), "buy[1]")}
    first = learn_fills(watched, [_open("1", B, "100", "1", "0.1")], {}, NOW)
    assert first.fills == () and first.watch == (Seen("1", B, D("100"), D("0.4"), "buy[1]", D("1")),)
    again = learn_fills({s.order_id: s for s in first.watch}, [_open("1", B, "100", "1", "0.4")], {}, NOW)
    assert again.fills == ()


def test_the_watch_keeps_the_side_price_and_level_it_learnt_first() -> None:
    """What the fill says comes from the watch (the price the job placed), not from the order as listed now."""
    watched = {"1": Seen("1", B, D("99.5"), D("0"), "orders[3]")}
    learnt = learn_fills(watched, [_open("1", B, "99.4", "2", "0.5")], {}, NOW)
    assert learnt.fills == (Fill("1", B, D("99.5"), D("0.5"), D("0.5"), NOW, "orders[3]"),)
    assert learnt.watch == (Seen("1", B, D("99.5"), D("0.5"), "orders[3]", D("2")),)


def test_an_order_that_left_the_book_filled_is_learnt_and_forgotten() -> None:
    watched = {"1": Seen("1", S, D("0.9"), D("0.1"), "sell[2]"), "2": Seen("2", S, D("0.95"), D("0"), None)}
    left = {
        "1": _gone("1", S, "0.9", "1", "1", OrderStatus.FILLED),
        "2": _gone("2", S, "0.95", "1", "0", OrderStatus.CANCELLED),
    }
    learnt = learn_fills(watched, [], left, NOW)
    assert learnt.fills == (Fill("1", S, D("0.9"), D("0.9"), D("1"), NOW, "sell[2]"),)
    assert learnt.watch == () and learnt.forget == ("1", "2")


def test_an_order_whose_info_could_not_be_read_stays_watched_unchanged() -> None:
    seen = Seen("1", B, D("10"), D("0.3"), "buy[0]")
    learnt = learn_fills({"1": seen}, [], {}, NOW)
    assert learnt == Learnt((), (seen,), (), {"1": seen})
    assert learn_fills({"1": seen}, [], {"1": None}, NOW) == learnt


def test_an_order_missing_from_the_list_but_open_by_its_info_is_learnt_and_kept_watching() -> None:
    watched = {"1": Seen("1", B, D("10"), D("0.3"), "buy[0]"), "2": Seen("2", B, D("9"), D("0.5"), "buy[1]")}
    left = {
        "1": _gone("1", B, "10", "1", "0.6", OrderStatus.PARTIALLY_FILLED),
        "2": _gone("2", B, "9", "1", "0.2", OrderStatus.NEW),  # lagging: less than learnt
    }
    learnt = learn_fills(watched, [], left, NOW)
    assert learnt.fills == (Fill("1", B, D("10"), D("0.3"), D("0.6"), NOW, "buy[0]"),)
    assert learnt.watch == (
        Seen("1", B, D("10"), D("0.6"), "buy[0]", D("1")),
        Seen("2", B, D("9"), D("0.5"), "buy[1]", D("1")),
    )
    assert learnt.forget == ()


def test_a_row_filled_beyond_its_volume_is_refused_and_nothing_is_learnt_from_it() -> None:
    """Listed or by its info: more filled than the row's volume, or than the volume the order had when first
    seen (a row that grew its volume), is an exchange error for that order; it stays watched as it was."""
    watched = {
        "1": Seen("1", B, D("10"), D("0.1"), "buy[0]", D("1")),
        "2": Seen("2", S, D("11"), D("0"), "sell[0]", D("1")),
        "3": Seen("3", S, D("12"), D("0"), "sell[1]"),
    }
    listed = [_open("1", B, "10", "1", "1.0000001"), _open("2", S, "11", "50", "50"), _open("4", B, "9", "1", "2")]
    left = {"3": _gone("3", S, "12", "1", "100", OrderStatus.FILLED)}
    learnt = learn_fills(watched, listed, left, NOW)
    assert learnt.fills == () and learnt.forget == ()
    assert learnt.watch == (watched["1"], watched["2"], watched["3"]), "order 4 is not watched from a false row"
    assert learnt.refused == (
        "exchange error: order 1 reports 1.0000001 filled of its volume 1; no fill is learnt from it",
        "exchange error: order 2 reports 50 filled of its volume 1; no fill is learnt from it",
        "exchange error: order 4 reports 2 filled of its volume 1; no fill is learnt from it",
        "exchange error: order 3 reports 100 filled of its volume 1; no fill is learnt from it",
    )
    exact = learn_fills(watched, [_open("1", B, "10", "1", "1")], {}, NOW)
    assert exact.refused == () and exact.fills == (Fill("1", B, D("10"), D("0.9"), D("1"), NOW, "buy[0]"),)


def test_fills_of_listed_orders_come_before_fills_of_orders_that_left() -> None:
    watched = {"9": Seen("9", S, D("2"), D("0")), "1": Seen("1", B, D("1"), D("0"))}
    learnt = learn_fills(
        watched, [_open("1", B, "1", "1", "0.5")], {"9": _gone("9", S, "2", "1", "1", OrderStatus.FILLED)}, NOW
    )
    assert [(f.order_id, f.volume) for f in learnt.fills] == [("1", D("0.5")), ("9", D("1"))]
    assert [s.order_id for s in learnt.watch] == ["1"] and learnt.forget == ("9",)


def test_a_fill_as_json_has_text_decimals_and_a_utc_time_to_the_second() -> None:
    at = datetime(2026, 1, 5, 12, 41, 5, 987654, tzinfo=timezone(timedelta(hours=2)))
    fill = Fill("42", S, D("0.00000001"), D("1E-8"), D("12.50"), at, "sell[1]")
    assert fill.to_dict() == {
        "order_id": "42",
        "side": "SELL",
        "price": "0.00000001",
        "volume": "0.00000001",
        "deal_volume": "12.50",
        "level": "sell[1]",
        "at": "2026-01-05T10:41:05+00:00",
    }
    assert Fill("1", B, D("3"), D("1"), D("1"), NOW).to_dict()["level"] is None


def test_filled_by_side_adds_each_side_and_leaves_a_side_without_fills_out() -> None:
    fills = [
        Fill("1", B, D("1"), D("0.1"), D("0.1"), NOW),
        Fill("2", S, D("2"), D("0.25"), D("0.25"), NOW),
        Fill("1", B, D("1"), D("0.02"), D("0.12"), NOW),
    ]
    assert filled_by_side(fills) == {"BUY": D("0.12"), "SELL": D("0.25")}
    assert filled_by_side(fills[1:2]) == {"SELL": D("0.25")}
    assert filled_by_side([]) == {}


# Per pass, each order's deal volume as the book shows it, or where it is: 'open' (listed), 'left' (info read:
# filled/cancelled), 'lag' (info read: still open), 'unread' (no info).
_where = st.sampled_from(["open", "left", "lag", "unread"])


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([B, S]), st.lists(st.tuples(st.integers(0, 40), _where), min_size=1, max_size=6)),
        min_size=1,
        max_size=5,
    )
)
def test_over_several_passes_an_orders_fills_add_up_to_how_far_its_deal_volume_grew(
    histories: list[tuple[Side, list[tuple[int, str]]]],
) -> None:
    """Each pass shows every order somewhere with some deal volume (which may lag behind an earlier one). Whatever
    the passes saw, the fills learnt for an order add up to the largest deal volume shown after its first sighting
    minus the one it was first seen with, every fill is positive and brings the order to a new maximum, and an order
    is forgotten exactly when it is read as gone."""
    passes = max(len(h) for _, h in histories)
    watched: dict[str, Seen] = {}
    forgotten: set[str] = set()
    got: dict[str, list[Fill]] = {str(i): [] for i in range(len(histories))}
    first_seen: dict[str, int] = {}
    best: dict[str, int] = {}
    for k in range(passes):
        listed: list[Order] = []
        left: dict[str, Order | None] = {}
        for i, (side, history) in enumerate(histories):
            oid = str(i)
            if oid in forgotten or k >= len(history):
                continue
            deal, where = history[k]
            if oid not in watched and where != "open":
                continue  # never listed yet: the job does not know it
            volume = D(deal) / 100
            if where == "open":
                listed.append(Order(oid, side, D("0.5"), D(1), volume, OrderStatus.NEW))
            elif where == "left":
                left[oid] = Order(oid, side, D("0.5"), D(1), volume, OrderStatus.FILLED)
            elif where == "lag":
                left[oid] = Order(oid, side, D("0.5"), D(1), volume, OrderStatus.PARTIALLY_FILLED)
            else:
                left[oid] = None
            if where != "unread":
                if oid not in first_seen:
                    first_seen[oid] = deal
                best[oid] = max(best.get(oid, deal), deal)
        learnt = learn_fills(watched, listed, left, NOW + timedelta(seconds=k))
        assert learnt.previous == watched
        for fill in learnt.fills:
            assert fill.volume > 0
            previous = sum((f.volume for f in got[fill.order_id]), D(0))
            assert fill.deal_volume == D(first_seen[fill.order_id]) / 100 + previous + fill.volume
            got[fill.order_id].append(fill)
        gone = {oid for oid, info in left.items() if info is not None and not info.is_open}
        assert set(learnt.forget) == gone
        forgotten |= gone
        watched = {s.order_id: s for s in learnt.watch}
        assert len(watched) == len(learnt.watch)
        assert not (set(watched) & forgotten)
    for oid, deal in first_seen.items():
        assert sum((f.volume for f in got[oid]), D(0)) == D(best[oid] - deal) / 100


def test_every_listed_order_is_looked_at_whatever_comes_before_it() -> None:
    """A new order first in the list, a watched one listed first among the watched: neither hides the others."""
    watched = {"1": Seen("1", B, D("1"), D("0")), "2": Seen("2", S, D("2"), D("0"))}
    learnt = learn_fills(
        watched,
        [_open("5", B, "0.9", "1", "0"), _open("1", B, "1", "1", "0.25")],
        {"2": _gone("2", S, "2", "1", "1", OrderStatus.FILLED)},
        NOW,
    )
    assert [(f.order_id, f.volume) for f in learnt.fills] == [("1", D("0.25")), ("2", D("1"))]
    assert [s.order_id for s in learnt.watch] == ["5", "1"] and learnt.forget == ("2",)


def test_times_are_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "IST-05:30")  # POSIX form: no tz database needed
    time.tzset()
    try:
        assert Fill("1", B, D(1), D(1), D(1), NOW).to_dict()["at"] == "2026-01-05T10:41:05+00:00"
    finally:
        monkeypatch.undo()
        time.tzset()
