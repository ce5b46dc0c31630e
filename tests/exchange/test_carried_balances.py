"""``AccountLedger``: the lower bound one API key's clients carry between balance reads (no HTTP here)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rebalancer.exchange.funds import AccountLedger, ledger_for
from rebalancer.models import Balance, Balances, FundingNeed
from tests.exchange.conftest import SleepRecorder

D = Decimal


def _read(**available: str) -> Balances:
    return Balances({coin: Balance(D(amount), D("5")) for coin, amount in available.items()})


@pytest.fixture
def clock(sleeps: SleepRecorder) -> SleepRecorder:
    """The fake monotonic time (``now``) the ledger reads, from the exchange tests' recorder."""
    return sleeps


@pytest.fixture
def ledger(clock: SleepRecorder) -> AccountLedger:
    account = AccountLedger(clock.clock)
    account.opened()
    return account


def test_nothing_is_carried_before_the_first_read(ledger) -> None:
    assert ledger.cover(FundingNeed()) is None


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
def test_the_bound_covers_a_need_up_to_each_coins_amount(ledger, shortfall, covered) -> None:
    ledger.observe(_read(usdt="100", btc="0.5"), ledger.mark())
    answer = ledger.cover(FundingNeed({c: D(a) for c, a in shortfall.items()}))
    assert (answer is not None) is covered
    if answer is not None:
        assert answer.available("USDT") == D("100") and answer.total("usdt") == D("100"), "locked is not carried"


def test_placements_come_off_the_bound_and_it_never_goes_negative(ledger) -> None:
    ledger.observe(_read(usdt="100", btc="0.5"), ledger.mark())
    ledger.spend({"usdt": D("30.5")})
    assert ledger.cover(FundingNeed({"usdt": D("69.5")})) is not None
    assert ledger.cover(FundingNeed({"usdt": D("69.6")})) is None
    ledger.spend({"usdt": D("1000"), "eth": D("1")})
    bound = ledger.cover(FundingNeed())
    assert bound is not None and bound.available("usdt") == 0 and bound.available("eth") == 0
    assert bound.available("btc") == D("0.5")


def test_a_read_loses_what_was_placed_while_it_was_under_way(ledger) -> None:
    ledger.spend({"usdt": D(7)})  # before the read: the read shows it
    mark = ledger.mark()
    ledger.spend({"usdt": D(30), "btc": D("0.1")})  # sent while the read was on its way: it may not show it
    ledger.observe(_read(usdt="100", btc="1"), mark)
    bound = ledger.cover(FundingNeed())
    assert bound is not None and bound.available("usdt") == 70 and bound.available("btc") == D("0.9")


def test_a_new_read_replaces_the_bound_and_forget_drops_it(ledger) -> None:
    ledger.observe(_read(usdt="10"), ledger.mark())
    ledger.observe(_read(usdt="7"), ledger.mark())
    assert ledger.cover(FundingNeed({"usdt": D("7.01")})) is None
    ledger.forget()
    assert ledger.cover(FundingNeed()) is None


def test_a_lost_write_trusts_no_bound_until_the_late_window_ends(ledger, clock) -> None:
    ledger.observe(_read(usdt="10"), ledger.mark())
    ledger.forget_after_lost_write()
    ledger.observe(_read(usdt="10"), ledger.mark())  # the batch may land after this read
    clock.now += 59
    assert ledger.cover(FundingNeed()) is None
    clock.now += 2
    assert ledger.cover(FundingNeed()) is None, "the bound read inside the window is not trusted after it either"
    ledger.observe(_read(usdt="10"), ledger.mark())
    assert ledger.cover(FundingNeed()) is not None


def test_two_open_clients_carry_nothing_and_the_last_close_drops_the_bound(ledger) -> None:
    ledger.observe(_read(usdt="100"), ledger.mark())
    ledger.opened()
    assert ledger.cover(FundingNeed()) is None
    ledger.spend({"usdt": D(60)})  # the other client's placement still comes off
    ledger.closed()
    bound = ledger.cover(FundingNeed())
    assert bound is not None and bound.available("usdt") == 40
    ledger.closed()
    ledger.opened()
    assert ledger.cover(FundingNeed()) is None


def test_one_ledger_per_key_whatever_the_url() -> None:
    assert ledger_for("key-for-ledger-tests") is ledger_for("key-for-ledger-tests")
    assert ledger_for("key-for-ledger-tests") is not ledger_for("another-key-for-ledger-tests")
