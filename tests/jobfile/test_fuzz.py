"""Whatever bytes a job file holds, loading yields a Job or a JobFileError with well-formed problems."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rebalancer.errors import JobFileError
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "jobs").glob("*.yaml"))
KEYS = [
    "version", "name", "symbol", "exchange", "url", "schedule", "every", "cron", "jitter", "reference",
    "ladder", "buy", "sell", "levels", "first", "step", "spacing", "size", "size_step", "size_factor",
    "max_notional", "orders", "side", "price", "tolerance", "limits", "max_orders", "band", "post_only",
    "ownership", "on_stop", "paused", "insecure", "page_size", "time_unit", "api_key_env",
]  # fmt: skip
SCALARS = st.one_of(
    st.sampled_from(["1%", "0.5%", "0%", "-1", "mid", "geometric", "linear", "30s", "*/5 * * * *", "sandbox",
                     "buy", "btcusdt", "1e3", ".nan", "", "100%", "http://localhost", "REBALANCER_API_KEY"]),
    st.integers(-5, 2000), st.booleans(), st.none(), st.text(max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
)  # fmt: skip
TREES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=5),
    max_leaves=25,
)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder) / "fuzz.yaml"


def _load(path: Path, data: bytes) -> Job | JobFileError:
    path.write_bytes(data)
    try:
        return load_job(path)
    except JobFileError as error:
        assert error.problems
        for problem in error.problems:
            assert problem.line >= 1 and problem.column >= 1
            assert problem.message and "\n" not in problem.message
        return error


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.text(alphabet=st.sampled_from(list("ab:- {}[],\n\t#&*!%'\"0123456789.|>?@`")), max_size=120))
def test_random_text_never_escapes_as_another_exception(scratch: Path, text: str) -> None:
    _load(scratch, text.encode("utf-8"))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tree=st.dictionaries(st.sampled_from(KEYS), TREES, max_size=8))
def test_random_structures_never_escape_as_another_exception(scratch: Path, tree: dict[str, Any]) -> None:
    _load(scratch, yaml.safe_dump(tree).encode("utf-8"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    example=st.sampled_from(EXAMPLES),
    edits=st.lists(
        st.tuples(st.sampled_from(["delete", "insert", "replace", "dupline", "dropline"]),
                  st.integers(0, 10**6), st.sampled_from(list(" :-{}[],\n\t#&*!%'\"09.abzA_"))),
        min_size=1, max_size=4,
    ),
)  # fmt: skip
def test_mutated_examples_yield_a_job_or_a_job_file_error(
    scratch: Path, example: Path, edits: list[tuple[str, int, str]]
) -> None:
    text = example.read_text(encoding="utf-8")
    for kind, where, char in edits:
        lines = text.split("\n")
        index, line = where % max(len(text), 1), where % len(lines)
        if kind == "delete":
            text = text[:index] + text[index + 1 :]
        elif kind == "insert":
            text = text[:index] + char + text[index:]
        elif kind == "replace":
            text = text[:index] + char + text[index + 1 :]
        elif kind == "dupline":
            text = "\n".join([*lines[: line + 1], lines[line], *lines[line + 1 :]])
        else:
            text = "\n".join(lines[:line] + lines[line + 1 :])
    outcome = _load(scratch, text.encode("utf-8"))
    assert isinstance(outcome, Job | JobFileError)
