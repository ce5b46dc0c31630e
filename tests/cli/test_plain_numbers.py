"""`plan` says what a plain-number distance means when it is that small (`first: "0.6"` is 0.6 quote units)."""

from __future__ import annotations

import json
import re


def test_plan_warns_that_a_plain_first_is_quote_units(cli, write_job):
    path = write_job("plain", levels=2)
    path.write_text(path.read_text().replace("first: 0.5%", 'first: "0.6"'))
    text = cli("plan", str(path))
    assert text.exit_code == 0, text.output
    said = re.compile(
        r'! ladder\.(buy|sell)\.first: "0\.6" means 0\.6 quote units \(([0-9.]+) % of the reference ([0-9.]+)\); '
        r'write "0\.6%" for a percentage'
    )
    shown = said.findall(text.stdout)
    assert {side for side, _, _ in shown} == {"buy", "sell"}, text.stdout
    for _, percent, reference in shown:
        assert abs(float(percent) - 0.6 * 100 / float(reference)) < 0.0001
    document = json.loads(cli("plan", str(path), "--json").stdout)
    assert sum("means 0.6 quote units" in w for w in document["warnings"]) == 2


def test_a_percentage_gets_no_such_warning(cli, write_job):
    result = cli("plan", str(write_job("percent", levels=2)), "--json")
    assert not any("quote units" in w for w in json.loads(result.stdout)["warnings"])
