"""A table of malformed job files: each must yield exactly the expected ``file:line:col: path: message``."""

# ruff: noqa: E501  (the table reads best with one case per line)

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.errors import JobFileError
from rebalancer.jobfile.load import check_paths, load_job

ROOT = Path(__file__).resolve().parents[2]
H = "version: 1\nname: t\nsymbol: btcusdt\n"  # lines 1-3
L = "ladder:\n  buy: {levels: 3, first: 1%, step: 1%, size: 1}\n"
SIDE = "ladder:\n  buy:\n    levels: 3\n    first: 1%\n    step: 1%\n    size: 1\n"  # lines 4-9 after H
PCT_GE0 = 'expected a percentage like "0.5%" or a number of 0 or more'
PCT_GT0 = 'expected a percentage like "0.5%" or a number greater than 0'
POSITIVE = 'expected a number greater than 0 such as "0.01"'
JUMP = 'expected a percentage like "10%", a number of 0 or more, or null'
SECRET = "looks like a secret; give the name of an environment variable that holds it"
HEX_SECRET = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
NO_CREDENTIALS = (
    "must not be in a job file: credentials are read from the environment variables named by "
    "exchange.api_key_env and exchange.secret_key_env"
)

CASES: list[tuple[str, str, list[str]]] = [
    ("levels below 1", H + SIDE.replace("levels: 3", "levels: -3"),
     ["6:13: ladder.buy.levels: -3 is less than the minimum of 1"]),
    ("levels above cap", H + SIDE.replace("levels: 3", "levels: 1001"),
     ["6:13: ladder.buy.levels: 1001 is greater than the maximum of 1000"]),
    ("levels not a number", H + SIDE.replace("levels: 3", "levels: many"),
     ['6:13: ladder.buy.levels: expected a whole number, got "many"']),
    ("levels fractional", H + SIDE.replace("levels: 3", "levels: 2.5"),
     ["6:13: ladder.buy.levels: expected a whole number, got 2.5"]),
    ("bad percentage", H + SIDE.replace("first: 1%", "first: abc"),
     [f'7:12: ladder.buy.first: {PCT_GE0}, got "abc"']),
    ("double percent sign", H + SIDE.replace("first: 1%", "first: 1%%"),
     [f'7:12: ladder.buy.first: {PCT_GE0}, got "1%%"']),
    ("negative first", H + SIDE.replace("first: 1%", "first: -1"),
     [f"7:12: ladder.buy.first: {PCT_GE0}, got -1"]),
    ("zero step", H + SIDE.replace("step: 1%", "step: 0%"),
     [f'8:11: ladder.buy.step: {PCT_GT0}, got "0%"']),
    ("zero size", H + SIDE.replace("size: 1", "size: 0"),
     [f"9:11: ladder.buy.size: {POSITIVE}, got 0"]),
    ("quoted negative size", H + SIDE.replace("size: 1", 'size: "-0.5"'),
     [f'9:11: ladder.buy.size: {POSITIVE}, got "-0.5"']),
    ("size_step with size_factor", H + SIDE + "    size_step: 1\n    size_factor: 2\n",
     ["5:3: ladder.buy: size_step and size_factor are mutually exclusive; give at most one"]),
    ("zero size_factor", H + SIDE + "    size_factor: 0\n",
     [f"10:18: ladder.buy.size_factor: {POSITIVE}, got 0"]),
    ("unknown key with a near miss", H + SIDE + "    levles: 3\n",
     ["10:5: ladder.buy.levles: unknown key 'levles' (did you mean 'levels'?)"]),
    ("unknown top-level key", H + L + "refrence: mid\n",
     ["6:1: refrence: unknown key 'refrence' (did you mean 'reference'?)"]),
    ("missing side key", H + SIDE.replace("    size: 1\n", ""),
     ["5:3: ladder.buy: missing required key 'size'"]),
    ("missing name", "version: 1\nsymbol: btcusdt\n" + L,
     ["1:1: missing required key 'name'"]),
    ("duplicate key", H + SIDE + "    levels: 4\n",
     ["10:5: ladder.buy.levels: duplicate key 'levels' (first given on line 6)"]),
    ("tab indentation", H + "ladder:\n\tbuy: {}\n",
     ["5:1: YAML syntax error: tab characters cannot indent YAML; use spaces"]),
    ("unclosed flow mapping", H + "ladder: {buy: {levels: 3\n",
     ["5:1: YAML syntax error: expected ',' or '}', but got '<stream end>'"]),
    ("two documents", H + L + "---\n" + H,
     ["6:1: a job file holds exactly one YAML document"]),
    ("a list, not a mapping", "- version: 1\n- name: t\n",
     ["1:1: a job file must be a mapping of keys such as 'name: ...', got a list"]),
    ("a bare scalar", "just text\n",
     ["1:1: a job file must be a mapping of keys such as 'name: ...', got a single value"]),
    ("empty file", "# nothing here\n",
     ["1:1: the file is empty; expected a mapping of job keys"]),
    ("anchor and alias", H + "ladder:\n  buy: &side {levels: 3, first: 1%, step: 1%, size: 1}\n  sell: *side\n",
     ["5:8: YAML syntax error: YAML anchors (&name) are not allowed here"]),
    ("nesting too deep", H + L + "deep: " + "[" * 25 + "]" * 25 + "\n",
     ["6:26: YAML syntax error: nesting deeper than 20 levels"]),
    ("custom tag", H + L + "reference: !price 6400\n",
     ["6:12: reference: YAML tags such as '!name' are not allowed in job files"]),
    ("infinite number", H + "orders:\n  - {side: buy, price: .inf, size: 1}\n",
     ["5:24: orders[0].price: '.inf' is not a finite decimal number"]),
    ("cron out of range", H + L + 'schedule: {cron: "61 * * * *"}\n',
     ["6:18: schedule.cron: invalid cron expression: Error validating expression '61': "
      "the last value (61) is higher than the maximum value (59)"]),
    ("cron with four fields", H + L + 'schedule: {cron: "* * * *"}\n',
     ['6:18: schedule.cron: expected a 5-field crontab expression such as "*/5 * * * *", got "* * * *"']),
    ("every and cron", H + L + 'schedule:\n  every: 10s\n  cron: "* * * * *"\n',
     ["6:1: schedule: give exactly one of 'every' or 'cron'"]),
    ("zero every", H + L + "schedule: {every: 0s}\n",
     ['6:19: schedule.every: expected a duration greater than 0 such as "30s", "5m", "1h", "500ms" '
      'or a number of seconds, got "0s"']),
    ("negative jitter", H + L + "schedule: {every: 5m, jitter: -1s}\n",
     ['6:31: schedule.jitter: expected a duration of 0 or more such as "2s", "500ms" or a number of seconds, '
      'got "-1s"']),
    ("fixed reference reached by absolute steps", H + "reference: 100\n" + SIDE.replace("levels: 3", "levels: 5")
     .replace("first: 1%", "first: 50").replace("step: 1%", "step: 20"),
     ["9:11: ladder.buy.step: ladder.buy[4] would be priced at -30 (reference 100), at or below zero"]),
    ("fixed reference reached by first", H + 'reference: "6400"\n' + SIDE.replace("first: 1%", "first: 6400"),
     ["8:12: ladder.buy.first: ladder.buy[0] would be priced at 0 (reference 6400), at or below zero"]),
    ("market reference, first at 100%", H + SIDE.replace("first: 1%", "first: 100%"),
     ['7:12: ladder.buy.first: ladder.buy[0] would be 100% below the reference, at or below zero price']),
    ("market reference, percent steps past 100%", H + SIDE.replace("levels: 3", "levels: 5")
     .replace("first: 1%", "first: 50%").replace("step: 1%", "step: 20%"),
     ["8:11: ladder.buy.step: ladder.buy[4] would be 130% below the reference, at or below zero"]),
    ("geometric with an absolute step", H + SIDE.replace("step: 1%", "step: 20") + "    spacing: geometric\n",
     ['8:11: ladder.buy.step: geometric spacing needs a percentage step such as "0.5%", got 20']),
    ("geometric step of 100%", H + SIDE.replace("step: 1%", "step: 100%") + "    spacing: geometric\n",
     ["8:11: ladder.buy.step: a geometric step of 100% puts ladder.buy[1] at or below zero price"]),
    ("size_step shrinking to zero", H + SIDE.replace("levels: 3", "levels: 5") + "    size_step: -0.25\n",
     ["10:16: ladder.buy.size_step: ladder.buy[4] would have size 0.00; sizes must stay above 0"]),
    ("bad reference", H + L + "reference: middle\n",
     ['6:12: reference: expected mid, bid, ask, last, a positive price such as "6400", or a mapping with a source, got "middle"']),
    ("zero reference", H + L + "reference: 0\n",
     ['6:12: reference: expected mid, bid, ask, last, a positive price such as "6400", or a mapping with a source, got 0']),
    ("bad name", "version: 1\nname: Bad Name\nsymbol: btcusdt\n" + L,
     ["2:7: name: expected a name of lower-case letters, digits, '_' and '-' starting with a letter or digit, "
      'got "Bad Name"']),
    ("bad symbol", "version: 1\nname: t\nsymbol: BTC/USDT\n" + L,
     ['3:9: symbol: expected a lower-case symbol such as "btcusdt", got "BTC/USDT"']),
    ("unsupported version", "version: 2\nname: t\nsymbol: btcusdt\n" + L,
     ["1:10: version: unsupported version; this rebalancer reads version 1"]),
    ("ftp url", H + L + "exchange: {url: ftp://example.com}\n",
     ['6:17: exchange.url: expected "sandbox" or an http(s) URL such as "https://openapi.example.com", '
      'got "ftp://example.com"']),
    ("plain http to a remote host", H + L + "exchange: {url: 'http://api.example.com'}\n",
     ["6:17: exchange.url: plain http to a host other than this machine sends orders in clear text; "
      "use https or insecure: true"]),
    ("bad time unit and page size", H + L + "exchange:\n  time_unit: us\n  page_size: 0\n",
     ["7:14: exchange.time_unit: expected one of ms, s, got \"us\"",
      "8:14: exchange.page_size: 0 is less than the minimum of 1"]),
    ("stream over plain ws to a remote host", H + L + "exchange: {stream: 'ws://ws.example.com/kline-api/ws'}\n",
     ["6:20: exchange.stream: plain ws:// to a host other than this machine carries market data in clear text; "
      "use wss:// or insecure"]),
    ("stream not a websocket URL", H + L + "exchange: {stream: 'https://ws.example.com/kline-api/ws'}\n",
     ["6:20: exchange.stream: 'https://ws.example.com/kline-api/ws' is not a websocket URL (wss://host/kline-api/ws)"]),
    ("stream with a token shows no token", H + L + "exchange: {stream: 'http://ws.example.com/ws?token=abc'}\n",
     ["6:20: exchange.stream: 'http://ws.example.com/ws?…' is not a websocket URL (wss://host/kline-api/ws)"]),
    ("stream naming no host", H + L + "exchange: {stream: 'wss:///kline-api/ws'}\n",
     ["6:20: exchange.stream: 'wss:///kline-api/ws' names no host"]),
    ("stream with a line break", H + L + 'exchange: {stream: "wss://ws.example.com/\\nws"}\n',
     ["6:20: exchange.stream: a URL holds no spaces, line breaks or control characters"]),
    ("sandbox stream beside a real exchange", H + L + "exchange: {url: 'https://api.example.com', stream: sandbox}\n",
     ["6:52: exchange.stream: stream: sandbox is the embedded sandbox's market; it needs url: sandbox"]),
    ("stream empty", H + L + "exchange: {stream: ''}\n",
     ["6:20: exchange.stream: expected a websocket URL such as \"wss://ws.example.com/kline-api/ws\", or sandbox, got \"\""]),
    ("stream_stale zero", H + L + "exchange: {stream: sandbox, stream_stale: 0s}\n",
     ['6:43: exchange.stream_stale: expected a duration greater than 0 such as "30s", "5m", "1h", "500ms" or a number of seconds, got "0s"']),
    ("stream_stale not a duration", H + L + "exchange: {stream: sandbox, stream_stale: soon}\n",
     ['6:43: exchange.stream_stale: expected a duration greater than 0 such as "30s", "5m", "1h", "500ms" or a number of seconds, got "soon"']),
    ("min_gap negative", H + L + "schedule: {every: 60s, min_gap: -1s}\n",
     ['6:33: schedule.min_gap: expected a duration of 0 or more such as "2s", "500ms" or a number of seconds, got "-1s"']),
    ("stream_stale without a stream", H + L + "exchange: {url: sandbox, stream_stale: 5s}\n",
     ["6:40: exchange.stream_stale: stream_stale sets how long the stream's book may stay silent; without exchange.stream it does nothing: give a stream or leave it out"]),
    ("min_gap without a stream", H + L + "schedule: {every: 60s, min_gap: 1s}\n",
     ["6:33: schedule.min_gap: min_gap sets the least time between two passes the stream wakes; without exchange.stream it does nothing: give a stream or leave it out"]),
    ("both stream-only keys without a stream", H + L + "exchange: {stream_stale: 5s}\nschedule: {every: 60s, min_gap: 0s}\n",
     ["6:26: exchange.stream_stale: stream_stale sets how long the stream's book may stay silent; without exchange.stream it does nothing: give a stream or leave it out",
      "7:33: schedule.min_gap: min_gap sets the least time between two passes the stream wakes; without exchange.stream it does nothing: give a stream or leave it out"]),
    ("stream-only key beside a malformed stream", H + L + "exchange: {stream: 'https://ws.example.com/kline-api/ws', stream_stale: 5s}\n",
     ["6:20: exchange.stream: 'https://ws.example.com/kline-api/ws' is not a websocket URL (wss://host/kline-api/ws)"]),
    ("max_blind zero", H + L + "limits: {max_blind: 0s}\n",
     ['6:21: limits.max_blind: expected a duration greater than 0 such as "30s", "5m", "1h", "500ms" or a number of seconds, got "0s"']),
    ("on_blind unknown", H + L + "limits: {max_blind: 30s, on_blind: flatten}\n",
     ['6:36: limits.on_blind: expected one of cancel, keep, got "flatten"']),
    ("on_blind cancel without max_blind", H + L + "limits: {on_blind: cancel}\n",
     ["6:20: limits.on_blind: on_blind: cancel acts after max_blind without a trusted price; give limits.max_blind"]),
    ("insecure not a bool", H + L + "exchange: {insecure: 1}\n",
     ["6:22: exchange.insecure: expected true or false, got 1"]),
    ("env name not an env name", H + L + "exchange:\n  api_key_env: my_key\n",
     ["7:16: exchange.api_key_env: expected the name of an environment variable such as REBALANCER_API_KEY"]),
    ("pasted secret key", H + L + f"exchange:\n  secret_key_env: {HEX_SECRET}\n",
     [f"7:19: exchange.secret_key_env: {SECRET}"]),
    ("secret key in the file", H + L + f"secret_key: {HEX_SECRET}\n",
     [f"6:1: secret_key: 'secret_key' {NO_CREDENTIALS}"]),
    ("password nested in exchange", H + L + "exchange:\n  url: sandbox\n  password: hunter2\n",
     [f"8:3: exchange.password: 'password' {NO_CREDENTIALS}"]),
    ("credentials in the url", H + L + "exchange: {url: 'https://me:hunter2@api.example.com'}\n",
     ["6:17: exchange.url: credentials must not be written into the URL; name variables in "
      "api_key_env/secret_key_env"]),
    ("secret-looking value anywhere", H + L + f"on_stop: {HEX_SECRET}\n",
     [f"6:10: on_stop: {SECRET}"]),
    ("neither ladder nor orders", H,
     ["1:1: a job needs a ladder, fixed orders, or both"]),
    ("empty ladder", H + "ladder: {}\n",
     ["4:1: ladder: a ladder needs a buy side, a sell side, or both"]),
    ("empty orders", H + L + "orders: []\n",
     ["6:9: orders: needs at least 1 item"]),
    ("bad fixed order", H + "orders:\n  - {side: buy, price: 6400, size: 1}\n  - {side: hold, price: '-1', size: 1}\n",
     ['6:12: orders[1].side: expected one of buy, sell, got "hold"',
      f'6:25: orders[1].price: {POSITIVE}, got "-1"']),
    ("fixed order missing size", H + "orders:\n  - side: buy\n    price: 6400\n",
     ["5:5: orders[0]: missing required key 'size'"]),
    ("bad tolerance and limits", H + L + "tolerance: {price: lots}\nlimits: {max_orders: 0, band: 0%, post_only: 'yes'}\n",
     [f'6:20: tolerance.price: {PCT_GE0}, got "lots"',
      "7:22: limits.max_orders: 0 is less than the minimum of 1",
      f'7:31: limits.band: {PCT_GT0}, got "0%"',
      '7:46: limits.post_only: expected true or false, got "yes"']),
    ("side left empty", H + "ladder:\n  buy:\nreference: mid\n",
     ["5:7: ladder.buy: expected a mapping of keys, got nothing"]),
    ("schedule not a mapping", H + L + "schedule: 5\n",
     ["6:11: schedule: expected a mapping of keys, got 5"]),
    ("a list as a key", H + L + "? [a, b]\n: 1\n",
     ["6:3: keys must be plain names"]),
    ("merge key", H + L + "<<: {reference: mid}\n",
     ["6:1: YAML merge keys ('<<') are not allowed in job files"]),
    ("bad enums", H + L + "ownership: mine\non_stop: sell\npaused: 3\n",
     ['6:12: ownership: expected one of symbol, tracked, got "mine"',
      '7:10: on_stop: expected one of keep, cancel, got "sell"',
      "8:9: paused: expected true or false, got 3"]),
    ("negative max_jump", H + L + "limits: {max_jump: -1%}\n",
     [f'6:20: limits.max_jump: {JUMP}, got "-1%"']),
    ("max_jump not a number", H + L + "limits: {max_jump: lots}\n",
     [f'6:20: limits.max_jump: {JUMP}, got "lots"']),
    ("max_jump a boolean", H + L + "limits:\n  max_jump: true\n",
     [f"7:13: limits.max_jump: {JUMP}, got true"]),
    ("max_jump a list", H + L + "limits: {max_jump: [10%]}\n",
     [f"6:20: limits.max_jump: {JUMP}, got a list"]),
    ("escape character in a value", H + L + "on_stop: ke\x1b[31mep\n",
     ["6:12: character U+001B (a control character) is not allowed in a job file"]),
    ("NUL character in a key", H + "lad\x00der:\n",
     ["4:4: character U+0000 (a control character) is not allowed in a job file"]),
    ("DEL character in a comment", H + L + "# note \x7f\n",
     ["6:8: character U+007F (a control character) is not allowed in a job file"]),
    ("a mapping without a source as the reference", H + L + "reference: {price: mid}\n",
     ["6:1: reference: missing required key 'source'"]),
    ("a list as the reference", H + L + "reference: [mid]\n",
     ['6:12: reference: expected mid, bid, ask, last, a positive price such as "6400", or a mapping with a source, got a list']),
    ("rate of zero requests", H + L + "exchange: {rate_limit: {reads: 0/1s}}\n",
     ['6:32: exchange.rate_limit.reads: expected COUNT/DURATION such as "10/1s" or "100/10s", got "0/1s"']),
    ("rate without a window", H + L + "exchange:\n  rate_limit: {writes: '100'}\n",
     ['7:24: exchange.rate_limit.writes: expected COUNT/DURATION such as "10/1s" or "100/10s", got "100"']),
    ("unknown rate kind", H + L + "exchange:\n  rate_limit: {read: 10/1s}\n",
     ["7:16: exchange.rate_limit.read: unknown key 'read' (did you mean 'reads'?)"]),
    ("price tolerance above 100%", H + L + "tolerance: {price: 100.5%}\n",
     ["6:20: tolerance.price: 100.5% is more than 100%: a price tolerance is a share of the target price; "
      "give at most 100%"]),
    ("band above 100%", H + L + "limits: {band: 150%}\n",
     ["6:16: limits.band: 150% is more than 100%: a band is a share of the reference price; give at most 100%"]),
    ("band of zero", H + L + "limits: {band: 0}\n",
     [f"6:16: limits.band: {PCT_GT0}, got 0"]),
    ("negative step", H + SIDE.replace("step: 1%", "step: -1%"),
     [f'8:11: ladder.buy.step: {PCT_GT0}, got "-1%"']),
    ("negative tolerance", H + L + "tolerance: {size: -5%}\n",
     [f'6:19: tolerance.size: {PCT_GE0}, got "-5%"']),
    ("max_jump above 100%", H + L + "limits: {max_jump: 101%}\n",
     ["6:20: limits.max_jump: 101% is more than 100%: a jump is a share of the last reference price; "
      "give at most 100% (0% turns the check off)"]),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_job_file_reports_each_problem_at_its_position(
    write: Callable[..., Path], text: str, expected: list[str]
) -> None:
    path = write(text)
    problems = check_paths([path])
    assert [str(p) for p in problems] == [f"{path}:{line}" for line in expected]
    with pytest.raises(JobFileError) as caught:
        load_job(path)
    assert caught.value.problems == tuple(problems)
    assert all(p.file == str(path) and "\n" not in p.message for p in problems)


def test_the_table_covers_at_least_thirty_kinds_of_mistake() -> None:
    assert len({name for name, _, _ in CASES}) >= 30


def test_every_problem_of_a_file_is_reported_at_once(write: Callable[..., Path]) -> None:
    text = "version: 1\nname: T\nsymbol: btcusdt\nladder:\n  buy: {levels: 0, first: 1%, step: 1%, size: 1}\nfoo: 1\n"
    problems = check_paths([write(text)])
    assert [(p.line, p.column, p.path) for p in problems] == [
        (2, 7, "name"),
        (5, 17, "ladder.buy.levels"),
        (6, 1, "foo"),
    ]


def test_a_missing_file_and_a_binary_file_are_problems_not_crashes(tmp_path: Path) -> None:
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"version: 1\n\xff\xfe\n")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"# " + b"x" * (1024 * 1024) + b"\n")
    problems = check_paths([tmp_path / "missing.yaml", binary, big])
    assert [str(p) for p in problems] == [
        f"{tmp_path / 'missing.yaml'}:1:1: no such file",
        f"{binary}:1:1: the file is not UTF-8 text (byte 12)",
        f"{big}:1:1: the file is larger than 1024 KiB; a job file is a few lines long",
    ]


def test_importing_the_loader_stays_light() -> None:
    code = "import sys, rebalancer.jobfile.load; print(sorted(m for m in ('apscheduler', 'requests', 'sqlalchemy') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_a_problem_at_the_top_does_not_hide_cross_field_problems(write: Callable[..., Path]) -> None:
    text = "name: t\nsymbol: btcusdt\nschedule: {cron: '0 25 * * *'}\n" + L
    problems = check_paths([write(text)])
    assert [(p.line, p.column, p.path) for p in problems] == [(1, 1, ""), (3, 18, "schedule.cron")]
    assert problems[0].message == "missing required key 'version'"
    assert "(25) is higher than the maximum value (23)" in problems[1].message


def test_several_missing_keys_are_named_on_one_line(write: Callable[..., Path]) -> None:
    (problem,) = check_paths([write(H + "ladder:\n  sell: {size: 1}\n")])
    assert str(problem).endswith(":5:3: ladder.sell: missing required keys 'levels', 'first', 'step'")


@pytest.mark.parametrize("key", ["exchange: {url: URL, stream_stale: 5s}", "schedule: {every: 60s, min_gap: 1s}"])
def test_a_stream_only_key_without_a_stream_stops_apply_before_anything_is_sent(
    tmp_path: Path, sandbox: Any, key: str
) -> None:
    """``apply`` of such a file exits 1 with the located line alone, and the sandbox sees no request at all."""
    exchange = "" if key.startswith("exchange") else "exchange: {url: URL}\n"
    text = H + L + (exchange + key).replace("URL", f"'{sandbox.url}'") + "\n"
    path = tmp_path / "job.yaml"
    path.write_text(text, encoding="utf-8")
    before = sum(sandbox.server.app.request_counts().values())
    env = {"REBALANCER_API_KEY": sandbox.api_key, "REBALANCER_SECRET_KEY": sandbox.secret_key}
    result = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "state"), "apply", str(path), "--yes"], env=env)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and "without exchange.stream it does nothing" in result.stderr
    assert sum(sandbox.server.app.request_counts().values()) == before
