"""Authentication of private requests: signature, time window and required parameters, over real HTTP."""

from __future__ import annotations

import hashlib
import time
from typing import Any

import pytest

from rebalancer.sandbox.book import Reject
from rebalancer.sandbox.checks import sign, time_ms, verify_signed

DOC_KEY = "0816016bb06417f50327e2b557d39aaa"
DOC_SECRET = "ab5bba291b8e1cabd8009c2ce6aabdb3"
ACCOUNT = "/open/api/user/account"


def test_worked_example_from_the_documentation() -> None:
    params = {"api_key": DOC_KEY, "time": "156200607"}
    text = "api_key0816016bb06417f50327e2b557d39aaatime156200607ab5bba291b8e1cabd8009c2ce6aabdb3"
    assert hashlib.md5(text.encode()).hexdigest() == "5fcf02e226a4bb2fb180be2aaa6fe541"
    assert sign(params, DOC_SECRET) == "5fcf02e226a4bb2fb180be2aaa6fe541"
    assert sign({**params, "sign": "anything"}, DOC_SECRET) == "5fcf02e226a4bb2fb180be2aaa6fe541"


def test_server_verifies_the_worked_example_at_its_own_time() -> None:
    params = {"api_key": DOC_KEY, "time": "156200607", "sign": "5fcf02e226a4bb2fb180be2aaa6fe541"}
    secrets = {DOC_KEY: DOC_SECRET}.get
    assert verify_signed(params, secrets, now_ms=156200607 * 1000, window_s=60) == DOC_KEY
    with pytest.raises(Reject) as stale:
        verify_signed(params, secrets, now_ms=156200607 * 1000 + 61_000, window_s=60)
    assert stale.value.code == "100008"
    with pytest.raises(Reject) as unknown:
        verify_signed(params, {}.get, now_ms=156200607 * 1000, window_s=60)
    assert unknown.value.code == "100005"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1700000000", 1_700_000_000_000),
        ("1700000000123", 1_700_000_000_123),
        ("99999999999", 99_999_999_999_000),
    ],
)
def test_time_unit_is_told_by_magnitude(text: str, expected: int) -> None:
    assert time_ms(text) == expected


@pytest.mark.parametrize("text", ["-5", "1.5e12", "17000000001 ", "١٢٣"])
def test_time_must_be_plain_digits(text: str) -> None:
    with pytest.raises(Reject) as err:
        time_ms(text)
    assert err.value.code == "100004"


def test_good_signature_is_accepted(api: Any) -> None:
    body = api.sget(ACCOUNT)
    assert body["code"] == "0"
    assert body["msg"] == "suc"


def test_wrong_signature_is_100005(api: Any) -> None:
    params = api.signed_params({})
    params["sign"] = "0" * 32
    body = api.session.get(api.url + ACCOUNT, params=params, timeout=10).json()
    assert body == {"code": "100005", "msg": "sign error", "data": None}


def test_upper_case_signature_is_rejected(api: Any) -> None:
    params = api.signed_params({})
    params["sign"] = params["sign"].upper()
    assert params["sign"] != params["sign"].lower()
    response = api.session.get(api.url + ACCOUNT, params=params, timeout=10)
    assert response.status_code == 200
    assert response.json()["code"] == "100005"


def test_values_are_hashed_as_received(api: Any) -> None:
    # Signed with one spelling of the JSON, sent with another: the server must not re-format before hashing.
    params = api.signed_params({"symbol": "btcusdt", "mass_cancel": "[1,2]"})
    params["mass_cancel"] = "[1, 2]"
    body = api.session.post(api.url + "/open/api/mass_replaceV2", data=params, timeout=10).json()
    assert body["code"] == "100005"


def test_stale_time_is_100008(api: Any) -> None:
    old = str(int(time.time() * 1000) - 10 * 60 * 1000)
    params = api.signed_params({}, stamp=old)
    body = api.session.get(api.url + ACCOUNT, params=params, timeout=10).json()
    assert body["code"] == "100008"


def test_time_in_seconds_is_accepted(api: Any) -> None:
    params = api.signed_params({}, stamp=str(int(time.time())))
    body = api.session.get(api.url + ACCOUNT, params=params, timeout=10).json()
    assert body["code"] == "0"


def test_unknown_api_key_is_100005(api: Any) -> None:
    api.api_key = "not-a-key"
    assert api.sget(ACCOUNT)["code"] == "100005"


@pytest.mark.parametrize("missing", ["api_key", "time", "sign"])
def test_missing_credential_is_100004(api: Any, missing: str) -> None:
    params = api.signed_params({})
    del params[missing]
    body = api.session.get(api.url + ACCOUNT, params=params, timeout=10).json()
    assert body["code"] == "100004"


def test_missing_symbol_is_100004(api: Any) -> None:
    assert api.sget("/open/api/v2/new_order")["code"] == "100004"


def test_empty_required_parameter_counts_as_missing(api: Any) -> None:
    body = api.sget("/open/api/v2/new_order", {"symbol": ""})
    assert body["code"] == "100004"


def test_secret_is_in_no_repr(sandbox: Any) -> None:
    assert sandbox.secret_key not in repr(sandbox)
    assert sandbox.secret_key not in repr(sandbox.engine.accounts[sandbox.api_key])
