"""refresh.max_age and after_fill.delay on a diff: table cases and a property (never more than one per side)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebalancer.core.diff import Diff
from rebalancer.core.lifecycle import Lifecycle, apply_lifecycle
from rebalancer.models import Order, Side, Target
from rebalancer.vocab import CancelReason

NOW = datetime(2026, 1, 5, 10, 41, 5, tzinfo=UTC)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _kept(level: str, side: Side, order_id: str, age: timedelta | None) -> tuple[Order, Target]:
    price = Decimal(100 - int(order_id)) if side is Side.BUY else Decimal(100 + int(order_id))
    created = None if age is None else _ms(NOW - age)
    return Order(order_id, side, price, Decimal(1), created_at=created), Target(level, side, price, Decimal(1))


def test_the_oldest_stale_order_of_each_side_is_replaced_and_no_more() -> None:
    keep = (
        _kept("buy[0]", Side.BUY, "1", timedelta(minutes=31)),
        _kept("buy[1]", Side.BUY, "2", timedelta(minutes=45)),
        _kept("buy[2]", Side.BUY, "3", timedelta(minutes=5)),
        _kept("sell[0]", Side.SELL, "4", timedelta(minutes=30, seconds=1)),
        _kept("sell[1]", Side.SELL, "5", None),
    )
    result, waits = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(minutes=30)))
    assert waits == ()
    assert [(o.id, why) for o, why in result.cancel] == [("2", CancelReason.MAX_AGE), ("4", CancelReason.MAX_AGE)]
    assert sorted(t.level for t in result.place) == ["buy[1]", "sell[0]"]
    assert [o.id for o, _ in result.keep] == ["1", "3", "5"]


def test_an_order_exactly_max_age_old_is_replaced_and_a_younger_one_is_not() -> None:
    keep = (
        _kept("buy[0]", Side.BUY, "1", timedelta(minutes=30)),
        _kept("sell[0]", Side.SELL, "2", timedelta(minutes=29)),
    )
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(minutes=30)))
    assert [o.id for o, _ in result.cancel] == ["1"]


def test_a_level_filled_within_the_delay_is_not_placed_and_says_until_when() -> None:
    place = (Target("buy[0]", Side.BUY, Decimal(99), Decimal(1)), Target("buy[1]", Side.BUY, Decimal(98), Decimal(1)))
    life = Lifecycle(
        NOW,
        fill_delay=timedelta(seconds=60),
        last_fill={"buy[0]": NOW - timedelta(seconds=0), "buy[1]": NOW - timedelta(seconds=61)},
    )
    result, waits = apply_lifecycle(Diff((), (), place), life)
    assert [t.level for t in result.place] == ["buy[1]"]
    assert [w.sentence() for w in waits] == ["buy[0] waits until 10:42:05 UTC after a fill"]
    assert waits[0].to_dict() == {
        "level": "buy[0]",
        "until": "2026-01-05T10:42:05+00:00",
        "filled_at": "2026-01-05T10:41:05+00:00",
    }


def test_a_waiting_level_is_not_refreshed_so_it_keeps_its_order() -> None:
    keep = (_kept("buy[0]", Side.BUY, "1", timedelta(hours=2)), _kept("buy[1]", Side.BUY, "2", timedelta(hours=1)))
    life = Lifecycle(NOW, max_age=timedelta(minutes=30), fill_delay=timedelta(minutes=1), last_fill={"buy[0]": NOW})
    result, _ = apply_lifecycle(Diff(keep, (), ()), life)
    assert [o.id for o, _ in result.cancel] == ["2"]


def test_without_settings_the_diff_is_unchanged() -> None:
    diff = Diff((_kept("buy[0]", Side.BUY, "1", timedelta(days=9)),), (), ())
    assert apply_lifecycle(diff, Lifecycle(NOW, last_fill={"buy[0]": NOW})) == (diff, ())


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 7200)), max_size=12))
def test_refresh_cancels_at_most_one_order_per_side_and_places_it_again(orders: list[tuple[bool, int]]) -> None:
    keep = tuple(
        _kept(f"{'buy' if buy else 'sell'}[{i}]", Side.BUY if buy else Side.SELL, str(i + 1), timedelta(seconds=age))
        for i, (buy, age) in enumerate(orders)
    )
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(minutes=30)))
    sides = [o.side for o, _ in result.cancel]
    assert len(sides) == len(set(sides)) <= 2
    assert len(result.keep) + len(result.cancel) == len(keep)
    cancelled = {c.id for c, _ in result.cancel}
    assert sorted(t.level for t in result.place) == sorted(t.level for o, t in keep if o.id in cancelled)
    for side in set(sides):
        oldest = min(o.created_at for o, _ in keep if o.side is side)
        assert [o.created_at for o, _ in result.cancel if o.side is side] == [oldest]
