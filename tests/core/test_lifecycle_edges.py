"""lifecycle at its boundaries: a fill exactly ``delay`` ago, an order a millisecond either side of ``max_age``, ties
on the creation time broken by id (numerically), a diff that already cancels and places, waits listed in level order,
times in another time zone; and a property against a brute-force model of refresh and after_fill together."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.diff import Diff
from rebalancer.core.lifecycle import Lifecycle, Wait, apply_lifecycle, waiting_levels
from rebalancer.models import Order, Side, Target
from rebalancer.vocab import CancelReason
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
NOW = datetime(2026, 1, 5, 10, 41, 5, tzinfo=UTC)
NOW_MS = int(NOW.timestamp() * 1000)
HOUR = 3_600_000


def _kept(level: str, side: Side, oid: str, created: int | None) -> tuple[Order, Target]:
    price = D("0.5") if side is B else D("0.6")
    return Order(oid, side, price, D(1), created_at=created), Target(level, side, price, D(1))


def _target(level: str, side: Side = B) -> Target:
    return Target(level, side, D("0.5") if side is B else D("0.6"), D(1))


@pytest.mark.parametrize(("ago", "waits"), [(59_999, True), (60_000, False), (60_001, False)])
def test_a_level_waits_strictly_less_than_the_delay_after_its_fill(ago: int, waits: bool) -> None:
    filled = NOW - timedelta(milliseconds=ago)
    life = Lifecycle(NOW, fill_delay=timedelta(seconds=60), last_fill={"buy[0]": filled})
    assert waiting_levels(life) == ({"buy[0]": Wait("buy[0]", filled + timedelta(seconds=60), filled)} if waits else {})
    result, held = apply_lifecycle(Diff((), (), (_target("buy[0]"),)), life)
    assert [t.level for t in result.place] == ([] if waits else ["buy[0]"])
    assert len(held) == int(waits)


def test_without_a_delay_no_level_waits() -> None:
    assert waiting_levels(Lifecycle(NOW, max_age=timedelta(1), last_fill={"buy[0]": NOW})) == {}


@pytest.mark.parametrize(("age_ms", "replaced"), [(HOUR - 1, False), (HOUR, True), (HOUR + 1, True)])
def test_an_order_is_stale_from_exactly_max_age_to_the_millisecond(age_ms: int, replaced: bool) -> None:
    keep = (_kept("buy[0]", B, "5", NOW_MS - age_ms),)
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(hours=1)))
    assert [o.id for o, _ in result.cancel] == (["5"] if replaced else [])
    assert [t.level for t in result.place] == (["buy[0]"] if replaced else [])
    assert len(result.keep) == (0 if replaced else 1)


def test_sub_millisecond_now_is_cut_to_the_millisecond() -> None:
    """``now`` has microseconds; the exchange's creation times are whole milliseconds."""
    now = NOW + timedelta(microseconds=999)
    keep = (_kept("buy[0]", B, "5", NOW_MS - HOUR),)
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(now, max_age=timedelta(hours=1)))
    assert [o.id for o, _ in result.cancel] == ["5"]


def test_on_equal_creation_times_the_smaller_numeric_id_is_replaced() -> None:
    created = NOW_MS - 2 * HOUR
    keep = (
        _kept("buy[0]", B, "10", created),
        _kept("buy[1]", B, "9", created),
        _kept("buy[2]", B, "11", created),
        _kept("sell[0]", S, "200", created),
        _kept("sell[1]", S, "30", created),
    )
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(hours=1)))
    assert [o.id for o, _ in result.cancel] == ["9", "30"]
    assert [t.level for t in result.place] == ["buy[1]", "sell[1]"]
    assert [o.id for o, _ in result.keep] == ["10", "11", "200"]


def test_the_oldest_wins_over_a_smaller_id_and_a_newer_order_does_not_replace_an_older_one() -> None:
    keep = (
        _kept("buy[0]", B, "1", NOW_MS - 2 * HOUR),
        _kept("buy[1]", B, "2", NOW_MS - 3 * HOUR),
        _kept("buy[2]", B, "3", NOW_MS - 2 * HOUR - 1),
    )
    result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(hours=1)))
    assert [o.id for o, _ in result.cancel] == ["2"]


def test_refresh_adds_to_what_the_diff_already_cancels_and_places() -> None:
    old = Order("70", S, D("0.9"), D(1))
    keep = (_kept("buy[0]", B, "1", NOW_MS - 2 * HOUR), _kept("sell[0]", S, "2", NOW_MS))
    diff = Diff(keep, ((old, CancelReason.NOT_IN_LADDER),), (_target("sell[3]", S),), (Order("71", B, D(1), D(1)),))
    result, waits = apply_lifecycle(diff, Lifecycle(NOW, max_age=timedelta(hours=1)))
    assert result.cancel == ((old, CancelReason.NOT_IN_LADDER), (keep[0][0], CancelReason.MAX_AGE))
    assert result.place == (_target("sell[3]", S), keep[0][1])
    assert result.keep == (keep[1],) and result.pending == diff.pending and waits == ()


def test_waits_are_listed_in_level_order_and_other_placements_go_ahead() -> None:
    life = Lifecycle(
        NOW,
        fill_delay=timedelta(minutes=5),
        last_fill={"sell[0]": NOW, "buy[1]": NOW - timedelta(minutes=1), "buy[9]": NOW},
    )
    place = (_target("sell[0]", S), _target("buy[2]"), _target("buy[1]"))
    result, waits = apply_lifecycle(Diff((), (), place), life)
    assert [w.level for w in waits] == ["buy[1]", "sell[0]"]
    assert result.place == (_target("buy[2]"),)


def test_a_refreshed_level_that_waits_is_neither_cancelled_nor_held() -> None:
    """A waiting level's order is not refreshed; another side's stale order is, and its re-placement goes ahead."""
    keep = (_kept("buy[0]", B, "1", NOW_MS - 2 * HOUR), _kept("sell[0]", S, "2", NOW_MS - 2 * HOUR))
    life = Lifecycle(NOW, max_age=timedelta(hours=1), fill_delay=timedelta(minutes=1), last_fill={"buy[0]": NOW})
    result, waits = apply_lifecycle(Diff(keep, (), ()), life)
    assert [o.id for o, _ in result.cancel] == ["2"] and [t.level for t in result.place] == ["sell[0]"]
    assert waits == ()


def test_a_wait_speaks_utc_to_the_second_whatever_zone_it_was_given_in() -> None:
    zone = timezone(timedelta(hours=-5))
    wait = Wait(
        "orders[2]", datetime(2026, 1, 5, 5, 42, 5, 750000, tzinfo=zone), datetime(2026, 1, 5, 5, 41, 5, 1, zone)
    )
    assert wait.sentence() == "orders[2] waits until 10:42:05 UTC after a fill"
    assert wait.to_dict() == {
        "level": "orders[2]",
        "until": "2026-01-05T10:42:05+00:00",
        "filled_at": "2026-01-05T10:41:05+00:00",
    }


@settings(max_examples=examples(100), deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from([None, 0, 1, 2, 3]), st.integers(1, 30)), max_size=8),
    st.lists(st.tuples(st.booleans(), st.integers(0, 9)), max_size=4),
    st.dictionaries(st.sampled_from([f"{s}[{i}]" for s in ("buy", "sell") for i in range(10)]), st.integers(0, 4)),
)
def test_refresh_and_after_fill_match_a_brute_force_model(
    kept: list[tuple[bool, int | None, int]],
    placed: list[tuple[bool, int]],
    filled_minutes_ago: dict[str, int],
) -> None:
    """Kept orders on levels ``buy[0..]``/``sell[0..]`` created 0 to 3 hours ago (or at an unknown time) with random
    ids, placements on levels ``buy[10..]``/``sell[10..]`` , fills 0 to 4 minutes ago, max_age 1 hour, delay 2
    minutes. The model: a level waits when its fill is less than 2 minutes old; per side, the stale kept orders of
    levels that do not wait are sorted by (creation time, numeric id) and the first is replaced; then every
    placement of a waiting level is held back."""
    keep = []
    ids: set[int] = set()
    for i, (buy, hours, oid) in enumerate(kept):
        if oid in ids:
            continue
        ids.add(oid)
        side = B if buy else S
        created = None if hours is None else NOW_MS - hours * HOUR
        keep.append(_kept(f"{side.value.lower()}[{i}]", side, str(oid), created))
    place = tuple(_target(f"{'buy' if buy else 'sell'}[{10 + k}]", B if buy else S) for buy, k in placed)
    place = tuple({t.level: t for t in place}.values())
    last_fill = {level: NOW - timedelta(minutes=m) for level, m in filled_minutes_ago.items()}
    life = Lifecycle(NOW, max_age=timedelta(hours=1), fill_delay=timedelta(minutes=2), last_fill=last_fill)
    result, waits = apply_lifecycle(Diff(tuple(keep), (), place), life)

    waiting = {level for level, m in filled_minutes_ago.items() if m < 2}
    chosen = []
    for side in (B, S):
        stale = [
            (o.created_at, int(o.id), o, t)
            for o, t in keep
            if o.side is side and o.created_at is not None and o.created_at <= NOW_MS - HOUR and t.level not in waiting
        ]
        if stale:
            chosen.append(min(stale, key=lambda row: row[:2]))
    assert sorted(o.id for o, _ in result.cancel) == sorted(row[2].id for row in chosen)
    assert all(why is CancelReason.MAX_AGE for _, why in result.cancel)
    assert [pair for pair in result.keep] == [pair for pair in keep if pair not in [row[2:] for row in chosen]]
    expected_place = [t for t in place if t.level not in waiting] + [row[3] for row in chosen]
    assert sorted(t.level for t in result.place) == sorted(t.level for t in expected_place)
    assert [w.level for w in waits] == sorted(t.level for t in place if t.level in waiting)
    for w in waits:
        assert w.until == last_fill[w.level] + timedelta(minutes=2) and w.filled_at == last_fill[w.level]


def test_times_are_utc_whatever_the_machines_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "IST-05:30")  # POSIX form: no tz database needed
    time.tzset()
    try:
        wait = Wait("buy[0]", NOW + timedelta(minutes=1), NOW)
        assert wait.sentence() == "buy[0] waits until 10:42:05 UTC after a fill"
        assert wait.to_dict() == {
            "level": "buy[0]",
            "until": "2026-01-05T10:42:05+00:00",
            "filled_at": "2026-01-05T10:41:05+00:00",
        }
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize(
    ("ids", "replaced"),
    [
        (("1", "abc"), "abc"),  # an id that is not a number ranks as 0, before every positive id
        (("abc", "abd"), "abc"),  # then by its text
        (("A", "0"), "0"),  # a numeric 0 before any text id
        (("9", "10"), "9"),
    ],
)
def test_ties_on_the_creation_time_are_broken_by_id_whatever_the_ids(ids: tuple[str, str], replaced: str) -> None:
    created = NOW_MS - 2 * HOUR
    for order_ids in (ids, ids[::-1]):
        keep = tuple(_kept(f"buy[{i}]", B, oid, created) for i, oid in enumerate(order_ids))
        result, _ = apply_lifecycle(Diff(keep, (), ()), Lifecycle(NOW, max_age=timedelta(hours=1)))
        assert [o.id for o, _ in result.cancel] == [replaced]
