"""plan.compute_plan, the Plan value, its JSON form (against schemas/plan.schema.json) and its batches."""

from __future__ import annotations

import dataclasses
import json
import random
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core import gate
from rebalancer.core.plan import Action, Batch, Plan, compute_plan, orders_fingerprint, plan_fingerprint
from rebalancer.core.plan_codec import plan_from_json, plan_to_json
from rebalancer.errors import ConfigError
from rebalancer.job import Limits
from rebalancer.models import Balance, Balances, Order, OrderStatus, Side, Target
from tests.core.kit import D, job, order, pct, side_ladder, snapshot
from tests.depth import examples

B, S = Side.BUY, Side.SELL
SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
JOB = job(buy=side_ladder(), sell=side_ladder(), limits=Limits(band=pct("5"), post_only=True))
BOOK = (
    order("504", B, "29820.00", "0.0100"),  # 30 from buy[0] (tolerance 29.85), 45 from buy[1]
    order("505", S, "30150.00", "0.0100"),  # exactly sell[0]
    order("506", B, "29775.00", "0.0100"),  # exactly buy[1]
    order("507", S, "30226.00", "0.0100"),  # within 0.1 % of sell[1]
    order("508", S, "40000.00", "1.0000"),  # outside the band
    order("509", B, "29700.00", "0.0100", status=OrderStatus.CANCEL_PENDING),
    order("900", S, "31000.00", "2.0000"),  # not the job's when owned_ids excludes it
)


def mixed() -> Plan:
    return compute_plan(JOB, snapshot(BOOK), frozenset(o.id for o in BOOK if o.id != "900"))


def big(n: int) -> Plan:
    spec = side_ladder(levels=n, first=pct("0.1"), step=pct("0.001"))
    return compute_plan(job(buy=spec, sell=spec), snapshot(), None)


def test_mixed_plan_actions_in_final_order() -> None:
    plan = mixed()
    got = [(a.action, a.order_id or a.level, a.reason) for a in plan.actions]
    assert got == [
        ("cancel", "504", "price_out_of_tolerance"),
        ("cancel", "508", "outside_band"),
        ("place", "buy[0]", None),
        ("place", "buy[2]", None),
        ("place", "sell[2]", None),
        ("keep", "506", None),
        ("keep", "505", None),
        ("keep", "507", None),
    ]
    assert plan.summary == {"place": 3, "cancel": 2, "keep": 3} and plan.has_changes
    assert plan.cancel_ids == ("504", "508")
    assert plan.placements == (
        Target("buy[0]", B, D("29850.00"), D("0.0100")),
        Target("buy[2]", B, D("29700.00"), D("0.0100")),
        Target("sell[2]", S, D("30300.00"), D("0.0100")),
    )
    assert plan.unowned_orders == 1 and plan.pending_orders == 1
    assert any("pending" in w and "509" in w for w in plan.warnings)
    assert plan.fingerprint == plan_fingerprint("abc123", BOOK, plan.actions)


def test_json_form_matches_design_and_schema() -> None:
    data = plan_to_json(mixed())
    VALIDATOR.validate(data)
    assert data["format_version"] == "1" and data["job"] == "test-job" and data["symbol"] == "btcusdt"
    assert data["reference_price"] == "30000.00"
    assert data["actions"][0] == {
        "action": "cancel",
        "order_id": "504",
        "side": "BUY",
        "price": "29820.00",
        "volume": "0.0100",
        "reason": "price_out_of_tolerance",
    }
    assert data["actions"][2] == {
        "action": "place",
        "level": "buy[0]",
        "side": "BUY",
        "price": "29850.00",
        "volume": "0.0100",
    }
    assert data["actions"][6] == {
        "action": "keep",
        "order_id": "505",
        "level": "sell[0]",
        "side": "SELL",
        "price": "30150.00",
        "volume": "0.0100",
    }
    assert data["summary"] == {"place": 3, "cancel": 2, "keep": 3}
    assert json.loads(json.dumps(data)) == data


@pytest.mark.parametrize(
    "plan",
    [lambda: compute_plan(job(), snapshot(), None), mixed, lambda: big(1500)],
    ids=["empty", "mixed", "large"],
)
def test_every_plan_validates_and_reads_back(plan: Any) -> None:
    value = plan()
    data = plan_to_json(value)
    VALIDATOR.validate(data)
    back = plan_from_json(json.loads(json.dumps(data)))
    assert back.actions == value.actions and back.fingerprint == value.fingerprint
    assert plan_to_json(back)["actions"] == data["actions"]
    assert back.batches() == value.batches()


def test_empty_plan_says_no_changes_and_has_no_batches() -> None:
    plan = compute_plan(job(), snapshot(), None)
    assert not plan.has_changes and plan.batches() == () and plan.summary == {"place": 0, "cancel": 0, "keep": 0}


def _corrupt(path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    data = plan_to_json(mixed())
    node = data
    for key in path[:-1]:
        node = node[key]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("path", "value", "words"),
    [
        (("format_version",), "2", "format_version"),
        (("fingerprint",), KeyError, "fingerprint"),
        (("fingerprint",), "md5:00", "fingerprint"),
        (("actions",), {}, "actions"),
        (("actions", 0, "action"), "move", r"actions\[0\].action"),
        (("actions", 0, "reason"), "because", r"actions\[0\].reason"),
        (("actions", 2, "price"), 29850.0, r"actions\[2\].price"),
        (("actions", 2, "price"), "2.985E+4", r"actions\[2\].price"),
        (("actions", 2, "side"), "buy", r"actions\[2\].side"),
        (("actions", 5, "order_id"), KeyError, r"actions\[5\].order_id"),
        (("summary", "place"), 9, "summary"),
        (("warnings",), "none", "warnings"),
    ],
)
def test_malformed_saved_plans_are_config_errors(path: tuple[Any, ...], value: Any, words: str) -> None:
    with pytest.raises(ConfigError, match=words):
        plan_from_json(_corrupt(path, value))


def test_from_json_rejects_a_non_object() -> None:
    with pytest.raises(ConfigError, match="object"):
        plan_from_json([])  # type: ignore[arg-type]


def test_fingerprint_changes_with_the_orders_and_the_job_only() -> None:
    base = orders_fingerprint("h", BOOK)
    assert base.startswith("sha256:") and len(base) == len("sha256:") + 64
    assert orders_fingerprint("h", tuple(reversed(BOOK))) == base
    assert orders_fingerprint("h", BOOK[:-1]) != base
    assert orders_fingerprint("other", BOOK) != base
    filled = (
        Order("504", B, D("29820.00"), D("0.0100"), D("0.0010"), OrderStatus.PARTIALLY_FILLED),
        *BOOK[1:],
    )
    assert orders_fingerprint("h", filled) != base
    assert orders_fingerprint("h", (order("1", B, "1.0", "2"),)) == orders_fingerprint(
        "h", (order("1", B, "1.00", "2.0000"),)
    )


def test_the_plan_fingerprint_binds_the_actions_to_the_book() -> None:
    plan = mixed()
    base = plan_fingerprint("abc123", BOOK, plan.actions)
    assert plan_fingerprint("abc123", BOOK, tuple(reversed(plan.actions))) == base
    edited = (dataclasses.replace(plan.actions[2], volume=D("5.0")), *plan.actions[3:])
    assert plan_fingerprint("abc123", BOOK, (*plan.actions[:2], *edited)) != base
    assert plan_fingerprint("abc123", BOOK, plan.actions[1:]) != base
    assert plan_fingerprint("abc123", BOOK[1:], plan.actions) != base
    back = plan_from_json(json.loads(json.dumps(plan_to_json(plan))))
    assert plan_fingerprint("abc123", BOOK, back.actions) == back.fingerprint == base


def _plan_with(cancels: int, places: int) -> Plan:
    actions = [Action("cancel", B, D(1), D(1), order_id=str(i), reason="not_in_ladder") for i in range(cancels)]
    actions += [Action("place", S, D(100 + i), D(1), level=f"sell[{i}]") for i in range(places)]
    return Plan("j", "s", D(50), None, None, "sha256:" + "0" * 64, tuple(actions))


@pytest.mark.parametrize(
    ("cancels", "places", "shape"),
    [
        (0, 0, []),
        (1, 0, [(1, 0)]),
        (0, 3, [(0, 2), (0, 1)]),
        (3, 3, [(2, 0), (1, 2), (0, 1)]),
        (4, 1, [(2, 0), (2, 1)]),
        (2, 2, [(2, 2)]),
    ],
)
def test_batches_send_every_cancel_before_any_placement_needs_it(
    cancels: int, places: int, shape: list[tuple[int, int]]
) -> None:
    plan = _plan_with(cancels, places)
    batches = plan.batches(limit=2)
    assert [(len(b.cancel_ids), len(b.place)) for b in batches] == shape
    assert [i for b in batches for i in b.cancel_ids] == list(plan.cancel_ids)
    assert [t for b in batches for t in b.place] == list(plan.placements)
    assert all(isinstance(b, Batch) for b in batches)


@settings(max_examples=examples(100), deadline=None)
@given(st.integers(0, 350), st.integers(0, 350), st.integers(1, 120))
def test_batches_of_any_max_batch_keep_order_limits_and_cancels_first(cancels: int, places: int, limit: int) -> None:
    plan = _plan_with(cancels, places)
    batches = plan.batches(limit=limit)
    assert all(len(b.cancel_ids) <= limit and len(b.place) <= limit for b in batches)
    assert all(b.cancel_ids or b.place for b in batches)
    assert [i for b in batches for i in b.cancel_ids] == list(plan.cancel_ids)
    assert [t for b in batches for t in b.place] == list(plan.placements)
    last_cancel = max((k for k, b in enumerate(batches) if b.cancel_ids), default=0)
    assert all(not b.place for b in batches[:last_cancel])
    assert len(batches) == max(-(-cancels // limit), max(-(-cancels // limit) - 1, 0) + -(-places // limit))


def test_default_batch_limit_is_1000() -> None:
    batches = _plan_with(1500, 2500).batches()
    assert [(len(b.cancel_ids), len(b.place)) for b in batches] == [
        (1000, 0),
        (500, 1000),
        (0, 1000),
        (0, 500),
    ]


def test_funding_trims_placements_and_warns() -> None:
    poor = Balances({"usdt": Balance(D("300")), "btc": Balance(D("1"))})
    plan = compute_plan(JOB, snapshot((), balances=poor), None)
    assert [t.level for t in plan.placements if t.side is B] == ["buy[0]"]
    assert [d.level for d in plan.dropped if d.reason == "insufficient_balance"] == ["buy[2]", "buy[1]"]
    assert sum(t.price * t.volume for t in plan.placements if t.side is B) <= D("300")


def _all_values(data: Any) -> list[Any]:
    if isinstance(data, dict):
        return [v for value in data.values() for v in _all_values(value)]
    if isinstance(data, list):
        return [v for value in data for v in _all_values(value)]
    return [data]


levels = st.integers(0, 6)


@settings(max_examples=examples(40), deadline=None)
@given(
    levels,
    levels,
    st.lists(
        st.tuples(st.sampled_from([B, S]), st.integers(-40, 40), st.integers(5, 15), st.booleans()),
        max_size=10,
    ),
    st.randoms(use_true_random=False),
)
def test_plans_are_deterministic_exact_and_converge(
    n_buy: int, n_sell: int, book_rows: list[tuple[Side, int, int, bool]], rnd: random.Random
) -> None:
    the_job = job(
        buy=side_ladder(levels=n_buy, first=pct("0.1"), step=pct("0.05")) if n_buy else None,
        sell=side_ladder(levels=n_sell, first=pct("0.1"), step=pct("0.05")) if n_sell else None,
        limits=Limits(max_orders=7, band=pct("0.3"), post_only=True),
    )
    book = tuple(
        Order(
            str(i),
            s,
            D(30000) + D(k) * 10 * (-1 if s is B else 1),
            D(v) / 1000,
            D(0),
            OrderStatus.PARTIALLY_FILLED if partial else OrderStatus.NEW,
        )
        for i, (s, k, v, partial) in enumerate(book_rows)
    )
    plan = compute_plan(the_job, snapshot(book), None)
    seen = snapshot(book)
    gate_book = gate.book_of(seen.rules, book, None, plan.reference_price, seen.ticker.bid, seen.ticker.ask)
    assert gate.check(the_job, gate_book, plan.actions) == ()  # the pre-trade gate admits the planner's batch
    shuffled = list(book)
    rnd.shuffle(shuffled)
    assert plan_to_json(compute_plan(the_job, snapshot(tuple(shuffled)), None)) == plan_to_json(plan)
    for a in plan.actions:
        assert isinstance(a.price, Decimal) and isinstance(a.volume, Decimal)
    data = plan_to_json(plan)
    VALIDATOR.validate(data)
    assert not any(isinstance(v, float) for v in _all_values(data))
    # apply the plan to the book, plan again: nothing left to do
    gone = set(plan.cancel_ids)
    after = tuple(o for o in book if o.id not in gone) + tuple(
        Order(f"n{i}", t.side, t.price, t.volume) for i, t in enumerate(plan.placements)
    )
    again = compute_plan(the_job, snapshot(after), None)
    assert not again.has_changes, again.actions
