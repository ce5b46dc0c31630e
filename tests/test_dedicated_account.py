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

from rebalancer.connect import open_exchange
from rebalancer.core.plan import compute_plan
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import Job
from rebalancer.models import FundingNeed
from rebalancer.runner import run_pass
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


def _carried_within_truth(sandbox: object, client: OpenApiClient, coins: tuple[str, ...]) -> None:
    carried = client.carried.cover(FundingNeed()) if client.carried else None
    if carried is None:
        return
    truth = sandbox.engine.balances(client.transport.api_key)  # type: ignore[attr-defined]
    for coin in coins:
        assert carried.available(coin) <= truth.available(coin), f"carried {coin} above the account's"


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
            _carried_within_truth(sandbox, client, ("usdt", "btc"))


def test_a_shared_account_reads_the_balances_for_every_such_pass(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "shared", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox, dedicated=False) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        _raise_price(sandbox, job)
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT in _paths(sandbox)
        assert client.carried is None


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
            assert report.plan.summary == expected.summary
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
        assert client.carried is not None and client.carried.cover(FundingNeed()) is None
        sandbox.faults.reject_place = 0.0
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT in _paths(sandbox), "after a refusal the next pass that needs balances reads them"


def test_two_dedicated_jobs_on_one_account_read_every_time(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "one", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        with _client(sandbox):
            for _ in range(2):
                _raise_price(sandbox, job)
                _paths(sandbox)
                run_pass(job, client, store, apply=True, mode="run")
                assert ACCOUNT in _paths(sandbox), "a second dedicated client on the account: nothing is carried"
        _raise_price(sandbox, job)
        _paths(sandbox)
        run_pass(job, client, store, apply=True, mode="run")
        assert ACCOUNT not in _paths(sandbox), "the other client closed: the last read is carried again"


def test_the_job_file_key_reaches_the_client(sandbox, tmp_path: Path) -> None:
    job = load(tmp_path, "keyed", sandbox.url)
    env = {job.exchange.api_key_env: sandbox.api_key, job.exchange.secret_key_env: sandbox.secret_key}
    with open_exchange(job, env) as client:
        assert client.carried is None
    dedicated = dataclasses.replace(job, exchange=dataclasses.replace(job.exchange, account=AccountUse.DEDICATED))
    with open_exchange(dedicated, env) as client:
        assert client.carried is not None


def test_balances_in_a_placing_pass_are_never_below_what_funding_needs(sandbox, tmp_path: Path) -> None:
    """Sells too: moving the price down makes the sells' new levels need base the cancels may not release in full
    (partly filled sells); the carried base must stay at or below the account's."""
    job = load(tmp_path, "down", sandbox.url, ownership="tracked")
    with StateStore(f"sqlite:///{tmp_path / 's.db'}") as store, _client(sandbox) as client:
        client.rules(job.symbol)
        run_pass(job, client, store, apply=True, mode="run")
        for step in (-4, 7, -9, 3, -2, 11, -6):
            _raise_price(sandbox, job, per_mille=step)
            sandbox.engine.advance(Decimal(3))
            run_pass(job, client, store, apply=True, mode="run")
            _carried_within_truth(sandbox, client, ("usdt", "btc"))
