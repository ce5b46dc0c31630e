"""Hostile arguments and recordings for ``rebalancer replay`` found by a red-team review, each now handled.

Each test states what the command should do (they were strict xfails until the replay was fixed).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import Result

from tests.replay.conftest import depth, rules_line

ROOT = Path(__file__).resolve().parents[2]
MAKER = str(ROOT / "jobs" / "btcusdt-maker.yaml")
WALK = "walk:seed=3,hours=0.02"
BOOK = ([("29999.00", "1")], [("30001.00", "1")])


def _one_error_line(result: Result) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def _invoke(replay_cli: Callable[..., Result], *args: str) -> Result:
    try:
        return replay_cli(*args)
    except Exception as exc:  # the fixture does not catch: an escaping exception is the traceback a user would see
        pytest.fail(f"a traceback instead of one Error line: {type(exc).__name__}: {exc}")


@pytest.mark.parametrize(
    "args",
    [
        ("--from", "99999999999999999999999999999999h"),
        ("--from", "9999-12-31T23:59:59Z"),
    ],
    ids=["huge-relative-from", "year-9999"],
)
def test_a_moment_beyond_any_date_is_one_error_line(replay_cli: Callable[..., Result], args: tuple[str, str]) -> None:
    line = _one_error_line(_invoke(replay_cli, MAKER, "--market", WALK, *args))
    assert args[0] in line


def test_an_amount_finer_than_any_coin_is_refused_however_it_is_written(replay_cli: Callable[..., Result]) -> None:
    # 0.0000000000000000001 (19 places) is refused; the same kind of value written with an exponent must be too,
    # else a 10-million-digit inventory is printed (40 MB of zeros on one line).
    result = _invoke(replay_cli, MAKER, "--market", WALK, "--balances", "btc=1e-9999999", "--json")
    line = _one_error_line(result)
    assert "--balances" in line and "decimal places" in line


def test_a_window_after_the_markets_end_is_refused_like_one_before_its_start(
    replay_cli: Callable[..., Result], recording: Callable[..., Path]
) -> None:
    path = recording([rules_line(0), depth(1000, *BOOK), depth(3_601_000, *BOOK)])  # --to 0 is before the first
    before = _one_error_line(_invoke(replay_cli, MAKER, "--market", str(path), "--to", "1970-01-01T00:00:00Z"))
    assert "no order book of btcusdt in the chosen window" in before  # what an empty window says today
    after = _one_error_line(_invoke(replay_cli, MAKER, "--market", str(path), "--from", "2h"))
    assert "no order book of btcusdt in the chosen window" in after


def test_a_recording_whose_clock_leaps_ahead_ends_promptly(recording: Callable[..., Path], tmp_path: Path) -> None:
    # Two books 2**53 ms apart (the largest "t" a line may hold). A generated walk is bounded at a year (8784 h);
    # a recording that spans more must be refused by its line (or its idle time skipped), never simulated pass
    # by pass for ~9e11 passes.
    path = recording([rules_line(0), depth(1000, *BOOK), depth(2**53 - 10, *BOOK)])
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    command = [sys.executable, "-m", "rebalancer", "replay", MAKER, "--market", str(path)]
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail("the replay was still running after 30 s")
    assert "Traceback" not in done.stderr
    assert done.returncode in (0, 1), done.stderr
    if done.returncode == 1:
        assert done.stderr.startswith("Error:") and "line 3" in done.stderr, done.stderr


def test_many_blank_lines_are_skipped(replay_cli: Callable[..., Result], recording: Callable[..., Path]) -> None:
    path = recording([rules_line(0), depth(0, *BOOK), *[""] * 100_000, depth(60_000, *BOOK)])
    result = _invoke(replay_cli, MAKER, "--market", str(path), "--json")
    assert result.exit_code == 0, result.output


def test_html_never_replaces_the_recording_or_the_job_file(
    replay_cli: Callable[..., Result], recording: Callable[..., Path], job_file: Callable[..., Path]
) -> None:
    # Not a replay defect (the command line's own check): no xfail.
    path = recording([rules_line(0), depth(0, *BOOK), depth(60_000, *BOOK)])
    job = job_file(Path(MAKER).read_text(encoding="utf-8"))
    before = path.read_bytes(), job.read_bytes()
    line = _one_error_line(_invoke(replay_cli, str(job), "--market", str(path), "--html", str(path)))
    assert line == f"Error: --html {path}: that is the --market file; the page would replace it"
    alias = path.parent / "link.jsonl.gz"
    alias.symlink_to(path)
    line = _one_error_line(_invoke(replay_cli, str(job), "--market", str(path), "--html", str(alias)))
    assert line == f"Error: --html {alias}: that is the --market file; the page would replace it"
    line = _one_error_line(_invoke(replay_cli, str(job), "--market", WALK, "--html", str(job)))
    assert line == f"Error: --html {job}: that is the JOB file; the page would replace it"
    assert (path.read_bytes(), job.read_bytes()) == before
    page = path.parent / "page.html"
    assert _invoke(replay_cli, str(job), "--market", str(path), "--html", str(page)).exit_code == 0
    assert page.read_text(encoding="utf-8").lstrip().lower().startswith("<!doctype html")


def test_a_recording_spanning_more_than_a_year_is_refused_by_its_line(
    replay_cli: Callable[..., Result], recording: Callable[..., Path]
) -> None:
    # 8784 h (a walk's bound) after the first book is replayed; one millisecond more is refused at its line.
    limit = 8784 * 3_600_000
    path = recording([rules_line(0), depth(1000, *BOOK), depth(1000 + limit + 1, *BOOK)])
    line = _one_error_line(_invoke(replay_cli, MAKER, "--market", str(path), "--to", "1m"))
    assert f"{path}: line 3:" in line and "8784h" in line


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("--to", "8785h"), "at most 8784h"),
        (("--to", "9000-01-01T00:00:00Z"), "before 9000-01-01"),
        (("--balances", "btc=0e-9999999"), "1e±60"),
    ],
    ids=["relative-to", "iso-to", "zero-with-a-huge-exponent"],
)
def test_the_bounds_name_what_they_accept(replay_cli: Callable[..., Result], args: tuple[str, str], words: str) -> None:
    line = _one_error_line(_invoke(replay_cli, MAKER, "--market", WALK, *args))
    assert args[0] in line and words in line, line
