"""Whatever bytes a job file holds, loading yields a Job or a JobFileError with well-formed problems."""

from __future__ import annotations

import copy
import json
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


def _schema_paths() -> list[tuple[str | int, ...]]:
    """Every key path the schema knows (list items as index 0), read from the schema so new keys are covered."""
    from rebalancer.jobfile.schema import subschema

    found: list[tuple[str | int, ...]] = []

    def visit(path: tuple[str | int, ...]) -> None:
        node = subschema(path)
        for key in node.get("properties", {}):
            found.append((*path, key))
            visit((*path, key))
        if "items" in node:
            visit((*path, 0))

    visit(())
    return found


SCHEMA_PATHS = _schema_paths()
FULL = {
    "version": 1, "name": "full", "symbol": "btcusdt", "paused": False,
    "exchange": {"url": "sandbox", "api_key_env": "K", "secret_key_env": "S", "time_unit": "ms",
                 "page_size": 100, "insecure": False, "rate_limit": {"reads": "10/1s", "writes": "100/10s"}},
    "schedule": {"every": "30s", "jitter": "1s"}, "reference": "6400",
    "ladder": {side: {"levels": 3, "first": "1%", "step": "1%", "spacing": "linear", "size": "0.1",
                      "size_step": "0.01", "max_notional": "5000"} for side in ("buy", "sell")},
    "orders": [{"side": "buy", "price": "6000", "size": "1"}],
    "tolerance": {"price": "0.1%", "size": "10%"},
    "limits": {"max_orders": 20, "band": "10%", "post_only": True, "max_jump": "10%",
               "price_ceiling": "7000", "price_floor": "5000", "max_loss": "500"},
    "inventory": {"target_base": "50%", "range": "20%"},
    "ownership": "tracked", "on_stop": "keep",
    "refresh": {"max_age": "30m"}, "after_fill": {"delay": "60s"},
    "notify": {"webhook": "https://hooks.example.com/x", "after_failures": 3},
}  # fmt: skip
WRONG_SHAPES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(10**30), 10**30), st.text(max_size=6),
              st.sampled_from(["mid", "1%", "-1%", "1e999", "0x10", "30s", "nan", "inf", "1%%"])),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from([*KEYS, "a"]), inner, max_size=3),
    max_leaves=6,
)  # fmt: skip


def test_the_schema_paths_cover_every_key_of_a_full_job() -> None:
    assert {p[0] for p in SCHEMA_PATHS} == set(FULL)
    assert ("ladder", "buy", "size") in SCHEMA_PATHS and ("orders", 0, "price") in SCHEMA_PATHS


def _set(tree: Any, path: tuple[str | int, ...], value: Any) -> None:
    for part in path[:-1]:
        tree = tree[part]
    tree[path[-1]] = value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    changes=st.lists(st.tuples(st.sampled_from(SCHEMA_PATHS), WRONG_SHAPES), min_size=1, max_size=3),
)
def test_a_wrongly_shaped_value_under_any_key_is_a_positioned_problem(
    scratch: Path, changes: list[tuple[tuple[str | int, ...], Any]]
) -> None:
    tree = copy.deepcopy(FULL)
    for path, wrong in changes:
        try:
            _set(tree, path, wrong)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced a parent of this path
    outcome = _load(scratch, yaml.safe_dump(tree).encode("utf-8"))
    assert isinstance(outcome, Job | JobFileError)


@pytest.mark.parametrize("path", SCHEMA_PATHS, ids=lambda p: ".".join(map(str, p)))
@pytest.mark.parametrize("wrong", [{"a": 1}, [1, 2], [{"a": [1]}], {"price": {"a": 1}}, None, True, 10**40])
def test_each_key_given_a_mapping_list_or_odd_scalar_is_a_positioned_problem(
    scratch: Path, path: tuple[str | int, ...], wrong: Any
) -> None:
    tree = copy.deepcopy(FULL)
    _set(tree, path, wrong)
    outcome = _load(scratch, yaml.safe_dump(tree).encode("utf-8"))
    assert isinstance(outcome, Job | JobFileError)


def _errors(validator: Any, data: Any) -> list[tuple[Any, ...]]:
    """Every error as what a problem is written from: place, keyword, message and the node's words and keys."""

    def read(node: Any) -> str:
        node = node if isinstance(node, dict) else {}
        words = {key: node.get(key) for key in ("x-messages", "x-expect", "type", "enum", "pattern")}
        return json.dumps({**words, "properties": sorted(node.get("properties", {}))}, sort_keys=True)

    return sorted(
        (tuple(map(str, e.absolute_path)), str(e.validator), e.message, read(e.schema))
        for e in validator.iter_errors(data)
    )


@settings(max_examples=200, deadline=None)
@given(tree=st.dictionaries(st.sampled_from(KEYS), TREES, max_size=8), example=st.sampled_from(EXAMPLES))
def test_the_inlined_validator_reports_exactly_what_the_referencing_one_does(
    tree: dict[str, Any], example: Path
) -> None:
    """The job schema is validated with every ``$ref`` inlined (no reference looked up per file); every error,
    its place, keyword, message and what its schema node says (``x-messages``, ``x-expect``, its keys) are the
    same."""
    import jsonschema

    from rebalancer.jobfile.schema import _ecma_pattern, schema, validator

    referencing = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})(schema())
    mixed = {**yaml.safe_load(example.read_text(encoding="utf-8")), **tree}
    for data in (tree, mixed):
        assert _errors(validator(), data) == _errors(referencing, data)
