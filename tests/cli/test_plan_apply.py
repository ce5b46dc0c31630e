"""plan → apply → plan over real HTTP against the sandbox, the way a user runs it."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import jsonschema

from rebalancer.engine.runner import STALE_PLAN
from rebalancer.models import OrderStatus

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "plan.schema.json").read_text())


def plan_json(cli, job: Path) -> dict:
    result = cli("plan", str(job), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    jsonschema.validate(document, SCHEMA)
    return document


def test_plan_on_an_empty_book_shows_the_full_ladder_and_sends_nothing(cli, write_job, sandbox):
    job = write_job(levels=5)
    result = cli("plan", str(job))
    assert result.exit_code == 0, result.output
    assert "Plan: 10 to place, 0 to cancel, 0 unchanged." in result.stdout
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()
    document = plan_json(cli, job)
    assert document["summary"] == {"place": 10, "cancel": 0, "keep": 0}
    assert {a["side"] for a in document["actions"]} == {"BUY", "SELL"}


def test_apply_places_the_ladder_and_a_second_plan_has_no_changes(cli, write_job, sandbox):
    job = write_job(levels=5)
    result = cli("apply", str(job), "--yes")
    assert result.exit_code == 0, result.output
    assert "Apply complete: 10 placed, 0 cancelled, 0 rejected." in result.stdout
    orders = sandbox.engine.open_orders(sandbox.api_key, "btcusdt")
    assert len(orders) == 10
    assert all(isinstance(o.price, Decimal) for o in orders)
    again = cli("plan", str(job), "--detailed-exitcode")
    assert again.exit_code == 0, again.output
    assert "No changes. Open orders match the target ladder." in again.stdout


def test_detailed_exitcode_is_2_when_there_are_changes(cli, write_job):
    result = cli("plan", str(write_job()), "--detailed-exitcode")
    assert result.exit_code == 2


def test_a_price_move_replaces_only_the_levels_that_left_the_tolerance(cli, write_job, sandbox):
    job = write_job(levels=10)
    assert cli("apply", str(job), "--yes").exit_code == 0
    mid = sandbox.engine.mid("btcusdt")
    sandbox.engine.set_price("btcusdt", (mid * Decimal("1.0025")).quantize(Decimal("0.01")))
    summary = plan_json(cli, job)["summary"]
    assert 0 < summary["cancel"] <= 4, summary
    assert summary["place"] == summary["cancel"], summary
    assert summary["keep"] == 20 - summary["cancel"]
    result = cli("apply", str(job), "--yes")
    assert result.exit_code == 0, result.output
    assert "No changes" in cli("plan", str(job)).stdout


def test_partially_filled_orders_are_topped_up(cli, write_job, sandbox):
    job = write_job(levels=3)
    assert cli("apply", str(job), "--yes").exit_code == 0
    buy = max(
        (o for o in sandbox.engine.open_orders(sandbox.api_key, "btcusdt") if o.side.value == "BUY"),
        key=lambda o: o.price,
    )
    sandbox.engine.fill(int(buy.id), buy.volume / 2)
    partial = next(o for o in sandbox.engine.open_orders(sandbox.api_key, "btcusdt") if o.id == buy.id)
    assert partial.status is OrderStatus.PARTIALLY_FILLED
    document = plan_json(cli, job)
    cancels = [a for a in document["actions"] if a["action"] == "cancel"]
    assert [(a["order_id"], a["reason"]) for a in cancels] == [(buy.id, "partially_filled")]
    assert document["summary"]["place"] == 1
    assert cli("apply", str(job), "--yes").exit_code == 0
    assert "No changes" in cli("plan", str(job)).stdout


def test_a_stale_saved_plan_is_refused_and_nothing_is_sent(cli, write_job, sandbox, tmp_path):
    job = write_job(levels=3)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    sandbox.engine.place(sandbox.api_key, "btcusdt", _side("BUY"), Decimal("20000.00"), Decimal("0.0100"))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 1
    assert result.stderr.strip() == f"Error: {STALE_PLAN}"
    assert len(sandbox.engine.open_orders(sandbox.api_key, "btcusdt")) == 1


def test_a_fresh_saved_plan_is_applied_exactly(cli, write_job, sandbox, tmp_path):
    job = write_job(levels=3)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    planned = json.loads(saved.read_text())
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 0, result.output
    standing = {(o.side.value, str(o.price)) for o in sandbox.engine.open_orders(sandbox.api_key, "btcusdt")}
    assert standing == {(a["side"], a["price"]) for a in planned["actions"] if a["action"] == "place"}


def test_a_rejected_placement_exits_1_and_is_reported(cli, write_job, sandbox):
    job = write_job(levels=2)
    sandbox.faults.reject_place = 1.0
    sandbox.faults.reject_code = "10067"
    result = cli("apply", str(job), "--yes")
    assert result.exit_code == 1
    assert "rejected" in result.stdout
    assert "code 10067" in result.stdout
    assert "0 placed" in result.stdout


def test_apply_without_a_terminal_and_without_yes_refuses(cli, write_job, sandbox):
    result = cli("apply", str(write_job()))
    assert result.exit_code == 1
    assert "pass --yes" in result.stderr
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()


def test_cancel_removes_every_owned_order(cli, write_job, sandbox):
    job = write_job(levels=4)
    assert cli("apply", str(job), "--yes").exit_code == 0
    result = cli("cancel", str(job), "--yes")
    assert result.exit_code == 0, result.output
    assert "Cancel complete: 0 placed, 8 cancelled, 0 rejected." in result.stdout
    assert sandbox.engine.open_orders(sandbox.api_key, "btcusdt") == ()


def test_tracked_ownership_leaves_foreign_orders_alone(cli, write_job, sandbox):
    foreign = sandbox.engine.place(sandbox.api_key, "btcusdt", _side("SELL"), Decimal("45000.00"), Decimal("0.0100"))
    job = write_job(levels=2, ownership="tracked")
    assert cli("apply", str(job), "--yes").exit_code == 0
    assert "No changes" in cli("plan", str(job)).stdout
    assert cli("cancel", str(job), "--yes").exit_code == 0
    remaining = sandbox.engine.open_orders(sandbox.api_key, "btcusdt")
    assert [o.id for o in remaining] == [str(foreign)]


def test_history_lists_the_passes(cli, write_job):
    job = write_job(levels=2)
    assert cli("apply", str(job), "--yes").exit_code == 0
    table = cli("history")
    assert table.exit_code == 0
    assert "e2e" in table.stdout and "ok" in table.stdout
    records = json.loads(cli("history", "e2e", "--json").stdout)
    assert records and records[0]["job"] == "e2e"
    text = json.dumps(records)
    assert "sign" not in json.dumps([b.get("request") for r in records for b in r.get("batches", [])])
    assert "api_key" not in text


def _side(name: str):
    from rebalancer.models import Side

    return Side(name)
