"""The client against the sandbox exchange over real HTTP: the whole round trip, faults included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalancer.errors import OutcomeUnknown, RateLimited, TransientError
from rebalancer.exchange.client import OpenApiClient, mass_cancel_json, mass_place_json
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.models import OrderStatus, Side, SymbolRules, Target

SYMBOL = "btcusdt"


def make_client(sandbox: Any, **profile: Any) -> OpenApiClient:
    """A client of the demo account with its own limiter and no real backoff waits."""
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0))
    settings_ = {"backoff_base": 0.0, **profile}
    return OpenApiClient(
        sandbox.url, sandbox.api_key, sandbox.secret_key, ExchangeProfile(**settings_), limiter=limiter
    )


@pytest.fixture
def client(sandbox: Any) -> Any:
    with make_client(sandbox) as made:
        yield made


def ladder(rules: SymbolRules, mid: Decimal, count: int, side: Side = Side.BUY) -> list[Target]:
    """``count`` orders far enough from ``mid`` never to fill."""
    far = Decimal("0.5") if side is Side.BUY else Decimal("1.5")
    return [
        Target(f"{side.value.lower()}[{i}]", side, rules.round_price(mid * far - i, side), Decimal("0.0010"))
        for i in range(count)
    ]


def test_market_reads(client: OpenApiClient) -> None:
    rules = client.rules(SYMBOL)
    assert (rules.base, rules.quote, rules.price_precision, rules.amount_precision) == ("btc", "usdt", 2, 4)
    assert set(client.symbols()) >= {"btcusdt", "ethusdt"}
    ticker = client.ticker(SYMBOL)
    assert ticker.bid is not None and ticker.ask is not None and ticker.bid < ticker.ask
    depth = client.depth(SYMBOL)
    assert depth.bids and depth.asks and depth.bids[0][0] <= ticker.bid
    assert client.balances().available("usdt") > 0


def test_place_read_back_and_replace(client: OpenApiClient) -> None:
    rules = client.rules(SYMBOL)
    mid = client.ticker(SYMBOL).mid
    assert mid is not None
    targets = ladder(rules, mid, 3) + ladder(rules, mid, 2, Side.SELL)
    answer = client.replace(rules, [], targets)
    placed = [i for g in answer.place if g.ok for i in g.order_ids]
    assert len(placed) == 5
    open_now = client.open_orders(SYMBOL)
    assert {o.id for o in open_now} == set(placed)
    assert {(o.side, o.price, o.volume) for o in open_now} == {(t.side, t.price, t.volume) for t in targets}
    assert client.order_info(SYMBOL, placed[0]).status in (OrderStatus.NEW, OrderStatus.INITIAL)

    answer = client.replace(rules, placed[:2], ladder(rules, mid - 100, 1))
    assert [i for g in answer.cancel if g.ok for i in g.order_ids] == placed[:2]
    assert len(client.open_orders(SYMBOL)) == 4
    client.cancel_all(SYMBOL)
    assert client.open_orders(SYMBOL) == ()


def test_per_order_answer_shape_and_rejections(sandbox: Any, client: OpenApiClient) -> None:
    sandbox.faults.answer_shape = "per_order"
    rules = client.rules(SYMBOL)
    mid = client.ticker(SYMBOL).mid
    assert mid is not None
    answer = client.replace(rules, ["999999999"], ladder(rules, mid, 2))
    assert sum(1 for g in answer.place if g.ok) == 2
    assert [g.ok for g in answer.cancel] == [False]
    sandbox.faults.reject_place = 1.0
    sandbox.faults.reject_code = "10067"
    answer = client.replace(rules, [], ladder(rules, mid, 1))
    assert [(g.code, g.order_ids) for g in answer.place] == [("10067", ())]


def test_open_orders_survive_a_silent_page_size_cap(sandbox: Any) -> None:
    sandbox.faults.max_page_size = 4
    with make_client(sandbox, page_size=50) as client:
        rules = client.rules(SYMBOL)
        mid = client.ticker(SYMBOL).mid
        assert mid is not None
        client.replace(rules, [], ladder(rules, mid, 11))
        assert len(client.open_orders(SYMBOL)) == 11


@pytest.mark.parametrize("mode", ["500", "close"])
def test_a_lost_answer_is_outcome_unknown_and_the_book_tells_the_truth(sandbox: Any, mode: str) -> None:
    with make_client(sandbox) as client:
        rules = client.rules(SYMBOL)
        mid = client.ticker(SYMBOL).mid
        assert mid is not None
        sandbox.faults.endpoints = {"/open/api/mass_replaceV2"}
        sandbox.faults.drop_mode = mode
        sandbox.faults.drop_after_apply = 1.0
        with pytest.raises(OutcomeUnknown):
            client.replace(rules, [], ladder(rules, mid, 2))
        assert len(client.open_orders(SYMBOL)) == 2


def test_a_429_write_was_not_applied(sandbox: Any, client: OpenApiClient) -> None:
    rules = client.rules(SYMBOL)
    mid = client.ticker(SYMBOL).mid
    assert mid is not None
    sandbox.faults.endpoints = {"/open/api/mass_replaceV2"}
    sandbox.faults.rate_429 = 1.0
    with pytest.raises(RateLimited):
        client.replace(rules, [], ladder(rules, mid, 1))
    assert client.open_orders(SYMBOL) == ()


def test_reads_give_up_after_bounded_retries(sandbox: Any) -> None:
    sandbox.faults.endpoints = {"/open/api/get_ticker"}
    sandbox.faults.error_500 = 1.0
    with make_client(sandbox, read_retries=2) as client, pytest.raises(TransientError):
        client.ticker(SYMBOL)


def test_seconds_are_accepted_too(sandbox: Any) -> None:
    with make_client(sandbox, time_unit="s") as client:
        assert client.balances().available("btc") > 0


targets_strategy = st.lists(
    st.tuples(
        st.sampled_from(list(Side)),
        st.decimals(min_value=Decimal("1000"), max_value=Decimal("9999"), places=2),
        st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("0.0100"), places=4),
    ),
    max_size=3,
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cancels=st.lists(st.integers(1, 10**12).map(str), max_size=3),
    raw_targets=targets_strategy,
    mutate=st.data(),
)
def test_whatever_the_client_signs_is_accepted_and_any_changed_byte_refused(
    sandbox: Any, cancels: list[str], raw_targets: list[tuple[Side, Decimal, Decimal]], mutate: Any
) -> None:
    with make_client(sandbox) as client:
        rules = client.rules(SYMBOL)
        # Buys far below and sells far above the ~30000 market: nothing fills, nothing crosses.
        targets = [
            Target("t", side, price if side is Side.BUY else price * 10, volume) for side, price, volume in raw_targets
        ]
        params = {"symbol": SYMBOL}
        if cancels:
            params["mass_cancel"] = mass_cancel_json(cancels)
        if targets:
            params["mass_place"] = mass_place_json(rules, targets)
        signed = client.transport.sign_params(params)
        url = f"{sandbox.url}/open/api/mass_replaceV2"
        name = mutate.draw(st.sampled_from(sorted(signed)))
        value = signed[name]
        index = mutate.draw(st.integers(0, len(value) - 1))
        replacement = mutate.draw(st.characters(codec="ascii", exclude_characters=[value[index]]))
        changed = {**signed, name: value[:index] + replacement + value[index + 1 :]}
        with requests.Session() as session:
            refused = session.post(url, data=changed, timeout=10).json()
            accepted = session.post(url, data=signed, timeout=10).json()
    assert str(accepted["code"]) == "0", accepted
    assert str(refused["code"]) != "0", (name, changed[name])
