"""A pass's writes: the write-ahead and the outcome each land whole in one transaction, or not at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from rebalancer.core.fills import Fill, Seen
from rebalancer.errors import LeaseLost
from rebalancer.models import Side
from rebalancer.state.outcome import BatchWrite, LeaseCheck, OwnershipChange, PassOutcome, PreSend
from rebalancer.state.records import OrderResult, Placement
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, Mode, OutcomeStatus, PassResult, PausedBy

NOW = datetime(2026, 3, 1, 10, 40, tzinfo=UTC)


def _full_outcome(pass_id: int, in_flight: int, result: PassResult) -> PassOutcome:
    """An outcome that touches every table a pass writes."""
    return PassOutcome(
        job="j",
        mode=Mode.RUN,
        started_at=NOW,
        pass_id=pass_id,
        result=result,
        summary={"place": 1, "cancel": 1},
        warnings=("w",),
        duration_ms=12,
        reference_price="101",
        fingerprint="f" * 8,
        batches=(BatchWrite(0, {"symbol": "btcusdt", "api_key": "k"}, {"mass_place": []}, None, NOW),),
        results=(
            OrderResult(ActionKind.PLACE, "BUY", "100", "1", "11", OutcomeStatus.PLACED),
            OrderResult(ActionKind.CANCEL, "SELL", "102", "1", "5", OutcomeStatus.CANCELLED),
        ),
        ownership=OwnershipChange(untrack=("5",)),
        close=in_flight,
        placed=("11",),
        fills=(Fill("7", Side.BUY, Decimal("99"), Decimal("1"), Decimal("1"), NOW, "buy[1]"),),
        watch=(Seen("11", Side.BUY, Decimal("100"), level="buy[0]", volume=Decimal("1")),),
        forget=("7",),
        rejected=(("sell[2]", "19", "no money"),),
        cleared=("buy[0]",),
        recorded_at=NOW,
    )


def _seed(store: StateStore) -> tuple[int, int]:
    store.track("j", ["5", "7"])
    store.record_fills("j", None, (), [Seen("7", Side.BUY, Decimal("99"), level="buy[1]")], (), NOW)
    store.record_rejections("j", [("buy[0]", "19", "no money")], NOW)
    return store.record_presend(
        PreSend("j", Mode.RUN, NOW, placements=(Placement.of(Side.BUY, "100", "1"),), pause=None)
    )


def test_one_outcome_writes_every_table(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        pass_id, in_flight = _seed(store)
        assert in_flight is not None and [r.result for r in store.history("j")] == [None]
        assert store.record_outcome(_full_outcome(pass_id, in_flight, PassResult.OK)) == pass_id
        detail = store.pass_detail(pass_id)
        assert detail is not None
        assert (detail.record.result, detail.record.summary, detail.record.reference_price) == (
            PassResult.OK,
            {"place": 1, "cancel": 1},
            "101",
        )
        assert [b.request for b in detail.batches] == [{"symbol": "btcusdt"}]  # the key is never stored
        assert [r.order_id for r in detail.results] == ["11", "5"]
        assert store.tracked_ids("j") == frozenset({"7", "11"})
        assert store.open_in_flight("j") == []
        assert [(f.order_id, f.level) for f in store.fills("j")] == [("7", "buy[1]")]
        assert set(store.watched_orders("j")) == {"11"}
        assert set(store.rejection_counts("j")) == {"sell[2]"}


def test_an_outcome_the_store_refuses_writes_nothing(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        pass_id, in_flight = _seed(store)
        with pytest.raises(ValueError, match="pass result"):
            store.record_outcome(_full_outcome(pass_id, in_flight, PassResult.PLANNED))
        broken = _full_outcome(pass_id, in_flight, PassResult.OK)
        with pytest.raises(ValueError, match="no in-flight batch"):  # refused mid-transaction: all rolled back
            store.record_outcome(dataclasses.replace(broken, close=in_flight + 1000))
        detail = store.pass_detail(pass_id)
        assert detail is not None and detail.record.result is None
        assert (detail.batches, detail.results) == ((), ())
        assert store.tracked_ids("j") == frozenset({"5", "7"})
        assert len(store.open_in_flight("j")) == 1
        assert store.fills("j") == [] and set(store.watched_orders("j")) == {"7"}
        assert set(store.rejection_counts("j")) == {"buy[0]"}


def test_a_quiet_outcome_inserts_its_pass_row(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        store.track("j", ["3", "4"])
        quiet = PassOutcome(
            "j", Mode.RUN, NOW, None, PassResult.NO_CHANGES, {"keep": 1}, ownership=OwnershipChange(untrack=("4",))
        )
        pass_id = store.record_outcome(quiet)
        [record] = store.history("j")
        assert (record.id, record.result, record.summary) == (pass_id, PassResult.NO_CHANGES, {"keep": 1})
        assert store.tracked_ids("j") == frozenset({"3"})


def test_the_write_ahead_carries_the_settlement_and_the_pause(open_store: Callable[[], StateStore]) -> None:
    with open_store() as store:
        old = store.begin_in_flight("j", None, [(Side.SELL, "105", "2")], created_at=NOW - timedelta(minutes=9))
        presend = PreSend(
            "j",
            Mode.RUN,
            NOW,
            ownership=OwnershipChange(closes=((old, ("21",)),), track=("22",), untrack=("9",)),
            pause=(PausedBy.MAX_LOSS, "loss 12 is past 10"),
        )
        pass_id, in_flight = store.record_presend(presend)
        assert in_flight is None  # nothing to place: no in-flight record
        assert store.open_in_flight("j") == [] and store.tracked_ids("j") == frozenset({"21", "22"})
        assert store.is_paused("j") and store.paused_by("j") == ("max_loss", "loss 12 is past 10")
        assert [r.id for r in store.history("j")] == [pass_id]


def test_a_write_ahead_behind_a_fence_writes_only_while_the_lease_is_current(
    open_store: Callable[[], StateStore],
) -> None:
    with open_store() as store:
        epoch = store.acquire_lease("j", "a", 60)
        assert epoch is not None
        presend = PreSend("j", Mode.RUN, NOW, placements=(Placement.of(Side.BUY, "100", "1"),))
        for fence, why in (
            (LeaseCheck("a", epoch + 1, 1), "another epoch"),
            (LeaseCheck("b", epoch, 1), "another holder"),
            (LeaseCheck("a", epoch, 120), "less than the margin left"),
        ):
            with pytest.raises(LeaseLost, match="no longer current"):
                store.record_presend(dataclasses.replace(presend, fence=fence))
            assert store.history("j") == [] and store.open_in_flight("j") == [], why
        pass_id, in_flight = store.record_presend(dataclasses.replace(presend, fence=LeaseCheck("a", epoch, 1)))
        assert [r.id for r in store.history("j")] == [pass_id]
        assert [f.id for f in store.open_in_flight("j")] == [in_flight]
