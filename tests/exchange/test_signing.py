"""Signing: the documented worked example, and the rules that make the server's hash match ours."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.exchange.signing import (
    SignMethod,
    Target,
    canonical_string,
    hmac_string,
    sign,
    sign_hmac,
    signed_params,
    without_secrets,
)
from rebalancer.exchange.urls import host_header
from rebalancer.sandbox.checks import Received
from rebalancer.sandbox.checks import sign_hmac as sandbox_sign_hmac

API_KEY = "0816016bb06417f50327e2b557d39aaa"
SECRET = "ab5bba291b8e1cabd8009c2ce6aabdb3"


def test_worked_example_of_the_documentation() -> None:
    params = {"api_key": API_KEY, "time": "156200607"}
    assert canonical_string(params) + SECRET == (
        "api_key0816016bb06417f50327e2b557d39aaatime156200607ab5bba291b8e1cabd8009c2ce6aabdb3"
    )
    assert sign(params, SECRET) == "5fcf02e226a4bb2fb180be2aaa6fe541"


def test_signed_params_adds_key_time_and_sign() -> None:
    out = signed_params({}, api_key=API_KEY, secret=SECRET, time_value="156200607")
    assert out == {"api_key": API_KEY, "time": "156200607", "sign": "5fcf02e226a4bb2fb180be2aaa6fe541"}


def test_empty_values_are_neither_signed_nor_sent() -> None:
    out = signed_params({"symbol": "btcusdt", "mass_cancel": ""}, api_key="k", secret="s", time_value="1")
    assert "mass_cancel" not in out
    assert out["sign"] == hashlib.md5(b"api_keyksymbolbtcusdttime1s").hexdigest()


def test_order_is_byte_order_not_case_folded() -> None:
    # "Z" (0x5a) sorts before "a" (0x61) in byte order.
    assert canonical_string({"a": "1", "Z": "2"}) == "Z2a1"


def test_sign_is_lowercase_hex_and_ignores_an_existing_sign() -> None:
    digest = sign({"x": "1", "sign": "whatever"}, "s")
    assert digest == digest.lower() and len(digest) == 32
    assert digest == sign({"x": "1"}, "s")


def test_non_text_values_are_refused() -> None:
    with pytest.raises(TypeError):
        signed_params({"page": 1}, api_key="k", secret="s", time_value="1")  # type: ignore[dict-item]


def test_without_secrets_drops_key_and_sign() -> None:
    assert without_secrets({"api_key": "k", "sign": "x", "time": "1", "symbol": "b"}) == {
        "time": "1",
        "symbol": "b",
    }


@settings(max_examples=60)
@given(st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=12), max_size=6))
def test_sign_does_not_depend_on_insertion_order(params: dict[str, str]) -> None:
    reversed_params = dict(reversed(list(params.items())))
    assert sign(params, "secret") == sign(reversed_params, "secret")


# Vectors computed outside Python: printf '<text>' | openssl dgst -sha256 -hmac '<secret>' -binary | base64
HMAC_VECTORS = [
    (
        {"symbol": "btcusdt", "mass_cancel": "[1,2]", "api_key": "k1", "time": "1700000000000", "sign": "x"},
        "s3cret",
        Target("POST", "openapi.example.com", "/exchange-open-api/open/api/mass_replaceV2"),
        "POST\nopenapi.example.com\n/exchange-open-api/open/api/mass_replaceV2\n"
        "api_key=k1&mass_cancel=[1,2]&symbol=btcusdt&time=1700000000000",
        "yEtANHHzO5U1dkv/W9fmyPYcZkR+ynraUym28Z6EdU0=",
    ),
    (
        {"api_key": API_KEY, "time": "156200607"},
        SECRET,
        Target("get", "127.0.0.1:8790", "/open/api/user/account"),
        f"GET\n127.0.0.1:8790\n/open/api/user/account\napi_key={API_KEY}&time=156200607",
        "i7WhVw9KvyDpKAPtXF4QdXOdP5ndjBP9B+iO6JkHj74=",
    ),
]


@pytest.mark.parametrize(("params", "secret", "target", "text", "expected"), HMAC_VECTORS)
def test_hmac_sha256_signs_method_host_path_and_sorted_pairs(
    params: dict[str, str], secret: str, target: Target, text: str, expected: str
) -> None:
    assert hmac_string(params, target) == text
    assert sign_hmac(params, secret, target) == expected
    sandbox_view = Received(target.method, target.host, target.path)
    assert sandbox_sign_hmac(params, secret, sandbox_view) == expected


def test_signed_params_with_hmac_needs_the_target_and_signs_what_is_sent() -> None:
    target = Target("GET", "127.0.0.1:8790", "/open/api/user/account")
    out = signed_params(
        {}, api_key=API_KEY, secret=SECRET, time_value="156200607", method=SignMethod.HMAC_SHA256, target=target
    )
    assert out["sign"] == "i7WhVw9KvyDpKAPtXF4QdXOdP5ndjBP9B+iO6JkHj74="
    with pytest.raises(ValueError, match="host"):
        signed_params({}, api_key="k", secret="s", time_value="1", method=SignMethod.HMAC_SHA256)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://OpenAPI.Example.com", "openapi.example.com"),
        ("https://openapi.example.com:443/exchange-open-api", "openapi.example.com"),
        ("https://openapi.example.com:8443", "openapi.example.com:8443"),
        ("http://127.0.0.1:80", "127.0.0.1"),
        ("http://127.0.0.1:8790/p", "127.0.0.1:8790"),
        ("http://[::1]:8790", "[::1]:8790"),
    ],
)
def test_the_signed_host_is_the_host_header_with_a_port_only_when_not_the_default(url: str, host: str) -> None:
    assert host_header(url) == host
