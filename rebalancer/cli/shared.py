"""What several commands share: the state store, job loading, confirmation, colour, naming a job.

Heavy modules are imported inside the functions so that ``rebalancer --help`` starts fast.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rebalancer.errors import ConfigError

if TYPE_CHECKING:
    from rebalancer.core.plan import Plan
    from rebalancer.job import Job
    from rebalancer.state.store import StateStore


def log_level(base: int = logging.WARNING) -> int:
    """The log level the global ``-v``/``-q`` ask for, counted from ``base`` (one step of ten per flag)."""
    ctx = click.get_current_context(silent=True)
    params = ctx.find_root().params if ctx is not None else {}
    steps = int(params.get("verbose") or 0) - int(params.get("quiet") or 0)
    return min(logging.CRITICAL, max(logging.DEBUG, base - 10 * steps))


def color() -> bool:
    """Colour only on a terminal, and never when ``NO_COLOR`` is set."""
    return sys.stdout.isatty() and "NO_COLOR" not in os.environ


@contextmanager
def open_store() -> Iterator[StateStore]:
    """The state store for the block, closed after it."""
    from rebalancer.state.store import StateStore

    store = StateStore()
    try:
        yield store
    finally:
        store.close()


def load(path: str) -> Job:
    """The job of one file; a bad file raises ``JobFileError`` with every problem."""
    from rebalancer.jobfile.load import load_job

    return load_job(path)


def confirm(plan: Plan, yes: bool, what: str) -> bool:
    """Ask before touching money: ``--yes`` skips, a non-terminal without ``--yes`` is refused."""
    if yes:
        return True
    if not sys.stdin.isatty():
        raise ConfigError(f"refusing to {what} without confirmation: stdin is not a terminal (pass --yes)")
    answer = click.prompt(f"Do you want to {what}? Only 'yes' will be accepted", default="", show_default=False)
    return bool(answer.strip() == "yes")


def job_name(given: str) -> str:
    """A job named directly, or by its job file (what plan, apply and cancel take)."""
    if given.endswith((".yaml", ".yml")) or Path(given).is_file():
        return load(given).name
    return given


CLOSEST_JOBS = 3
"""How many known job names an unknown one's error suggests."""


def known_job(given: str, store: StateStore) -> str:
    """The name of a job the state store knows, or of a job file given (a job that never ran is still a job then).

    A name the store does not know is an error naming the known jobs closest to it, so that a misspelt name is
    never taken for a new job (``history``, ``pause`` and ``resume`` share this).
    """
    import difflib

    name = job_name(given)
    if Path(given).is_file():
        return name
    known = sorted(store.known_jobs())
    if name in known:
        return name
    close = difflib.get_close_matches(name, known, n=CLOSEST_JOBS, cutoff=0.7)
    if close:
        hint = f"; did you mean {_either(close)}?"
    elif known:
        hint = f"; it knows {_either(known[:CLOSEST_JOBS], 'and')}{' …' if len(known) > CLOSEST_JOBS else ''}"
    else:
        hint = "; it knows no jobs yet (name a job file to use a job that never ran)"
    raise ConfigError(f"no job named {name!r} in the state store ({store.location}){hint}")


def _either(names: list[str], word: str = "or") -> str:
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} {word} {quoted[-1]}"
