"""Builders shared by the core tests: jobs, snapshots and Hypothesis strategies, built directly (no job
file)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from rebalancer.job import Amount, FixedOrder, Inventory, Job, Limits, Reference, ReferenceKind, SideLadder, Tolerance
from rebalancer.models import (
    Balance,
    Balances,
    MarketSnapshot,
    Order,
    OrderStatus,
    Side,
    SymbolRules,
    Target,
    Ticker,
)

D = Decimal
RULES = SymbolRules("btcusdt", "btc", "usdt", price_precision=2, amount_precision=4)
TICKER = Ticker(bid=D("29990.00"), ask=D("30010.00"), last=D("30000.00"))
RICH = Balances({"usdt": Balance(D(10) ** 9), "btc": Balance(D(10) ** 6)})


def pct(text: str) -> Amount:
    """A percent amount."""
    return Amount(D(text), percent=True)


def ab(text: str) -> Amount:
    """An absolute amount."""
    return Amount(D(text))


def side_ladder(
    levels: int = 3, first: Amount | None = None, step: Amount | None = None, size: str = "0.01", **kw: object
) -> SideLadder:
    """A side ladder with readable defaults (0.5 % first, 0.25 % step, flat 0.01)."""
    return SideLadder(levels=levels, first=first or pct("0.5"), step=step or pct("0.25"), size=D(size), **kw)
    # type: ignore[arg-type]


def job(
    buy: SideLadder | None = None,
    sell: SideLadder | None = None,
    orders: tuple[FixedOrder, ...] = (),
    limits: Limits | None = None,
    tolerance: Tolerance | None = None,
    reference: Reference | None = None,
    inventory: Inventory | None = None,
) -> Job:
    """A job on btcusdt; post_only is off unless ``limits`` says otherwise."""
    return Job(
        name="test-job",
        symbol="btcusdt",
        buy=buy,
        sell=sell,
        orders=orders,
        limits=limits or Limits(post_only=False),
        tolerance=tolerance or Tolerance(),
        reference=reference or Reference(ReferenceKind.MID),
        inventory=inventory,
        source_hash="abc123",
    )


def snapshot(
    orders: tuple[Order, ...] = (),
    ticker: Ticker = TICKER,
    balances: Balances = RICH,
    rules: SymbolRules = RULES,
) -> MarketSnapshot:
    """A market snapshot with rich balances by default."""
    return MarketSnapshot(rules, ticker, balances, orders)


def order(
    oid: str, side: Side, price: str, volume: str, deal: str = "0", status: OrderStatus = OrderStatus.NEW
) -> Order:
    """An open order from text values."""
    return Order(oid, side, D(price), D(volume), D(deal), status)


def target(level: str, side: Side, price: str, volume: str) -> Target:
    """A target from text values."""
    return Target(level, side, D(price), D(volume))


# Small integer grids keep collisions (and so hard matching instances) frequent.
_prices = st.integers(min_value=95, max_value=105).map(D)
_volumes = st.integers(min_value=8, max_value=12).map(lambda v: D(v) / 10)
sides = st.sampled_from([Side.BUY, Side.SELL])


@st.composite
def targets_strategy(draw: st.DrawFn, max_size: int = 6) -> list[Target]:
    """Targets with distinct level names on a small price grid."""
    rows = draw(st.lists(st.tuples(sides, _prices, _volumes), max_size=max_size))
    return [Target(f"{s.value.lower()}[{i}]", s, p, v) for i, (s, p, v) in enumerate(rows)]


@st.composite
def orders_strategy(draw: st.DrawFn, max_size: int = 6) -> list[Order]:
    """Open orders with distinct ids, some partially filled, some pending cancellation."""
    rows = draw(
        st.lists(
            st.tuples(
                sides,
                _prices,
                _volumes,
                st.sampled_from([0, 0, 0, 1, 2]),
                st.sampled_from(
                    [
                        OrderStatus.NEW,
                        OrderStatus.NEW,
                        OrderStatus.INITIAL,
                        OrderStatus.PARTIALLY_FILLED,
                        OrderStatus.CANCEL_PENDING,
                    ]
                ),
            ),
            max_size=max_size,
        )
    )
    out = []
    for i, (s, p, v, deal, status) in enumerate(rows):
        dealt = D(deal) / 10 if status is OrderStatus.PARTIALLY_FILLED else D(0)
        out.append(Order(str(500 + i), s, p, v + dealt, dealt, status))
    return out


tolerances = st.builds(
    Tolerance,
    price=st.one_of(
        st.sampled_from([0, 1, 2, 3]).map(lambda v: Amount(D(v))),
        st.sampled_from(["0", "1", "2.5"]).map(lambda v: Amount(D(v), percent=True)),
    ),
    size=st.one_of(
        st.sampled_from(["0", "0.1", "0.2"]).map(lambda v: Amount(D(v))),
        st.sampled_from(["0", "10", "25"]).map(lambda v: Amount(D(v), percent=True)),
    ),
)
