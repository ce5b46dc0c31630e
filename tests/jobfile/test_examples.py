"""The example jobs in jobs/ are valid, runnable against the sandbox, and point editors at the schema."""

from __future__ import annotations

from pathlib import Path

import pytest

from rebalancer.jobfile.load import check_paths, load_job, load_jobs

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "jobs").glob("*.yaml"))


def test_there_are_the_three_agreed_examples() -> None:
    assert {p.stem for p in EXAMPLES} >= {"btcusdt-maker", "ethusdt-buy-wall", "ethusdt-geometric"}


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_validates_and_targets_the_sandbox(path: Path) -> None:
    assert check_paths([path]) == []
    job = load_job(path)
    assert job.exchange.is_sandbox
    assert job.symbol in {"btcusdt", "ethusdt"}
    assert job.name == path.stem
    first_line = path.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=../schemas/job.schema.json"


def test_the_main_example_is_a_symmetric_ladder_every_ten_seconds() -> None:
    job = load_job(EXAMPLES[0].parent / "btcusdt-maker.yaml")
    assert job.schedule.every_seconds == 10 and job.schedule.cron is None
    assert job.buy is not None and job.sell is not None
    assert (job.buy.levels, job.buy.first, job.buy.step, job.buy.size) == (
        job.sell.levels,
        job.sell.first,
        job.sell.step,
        job.sell.size,
    )


def test_the_example_folder_loads_as_one_set_of_jobs() -> None:
    jobs = load_jobs([EXAMPLES[0].parent])
    assert [j.name for j in jobs] == [p.stem for p in EXAMPLES]
    assert {j.buy.spacing.value for j in jobs if j.buy} == {"linear", "geometric"}
    assert any(j.orders for j in jobs) and any(j.sell is None for j in jobs)
