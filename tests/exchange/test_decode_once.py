"""An answer whose numbers are all in bounds is decoded without the object hook: the same value, or the same error,
as the decoding that names the key of a number out of bounds (``_decode_naming``, the reading it replaces)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rebalancer.errors import BadResponse
from rebalancer.exchange.envelope import _decode_naming, decode_json

NUMBERS = ["1", "-0", "0.5", "1e999999", "-1e-999", "1" * 80, "2" * 130, "1.5e3", "NaN", "-Infinity", "3" * 70]
"""Number texts in bounds and out of them, and the constants JSON forbids."""

keys = st.text("abcé\n", min_size=1, max_size=4)
leaves = st.one_of(st.sampled_from(["null", "true", "false", *NUMBERS]), st.text(max_size=4).map(json.dumps))
documents = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda items: "[" + ",".join(items) + "]"),
        st.lists(st.tuples(keys, inner), max_size=4).map(
            lambda pairs: "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in pairs) + "}"
        ),
    ),
    max_leaves=12,
)
broken = st.tuples(documents, st.sampled_from(["", "}", ",", "]]", "{", " x"])).map("".join)


def outcome(decode: Any, text: str) -> tuple[str, Any]:
    try:
        return "value", decode(text, "get_ticker")
    except BadResponse as error:
        return "refused", str(error)


@given(st.one_of(documents, broken))
def test_the_same_value_or_the_same_refusal_as_the_naming_decode(text: str) -> None:
    assert outcome(decode_json, text) == outcome(_decode_naming, text)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ('{"code": "0", "data": {"price": 1e999999}}', "price is out of bounds"),
        ('[1e999999, {"a": 1}]', "the answer is out of bounds"),
        ('{"data": {"price": 1e999999}} trailing', "price is out of bounds"),  # named before the text breaks
        ('{"data": [1, 2}', "not JSON"),
        ('{"price": NaN}', "not JSON"),
    ],
)
def test_a_number_out_of_bounds_is_still_named_and_broken_text_still_refused(text: str, said: str) -> None:
    with pytest.raises(BadResponse, match=said):
        decode_json(text, "get_ticker")
