"""Signing: the documented worked example, and the rules that make the server's hash match ours."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.exchange.signing import canonical_string, sign, signed_params, without_secrets

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
