"""plan_codec: a hand-written saved plan (the "Plan JSON" of DESIGN.md) read field by field, every refusal with its
exact words (the key that is wrong, what was expected, what was found), the defaults of keys older plans lack, the
places taken from the action texts when the precisions are absent, the JSON shape of each action kind, and a round
trip property over plans with sub-1 prices and any precision."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.dropped import Dropped
from rebalancer.core.loss import Loss
from rebalancer.core.plan import Action, Plan, order_action
from rebalancer.core.plan_codec import plan_from_json, plan_to_json
from rebalancer.errors import ConfigError
from rebalancer.job import Ownership
from rebalancer.models import Side
from rebalancer.vocab import ActionKind, CancelReason, PausedBy
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
FP = "sha256:" + "ab" * 32

DOC: dict[str, Any] = {
    "format_version": "1",
    "job": "sub-1-maker",
    "symbol": "dogeusdt",
    "reference_price": "0.5000",
    "fingerprint": FP,
    "actions": [
        {"action": "keep", "order_id": "505", "level": "sell[0]", "side": "SELL", "price": "0.50155", "volume": "10"},
        {"action": "place", "level": "buy[2]", "side": "BUY", "price": "0.4985", "volume": "10.0"},
        {
            "action": "cancel",
            "order_id": "504",
            "side": "BUY",
            "price": "0.498",
            "volume": "0.125",
            "reason": "price_out_of_tolerance",
        },
    ],
    "summary": {"place": 1, "cancel": 1, "keep": 1},
    "warnings": ["one", "two"],
}


def _doc(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(DOC)
    for key, value in changes.items():
        if value is KeyError:
            del data[key]
        else:
            data[key] = value
    return data


def _row(i: int, **changes: Any) -> dict[str, Any]:
    """DOC with action ``i`` changed (KeyError deletes the key)."""
    data = copy.deepcopy(DOC)
    for key, value in changes.items():
        if value is KeyError:
            del data["actions"][i][key]
        else:
            data["actions"][i][key] = value
    return data


def test_a_hand_written_plan_reads_field_by_field() -> None:
    plan = plan_from_json(DOC)
    assert (plan.job, plan.symbol, plan.fingerprint) == ("sub-1-maker", "dogeusdt", FP)
    assert plan.reference_price == D("0.5000")
    assert plan.actions == (
        Action(
            ActionKind.CANCEL, B, D("0.498"), D("0.125"), order_id="504", reason=CancelReason.PRICE_OUT_OF_TOLERANCE
        ),
        Action(ActionKind.PLACE, B, D("0.4985"), D("10.0"), level="buy[2]"),
        Action(ActionKind.KEEP, S, D("0.50155"), D("10"), order_id="505", level="sell[0]"),
    )
    assert isinstance(plan.actions[0].reason, CancelReason)
    assert plan.warnings == ("one", "two")
    # no precisions in the document: the most places any action's price / volume text has
    assert (plan.price_places, plan.volume_places) == (5, 3)
    # keys that older plans lack take their defaults
    assert (plan.best_bid, plan.best_ask, plan.observed_reference) == (None, None, None)
    assert (plan.unowned_orders, plan.pending_orders, plan.job_hash) == (0, 0, "")
    assert (plan.paused, plan.paused_by, plan.ownership) == (None, None, Ownership.TRACKED)
    assert plan.summary == {"place": 1, "cancel": 1, "keep": 1}


def test_every_optional_key_reads_back() -> None:
    plan = plan_from_json(
        _doc(
            best_bid="0.4999",
            best_ask="0.5001",
            price_precision=6,
            amount_precision=1,
            unowned_orders=3,
            pending_orders=2,
            job_hash="h1",
            paused="placements paused: reference moved",
            paused_by="market_data",
            observed_reference="0.61",
            ownership="symbol",
        )
    )
    assert (plan.best_bid, plan.best_ask, plan.observed_reference) == (D("0.4999"), D("0.5001"), D("0.61"))
    assert (plan.price_places, plan.volume_places) == (6, 1)
    assert (plan.unowned_orders, plan.pending_orders, plan.job_hash) == (3, 2, "h1")
    assert plan.paused == "placements paused: reference moved"
    assert plan.paused_by is PausedBy.MARKET_DATA and plan.ownership is Ownership.SYMBOL


@pytest.mark.parametrize("blank", [None, ""])
def test_optional_texts_may_be_null_or_empty(blank: str | None) -> None:
    plan = plan_from_json(_doc(job_hash=blank, paused=blank, best_bid=None, summary=None))
    assert (plan.job_hash, plan.paused, plan.best_bid) == ("", None, None)
    assert plan_from_json(_row(1, order_id=blank)).actions[1].order_id is None
    cancel = plan_from_json(_row(2, level=blank)).actions[0]
    assert cancel.action is ActionKind.CANCEL and cancel.level is None
    keep = plan_from_json(_row(0, reason=blank)).actions[2]
    assert keep.action is ActionKind.KEEP and keep.reason is None


def test_a_plan_without_warnings_reads_as_one_with_none() -> None:
    assert plan_from_json(_doc(warnings=KeyError)).warnings == ()


def test_a_cancel_may_name_a_level_and_a_placement_an_order_id() -> None:
    plan = plan_from_json(_row(2, level="buy[0]"))
    assert plan.actions[0].level == "buy[0]"
    plan = plan_from_json(_row(1, order_id="77"))
    assert plan.actions[1].order_id == "77"


def test_the_smallest_positive_placement_is_accepted_and_a_cancel_at_zero_too() -> None:
    plan = plan_from_json(_row(1, price="0.00000001", volume="0.00000001"))
    assert plan.actions[1].price == D("0.00000001") and plan.actions[1].volume == D("0.00000001")
    plan = plan_from_json(_row(2, price="0", volume="0.0"))
    assert (plan.actions[0].price, plan.actions[0].volume) == (D(0), D(0))
    plan = plan_from_json(_row(0, price="0", volume="0"))
    assert plan.actions[2].price == 0


def test_actions_are_put_in_plan_order_and_empty_actions_have_no_places() -> None:
    plan = plan_from_json(_doc(actions=[], summary={"place": 0, "cancel": 0, "keep": 0}))
    assert plan.actions == () and (plan.price_places, plan.volume_places) == (0, 0)
    assert [a.action for a in plan_from_json(DOC).actions] == ["cancel", "place", "keep"]


P = "saved plan: "
DEC = 'expected a decimal string such as "30000.00", got '


LONG = "more than 28 digits, which no price or volume holds: "
F29 = "1" * 14 + "." + "1" * 15


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (_doc(format_version=1), P + "format_version: expected \"1\", got 1"),
        (_doc(format_version=KeyError), P + "format_version: expected \"1\", got None"),
        (_doc(fingerprint=""), P + "fingerprint: expected a non-empty string"),
        (_doc(fingerprint=7), P + "fingerprint: expected a non-empty string"),
        (_doc(fingerprint="md5:00"), P + 'fingerprint: expected "sha256:..."'),
        (_doc(actions=KeyError), P + "actions: expected a list"),
        (_doc(actions=[[]]), P + "actions[0]: expected an object"),
        (_row(1, action="move"), P + "actions[1].action: expected one of cancel, place, keep, got 'move'"),
        (_row(1, action=KeyError), P + "actions[1].action: expected one of cancel, place, keep, got None"),
        (_row(1, side="buy"), P + "actions[1].side: expected BUY or SELL, got 'buy'"),
        (_row(1, side=KeyError), P + "actions[1].side: expected BUY or SELL, got None"),
        (_row(2, reason="because"), P + "actions[2].reason: unknown reason 'because'"),
        (_row(2, reason=KeyError), P + "actions[2].reason: expected a non-empty string"),
        (_row(2, reason=""), P + "actions[2].reason: expected a non-empty string"),
        (_row(0, reason="because"), P + "actions[0]: 'because' is not a valid CancelReason"),
        (_row(1, reason=3), P + "actions[1].reason: expected a non-empty string"),
        (_row(1, price=0.4985), P + 'actions[1].price: expected a decimal string such as "30000.00", got 0.4985'),
        (_row(1, price="4.985E-1"), P + "actions[1].price: " + DEC + "'4.985E-1'"),
        (_row(1, price=".5"), P + "actions[1].price: " + DEC + "'.5'"),
        (_row(1, price="0.5\n"), P + "actions[1].price: " + DEC + "'0.5\\n'"),
        (_row(1, price="x0.5"), P + "actions[1].price: " + DEC + "'x0.5'"),
        (_row(1, volume="-1"), P + "actions[1].volume: expected a decimal string such as \"30000.00\", got '-1'"),
        (_row(1, volume=KeyError), P + "actions[1].volume: expected a decimal string such as \"30000.00\", got None"),
        (_row(1, price="1" * 29), P + "actions[1].price: " + LONG + "'" + "1" * 29 + "'"),
        (_row(1, price=F29), P + "actions[1].price: " + LONG + repr(F29)),
        (_row(1, volume="9" * 60), P + "actions[1].volume: " + LONG + "'" + "9" * 39 + "… (62 characters)"),
        (_row(1, volume="9" * 60 + "x"), P + "actions[1].volume: " + DEC + "'" + "9" * 39 + "… (63 characters)"),
        (_row(1, price="0"), P + "actions[1]: a placement needs a positive price and volume"),
        (_row(1, volume="0.000"), P + "actions[1]: a placement needs a positive price and volume"),
        (_row(1, level=KeyError), P + "actions[1].level: expected a non-empty string"),
        (_row(0, level=""), P + "actions[0].level: expected a non-empty string"),
        (_row(0, order_id=KeyError), P + "actions[0].order_id: expected a non-empty string"),
        (_row(2, order_id=""), P + "actions[2].order_id: expected a non-empty string"),
        (_doc(warnings="none"), P + "warnings: expected a list of strings"),
        (_doc(warnings=["ok", 1]), P + "warnings: expected a list of strings"),
        (_doc(price_precision=-1), P + "price_precision: expected a non-negative integer"),
        (_doc(amount_precision=True), P + "amount_precision: expected a non-negative integer"),
        (_doc(unowned_orders="1"), P + "unowned_orders: expected a non-negative integer"),
        (_doc(pending_orders=1.0), P + "pending_orders: expected a non-negative integer"),
        (_doc(ownership="mine"), P + "ownership: expected one of symbol, tracked, got 'mine'"),
        (_doc(ownership=None), P + "ownership: expected one of symbol, tracked, got None"),
        (_doc(paused_by="file"), P + "paused_by: expected null or one of switch, market_data, max_loss, got 'file'"),
        (_doc(job=KeyError), P + "job: expected a non-empty string"),
        (_doc(symbol=""), P + "symbol: expected a non-empty string"),
        (_doc(reference_price=KeyError), P + 'reference_price: expected a decimal string such as "30000.00", got None'),
        (_doc(best_bid=""), P + "best_bid: expected a decimal string such as \"30000.00\", got ''"),
        (_doc(best_ask=1), P + 'best_ask: expected a decimal string such as "30000.00", got 1'),
        (_doc(observed_reference="1e3"), P + "observed_reference: " + DEC + "'1e3'"),
        (_doc(job_hash=5), P + "job_hash: expected a non-empty string"),
        (_doc(paused=["x"]), P + "paused: expected a non-empty string"),
        (
            _doc(summary={"place": 1, "cancel": 1, "keep": 2}),
            P + "summary: {'place': 1, 'cancel': 1, 'keep': 2} does not match the actions "
            "({'place': 1, 'cancel': 1, 'keep': 1})",
        ),
    ],
)  # fmt: skip
def test_each_refusal_names_the_key_and_what_was_wrong(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_from_json(data)
    assert str(caught.value) == message


def test_a_decimal_of_28_digits_reads_whatever_zeros_lead_it() -> None:
    longest = "1" * 14 + "." + "1" * 14
    assert plan_from_json(_row(1, price=longest)).placements[0].price == D(longest)
    tiny = "0." + "0" * 40 + "1" * 28
    assert plan_from_json(_row(1, volume=tiny)).placements[0].volume == D(tiny)


def test_a_non_object_is_refused_at_the_top_level() -> None:
    with pytest.raises(ConfigError) as caught:
        plan_from_json("{}")  # type: ignore[arg-type]
    assert str(caught.value) == "saved plan: top level: expected a JSON object"


def test_the_first_bad_action_is_the_one_named() -> None:
    data = _row(0, side="x")
    data["actions"][2]["side"] = "y"
    with pytest.raises(ConfigError, match=r"^saved plan: actions\[0\]\.side: "):
        plan_from_json(data)


def test_the_json_shape_of_each_action_kind_and_of_the_plan() -> None:
    """Keys in the documented order; a cancel has no level, a placement neither order id nor reason, a keep no reason;
    the extra keys are there with their documented empty values."""
    plan = Plan(
        job="j",
        symbol="s",
        reference_price=D("0.5"),
        best_bid=D("0.49"),
        best_ask=None,
        fingerprint=FP,
        actions=order_action(plan_from_json(DOC).actions),
        warnings=("w",),
        price_places=6,
        volume_places=4,
        unowned_orders=1,
        pending_orders=2,
        job_hash="h",
        dropped=(Dropped("buy[9]", B, D("0.4"), None, "band"), Dropped("sell[9]", S, None, D("1.5"), "x")),
        paused="placements paused: x",
        observed_reference=D("0.51000"),
        ownership=Ownership.SYMBOL,
        paused_by=PausedBy.SWITCH,
    )
    data = plan_to_json(plan)
    assert list(data) == [
        "format_version", "job", "symbol", "reference_price", "fingerprint", "actions", "summary", "warnings",
        "best_bid", "best_ask", "price_precision", "amount_precision", "unowned_orders", "pending_orders", "job_hash",
        "paused", "paused_by", "ownership", "inventory", "observed_reference", "dropped",
    ]  # fmt: skip
    assert data["actions"] == [
        {
            "action": "cancel",
            "order_id": "504",
            "side": "BUY",
            "price": "0.498000",
            "volume": "0.1250",
            "reason": "price_out_of_tolerance",
        },
        {"action": "place", "level": "buy[2]", "side": "BUY", "price": "0.498500", "volume": "10.0000"},
        {"action": "keep", "order_id": "505", "level": "sell[0]", "side": "SELL", "price": "0.501550",
         "volume": "10.0000"},
    ]  # fmt: skip
    assert [list(row) for row in data["actions"]] == [
        ["action", "order_id", "side", "price", "volume", "reason"],
        ["action", "level", "side", "price", "volume"],
        ["action", "order_id", "level", "side", "price", "volume"],
    ]
    rest = {k: v for k, v in data.items() if k != "actions"}
    assert rest == {
        "format_version": "1",
        "job": "j",
        "symbol": "s",
        "reference_price": "0.500000",
        "fingerprint": FP,
        "summary": {"place": 1, "cancel": 1, "keep": 1},
        "warnings": ["w"],
        "best_bid": "0.490000",
        "best_ask": None,
        "price_precision": 6,
        "amount_precision": 4,
        "unowned_orders": 1,
        "pending_orders": 2,
        "job_hash": "h",
        "paused": "placements paused: x",
        "paused_by": "switch",
        "ownership": "symbol",
        "inventory": None,
        "observed_reference": "0.51000",
        "dropped": [
            {"level": "buy[9]", "side": "BUY", "reason": "band", "price": "0.400000", "volume": None},
            {"level": "sell[9]", "side": "SELL", "reason": "x", "price": None, "volume": "1.5000"},
        ],
    }


def test_the_loss_is_in_the_json_only_with_the_limit() -> None:
    base = plan_from_json(DOC)
    assert "loss" not in plan_to_json(base)
    since = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)
    with_loss = Plan(**{f: getattr(base, f) for f in Plan.__slots__ if f != "loss"}, loss=Loss(since, D(1), D(2), D(9)))
    data = plan_to_json(with_loss)
    assert data["loss"] == {
        "since": "2026-01-05T10:00:00+00:00",
        "realised": "1.00000",
        "unrealised": "2.00000",
        "total": "3.00000",
        "limit": "9",
    }
    assert list(data).index("loss") == list(data).index("paused_by") + 1


_places = st.integers(0, 8)


@st.composite
def plans(draw: st.DrawFn) -> Plan:
    """Plans whose prices and volumes have at most the plan's places (sub-1 values included)."""
    price_places, volume_places = draw(_places), draw(_places)

    def amount(places: int, positive: bool) -> Decimal:
        units = draw(st.integers(1 if positive else 0, 10**6))
        return D(units).scaleb(-places)

    actions = []
    for i in range(draw(st.integers(0, 6))):
        kind = draw(st.sampled_from(list(ActionKind)))
        side = draw(st.sampled_from([B, S]))
        price = amount(price_places, kind is ActionKind.PLACE)
        volume = amount(volume_places, kind is ActionKind.PLACE)
        order_id = None if kind is ActionKind.PLACE else draw(st.sampled_from([str(i), f"x{i}", str(900 + i)]))
        level = None if kind is ActionKind.CANCEL else f"{side.value.lower()}[{i}]"
        reason = draw(st.sampled_from(list(CancelReason))) if kind is ActionKind.CANCEL else None
        actions.append(Action(kind, side, price, volume, order_id=order_id, level=level, reason=reason))
    optional_price = st.one_of(st.none(), st.integers(0, 10**7).map(lambda u: D(u).scaleb(-price_places)))
    return Plan(
        job=draw(st.sampled_from(["j", "maker-2"])),
        symbol="dogeusdt",
        reference_price=amount(price_places, False),
        best_bid=draw(optional_price),
        best_ask=draw(optional_price),
        fingerprint="sha256:" + draw(st.sampled_from(["0" * 64, "f" * 64])),
        actions=order_action(actions),
        warnings=tuple(draw(st.lists(st.sampled_from(["a", "b c"]), max_size=2))),
        price_places=price_places,
        volume_places=volume_places,
        unowned_orders=draw(st.integers(0, 3)),
        pending_orders=draw(st.integers(0, 3)),
        job_hash=draw(st.sampled_from(["", "abc"])),
        paused=draw(st.sampled_from([None, "placements paused: x"])),
        observed_reference=draw(st.one_of(st.none(), st.sampled_from([D("0.1"), D("0.00000001"), D(30000)]))),
        ownership=draw(st.sampled_from(list(Ownership))),
        paused_by=draw(st.sampled_from([None, PausedBy.SWITCH, PausedBy.MARKET_DATA, PausedBy.MAX_LOSS])),
    )


@settings(max_examples=examples(100), deadline=None)
@given(plans())
def test_every_plan_reads_back_as_itself(plan: Plan) -> None:
    """Encode, pass through JSON text, decode: every field the document carries comes back equal (the dropped
    targets, the skew and the loss are for the reader only), and the decoded plan encodes to the same document."""
    data = json.loads(json.dumps(plan_to_json(plan)))
    back = plan_from_json(data)
    assert back == plan
    assert plan_to_json(back) == data
    for row, action in zip(data["actions"], plan.actions, strict=True):
        assert D(row["price"]) == action.price and D(row["volume"]) == action.volume
        assert len(row["price"].partition(".")[2]) == plan.price_places
        assert len(row["volume"].partition(".")[2]) == plan.volume_places
