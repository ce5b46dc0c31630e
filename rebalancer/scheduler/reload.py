"""Reloading job files one by one: a broken file keeps its previous version running and never blocks the others.

``merge`` takes what each file holds now and the job each file held at the last good load, and decides what runs:
a file that reads cleanly (and clashes with no other job) runs its new version; a file with problems keeps its
previous job, if it had one and that job still clashes with nothing; a file no longer listed is dropped. Every
refused file is reported with its problems, so that the supervisor can log, count and record it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rebalancer.errors import Problem
from rebalancer.job import Job
from rebalancer.jobfile.load import Accepted, FileRead


@dataclass(frozen=True)
class Refused:
    """A file whose latest version was refused; ``kept`` is the previous job still running (None: none)."""

    file: str
    problems: tuple[Problem, ...]
    kept: Job | None


@dataclass(frozen=True)
class Merged:
    """What runs after a reload: the jobs, the job standing for each file, the files refused and the files loaded."""

    jobs: list[Job]
    by_file: dict[str, Job]
    refused: list[Refused] = field(default_factory=list)
    loaded: list[str] = field(default_factory=list)


def merge(reads: Sequence[FileRead], previous: Mapping[str, Job], listing_problems: Sequence[Problem] = ()) -> Merged:
    """The jobs to run after reading ``reads``, given the job each file held before (``previous``, by file).

    ``listing_problems`` are problems of the listing itself (a watched folder found empty): the previous jobs of
    that folder's files keep running rather than being stopped by what may be a checkout in progress.
    """
    accepted = Accepted()
    by_file: dict[str, Job] = {}
    refused: list[Refused] = []
    loaded: list[str] = []

    def keep_previous(file: str, path: Path, problems: tuple[Problem, ...]) -> None:
        old = previous.get(file)
        if old is not None and accepted.conflict(FileRead(path, old, (), (1, 1))) is not None:
            old = None
        if old is not None:
            accepted.add(old)
            by_file[file] = old
        refused.append(Refused(file, problems, old))

    for read in reads:
        file = str(read.path)
        if read.job is None:
            keep_previous(file, read.path, read.problems)
            continue
        clash = accepted.conflict(read)
        if clash is not None:
            keep_previous(file, read.path, (clash,))
            continue
        accepted.add(read.job)
        by_file[file] = read.job
        loaded.append(file)
    for problem in listing_problems:
        folder = Path(problem.file)
        for file, old in previous.items():
            if file in by_file or Path(file).parent != folder:
                continue
            if accepted.conflict(FileRead(Path(file), old, (), (1, 1))) is None:
                accepted.add(old)
                by_file[file] = old
        refused.append(Refused(problem.file, (problem,), None))
    return Merged(accepted.jobs, by_file, refused, loaded)
