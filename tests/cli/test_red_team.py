"""Hostile saved plans for ``apply --plan``, over real HTTP against the sandbox: files too large to be a plan,
claims echoed back at length, and forged plans (fingerprint recomputed with the public algorithm) that cancel a
foreign order, place off the tick or let a KEEP claim a foreign order. Nothing beyond the job's invariants is sent."""

from __future__ import annotations

import json
import socket
import threading
from decimal import Decimal

import pytest

from rebalancer.cli.jobs import MAX_PLAN_BYTES
from rebalancer.models import Side
from tests.cli.test_gate_commands import _book, _forge, _job
from tests.exchange.hostile import http_answer, serving

LIMITS = "{max_orders: 20, band: 10%, post_only: true}"


def _saved(cli, sandbox, tmp_path, name: str, *, ownership: str = "symbol"):
    sandbox.engine.set_price("btcusdt", 30000)
    job = _job(tmp_path, sandbox, name, limits=LIMITS, ownership=ownership)
    saved = tmp_path / f"{name}.plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    return job, saved, json.loads(saved.read_text())


def _refused(result) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), result.stderr
    return lines[0]


def test_a_saved_plan_longer_than_the_bound_is_refused_unread(cli, sandbox, tmp_path) -> None:
    job, saved, _ = _saved(cli, sandbox, tmp_path, "padded")
    text = saved.read_text()
    saved.write_text(text + " " * (MAX_PLAN_BYTES + 1 - len(text.encode())))  # still the same JSON document
    line = _refused(cli("apply", str(job), "--plan", str(saved), "--yes"))
    assert line == f"Error: {saved}: not a saved plan (longer than 16 MiB)"
    assert _book(sandbox) == ()


def test_a_saved_plan_at_the_bound_is_read(cli, sandbox, tmp_path) -> None:
    job, saved, _ = _saved(cli, sandbox, tmp_path, "atbound")
    text = saved.read_text()
    saved.write_text(text + " " * (MAX_PLAN_BYTES - len(text.encode())))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert result.exit_code == 0, result.output
    assert len(_book(sandbox)) == 4


def test_a_claim_of_a_megabyte_is_echoed_cut_short(cli, sandbox, tmp_path) -> None:
    job, saved, document = _saved(cli, sandbox, tmp_path, "claims")
    document["job"] = "x" * 1_000_000
    saved.write_text(json.dumps(document))
    line = _refused(cli("apply", str(job), "--plan", str(saved), "--yes"))
    assert line == f"Error: {saved}: saved plan is for job '{'x' * 39}… (1000002 characters), not 'claims'"
    assert _book(sandbox) == ()


def test_a_forged_plan_that_cancels_a_foreign_order_is_refused_whole(cli, sandbox, tmp_path) -> None:
    manual = sandbox.engine.place(sandbox.api_key, "btcusdt", Side.BUY, Decimal("29000.00"), Decimal("0.0100"))
    job, saved, document = _saved(cli, sandbox, tmp_path, "foreign", ownership="tracked")
    document["actions"].append(
        {
            "action": "cancel",
            "order_id": str(manual),
            "side": "BUY",
            "price": "29000.00",
            "volume": "0.0100",
            "reason": "not_in_ladder",
        }
    )
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    line = _refused(cli("apply", str(job), "--plan", str(saved), "--yes"))
    assert line == f"Error: saved plan cancels orders this job does not own: {manual}", line
    assert [o.id for o in _book(sandbox)] == [str(manual)]


def test_a_forged_plan_with_an_off_tick_price_is_refused_whole(cli, sandbox, tmp_path) -> None:
    job, saved, document = _saved(cli, sandbox, tmp_path, "offtick")
    first = next(a for a in document["actions"] if a.get("level") == "buy[0]")
    first["price"] = "29850.001"
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    line = _refused(cli("apply", str(job), "--plan", str(saved), "--yes"))
    assert line == (
        "Error: saved plan refused by the job's guards: buy[0] BUY 29850.001 × 0.0100: "
        "the price is not on the symbol's tick 0.01"
    )
    assert _book(sandbox) == ()


def test_a_forged_keep_of_a_foreign_order_lets_nothing_beyond_the_ladder_by(cli, sandbox, tmp_path) -> None:
    job = _job(tmp_path, sandbox, "keeps", limits="{band: 10%, post_only: true}")
    sandbox.engine.set_price("btcusdt", 30000)
    assert cli("apply", str(job), "--yes").exit_code == 0
    standing = _book(sandbox)
    assert len(standing) == 4
    saved = tmp_path / "keeps.plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    document = json.loads(saved.read_text())
    keep = next(a for a in document["actions"] if a["action"] == "keep" and a.get("level") == "buy[0]")
    # the KEEP now claims an id the book does not hold, and buy[0] is placed again beside the standing order
    standing_id = keep["order_id"]
    keep["order_id"] = "999999"
    document["actions"].append(
        {"action": "place", "level": "buy[0]", "side": "BUY", "price": keep["price"], "volume": keep["volume"]}
    )
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    line = _refused(cli("apply", str(job), "--plan", str(saved), "--yes"))
    assert line == (
        "Error: saved plan refused by the pre-trade gate: buy[0] BUY 29850.00 × 0.0100: "
        f"the job's order {standing_id} already stands for the level (duplicate_level)"
    )
    assert _book(sandbox) == standing


def test_a_forged_plan_with_inventory_skew_never_places_a_standing_level_twice(cli, sandbox, tmp_path) -> None:
    # With an inventory skew the volume bound is doubled, so the volume rule no longer stands between a second
    # order of a standing level and the book: the level rule must, judging the book, not the plan's KEEPs.
    job = _job(tmp_path, sandbox, "skewdup", limits="{band: 10%, post_only: true}")
    job.write_text(job.read_text() + "inventory: {target_base: 50%, range: 50%}\n")
    sandbox.engine.set_price("btcusdt", 30000)
    assert cli("apply", str(job), "--yes").exit_code == 0
    standing = _book(sandbox)
    saved = tmp_path / "skewdup.plan.json"
    assert cli("plan", str(job), "--out", str(saved)).exit_code == 0
    document = json.loads(saved.read_text())
    keep = next(a for a in document["actions"] if a["action"] == "keep" and a.get("level") == "buy[0]")
    document["actions"].remove(keep)
    document["actions"].append(
        {"action": "place", "level": "buy[0]", "side": "BUY", "price": keep["price"], "volume": "0.0100"}
    )
    _forge(document, sandbox)
    saved.write_text(json.dumps(document))
    result = cli("apply", str(job), "--plan", str(saved), "--yes")
    assert _book(sandbox) == standing, result.output
    line = _refused(result)
    assert line.startswith("Error: saved plan refused by the pre-trade gate: buy[0] BUY "), line
    assert line.endswith("already stands for the level (duplicate_level)"), line


@pytest.mark.parametrize("index", ["²", "٣"], ids=["superscript-two", "arabic-indic-three"])
def test_a_pointer_index_in_digits_other_than_ascii_finds_nothing(cli, write_job, sandbox, index) -> None:
    # RFC 6901: an array index is ASCII digits. "²" passed str.isdigit and then int() raised ValueError out of the
    # reference read; "٣" read element 3.
    answer = json.dumps({"data": ["29990.00", "30010.00", "1", "2"]}).encode()

    def respond(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(http_answer(answer))

    with serving(respond) as server:
        job = write_job(levels=2)
        job.write_text(
            job.read_text().replace("reference: mid\n", "")
            + f'reference:\n  source: {{url: "{server.url}/q", bid: "/data/{index}", ask: /data/1}}\n'
        )
        result = cli("plan", str(job))
    assert result.exit_code == 0, result.output
    assert f"nothing at /data/{index} in the answer" in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize("option", ["--out", "--html"])
def test_plan_never_writes_over_its_job_file(cli, sandbox, tmp_path, option) -> None:
    job = _job(tmp_path, sandbox, "self", limits=LIMITS)
    text = job.read_text()
    result = cli("plan", str(job), option, str(job))
    assert _refused(result) == f"Error: {option} {job}: that is the job file; the plan would replace it"
    assert job.read_text() == text
