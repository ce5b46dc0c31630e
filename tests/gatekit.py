"""A planner-bug stand-in for the gate's entry-point tests: the planner's plan plus actions it should never make.

It wraps ``rebalancer.engine.decide.finish_plan`` (the pure last step of planning) for the length of one test, so every
send path (apply, run, run --once, cluster members, cancel, on_stop) carries the bad actions up to the gate,
exactly as a bug in the planner would. Nothing else is replaced: the pass talks HTTP to the sandbox.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal

import pytest

from rebalancer.core.plan import Action, Draft, Plan, order_action
from rebalancer.engine import decide
from rebalancer.models import Balances, Side
from rebalancer.vocab import ActionKind, CancelReason

Extra = Callable[[Plan], tuple[Action, ...]]


def planner_bug(monkeypatch: pytest.MonkeyPatch, extra: Extra) -> None:
    """From now on, every plan also carries ``extra(plan)``."""
    real = decide.finish_plan

    def buggy(draft: Draft, balances: Balances | None) -> Plan:
        plan = real(draft, balances)
        return dataclasses.replace(plan, actions=order_action(plan.actions + extra(plan)))

    monkeypatch.setattr(decide, "finish_plan", buggy)


def second_buy_zero(price: str = "20000.00") -> Extra:
    """A bug that places ``buy[0]`` a second time, far below the band."""
    return lambda plan: (Action(ActionKind.PLACE, Side.BUY, Decimal(price), Decimal("0.0100"), level="buy[0]"),)


def cancel_of(order_id: str) -> Extra:
    """A bug that cancels ``order_id`` (an order the job does not own)."""
    return lambda plan: (
        Action(
            ActionKind.CANCEL,
            Side.BUY,
            Decimal("29500.00"),
            Decimal("0.0300"),
            order_id=order_id,
            reason=CancelReason.NOT_IN_LADDER,
        ),
    )
