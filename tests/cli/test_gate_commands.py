"""The pre-trade gate at the commands' send paths, over real HTTP against the sandbox: a saved plan with a forged
fingerprint is refused whole (defect 6 of issue 23); a planner bug in apply, run --once and cancel is dropped, and
only the batch the invariants allow reaches the book."""

from __future__ import annotations

import json
from decimal import Decimal

import jsonschema
import pytest

from rebalancer.core.plan import plan_fingerprint
from rebalancer.core.plan_codec import plan_from_json
from rebalancer.models import Side
from tests.cli.test_plan_apply import SCHEMA
from tests.gatekit import cancel_of, planner_bug, second_buy_zero
from tests.jobtext import ladder_job

LIMITS = "{band: 10%, post_only: true, price_ceiling: 29900}"


def _book(sandbox) -> tuple:
    return sandbox.engine.open_orders(sandbox.api_key, "btcusdt")


def _job(tmp_path, sandbox, name: str, *, limits: str, tolerance: str = "{price: 1%, size: 10%}", **kw):
    path = tmp_path / f"{name}.yaml"
    text = ladder_job(name, sandbox.url, levels=2, limits=limits, **kw)
    path.write_text(text.replace("tolerance: {price: 0.1%, size: 10%}", f"tolerance: {tolerance}"))
    return path


def _forge(document: dict, sandbox) -> None:
    """Give an edited plan the fingerprint and summary the public algorithm computes for the book as it stands."""
    actions = plan_from_json({**document, "summary": None}).actions
    document["fingerprint"] = plan_fingerprint(document["job_hash"], _book(sandbox), actions)
    document["summary"] = {kind: sum(1 for a in actions if a.action == kind) for kind in ("place", "cancel", "keep")}


def test_a_saved_plan_with_a_recomputed_fingerprint_and_a_buy_at_the_ceiling_is_refused_whole(cli, sandbox, tmp_path):
    sandbox.engine.set_price("btcusdt", 30000)
    job = _job(tmp_path, sandbox, "ceiling", limits=LIMITS)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    document = json.loads(saved.read_text())
    first = next(a for a in document["actions"] if a["action"] == "place" and a["level"] == "buy[0]")
    assert first["price"] == "29850.00"  # within the job's tolerance (1 %) of 29900: the guards alone let it by
    first["price"] = "29900.00"
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.strip().splitlines() == [
        "Error: saved plan refused by the pre-trade gate: buy[0] BUY 29900.00 × 0.0100: "
        "at or above the price ceiling 29900 (price_limit)"
    ]
    assert _book(sandbox) == ()


@pytest.mark.parametrize(
    ("limits", "words"),
    [
        # the book says which order stands for buy[0]: refused before the count or the volume is reached
        ("{max_orders: 4, band: 10%, post_only: true}", "already stands for the level (duplicate_level)"),
        ("{band: 10%, post_only: true}", "already stands for the level (duplicate_level)"),
    ],
    ids=["beyond max_orders", "beyond the ladder's volume"],
)
def test_a_saved_plan_that_places_a_standing_level_again_is_refused_whole(cli, sandbox, tmp_path, limits, words):
    sandbox.engine.set_price("btcusdt", 30000)
    job = _job(tmp_path, sandbox, "twice", limits=limits, tolerance="{price: 0.1%, size: 10%}")
    assert cli("apply", str(job), "--yes").exit_code == 0
    before = _book(sandbox)
    assert len(before) == 4
    saved = tmp_path / "plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    document = json.loads(saved.read_text())
    kept = next(a for a in document["actions"] if a["action"] == "keep" and a["level"] == "buy[0]")
    # the plan forgets the order keeping buy[0] and places the level again: its own counts say 4 orders
    document["actions"] = [a for a in document["actions"] if a is not kept]
    document["actions"].append({k: kept[k] for k in ("level", "side", "price", "volume")} | {"action": "place"})
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 1, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: saved plan refused by the pre-trade gate: buy[0] BUY 29850.00 × 0.0100: ")
    assert words in line and f"the job's order {kept['order_id']} " in line
    assert _book(sandbox) == before


def test_apply_drops_a_planner_bugs_placement_and_sends_the_rest(cli, write_job, sandbox, monkeypatch):
    sandbox.engine.set_price("btcusdt", 30000)
    job = str(write_job("bug", levels=3))
    planner_bug(monkeypatch, second_buy_zero())
    document = json.loads(cli("plan", job, "--json").stdout)
    jsonschema.validate(document, SCHEMA)
    assert [d for d in document["dropped"] if d["reason"] == "gate"] == [
        {"level": "buy[0]", "side": "BUY", "reason": "gate", "price": "20000.00", "volume": "0.0100"}
    ]
    assert all(a["price"] != "20000.00" for a in document["actions"])
    result = cli("apply", job, "--yes")
    assert result.exit_code == 0, result.output
    assert "pre-trade gate dropped buy[0] BUY 20000.00 × 0.0100: the level is placed twice" in result.stderr
    book = _book(sandbox)
    assert len(book) == 6 and all(o.price != Decimal("20000.00") for o in book)
    history = json.loads(cli("history", "bug", "--json").stdout)
    assert any("gate refused buy[0] BUY 20000.00" in w for w in history[0]["warnings"])


def test_run_once_drops_a_planner_bugs_placement(cli, write_job, sandbox, monkeypatch):
    sandbox.engine.set_price("btcusdt", 30000)
    job = str(write_job("once", levels=2))
    planner_bug(monkeypatch, second_buy_zero())
    result = cli("run", "--once", job)
    assert result.exit_code == 0, result.output
    book = _book(sandbox)
    assert len(book) == 4 and all(o.price != Decimal("20000.00") for o in book)


def test_cancel_never_cancels_an_order_the_job_does_not_own(cli, write_job, sandbox, monkeypatch):
    manual = str(sandbox.engine.place(sandbox.api_key, "btcusdt", Side.BUY, Decimal("29500.00"), Decimal("0.0300")))
    job = str(write_job("mine", levels=2, ownership="tracked"))
    assert cli("apply", job, "--yes").exit_code == 0
    planner_bug(monkeypatch, cancel_of(manual))
    result = cli("cancel", job, "--yes")
    assert result.exit_code == 0, result.output
    assert f"cancel of order {manual} (BUY 29500.00 × 0.0300): not an order this job owns" in result.stderr
    assert [o.id for o in _book(sandbox)] == [manual]


@pytest.mark.parametrize("field", ["price", "volume"])
def test_a_saved_plan_with_more_digits_than_a_price_holds_is_one_error_line(cli, sandbox, tmp_path, field):
    sandbox.engine.set_price("btcusdt", 30000)
    job = _job(tmp_path, sandbox, "digits", limits=LIMITS)
    saved = tmp_path / "plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    document = json.loads(saved.read_text())
    first = next(a for a in document["actions"] if a["action"] == "place")
    first[field] = "1" * 40 + ".00"  # read before the fingerprint is looked at: forging it changes nothing
    saved.write_text(json.dumps(document))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 1 and "Traceback" not in result.output
    (line,) = result.stderr.strip().splitlines()
    assert f"{field}: more than 28 digits, which no price or volume holds: '1111" in line
    assert line.endswith("… (45 characters)")
    assert _book(sandbox) == ()
