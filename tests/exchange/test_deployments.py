"""Deployments differ: HMAC-SHA256 signing, a path prefix, a smaller mass_replaceV2, a timeout, over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import requests

from rebalancer.engine.connect import make_client
from rebalancer.engine.runner import run_pass
from rebalancer.errors import AuthError, BadResponse, OutcomeUnknown, RequestError, TransientError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.exchange.signing import SignMethod
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side, SymbolRules, Target
from rebalancer.sandbox.engine import DEMO_API_KEY, DEMO_SECRET_KEY, Engine
from rebalancer.sandbox.faults import Faults
from rebalancer.sandbox.server import SandboxServer
from rebalancer.state.store import StateStore
from tests.jobtext import ladder_job

SYMBOL = "btcusdt"
PREFIX = "/exchange-open-api"


def client_for(url: str, **profile: Any) -> OpenApiClient:
    """A demo-account client with its own generous limiter and no backoff waits."""
    limiter = KeyLimiter(RateLimit(10_000, 1.0), RateLimit(10_000, 1.0))
    settings = {"backoff_base": 0.0, **profile}
    return OpenApiClient(url, DEMO_API_KEY, DEMO_SECRET_KEY, ExchangeProfile(**settings), limiter=limiter)


def far_buys(rules: SymbolRules, mid: Decimal, count: int) -> list[Target]:
    """``count`` buys far below ``mid`` (never filled)."""
    return [
        Target(f"buy-{i}", Side.BUY, rules.round_price(mid * Decimal("0.5") - i, Side.BUY), Decimal("0.01"))
        for i in range(count)
    ]


def signed_paths(server: SandboxServer, endpoint: str) -> list[dict[str, Any]]:
    """The logged requests to ``endpoint`` (a path suffix)."""
    return [r for r in server.app.request_log() if str(r["path"]).endswith(endpoint)]


def test_a_server_that_requires_hmac_refuses_md5_and_accepts_hmac(sandbox: Any) -> None:
    sandbox.faults.sign = "hmac-sha256"
    with client_for(sandbox.url) as md5, pytest.raises(AuthError):
        md5.balances()
    with client_for(sandbox.url, sign=SignMethod.HMAC_SHA256) as client:
        assert client.balances().available("usdt") > 0
        rules = client.rules(SYMBOL)
        answer = client.replace(rules, [], far_buys(rules, sandbox.engine.mid(SYMBOL), 2))
        assert [len(group.order_ids) for group in answer.place] == [2]
        assert len(client.open_orders(SYMBOL)) == 2


def test_a_server_that_requires_md5_refuses_hmac(sandbox: Any) -> None:
    sandbox.faults.sign = "md5"
    with client_for(sandbox.url, sign=SignMethod.HMAC_SHA256) as client, pytest.raises(AuthError):
        client.balances()


@pytest.fixture
def prefixed() -> Iterator[SandboxServer]:
    """A sandbox serving /open/api under ``PREFIX`` only, requiring HMAC signatures."""
    faults = Faults(rate_limits=False, sign="hmac-sha256")
    server = SandboxServer(Engine.create(seed=7, clock="manual"), faults, prefix=PREFIX)
    server.start()
    yield server
    server.stop()


def test_a_base_url_with_a_prefix_is_followed_and_signed_with_it(prefixed: SandboxServer) -> None:
    assert prefixed.url.endswith(PREFIX)
    with client_for(prefixed.url, sign=SignMethod.HMAC_SHA256) as client:
        rules = client.rules(SYMBOL)
        client.replace(rules, [], far_buys(rules, prefixed.engine.mid(SYMBOL), 1))
        assert len(client.open_orders(SYMBOL)) == 1
    logged = signed_paths(prefixed, "/open/api/mass_replaceV2")
    assert [r["path"] for r in logged] == [f"{PREFIX}/open/api/mass_replaceV2"]
    assert logged[0]["code"] == "0"


def test_without_the_prefix_nothing_is_served(prefixed: SandboxServer) -> None:
    root = prefixed.url[: -len(PREFIX)]
    assert requests.get(root + "/open/api/common/symbols", timeout=5).status_code == 404
    with client_for(root) as client, pytest.raises(RequestError, match="path prefix"):
        client.symbols()


def test_client_refuses_a_batch_above_max_batch_before_sending(sandbox: Any) -> None:
    with client_for(sandbox.url, max_batch=2) as client:
        rules = client.rules(SYMBOL)
        with pytest.raises(RequestError, match="at most 2 each"):
            client.replace(rules, [], far_buys(rules, sandbox.engine.mid(SYMBOL), 3))
    assert signed_paths(sandbox.server, "mass_replaceV2") == []


def test_a_pass_is_sent_in_batches_of_max_batch(sandbox: Any, tmp_path: Path) -> None:
    text = ladder_job("small-batches", sandbox.url, levels=5).replace(
        f'exchange: {{url: "{sandbox.url}"}}', f'exchange: {{url: "{sandbox.url}", max_batch: 2, timeout: 5s}}'
    )
    path = tmp_path / "job.yaml"
    path.write_text(text)
    job = load_job(path)
    assert job.exchange.max_batch == 2
    with (
        StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store,
        make_client(job.exchange, sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        assert client.profile.read_timeout == 5.0 and client.profile.max_batch == 2
        report = run_pass(job, client, store, apply=True, mode="apply")
    assert report.result == "ok", report
    batches = signed_paths(sandbox.server, "mass_replaceV2")
    assert len(batches) == 5  # 10 placements, two per request
    assert len(sandbox.engine.open_orders(sandbox.api_key, SYMBOL)) == 10


def test_a_slow_server_fails_a_read_in_about_two_timeouts_not_four(sandbox: Any) -> None:
    sandbox.faults.endpoints = {"/open/api/get_ticker"}
    sandbox.faults.latency = 1.0
    with client_for(sandbox.url, read_timeout=0.3, read_retries=3) as client, pytest.raises(TransientError):
        client.ticker(SYMBOL)
    # The sandbox logs a request once its (delayed) answer is written; the client sends no more once it has raised.
    deadline = time.monotonic() + 30
    while not signed_paths(sandbox.server, "get_ticker") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert 1 <= len(signed_paths(sandbox.server, "get_ticker")) <= 2


def test_quick_failures_still_get_every_retry(sandbox: Any) -> None:
    sandbox.faults.endpoints = {"/open/api/get_ticker"}
    sandbox.faults.error_500 = 1.0
    with client_for(sandbox.url, read_timeout=0.3, read_retries=3) as client, pytest.raises(TransientError):
        client.ticker(SYMBOL)
    assert len(signed_paths(sandbox.server, "get_ticker")) == 4


def test_a_time_ahead_of_the_server_clock_is_accepted(sandbox: Any) -> None:
    with client_for(sandbox.url) as client:
        client.transport.time_offset_ms = 10 * 60 * 1000
        assert client.balances().available("usdt") > 0
        client.transport.time_offset_ms = -10 * 60 * 1000
        with pytest.raises(Exception, match="time"):
            client.balances()


def _ladder_job(sandbox: Any, tmp_path: Path, name: str) -> Any:
    path = tmp_path / f"{name}.yaml"
    path.write_text(ladder_job(name, sandbox.url, levels=3))
    return load_job(path)


def test_an_open_order_list_with_rows_sharing_an_id_is_refused_and_nothing_is_placed(
    sandbox: Any, tmp_path: Path
) -> None:
    job = _ladder_job(sandbox, tmp_path, "dupes")
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, client_for(sandbox.url) as client:
        assert run_pass(job, client, store, apply=True, mode="apply").result == "ok"
        standing = len(sandbox.engine.open_orders(sandbox.api_key, SYMBOL))
        before = len(signed_paths(sandbox.server, "mass_replaceV2"))
        sandbox.faults.duplicate_ids = True
        with pytest.raises(BadResponse, match="more than once"):
            run_pass(job, client, store, apply=True, mode="apply")
    assert len(signed_paths(sandbox.server, "mass_replaceV2")) == before
    assert len(sandbox.engine.open_orders(sandbox.api_key, SYMBOL)) == standing == 6


def test_a_batch_answered_with_null_data_is_read_back_not_taken_as_empty(sandbox: Any, tmp_path: Path) -> None:
    sandbox.faults.answer_shape = "null"
    with client_for(sandbox.url) as client:
        rules = client.rules(SYMBOL)
        with pytest.raises(OutcomeUnknown, match="neither mass_place nor mass_cancel"):
            client.replace(rules, [], far_buys(rules, sandbox.engine.mid(SYMBOL), 2))
        assert len(client.open_orders(SYMBOL)) == 2, "the write was applied although its answer said nothing"
    sandbox.engine.cancel_all(sandbox.api_key, SYMBOL)
    job = _ladder_job(sandbox, tmp_path, "null-answer")
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, client_for(sandbox.url) as client:
        first = run_pass(job, client, store, apply=True, mode="apply")
        assert first.execution is not None and first.execution.count("placed") == 6
        second = run_pass(job, client, store, apply=True, mode="apply")
    assert second.result == "no_changes"
    assert len(sandbox.engine.open_orders(sandbox.api_key, SYMBOL)) == 6
