"""The recording's lines: the rules line, and frames kept as the exchange wrote them, one record a line."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from rebalancer.models import SymbolRules
from rebalancer.stream.recording import frame_line, rules_line


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ('{"channel":"c","ts":1,"tick":{"buys":[[30000.10,0.5000]]}}', "30000.10"),
        ('{\n  "channel": "c",\r\n  "tick": {"close": 1.000000}\n}', "1.000000"),
        ('{"channel":"c","tick":{"close":"2.50"}}', '"2.50"'),
        ('{"channel":"c","tick":{"close":1E+3}}', "1E+3"),
    ],
)
def test_frame_lines_keep_the_text_on_one_line(text: str, number: str) -> None:
    line = frame_line(1700000000123, text)
    assert "\n" not in line and "\r" not in line
    assert number in line  # the number's spelling survives
    record = json.loads(line, parse_float=Decimal)
    assert record["t"] == 1700000000123
    assert record["frame"] == json.loads(text, parse_float=Decimal)


def test_the_rules_line() -> None:
    rules = {
        "ethusdt": SymbolRules("ethusdt", "eth", "usdt", price_precision=2, amount_precision=3),
        "btcusdt": SymbolRules("btcusdt", "btc", "usdt", price_precision=1, amount_precision=6),
    }
    assert json.loads(rules_line(5, rules)) == {
        "t": 5,
        "rules": {"btcusdt": {"tick": "0.1", "lot": "0.000001"}, "ethusdt": {"tick": "0.01", "lot": "0.001"}},
    }
