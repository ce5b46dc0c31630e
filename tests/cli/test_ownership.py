"""Ownership defaults to tracked: a job file without `ownership` never cancels an order it did not place,
and the plan says which mode is in force (human and JSON)."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema

from rebalancer.models import Side
from tests.cli.test_plan_apply import SCHEMA


def _without_ownership(write_job, **kw):
    path = write_job(**kw)
    text = path.read_text()
    path.write_text("\n".join(line for line in text.splitlines() if not line.startswith("ownership:")) + "\n")
    assert "ownership" not in path.read_text()
    return path


def _manual_order(sandbox) -> str:
    """An order placed by hand, inside the band but on no level of the ladder."""
    return str(sandbox.engine.place(sandbox.api_key, "btcusdt", Side.BUY, Decimal("29500.00"), Decimal("0.0300")))


def test_a_job_file_without_ownership_leaves_manual_orders_alone(cli, write_job, sandbox):
    manual = _manual_order(sandbox)
    job = str(_without_ownership(write_job, levels=2))
    plan = cli("plan", job)
    assert plan.exit_code == 0, plan.output
    assert "Ownership: tracked (only orders this job placed)" in plan.stdout
    assert f"order {manual}" not in plan.stdout
    document = json.loads(cli("plan", job, "--json").stdout)
    jsonschema.validate(document, SCHEMA)
    assert document["ownership"] == "tracked"
    assert document["paused_by"] is None
    assert all(a["action"] != "cancel" for a in document["actions"])
    assert cli("apply", job, "--yes").exit_code == 0
    assert cli("cancel", job, "--yes").exit_code == 0
    remaining = sandbox.engine.open_orders(sandbox.api_key, "btcusdt")
    assert [o.id for o in remaining] == [manual]


def test_ownership_symbol_is_said_and_takes_every_order_on_the_symbol(cli, write_job, sandbox):
    manual = _manual_order(sandbox)
    job = str(write_job(levels=2, ownership="symbol"))
    plan = cli("plan", job)
    assert "Ownership: symbol (every open order on btcusdt, manual ones included)" in plan.stdout
    assert f"order {manual}" in plan.stdout
    document = json.loads(cli("plan", job, "--json").stdout)
    assert document["ownership"] == "symbol"
    assert [a["order_id"] for a in document["actions"] if a["action"] == "cancel"] == [manual]


def test_a_saved_plan_keeps_its_ownership_and_applies(cli, write_job, sandbox, tmp_path):
    job = str(_without_ownership(write_job, levels=2))
    saved = tmp_path / "plan.json"
    assert cli("plan", job, "--out", str(saved)).exit_code == 0
    assert json.loads(saved.read_text())["ownership"] == "tracked"
    result = cli("apply", job, "--plan", str(saved), "--yes")
    assert result.exit_code == 0, result.output
