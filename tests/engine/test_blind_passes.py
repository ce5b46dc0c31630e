"""``limits.max_blind`` / ``on_blind`` through real passes against the sandbox over HTTP.

The ticker fails by the sandbox's own faults (HTTP 500 on the ticker paths, or the paths unserved); the open
orders still read. Time is the pass's ``wall`` clock, stepped by the test: nothing sleeps.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from rebalancer.engine.runner import PassReport, cancel_plan_job, run_pass
from rebalancer.errors import TransientError
from rebalancer.exchange.client import OpenApiClient
from rebalancer.job import Job, Notify
from rebalancer.jobfile.load import load_job
from rebalancer.notify import Notifier
from rebalancer.state.store import StateStore
from rebalancer.vocab import Mode, PassResult, PausedBy
from tests.jobtext import ladder_job
from tests.reliability.kit import fast_client
from tests.webhooks import receiver

TICKER_PATHS = {"/open/api/get_ticker", "/open/api/get_allticker"}
START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Passes:
    """Applying passes of one job at chosen moments after ``START``."""

    def __init__(self, job: Job, client: OpenApiClient, store: StateStore) -> None:
        self.job, self.client, self.store = job, client, store

    def at(self, seconds: float, *, apply: bool = True) -> PassReport:
        moment = START + timedelta(seconds=seconds)
        return run_pass(self.job, self.client, self.store, apply=apply, mode=Mode.RUN, wall=lambda: moment)


def _job(folder: Path, url: str, blind: str) -> Job:
    path = folder / "blind.yaml"
    limits = "{max_orders: 200, band: 10%, post_only: true" + blind + "}"
    path.write_text(ladder_job("blind", url, ownership="tracked", limits=limits))
    return load_job(path)


@pytest.fixture
def passes(sandbox, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Passes]:
    job = _job(tmp_path, sandbox.url, request.param)
    with (
        StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
        fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client,
    ):
        yield Passes(job, client, store)


def _standing(sandbox) -> int:
    return len(sandbox.engine.open_orders(sandbox.api_key, "btcusdt"))


def _ticker_fails(sandbox, how: str = "500") -> None:
    if how == "500":
        sandbox.faults.update({"error_500": 1.0, "endpoints": sorted(TICKER_PATHS)})
    else:
        sandbox.faults.update({"unserved": sorted(TICKER_PATHS)})


def _ticker_returns(sandbox) -> None:
    sandbox.faults.update({"error_500": 0.0, "endpoints": [], "unserved": []})


@pytest.mark.parametrize("passes", [", max_blind: 30s, on_blind: cancel"], indirect=True)
@pytest.mark.parametrize("how", ["500", "404"])
def test_cancel_takes_the_orders_down_after_max_blind_and_the_ladder_returns_with_prices(
    passes: Passes, sandbox, how: str
) -> None:
    first = passes.at(0)
    assert first.result is PassResult.OK and first.plan.summary["place"] == 6 and _standing(sandbox) == 6

    _ticker_fails(sandbox, how)
    early = passes.at(10)
    assert early.result is PassResult.NO_CHANGES, "a failed ticker no longer fails the pass of a job with max_blind"
    assert early.plan.paused_by is PausedBy.MARKET_DATA and early.plan.blind is None
    assert early.plan.paused is not None and "market data could not be read" in early.plan.paused
    assert _standing(sandbox) == 6, "not blind long enough yet: the orders stand"

    blind = passes.at(31)
    assert blind.plan.blind is not None and blind.plan.blind.seconds == 31 and blind.plan.blind.since == START
    assert blind.plan.summary == {"place": 0, "cancel": 6, "keep": 0}
    assert blind.result is PassResult.OK and _standing(sandbox) == 0
    assert blind.plan.warnings[0].startswith("blind for 31s: no trusted price since 2026-03-01 12:00:00 UTC")

    still = passes.at(45)
    assert still.plan.blind is not None and still.plan.blind.seconds == 45
    assert not still.plan.has_changes and _standing(sandbox) == 0

    _ticker_returns(sandbox)
    back = passes.at(50)
    assert back.plan.blind is None and back.plan.paused is None
    assert back.result is PassResult.OK and back.plan.summary["place"] == 6 and _standing(sandbox) == 6


@pytest.mark.parametrize("passes", [", max_blind: 30s, on_blind: cancel"], indirect=True)
def test_blindness_is_counted_from_the_store_so_a_new_process_carries_on(passes: Passes, sandbox) -> None:
    passes.at(0)
    _ticker_fails(sandbox)
    passes.at(20)
    with fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
        again = Passes(passes.job, client, passes.store)  # a fresh client: nothing in memory but the store's record
        report = again.at(30)
    assert report.plan.blind is not None and report.plan.blind.since == START and _standing(sandbox) == 0


@pytest.mark.parametrize("passes", [", max_blind: 30s, on_blind: cancel"], indirect=True)
def test_a_job_that_never_saw_a_price_counts_from_its_first_pass(passes: Passes, sandbox) -> None:
    _ticker_fails(sandbox)
    first = passes.at(0)
    assert first.plan.blind is None and first.plan.summary["place"] == 0
    blind = passes.at(30)
    assert blind.plan.blind is not None and not blind.plan.blind.seen and blind.plan.blind.since == START
    assert "since the job's first pass at 2026-03-01 12:00:00 UTC" in blind.plan.warnings[0]


@pytest.mark.parametrize("passes", [", max_blind: 30s"], indirect=True)
def test_keep_leaves_the_orders_and_says_the_job_is_blind(passes: Passes, sandbox) -> None:
    passes.at(0)
    _ticker_fails(sandbox)
    report = passes.at(40)
    assert report.plan.blind is not None and report.plan.blind.seconds == 40
    assert report.plan.summary == {"place": 0, "cancel": 0, "keep": 6} and _standing(sandbox) == 6
    assert "orders left as they stand" in report.plan.warnings[0] and "(on_blind: keep)" in report.plan.warnings[0]


@pytest.mark.parametrize("passes", [", max_blind: 30s, on_blind: cancel"], indirect=True)
def test_a_dry_run_shows_the_cancels_and_sends_nothing(passes: Passes, sandbox) -> None:
    passes.at(0)
    _ticker_fails(sandbox)
    passes.at(10)
    shown = passes.at(35, apply=False)
    assert shown.result is PassResult.PLANNED and shown.plan.summary["cancel"] == 6 and _standing(sandbox) == 6


@pytest.mark.parametrize("passes", [""], indirect=True)
def test_without_max_blind_a_failed_ticker_still_fails_the_pass(passes: Passes, sandbox) -> None:
    passes.at(0)
    _ticker_fails(sandbox)
    with pytest.raises(TransientError):
        passes.at(3600)
    assert _standing(sandbox) == 6


@pytest.mark.parametrize("passes", [", max_blind: 30s, on_blind: cancel"], indirect=True)
def test_going_blind_is_logged_and_told_once_and_seeing_again_logged_once(passes: Passes, sandbox, caplog) -> None:
    with receiver() as (url, got):
        job = dataclasses.replace(passes.job, notify=Notify(url))
        notifier = Notifier()

        def at(seconds: int) -> None:
            moment = START + timedelta(seconds=seconds)
            run_pass(job, passes.client, passes.store, apply=True, wall=lambda: moment, notifier=notifier)

        caplog.set_level(logging.INFO, logger="rebalancer.engine.runner")
        at(0)
        _ticker_fails(sandbox)
        for seconds in (10, 31, 40, 50):
            at(seconds)
        _ticker_returns(sandbox)
        at(60)
        at(70)
        notifier.close(wait=10)
    assert [e["kind"] for e in got] == ["blind"] and got[0]["message"].startswith("blind for 31s")
    lines = [r.getMessage() for r in caplog.records if r.name == "rebalancer.engine.runner"]
    assert [line[:9] for line in lines] == ["blind for", "a trusted"], lines


GARBAGE = [b"<html>502 Bad Gateway</html>", b'{"code": "0", "msg": "suc", "data": {"buy": "1e99999999999"}}']


@pytest.mark.parametrize("garbage", GARBAGE, ids=["not-json", "absurd-number"])
def test_a_ticker_answering_garbage_while_orders_stand_is_a_market_that_cannot_be_read(
    sandbox, tmp_path: Path, garbage: bytes
) -> None:
    """A venue whose ticker answers garbage (the rest served by the sandbox, through a loopback relay)."""
    answers = {"garbage": False}

    @Request.application
    def relay(request: Request) -> Response:
        if answers["garbage"] and request.path in TICKER_PATHS:
            return Response(garbage, 200, content_type="application/json")
        sent = requests.request(
            request.method, sandbox.url + request.path, params=request.args, data=request.form, timeout=10
        )
        return Response(sent.content, sent.status_code, content_type=sent.headers.get("Content-Type"))

    server = make_server("127.0.0.1", 0, relay, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        job = _job(tmp_path, f"http://127.0.0.1:{server.server_port}", ", max_blind: 30s, on_blind: cancel")
        with (
            StateStore(f"sqlite:///{tmp_path / 's.db'}") as store,
            fast_client(job.exchange.url, sandbox.api_key, sandbox.secret_key) as client,
        ):
            passes = Passes(job, client, store)
            assert passes.at(0).plan.summary["place"] == 6 and _standing(sandbox) == 6
            answers["garbage"] = True
            early = passes.at(10)
            assert early.plan.paused is not None and "market data could not be read" in early.plan.paused
            assert _standing(sandbox) == 6
            blind = passes.at(30)
            assert blind.plan.blind is not None and blind.result is PassResult.OK and _standing(sandbox) == 0
    finally:
        server.shutdown()


@pytest.mark.parametrize("passes", [", max_blind: 30s"], indirect=True)
def test_cancel_works_while_the_ticker_fails_and_never_speaks_of_blindness(passes: Passes, sandbox, caplog) -> None:
    passes.at(0)
    _ticker_fails(sandbox)
    assert passes.at(40).plan.blind is not None
    caplog.clear()
    caplog.set_level(logging.INFO, logger="rebalancer.engine.runner")
    moment = START + timedelta(seconds=50)
    job = cancel_plan_job(passes.job)
    report = run_pass(job, passes.client, passes.store, apply=True, mode=Mode.CANCEL, wall=lambda: moment)
    assert report.plan.summary["cancel"] == 6 and report.plan.blind is None and _standing(sandbox) == 0
    assert not [r for r in caplog.records if r.name == "rebalancer.engine.runner"]
