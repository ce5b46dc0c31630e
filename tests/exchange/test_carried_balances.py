"""``CarriedBalances``: the lower bound a dedicated account carries between balance reads (no HTTP here)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rebalancer.exchange.funds import CarriedBalances
from rebalancer.models import Balance, Balances, FundingNeed

D = Decimal


def _read(**available: str) -> Balances:
    return Balances({coin: Balance(D(amount), D("5")) for coin, amount in available.items()})


@pytest.fixture
def carried():
    account = CarriedBalances("https://x.example/", "key-for-unit-tests")
    yield account
    account.close()


def test_nothing_is_carried_before_the_first_read(carried) -> None:
    assert carried.cover(FundingNeed()) is None


@pytest.mark.parametrize(
    ("shortfall", "covered"),
    [
        ({"usdt": "100"}, True),  # exactly the bound
        ({"usdt": "100.0001"}, False),
        ({"usdt": "40", "btc": "0.5"}, True),
        ({"usdt": "40", "btc": "0.5001"}, False),
        ({"eth": "0.0001"}, False),  # a coin the read did not list has nothing available
        ({}, True),
    ],
)
def test_the_bound_covers_a_need_up_to_each_coins_amount(carried, shortfall, covered) -> None:
    carried.observe(_read(usdt="100", btc="0.5"))
    answer = carried.cover(FundingNeed({c: D(a) for c, a in shortfall.items()}))
    assert (answer is not None) is covered
    if answer is not None:
        assert answer.available("USDT") == D("100") and answer.total("usdt") == D("100"), "locked is not carried"


def test_placements_come_off_the_bound_and_it_never_goes_negative(carried) -> None:
    carried.observe(_read(usdt="100", btc="0.5"))
    carried.spend({"usdt": D("30.5")})
    assert carried.cover(FundingNeed({"usdt": D("69.5")})) is not None
    assert carried.cover(FundingNeed({"usdt": D("69.6")})) is None
    carried.spend({"usdt": D("1000"), "eth": D("1")})
    bound = carried.cover(FundingNeed())
    assert bound is not None and bound.available("usdt") == 0 and bound.available("eth") == 0
    assert bound.available("btc") == D("0.5")


def test_a_new_read_replaces_the_bound_and_forget_drops_it(carried) -> None:
    carried.observe(_read(usdt="10"))
    carried.observe(_read(usdt="7"))
    assert carried.cover(FundingNeed({"usdt": D("7.01")})) is None
    carried.forget()
    assert carried.cover(FundingNeed()) is None
    carried.spend({"usdt": D(1)})  # nothing to spend from: still nothing carried
    assert carried.cover(FundingNeed()) is None


def test_two_open_clients_of_one_account_carry_nothing_until_one_closes(carried, caplog) -> None:
    carried.observe(_read(usdt="100"))
    other = CarriedBalances("https://x.example", "key-for-unit-tests")  # same account: the trailing slash aside
    elsewhere = CarriedBalances("https://y.example", "key-for-unit-tests")  # another deployment: its own account
    try:
        with caplog.at_level("WARNING"):
            assert carried.cover(FundingNeed()) is None
            assert carried.cover(FundingNeed()) is None
        warnings = [r for r in caplog.records if "several jobs trade on one account" in r.getMessage()]
        assert len(warnings) == 1 and "key-for-unit-tests" not in caplog.text
        elsewhere.observe(_read(usdt="1"))
        assert elsewhere.cover(FundingNeed()) is not None
    finally:
        other.close()
        elsewhere.close()
    assert carried.cover(FundingNeed()) is not None


def test_a_closed_client_carries_nothing_and_closing_twice_counts_once() -> None:
    first = CarriedBalances("https://z.example", "k")
    first.observe(_read(usdt="1"))
    first.close()
    first.close()
    assert first.cover(FundingNeed()) is None
    second = CarriedBalances("https://z.example", "k")
    try:
        second.observe(_read(usdt="1"))
        assert second.cover(FundingNeed()) is not None, "the closed client no longer counts as a second one"
    finally:
        second.close()
