"""Several files and folders at once: folder expansion, duplicate names across files, all problems at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from rebalancer.errors import JobFileError
from rebalancer.jobfile.load import check_paths, load_jobs

JOB = (
    "version: 1\nname: {name}\nsymbol: btcusdt\nownership: tracked\n"
    "ladder:\n  buy: {{levels: 3, first: 1%, step: 1%, size: 1}}\n"
)


def test_a_folder_expands_to_its_yaml_files_sorted_and_not_recursively(write: Callable[..., Path]) -> None:
    write(JOB.format(name="b"), "d/b.yml")
    write(JOB.format(name="a"), "d/a.yaml")
    write(JOB.format(name="c"), "d/notes.txt")
    write(JOB.format(name="deep"), "d/sub/deep.yaml")
    folder = write(JOB.format(name="z"), "z.yaml").parent / "d"
    jobs = load_jobs([folder])
    assert [j.name for j in jobs] == ["a", "b"]
    assert [j.source for j in jobs] == [str(folder / "a.yaml"), str(folder / "b.yml")]


def test_the_same_file_named_twice_is_loaded_once(write: Callable[..., Path]) -> None:
    path = write(JOB.format(name="a"), "d/a.yaml")
    assert [j.name for j in load_jobs([path, path.parent])] == ["a"]


def test_duplicate_names_are_reported_at_the_second_files_name(write: Callable[..., Path]) -> None:
    first = write(JOB.format(name="same"), "one.yaml")
    second = write("# another copy\n" + JOB.format(name="same"), "two.yaml")
    problems = check_paths([first, second])
    assert [str(p) for p in problems] == [f"{second}:3:7: name: job name 'same' is already used by {first}"]
    with pytest.raises(JobFileError, match="already used"):
        load_jobs([first, second])


def test_an_empty_folder_is_a_problem(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert [str(p) for p in check_paths([tmp_path / "empty"])] == [
        f"{tmp_path / 'empty'}:1:1: no job files found in {tmp_path / 'empty'}"
    ]


def test_problems_of_every_file_come_together_in_one_error(write: Callable[..., Path]) -> None:
    good = write(JOB.format(name="good"), "good.yaml")
    bad1 = write(JOB.format(name="Bad"), "bad1.yaml")
    bad2 = write(JOB.format(name="ok").replace("levels: 3", "levels: 0"), "bad2.yaml")
    with pytest.raises(JobFileError) as caught:
        load_jobs([good, bad1, bad2])
    assert [(p.file, p.line, p.path) for p in caught.value.problems] == [
        (str(bad1), 2, "name"),
        (str(bad2), 6, "ladder.buy.levels"),
    ]
    assert str(caught.value).count("\n") == 1


def test_valid_files_give_an_empty_problem_list(write: Callable[..., Path]) -> None:
    assert check_paths([write(JOB.format(name="a"), "a.yaml"), write(JOB.format(name="b"), "b.yaml")]) == []


def test_two_jobs_owning_one_symbol_on_one_account_are_refused(tmp_path):
    """With ownership: symbol each job would cancel the other's orders on every pass."""
    from rebalancer.jobfile.load import check_paths

    body = (
        "version: 1\nname: {name}\nsymbol: btcusdt\nownership: {ownership}\n"
        "orders:\n  - {{side: buy, price: '1', size: '1'}}\n"
    )
    (tmp_path / "a.yaml").write_text(body.format(name="a", ownership="symbol"))
    (tmp_path / "b.yaml").write_text(body.format(name="b", ownership="tracked"))
    problems = check_paths([tmp_path])
    assert [(p.file, p.line, p.path) for p in problems] == [(str(tmp_path / "b.yaml"), 2, "ownership")]
    assert "each would cancel the other's orders" in problems[0].message
    (tmp_path / "a.yaml").write_text(body.format(name="a", ownership="tracked"))
    assert check_paths([tmp_path]) == []


def test_a_symbol_owner_is_refused_beside_any_earlier_job_of_its_market_and_only_of_its_market(tmp_path):
    """Jobs are checked against those before them by market: two tracked jobs share a market, a third one owning
    the symbol is refused naming the first of them, and a job of another symbol on the same account is not."""
    from rebalancer.jobfile.load import check_paths, load_jobs

    body = (
        "version: 1\nname: {name}\nsymbol: {symbol}\nownership: {ownership}\n"
        "orders:\n  - {{side: buy, price: '1', size: '1'}}\n"
    )
    (tmp_path / "a.yaml").write_text(body.format(name="a", symbol="btcusdt", ownership="tracked"))
    (tmp_path / "b.yaml").write_text(body.format(name="b", symbol="btcusdt", ownership="tracked"))
    (tmp_path / "c.yaml").write_text(body.format(name="c", symbol="ethusdt", ownership="symbol"))
    (tmp_path / "d.yaml").write_text(body.format(name="d", symbol="btcusdt", ownership="symbol"))
    problems = check_paths([tmp_path])
    assert [(p.file, p.path) for p in problems] == [(str(tmp_path / "d.yaml"), "ownership")]
    assert f"job 'a' ({tmp_path / 'a.yaml'})" in problems[0].message
    (tmp_path / "d.yaml").unlink()
    assert [job.name for job in load_jobs([tmp_path])] == ["a", "b", "c"]
