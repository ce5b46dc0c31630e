"""The fills watch list is written as a delta: the table after a pass equals the one the full rewrite left.

A pass used to delete and re-insert every watched order of its job; now the tracker passes only the rows that
changed (``watch_change``) and the store forgets and upserts only those. Hypothesis draws a stored watch list and a
pass's learnt changes; both writes run on the same store (SQLite, and PostgreSQL when reachable), each on its own
job, and the two jobs' watch tables must match.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from rebalancer.core.fills import Learnt, Seen
from rebalancer.core.plan import Action, Plan
from rebalancer.engine.executor import OrderOutcome
from rebalancer.engine.tracker import seen_placed, watch_change
from rebalancer.models import Side, format_decimal
from rebalancer.state import schema as t
from rebalancer.state.records import to_ms
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, OutcomeStatus

T0 = datetime(2026, 3, 1, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 3, 1, 10, 1, tzinfo=UTC)
_IDS = st.sampled_from([str(i) for i in range(1, 13)])
_AMOUNT = st.sampled_from([Decimal(0), Decimal("0.5"), Decimal("1"), Decimal("2")])
_LEVEL = st.sampled_from([None, "buy[1]", "sell[2]"])


@st.composite
def _seen(draw: st.DrawFn, order_id: str) -> Seen:
    side = draw(st.sampled_from([Side.BUY, Side.SELL]))
    volume = draw(st.sampled_from([None, Decimal("2"), Decimal("3")]))
    return Seen(order_id, side, Decimal("100"), draw(_AMOUNT), draw(_LEVEL), volume)


@st.composite
def _pass(draw: st.DrawFn) -> tuple[dict[str, Seen], Learnt, Plan, tuple[OrderOutcome, ...]]:
    ids = draw(st.lists(_IDS, unique=True, max_size=8))
    stored = {i: draw(_seen(i)) for i in ids}
    watch: list[Seen] = []
    forget: list[str] = []
    for order_id, seen in stored.items():
        fate = draw(st.sampled_from(["same", "deal", "level", "forget"]))
        if fate == "forget":
            forget.append(order_id)
        elif fate == "deal":
            watch.append(dataclasses.replace(seen, deal_volume=seen.deal_volume + Decimal("0.5")))
        elif fate == "level":
            watch.append(dataclasses.replace(seen, level=draw(_LEVEL)))
        else:
            watch.append(seen)
    new = [i for i in draw(st.lists(_IDS, unique=True, max_size=3)) if i not in stored]
    watch += [draw(_seen(i)) for i in new]
    keeps = tuple(
        Action(ActionKind.KEEP, s.side, s.price, Decimal("1"), s.order_id, "buy[3]")
        for s in watch
        if draw(st.booleans())
    )
    plan = Plan("j", "BTCUSDT", Decimal("100"), None, None, "f", keeps)
    fresh = [i for i in draw(st.lists(st.sampled_from(["p1", "p2"]), unique=True)) if i not in stored]
    placed = tuple(
        OrderOutcome(ActionKind.PLACE, Side.BUY, Decimal("99"), Decimal("1"), OutcomeStatus.PLACED, i, "buy[1]")
        for i in fresh
    )
    learnt = Learnt((), tuple(watch), tuple(forget), dict(stored))
    return stored, learnt, plan, placed


def _full_watch(learnt: Learnt, plan: Plan, placed: Sequence[OrderOutcome]) -> list[Seen]:
    """The whole next watch list, as the tracker passed it before (empty when nothing changed)."""
    levels = {a.order_id: a.level for a in plan.actions if a.order_id and a.level}
    watch = [dataclasses.replace(s, level=s.level or levels.get(s.order_id)) for s in learnt.watch]
    if not learnt.fills and not learnt.forget and {s.order_id: s for s in watch} == learnt.previous:
        watch = []
    fresh = {o.order_id: seen_placed(o) for o in placed if o.order_id}
    return [s for s in watch if s.order_id not in fresh] + list(fresh.values())


def _full_rewrite(store: StateStore, job: str, watch: Sequence[Seen], forget: Sequence[str]) -> None:
    """The store's former write: delete every forgotten or watched id of the job, insert the watch list again."""
    c = t.watched_orders.c
    gone = sorted(set(forget) | {s.order_id for s in watch})
    with store._db.tx(write=True) as conn:
        conn.execute(delete(t.watched_orders).where(c.job == job, c.order_id.in_(gone)))
        for s in watch:
            volume = None if s.volume is None else format_decimal(s.volume)
            conn.execute(
                t.watched_orders.insert().values(
                    job=job,
                    order_id=s.order_id,
                    side=s.side.value,
                    price=format_decimal(s.price),
                    deal_volume=format_decimal(s.deal_volume),
                    level=s.level,
                    seen_at_ms=to_ms(T1),
                    volume=volume,
                )
            )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=_pass(), n=st.integers(0, 10**9))
def test_the_delta_leaves_the_watch_table_the_full_rewrite_left(store: StateStore, case, n: int) -> None:  # type: ignore[no-untyped-def]
    stored, learnt, plan, placed = case
    old, new = f"old-{n}", f"new-{n}"
    for job in (old, new):
        store.record_fills(job, None, (), list(stored.values()), (), T0)
    _full_rewrite(store, old, _full_watch(learnt, plan, placed), learnt.forget)
    change = watch_change(learnt, plan, placed)
    store.record_fills(new, None, change.fills, change.watch, change.forget, T1)
    assert store.watched_orders(new) == store.watched_orders(old)
    assert all(stored.get(s.order_id) != s for s in change.watch), "only rows new or changed are written"
    for job in (old, new):
        store.record_fills(job, None, (), (), list(store.watched_orders(job)), T1)


def test_a_pass_that_changes_one_deal_volume_writes_that_row_only() -> None:
    stored = {i: Seen(i, Side.BUY, Decimal("100"), volume=Decimal("1")) for i in ("1", "2", "3")}
    advanced = dataclasses.replace(stored["2"], deal_volume=Decimal("0.5"))
    learnt = Learnt((), (stored["1"], advanced, stored["3"]), (), stored)
    plan = Plan("j", "BTCUSDT", Decimal("100"), None, None, "f", ())
    assert watch_change(learnt, plan).watch == (advanced,)
    assert watch_change(Learnt((), tuple(stored.values()), (), stored), plan).watch == ()
