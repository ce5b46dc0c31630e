"""The job-file reference generator refuses a key whose meaning names the wrong unit (tools/job_docs.py)."""

from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _job_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("job_docs", ROOT / "tools" / "job_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _schema() -> dict[str, Any]:
    return json.loads((ROOT / "schemas" / "job.schema.json").read_text(encoding="utf-8"))


def test_every_decimal_key_of_the_schema_says_its_own_unit() -> None:
    assert _job_docs().unit_problems(_schema()) == []


def test_tolerance_size_in_price_units_is_refused() -> None:
    schema = _schema()
    schema["$defs"]["tolerance"]["properties"]["size"] = {"$ref": "#/$defs/percentOrNumber", "default": "10%"}
    schema["$defs"]["percentOrNumber"]["description"] = (
        'A percentage such as "0.5%" or an absolute number in price units.'
    )
    assert _job_docs().unit_problems(schema) == [
        "tolerance.size: a volume key, but its meaning says 'price units'",
        "tolerance.size: a volume key, but its meaning says none of 'volume'",
    ]


def test_money_called_a_volume_and_a_price_without_its_unit_are_refused() -> None:
    schema = _schema()
    limits = schema["$defs"]["limits"]["properties"]
    limits["max_loss"]["description"] = "The base volume the job may lose."
    limits["band"]["description"] = "Never place farther than this from the reference: a percentage or absolute."
    assert _job_docs().unit_problems(schema) == [
        "limits.band: a price key, but its meaning says none of 'price'",
        "limits.max_loss: a quote key, but its meaning says 'volume'",
        "limits.max_loss: a quote key, but its meaning says none of 'quote units', 'quote currency'",
    ]


def test_a_new_decimal_key_needs_a_unit_kind_and_a_duration_does_not() -> None:
    schema = copy.deepcopy(_schema())
    limits = schema["$defs"]["limits"]["properties"]
    limits["max_spread"] = {"$ref": "#/$defs/positiveDecimal", "description": "Widest spread in price units."}
    limits["max_wait"] = {"$ref": "#/$defs/positiveDuration", "description": "How long to wait."}
    [problem] = _job_docs().unit_problems(schema)
    assert problem.startswith("limits.max_spread: takes a decimal but has no unit kind in KEY_UNITS")


def test_the_tool_writes_nothing_and_fails_while_a_unit_is_wrong(tmp_path: Path, monkeypatch, capsys) -> None:
    docs = _job_docs()
    schema = _schema()
    schema["$defs"]["tolerance"]["properties"]["size"]["description"] = "Size tolerance in price units."
    broken = tmp_path / "job.schema.json"
    broken.write_text(json.dumps(schema), encoding="utf-8")
    target = tmp_path / "job-file.md"
    monkeypatch.setattr(docs, "ROOT", tmp_path)
    monkeypatch.setattr(docs, "SCHEMA", broken)
    monkeypatch.setattr(docs, "TARGET", target)
    assert docs.main([]) == 1 and not target.exists()
    assert docs.main(["--check"]) == 1
    assert "tolerance.size: a volume key, but its meaning says 'price units'" in capsys.readouterr().err
