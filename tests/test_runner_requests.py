"""How many requests a pass sends, counted by the sandbox: the exact sequence of a quiet pass, a placing pass whose
answer settled every order, an ``apply --yes`` and a prompted apply, and a pass whose answer left orders unsettled.
"""

from __future__ import annotations

from pathlib import Path

from rebalancer.engine.runner import run_pass
from rebalancer.job import Job
from rebalancer.state.store import StateStore
from tests.reliability.kit import drain_requests, fast_client, load

SYMBOLS, TICKER, ORDERS, ACCOUNT, REPLACE, ORDER_INFO = (
    "/open/api/common/symbols",
    "/open/api/get_ticker",
    "/open/api/v2/new_order",
    "/open/api/user/account",
    "/open/api/mass_replaceV2",
    "/open/api/order_info",
)


def _paths(sandbox: object) -> list[str]:
    return [str(entry["path"]) for entry in drain_requests(sandbox)]


def _job(sandbox: object, tmp_path: Path, ownership: str = "tracked") -> Job:
    return load(tmp_path, "counted", sandbox.url, ownership=ownership)  # type: ignore[attr-defined]


def test_a_placing_pass_with_a_settled_answer_reads_no_book_back_and_tracks_every_id(sandbox, tmp_path) -> None:
    job = _job(sandbox, tmp_path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        _paths(sandbox)
        report = run_pass(job, client, store, apply=True, mode="run")
        assert report.result == "ok" and report.execution is not None
        assert _paths(sandbox) == [SYMBOLS, TICKER, ORDERS, ACCOUNT, REPLACE]
        book = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        placed = {o.order_id for o in report.execution.outcomes if o.status == "placed"}
        assert placed == book and len(book) == 8
        assert set(store.tracked_ids(job.name)) == book

        quiet = run_pass(job, client, store, apply=True, mode="run")
        assert quiet.result == "no_changes"
        assert _paths(sandbox) == [TICKER, ORDERS], "a quiet pass reads the ticker and the book, nothing else"


def test_a_replacing_pass_whose_cancels_pay_for_its_placements_skips_the_balances(sandbox, tmp_path) -> None:
    job = _job(sandbox, tmp_path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        run_pass(job, client, store, apply=True, mode="run")
        mid = sandbox.engine.mid(job.symbol)
        sandbox.engine.set_price(job.symbol, mid * 997 / 1000)  # every level moves down 0.3 %: buys get cheaper
        _paths(sandbox)
        report = run_pass(job, client, store, apply=True, mode="run")
        assert report.result == "ok" and report.plan.summary["place"] > 0
        assert report.plan.summary["place"] == report.plan.summary["cancel"]
        assert _paths(sandbox) == [TICKER, ORDERS, REPLACE]
        book = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        assert set(store.tracked_ids(job.name)) == book


def test_apply_yes_reads_the_book_once_and_a_prompted_apply_twice(sandbox, tmp_path) -> None:
    job = _job(sandbox, tmp_path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        client.rules(job.symbol)
        _paths(sandbox)
        run_pass(job, client, store, apply=True, approve=lambda plan: True)
        assert _paths(sandbox) == [TICKER, ORDERS, ACCOUNT, REPLACE]
        before = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        sandbox.engine.set_price(job.symbol, sandbox.engine.mid(job.symbol) * 103 / 100)  # crosses (fills) sells
        gone = before - {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        run_pass(job, client, store, apply=True, approve=lambda plan: True, recheck=True)
        paths = _paths(sandbox)
        assert gone and paths.count(ORDER_INFO) == len(gone), "the fills ledger asks once about each order gone"
        assert [p for p in paths if p != ORDER_INFO] == [TICKER, ORDERS, ACCOUNT, ORDERS, REPLACE]


def test_an_answer_with_a_refused_placement_is_read_back(sandbox, tmp_path) -> None:
    job = _job(sandbox, tmp_path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        client.rules(job.symbol)
        sandbox.faults.reject_place = 1.0
        _paths(sandbox)
        report = run_pass(job, client, store, apply=True, mode="run")
        assert report.result == "rejected" and report.execution is not None
        assert report.execution.count("rejected", "place") == 8
        assert _paths(sandbox) == [TICKER, ORDERS, ACCOUNT, REPLACE, ORDERS]


def test_a_lost_answer_is_read_back_and_its_orders_tracked_exactly(sandbox, tmp_path) -> None:
    job = _job(sandbox, tmp_path)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        client.rules(job.symbol)
        sandbox.faults.drop_after_apply = 1.0
        sandbox.faults.endpoints = {REPLACE}
        _paths(sandbox)
        report = run_pass(job, client, store, apply=True, mode="run")
        assert report.execution is not None and report.execution.count("placed") == 8
        assert _paths(sandbox) == [TICKER, ORDERS, ACCOUNT, REPLACE, ORDERS]
        book = {o.id for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol)}
        assert set(store.tracked_ids(job.name)) == book
