"""``rebalancer replay`` end to end: determinism, the JSON contract, --vary, and one-line errors for bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from click.testing import Result

from tests.replay.conftest import depth, rules_line, trade

ROOT = Path(__file__).resolve().parents[2]
MAKER = str(ROOT / "jobs" / "btcusdt-maker.yaml")
WALK = "walk:seed=3,hours=0.25"
KEYS = {
    "passes",
    "wakes",
    "order_operations",
    "batches",
    "requests",
    "fills",
    "fees",
    "inventory",
    "pnl",
    "paused_seconds",
    "loss_limit_trips",
}


def test_the_same_inputs_print_the_same_bytes(replay_cli: Callable[..., Result]) -> None:
    for extra in ([], ["--json"]):
        first = replay_cli(MAKER, "--market", WALK, *extra)
        second = replay_cli(MAKER, "--market", WALK, *extra)
        assert first.exit_code == 0, first.output
        assert first.stdout_bytes == second.stdout_bytes


def test_json_has_exactly_the_contract_keys_and_money_as_strings(replay_cli: Callable[..., Result]) -> None:
    result = replay_cli(MAKER, "--market", "walk:seed=1,hours=0.5,vol=0.0006", "--fill", "touch", "--json")
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert set(out) == KEYS
    assert set(out["wakes"]) == {"timer", "reference", "trade", "market"}
    assert set(out["order_operations"]) == {"place", "cancel"}
    assert set(out["fills"]) == {"count", "buy_volume", "sell_volume"}
    assert set(out["inventory"]) == {"base_start", "base_end", "base_min", "base_max"}
    assert set(out["pnl"]) == {"realised", "unrealised", "total", "max_drawdown"}
    money = [out["fees"], *out["pnl"].values(), *out["inventory"].values(), out["fills"]["buy_volume"]]
    assert all(isinstance(value, str) for value in money)
    # A 10 s schedule over 30 minutes: the first pass at the start, then one every 10 s.
    assert out["passes"] == out["wakes"]["timer"] and 180 <= out["passes"] <= 181
    assert out["order_operations"]["place"] >= 20 and out["batches"] >= 1
    assert out["requests"] >= 2 * out["passes"] + out["batches"]


def test_vary_runs_one_replay_per_value_like_the_edited_job(
    replay_cli: Callable[..., Result], job_file: Callable[..., Path]
) -> None:
    varied = replay_cli(MAKER, "--market", WALK, "--vary", "ladder.buy.first=0.1%,0.3%", "--json")
    assert varied.exit_code == 0, varied.output
    rows = json.loads(varied.stdout)
    assert [row["vary"] for row in rows] == [{"ladder.buy.first": "0.1%"}, {"ladder.buy.first": "0.3%"}]
    text = Path(MAKER).read_text(encoding="utf-8")
    assert "    first: 0.5%\n" in text
    for row, value in zip(rows, ("0.1%", "0.3%"), strict=True):
        edited = job_file(text.replace("    first: 0.5%\n", f"    first: {value}\n", 1), name=f"j{value[:3]}.yaml")
        alone = json.loads(replay_cli(str(edited), "--market", WALK, "--json").stdout)
        assert {k: v for k, v in row.items() if k != "vary"} == alone
    table = replay_cli(MAKER, "--market", WALK, "--vary", "ladder.buy.first=0.1%,0.3%")
    lines = table.stdout.splitlines()
    assert lines[0].startswith("ladder.buy.first") and lines[1].startswith("0.1%") and lines[2].startswith("0.3%")


def _error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert lines and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def test_a_garbage_line_is_named_by_its_line_number(
    recording: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    market = recording([rules_line(), depth(0, [("100", "1")], [("101", "1")]), "{not json", trade(5, 1, "100", "1")])
    line = _error(replay_cli(MAKER, "--market", str(market)))
    assert "line 3" in line and str(market) in line
    assert len(replay_cli(MAKER, "--market", str(market)).stderr.strip().splitlines()) == 1


def test_hostile_recordings_and_arguments_get_one_line_errors(
    tmp_path: Path, recording: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    plain = tmp_path / "plain.jsonl.gz"
    plain.write_text('{"t": 0}\n', encoding="utf-8")
    assert "not a gzip file" in _error(replay_cli(MAKER, "--market", str(plain)))
    whole = recording([rules_line(), depth(0, [("100", "1")], [("101", "1")])], name="whole.jsonl.gz")
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(whole.read_bytes()[:-12])
    assert "cut short" in _error(replay_cli(MAKER, "--market", str(cut)))
    absurd = recording([depth(0, [("1e30", "1")], [("101", "1")])], name="absurd.jsonl.gz")
    assert "line 1" in _error(replay_cli(MAKER, "--market", str(absurd)))
    late_rules = recording([depth(0, [("100", "1")], [("101", "1")]), rules_line()], name="late.jsonl.gz")
    assert "line 2" in _error(replay_cli(MAKER, "--market", str(late_rules)))
    no_time = recording([{"frame": {}}], name="notime.jsonl.gz")
    assert "line 1" in _error(replay_cli(MAKER, "--market", str(no_time)))
    empty = recording([{"t": 0, "frame": {"channel": "market_ethusdt_depth_step0", "ts": 0, "tick": {}}}], "o.gz")
    assert "no order book of btcusdt" in _error(replay_cli(MAKER, "--market", str(empty)))
    assert "no such recording" in _error(replay_cli(MAKER, "--market", str(tmp_path / "missing.gz")))
    for market in ("walk:seed=-1", "walk:hours=0", "walk:vol=5", "walk:speed=2", "walk:hours=1,hours=2"):
        assert "--market" in _error(replay_cli(MAKER, "--market", market))
    bad = [
        ("--vary", "ladder.buy.nope=1"),
        ("--vary", "ladder.buy.first="),
        ("--vary", "name.x=1"),
        ("--vary", "ladder.buy.levels=-1"),
        ("--balances", "usdt=-5"),
        ("--balances", "usdt"),
        ("--balances", "usdt=1,usdt=2"),
        ("--fee", "50%"),
        ("--latency", "soon"),
        ("--from", "yesterday"),
    ]
    for option, value in bad:
        assert option in _error(replay_cli(MAKER, "--market", "walk:hours=0.01", option, value)), (option, value)


def test_time_going_backwards_is_taken_at_the_earlier_time(
    recording: Callable[..., Path], replay_cli: Callable[..., Result], job_file: Callable[..., Path]
) -> None:
    """A print recorded with an earlier time than the line above still fills (at the later time), in file order."""
    job = job_file(
        "version: 1\nname: back\nsymbol: btcusdt\nexchange: {url: sandbox}\nschedule: {every: 1h}\n"
        'orders:\n  - {side: buy, price: "100", size: "1"}\nlimits: {band: 50%}\n'
    )
    market = recording(
        [
            rules_line(),
            depth(1000, [("100.5", "1")], [("101", "1")]),
            depth(5000, [("100.5", "1")], [("101", "1")]),
            trade(2000, 1, "99", "1"),
            depth(6000, [("100.5", "1")], [("101", "1")]),
        ]
    )
    out = json.loads(replay_cli(str(job), "--market", str(market), "--balances", "usdt=1000", "--json").stdout)
    assert out["fills"]["count"] == 1


def test_a_huge_line_is_refused_by_its_number_and_a_repeated_trade_counts_once(
    recording: Callable[..., Path], replay_cli: Callable[..., Result], job_file: Callable[..., Path]
) -> None:
    huge = recording([rules_line(), depth(0, [("100", "1")], [("101", "1")]), "x" * (16 * 1024 * 1024 + 1)], "h.gz")
    line = _error(replay_cli(MAKER, "--market", str(huge)))
    assert "line 3" in line and "longer than 16 MiB" in line
    job = job_file(
        "version: 1\nname: again\nsymbol: btcusdt\nexchange: {url: sandbox}\nschedule: {every: 1h}\n"
        'orders:\n  - {side: buy, price: "100", size: "1"}\nlimits: {band: 50%}\n'
    )
    lines = [rules_line(), depth(0, [("100.5", "1")], [("101", "1")]), trade(1000, 7, "100", "0.25")]
    once = recording([*lines, depth(3000, [("100.5", "1")], [("101", "1")])], "once.gz")
    twice = recording([*lines, trade(2000, 7, "100", "0.25"), depth(3000, [("100.5", "1")], [("101", "1")])], "2.gz")
    results = [
        json.loads(replay_cli(str(job), "--market", str(m), "--balances", "usdt=1000", "--json").stdout)
        for m in (once, twice)
    ]
    assert results[0]["fills"] == results[1]["fills"] and results[0]["fills"]["count"] == 1


def test_html_problems_are_one_line_errors(tmp_path: Path, replay_cli: Callable[..., Result]) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "page.html"
    line = _error(replay_cli(MAKER, "--market", "walk:hours=0.01", "--html", str(missing)))
    assert "--html" in line and "cannot write" in line
    line = _error(replay_cli(MAKER, "--market", "walk:hours=0.01", "--html", "p.html", "--vary", "ladder.buy.first=1%"))
    assert "--vary" in line


def test_blank_lines_are_skipped_and_counted_in_line_numbers(
    recording: Callable[..., Path], replay_cli: Callable[..., Result]
) -> None:
    blanks = [""] * 5000  # many blank lines in a row: skipped one after another, not by recursion
    market = recording([rules_line(), *blanks, depth(0, [("100", "1")], [("101", "1")]), "\x00garbage"], "b.gz")
    line = _error(replay_cli(MAKER, "--market", str(market)))
    assert f"line {5000 + 3}" in line


def test_a_job_following_another_venue_is_refused(replay_cli: Callable[..., Result]) -> None:
    line = _error(replay_cli(str(ROOT / "jobs" / "ethusdt-follow-venue.yaml"), "--market", "walk:hours=0.01"))
    assert "reference.source" in line
