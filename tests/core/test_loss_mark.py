"""loss.mark_price and loss.net_base: the open position is marked at the most pessimistic price available (a long
at the lowest of the references and the bid, a short at the highest of them and the ask), so no price the pass
holds could show a larger loss; tables at the boundaries and properties against every candidate price."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.core.fills import Fill
from rebalancer.core.loss import loss_of, mark_price, net_base
from rebalancer.models import Side
from tests.depth import examples

D = Decimal
B, S = Side.BUY, Side.SELL
T = datetime(2026, 1, 5, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("net", "references", "bid", "ask", "mark"),
    [
        ("1", ["100", "101"], "99", "102", "99"),  # long: the bid is lowest
        ("1", ["100", "98"], "99", "102", "98"),  # long: the observed reference is lower than the bid
        ("-1", ["100", "101"], "99", "102", "102"),  # short: the ask is highest
        ("-1", ["100", "105"], "99", "102", "105"),  # short: a reference above the ask
        ("0.00000001", ["100", None], None, "102", "100"),  # long, no bid: the reference; the ask is not a bid
        ("-0.5", [None, None], "99", None, None),  # short without an ask or a reference: nothing to mark at
        ("2", ["0", None], "99", None, "99"),  # a reference of 0 (none trusted) is not a price
        ("0", [None, None], None, None, "0"),  # flat: nothing to mark
    ],
)
def test_the_mark_is_the_most_pessimistic_price(
    net: str, references: list[str | None], bid: str | None, ask: str | None, mark: str | None
) -> None:
    got = mark_price(D(net), [None if r is None else D(r) for r in references], _d(bid), _d(ask))
    assert got == _d(mark)


def _d(text: str | None) -> Decimal | None:
    return None if text is None else D(text)


def test_net_base_is_bought_minus_sold() -> None:
    fills = [Fill("1", B, D("10"), D("0.3"), D("0.3"), T), Fill("2", S, D("11"), D("0.5"), D("0.5"), T)]
    assert net_base(fills) == D("-0.2") and net_base([]) == 0


prices = st.decimals(min_value=D("0.01"), max_value=D("100000"), places=2)
volumes = st.decimals(min_value=D("0.0001"), max_value=D("10"), places=4)
fills = st.lists(st.tuples(st.sampled_from([B, S]), prices, volumes), min_size=1, max_size=8)


@settings(max_examples=examples(200), deadline=None)
@given(fills, st.lists(st.none() | prices, min_size=1, max_size=3), st.none() | prices, st.none() | prices)
def test_no_price_the_pass_holds_shows_a_larger_loss_than_the_mark(
    trades: list[tuple[Side, Decimal, Decimal]],
    references: list[Decimal | None],
    bid: Decimal | None,
    ask: Decimal | None,
) -> None:
    ledger = [Fill(str(i), side, price, volume, volume, T) for i, (side, price, volume) in enumerate(trades)]
    net = sum((v if s is B else -v for s, _, v in trades), D(0))
    mark = mark_price(net, references, bid, ask)
    book = bid if net > 0 else ask
    candidates = [p for p in (*references, book) if p is not None]
    if net == 0:
        assert mark == 0
        return
    if not candidates:
        assert mark is None
        return
    assert mark in candidates
    marked = loss_of(ledger, mark, D(1), None).total
    for price in candidates:  # any other price the pass holds: the loss there is no larger
        assert loss_of(ledger, price, D(1), None).total <= marked
