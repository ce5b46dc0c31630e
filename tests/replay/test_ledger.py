"""The replay's PnL ledger: first in, first out, exact, and consistent with the cash the fills moved."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from rebalancer.models import Side
from rebalancer.replay.ledger import Ledger

D = Decimal


def test_a_table_of_fills_realises_first_in_first_out() -> None:
    ledger = Ledger(D(5))
    ledger.mid(0, D(100))
    ledger.fill(1, Side.BUY, D(100), D(1), D("0.1"))
    ledger.fill(2, Side.BUY, D(102), D(1), D("0.1"))
    ledger.fill(3, Side.SELL, D(105), D("1.5"), D("0.15"))  # 1 of the lot at 100 (+5), 0.5 of the lot at 102 (+1.5)
    assert ledger.realised == D("6.5")
    ledger.mid(4, D(104))
    assert ledger.unrealised == D("0.5") * (D(104) - D(102))
    assert ledger.total == ledger.realised + ledger.unrealised - ledger.fees == D("7.15")
    ledger.fill(5, Side.SELL, D(101), D(1), D(0))  # closes the 0.5 at 102 (−0.5), opens a short of 0.5 at 101
    assert ledger.realised == D(6)
    ledger.mid(6, D(99))
    assert ledger.unrealised == D("0.5") * (D(101) - D(99))
    assert (ledger.base, ledger.base_min, ledger.base_max) == (D("4.5"), D("4.5"), D(7))


fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(90, 110).map(D),
        st.integers(1, 50).map(lambda n: D(n) / 10),
    ),
    max_size=30,
)


@given(fills, st.integers(80, 120).map(D))
def test_total_is_cash_plus_position_at_the_mark_and_a_flat_book_is_all_realised(
    raw: list[tuple[Side, Decimal, Decimal]], mark: Decimal
) -> None:
    ledger = Ledger(D(0))
    cash, position = D(0), D(0)
    for t, (side, price, volume) in enumerate(raw):
        ledger.fill(t, side, price, volume, D(0))
        signed = volume if side is Side.BUY else -volume
        cash -= signed * price
        position += signed
    ledger.mid(len(raw), mark)
    assert ledger.total == cash + position * mark
    assert ledger.total == ledger.realised + ledger.unrealised
    if position == 0:
        assert ledger.unrealised == 0 and ledger.realised == cash
    assert ledger.peak >= max(ledger.total, D(0))
    assert ledger.max_drawdown >= ledger.peak - ledger.total >= 0
