"""The JSON schemas publish the tool's vocabularies as ``enum``s, word for word and in the enums' order, so an
editor validating a plan or a job file knows every word the tool can write or read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rebalancer.vocab import CancelReason, DropReason, TimeUnit

SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


def _schema(name: str) -> dict[str, Any]:
    return json.loads((SCHEMAS / name).read_text(encoding="utf-8"))


def test_the_plan_schema_lists_every_drop_reason() -> None:
    dropped = _schema("plan.schema.json")["properties"]["dropped"]
    assert dropped["items"]["properties"]["reason"]["enum"] == [r.value for r in DropReason]


def test_the_plan_schema_lists_every_cancel_reason() -> None:
    action = _schema("plan.schema.json")["$defs"]["action"]
    assert action["properties"]["reason"]["enum"] == [r.value for r in CancelReason]


def test_the_job_schema_lists_every_time_unit() -> None:
    exchange = _schema("job.schema.json")["$defs"]["exchange"]
    assert exchange["properties"]["time_unit"]["enum"] == [u.value for u in TimeUnit]


@pytest.mark.parametrize(
    ("reason", "word"),
    [(DropReason.GATE, "gate"), (DropReason.OUT_OF_RANGE, "out_of_range"), (DropReason.BELOW_MIN_VOLUME,
     "below_min_volume")],
)  # fmt: skip
def test_a_drop_reason_is_its_word(reason: DropReason, word: str) -> None:
    assert reason == word and json.dumps(reason) == f'"{word}"'
