"""``exchange.account: dedicated`` against the sandbox over HTTP: which passes read the balances, and that the balances
carried between reads never exceed what the account really has available.

A pass whose placements cost more than its cancels release needs the balances. On a shared account it reads them
every time; on a dedicated one the last read, less everything placed since, pays for them until it no longer covers
a pass, a placement is refused, or a second job opens the same account.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path

from rebalancer.core.plan import compute_plan
from rebalancer.engine.connect import open_exchange
from rebalancer.engine.lease import JobSession
from rebalancer.engine.runner import run_pass
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import Job
from rebalancer.models import FundingNeed
from rebalancer.state.store import StateStore
from rebalancer.vocab import AccountUse
from tests.reliability.kit import drain_requests, load
from tests.test_runner_requests import ACCOUNT, ORDERS, REPLACE, TICKER


@contextmanager
def _client(sandbox: object, *, dedicated: bool = True, api_key: str | None = None) -> Iterator[OpenApiClient]:
    profile = ExchangeProfile(backoff_base=0.005, backoff_max=0.05, read_timeout=10.0)
    limiter = KeyLimiter(RateLimit(100_000, 1.0), RateLimit(100_000, 1.0))
    key = api_key or sandbox.api_key  # type: ignore[attr-defined]
    secret = sandbox.engine.secret_for(key)  # type: ignore[attr-defined]
    client = OpenApiClient(sandbox.url, key, secret, profile, limiter=limiter, dedicated=dedicated)  # type: ignore[attr-defined]
    try:
        yield client
    finally:
        client.close()


def _paths(sandbox: object) -> list[str]:
    return [str(entry["path"]) for entry in drain_requests(sandbox)]


def _raise_price(sandbox: object, job: Job, per_mille: int = 3) -> None:
    """Move the mid up: every buy level gets dearer, so the buys' placements cost more than their cancels release."""
    engine = sandbox.engine  # type: ignore[attr-defined]
    engine.set_price(job.symbol, engine.mid(job.symbol) * (1000 + per_mille) / 1000)


def _carried_within_truth(sandbox: object, client: OpenApiClient, coins: tuple[str, ...]) -> bool:
    """Whether a bound is carried; if so, no coin's is above what the account really has available."""
    carried = client.ledger.cover(FundingNeed())
    if carried is None:
        return False
    truth = sandbox.engine.balances(client.transport.api_key)  # type: ignore[attr-defined]
    for coin in coins:
        assert carried.available(coin) <= truth.available(coin), f"carried {coin} above the account's"
    return True


def test_a_dedicated_account_pays_later_passes_from_its_last_read(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "solo", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        _paths(sandbox)
        first = run_pass(job, client, store, apply=True, mode="run")
        assert first.result == "ok"
        assert _paths(sandbox) == [TICKER, ORDERS, ACCOUNT, REPLACE], "no bound yet: the first placing pass reads"
        for _ in range(3):
            _raise_price(sandbox, job)
            report = run_pass(job, client, store, apply=True, mode="run")
            assert report.result == "ok" and report.plan.summary["place"] > 0
            assert not [d for d in report.plan.dropped if d.reason == "insufficient_balance"]
            paths = [p for p in _paths(sandbox) if p != "/open/api/order_info"]
            assert paths == [TICKER, ORDERS, REPLACE], "the carried balances paid: no balance read"
            assert _carried_within_truth(sandbox, client, ("usdt", "btc"))


def test_a_shared_account_reads_the_balances_for_every_such_pass(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "shared", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox, dedicated=False) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        _raise_price(sandbox, job)
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT in _paths(sandbox)
        assert not client.dedicated


def test_the_bound_runs_out_and_the_pass_reads_again_with_the_same_plan(sandbox, tmp_path: Path) -> None:
    """An account with barely more than the ladder: after a few moves the carried quote no longer covers the buys'
    extra cost, the pass reads, and what it places equals what a pass with the true balances places."""
    sandbox.engine.add_account("tight-key", "tight-secret", {"usdt": "1000", "btc": "1"})
    job = load(tmp_path, "tight", sandbox.url, ownership="tracked")
    reads = 0
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox, api_key="tight-key") as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        _paths(sandbox)
        for _ in range(12):
            _raise_price(sandbox, job, per_mille=5)
            true_before = sandbox.engine.balances("tight-key")
            report = run_pass(job, client, store, apply=True, mode="run")
            paths = _paths(sandbox)
            reads += paths.count(ACCOUNT)
            # Whatever answered, the funding decision is the one the true balances give.
            with_truth = dataclasses.replace(report.snapshot, balances=true_before)
            expected = compute_plan(job, with_truth, frozenset(o.id for o in report.snapshot.open_orders))
            assert report.plan.actions == expected.actions
            _carried_within_truth(sandbox, client, ("usdt", "btc"))
    assert 0 < reads < 12, f"read {reads} times in 12 passes: the bound should pay for some and run out"


def test_a_refused_placement_forgets_the_carried_balances(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "refused", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        _raise_price(sandbox, job)
        sandbox.faults.reject_place = 1.0
        report = run_pass(job, client, store, apply=True, mode="run")
        assert report.result == "rejected"
        assert client.ledger.cover(FundingNeed()) is None
        sandbox.faults.reject_place = 0.0
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT in _paths(sandbox), "after a refusal the next pass that needs balances reads them"


def test_a_second_client_of_the_key_stops_the_carrying_and_its_placements_still_come_off(sandbox, tmp_path) -> None:
    """Another job on the same key, even a shared one, spends from the same account: while it is open nothing is
    carried, and what it placed is off the bound once it closes."""
    job = load(tmp_path, "one", sandbox.url, ownership="tracked")
    other = load(tmp_path, "two", sandbox.url, ownership="tracked", symbol="ethusdt")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        with _client(sandbox, dedicated=False) as second:
            run_pass(other, second, store, apply=True, mode="run")  # places the ETH ladder: USDT is locked
            for _ in range(2):
                _raise_price(sandbox, job)
                _paths(sandbox)
                run_pass(job, client, store, apply=True, mode="run")
                assert ACCOUNT in _paths(sandbox), "a second client on the key: nothing is carried"
            run_pass(other, second, store, apply=True, mode="run")
            sandbox.engine.set_price(other.symbol, sandbox.engine.mid(other.symbol) * 1004 / 1000)
            run_pass(other, second, store, apply=True, mode="run")  # more USDT locked after the first's last read
        assert _carried_within_truth(sandbox, client, ("usdt", "btc", "eth"))
        _raise_price(sandbox, job)
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT not in _paths(sandbox), "the other client closed: the bound is carried again"


def test_a_lost_answer_trusts_no_bound_while_the_batch_may_still_land(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "lost", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        _raise_price(sandbox, job)
        sandbox.faults.drop_after_apply = 1.0
        sandbox.faults.endpoints = {REPLACE}
        run_pass(job, client, store, apply=True, mode="run")
        sandbox.faults.drop_after_apply = 0.0
        for _ in range(2):
            _raise_price(sandbox, job)
            _paths(sandbox)
            run_pass(job, client, store, apply=True, mode="run")
            assert ACCOUNT in _paths(sandbox), "inside the late-write window every pass that needs balances reads"
            assert client.ledger.cover(FundingNeed()) is None


def test_a_lease_taken_afresh_forgets_the_bound(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "leased", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        session = JobSession(job, client, store, holder="first", ttl_seconds=60)
        assert session.hold()
        client.balances(FundingNeed())
        assert client.ledger.cover(FundingNeed()) is not None
        assert session.hold(refresh=True), "renewing its own lease keeps the bound"
        assert client.ledger.cover(FundingNeed()) is not None
        session.release()
        assert JobSession(job, client, store, holder="second", ttl_seconds=60).hold()
        store.release_lease(job.name, "second")
        assert session.hold()
        assert client.ledger.cover(FundingNeed()) is None, "the job may have traded elsewhere meanwhile"


def test_the_job_file_key_reaches_the_client(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "keyed", sandbox.url)
    env = {job.exchange.api_key_env: sandbox.api_key, job.exchange.secret_key_env: sandbox.secret_key}
    with open_exchange(job, env) as client:
        assert not client.dedicated
    dedicated = dataclasses.replace(job, exchange=dataclasses.replace(job.exchange, account=AccountUse.DEDICATED))
    with open_exchange(dedicated, env) as client:
        assert client.dedicated


def test_balances_in_a_placing_pass_are_never_below_what_funding_needs(sandbox, tmp_path: Path) -> None:
    """Sells too: moving the price down makes the sells' new levels need base the cancels may not release in full
    (partly filled sells); the carried base must stay at or below the account's."""
    job = load(tmp_path, "down", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        carried = 0
        for step in (-4, 7, -9, 3, -2, 11, -6):
            _raise_price(sandbox, job, per_mille=step)
            sandbox.engine.advance(Decimal(3))
            run_pass(job, client, store, apply=True, mode="run")
            carried += _carried_within_truth(sandbox, client, ("usdt", "btc"))
        assert carried, "the bound was never carried: the check above checked nothing"
