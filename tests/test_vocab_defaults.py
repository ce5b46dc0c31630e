"""The vocabulary and the defaults: one spelling per word, one value per default, agreeing with the job schema."""

from __future__ import annotations

import ast
import json
from decimal import Decimal
from pathlib import Path

import pytest

from rebalancer import defaults
from rebalancer.job import ExchangeConfig, Schedule
from rebalancer.jobfile.schema import default_of
from rebalancer.vocab import STORED_PASS_RESULTS, ActionKind, CancelReason, Mode, OutcomeStatus, PassResult

PACKAGE = Path(__file__).resolve().parent.parent / "rebalancer"


@pytest.mark.parametrize("word", [*ActionKind, *CancelReason, *OutcomeStatus, *PassResult, *Mode])
def test_a_word_is_its_own_text(word: str) -> None:
    assert str(word) == word.value and f"{word}" == word.value and json.dumps(word) == f'"{word.value}"'


def test_only_passes_that_sent_nothing_are_never_stored() -> None:
    assert set(PassResult) - STORED_PASS_RESULTS == {PassResult.PLANNED, PassResult.DECLINED}


def test_failed_results_are_the_ones_a_command_exits_non_zero_for() -> None:
    assert {r for r in PassResult if r.failed} == {PassResult.REJECTED, PassResult.UNKNOWN_OUTCOME, PassResult.FENCED}


def test_job_values_default_as_the_schema_does() -> None:
    assert ExchangeConfig().page_size == default_of(("exchange", "page_size")) == defaults.PAGE_SIZE
    assert ExchangeConfig().api_key_env == default_of(("exchange", "api_key_env"))
    assert ExchangeConfig().secret_key_env == default_of(("exchange", "secret_key_env"))
    assert default_of(("schedule",)) == {"every": f"{defaults.EVERY_SECONDS}s"}
    assert Schedule().every_seconds == Decimal(defaults.EVERY_SECONDS)


def test_the_two_backoffs_have_their_own_names() -> None:
    assert defaults.FAILURE_BACKOFF_BASE_SECONDS == 2.0 and defaults.REJECTION_BACKOFF_BASE_SECONDS == 30
    assert not hasattr(defaults, "BACKOFF_BASE_SECONDS")


def test_every_default_says_why() -> None:
    tree = ast.parse((PACKAGE / "defaults.py").read_text())
    body = tree.body
    for i, node in enumerate(body):
        if isinstance(node, ast.Assign):
            name = node.targets[0].id  # type: ignore[attr-defined]
            after = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant), f"{name} has no why"


def test_no_module_redefines_a_default() -> None:
    names = {n for n in vars(defaults) if n.isupper()}
    for path in PACKAGE.rglob("*.py"):
        if path.name == "defaults.py" or "sandbox" in path.parts:
            continue
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant | ast.Tuple | ast.Call):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        assert target.id not in names, f"{path.name} redefines {target.id}"
