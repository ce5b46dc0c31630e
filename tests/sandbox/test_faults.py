"""Injected faults and rate limits: 500, 429, answers lost after the write applied, rejected placements."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from rebalancer.sandbox.faults import Faults, Limit, RateLimiter

TICKER = "/open/api/get_ticker"


def test_error_500_answers_before_doing_anything(sandbox: Any, api: Any) -> None:
    sandbox.faults.error_500 = 1.0
    response = api.spost(
        "/open/api/mass_replaceV2",
        {"symbol": "btcusdt", "mass_place": '[{"side":"BUY","type":"1","volume":"0.01","price":"29000"}]'},
    )
    assert response.status_code == 500
    sandbox.faults.error_500 = 0.0
    assert api.open_orders("btcusdt") == []


def test_429_fault(sandbox: Any, api: Any) -> None:
    sandbox.faults.rate_429 = 1.0
    response = api.get(TICKER, {"symbol": "btcusdt"})
    assert response.status_code == 429
    assert response.json()["code"] == "10069"


def test_faults_apply_only_to_chosen_endpoints(sandbox: Any, api: Any) -> None:
    sandbox.faults.error_500 = 1.0
    sandbox.faults.endpoints = {"/open/api/mass_replaceV2"}
    assert api.get(TICKER, {"symbol": "btcusdt"}).status_code == 200
    assert api.spost("/open/api/mass_replaceV2", {"symbol": "btcusdt"}).status_code == 500


@pytest.mark.parametrize("mode", ["500", "close"])
def test_drop_after_apply_really_applies_the_write(sandbox: Any, api: Any, mode: str) -> None:
    sandbox.faults.drop_after_apply = 1.0
    sandbox.faults.drop_mode = mode
    params = {
        "symbol": "btcusdt",
        "mass_place": '[{"side":"BUY","type":"1","volume":"0.0100","price":"29000.00"}]',
    }
    if mode == "500":
        assert api.spost("/open/api/mass_replaceV2", params).status_code == 500
    else:
        with pytest.raises(requests.ConnectionError):
            api.spost("/open/api/mass_replaceV2", params)
    # Reads are not writes: they still answer.
    [row] = api.open_orders("btcusdt")
    assert (row["side"], row["price"], row["volume"]) == ("BUY", "29000.00", "0.0100")
    assert api.balances()["usdt"][1] == "290.00000000"


def test_reject_a_share_of_placements_with_a_chosen_code(sandbox: Any, api: Any) -> None:
    sandbox.faults.reject_place = 1.0
    sandbox.faults.reject_code = "13"
    answer = api.replace("btcusdt", place=[api.item("BUY", "29000.00", "0.0100")] * 3)
    assert [g["code"] for g in answer["data"]["mass_place"]] == ["13"]
    sandbox.faults.reject_place = 0.5
    sandbox.faults.rng.seed(1)
    answer = api.replace("btcusdt", place=[api.item("BUY", "29000.00", "0.0100")] * 40)
    codes = {g["code"]: g["order_id"] for g in answer["data"]["mass_place"]}
    assert set(codes) == {"0", "13"}
    assert len(api.open_orders("btcusdt")) == len(codes["0"])


def test_latency_still_answers(sandbox: Any, api: Any) -> None:
    sandbox.faults.latency = 0.05
    assert api.get(TICKER, {"symbol": "btcusdt"}).json()["code"] == "0"


def test_rate_limits_per_api_key(sandbox: Any, api: Any) -> None:
    sandbox.faults.rate_limits = True
    sandbox.faults.read_limit = Limit(3, 3600.0)
    answers = [
        api.session.get(api.url + "/open/api/user/account", params=api.signed_params({}), timeout=10) for _ in range(4)
    ]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[-1].json()["code"] == "10069"
    assert int(answers[-1].headers["Retry-After"]) >= 1
    # Writes are counted apart from reads, and another key has its own counters.
    assert api.spost("/open/api/cancel_order_all", {"symbol": "btcusdt"}).status_code == 200
    api.api_key = "someone-else"
    assert api.sget("/open/api/user/account")["code"] == "100005"


def test_rate_limiter_sliding_window() -> None:
    now = [100.0]
    limiter = RateLimiter(clock=lambda: now[0])
    limit = Limit(2, 10.0)
    assert limiter.allow("k", "write", limit) is None
    now[0] = 105.0
    assert limiter.allow("k", "write", limit) is None
    assert limiter.allow("k", "write", limit) == pytest.approx(5.0)
    assert limiter.allow("k", "read", limit) is None
    assert limiter.allow("j", "write", limit) is None
    now[0] = 110.0
    assert limiter.allow("k", "write", limit) is None
    limiter.reset()
    assert limiter.allow("k", "write", limit) is None


def test_fault_settings_validate_and_round_trip() -> None:
    faults = Faults()
    faults.update(
        {
            "error_500": 0.25,
            "endpoints": ["/open/api/get_ticker"],
            "write_limit": {"count": 5, "seconds": 1},
            "reject_code": 19,
            "seed": 3,
        }
    )
    data = faults.to_dict()
    assert data["error_500"] == 0.25 and data["endpoints"] == ["/open/api/get_ticker"]
    assert data["write_limit"] == {"count": 5, "seconds": 1.0} and data["reject_code"] == "19"
    with pytest.raises(ValueError):
        faults.update({"error_500": 2})
    with pytest.raises(ValueError):
        faults.update({"explode": True})
    with pytest.raises(ValueError):
        Faults(drop_mode="sometimes")
    assert Faults(seed=4).roll(0.0) is False and Faults().roll(1.0) is True
