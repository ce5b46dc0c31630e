"""Issue 6's guards end to end: ``run_pass`` over real HTTP against the sandbox, with a real state store.

* A reference that jumps more than ``max_jump`` pauses the next pass (nothing placed), and the pass after it,
  seeing the same level again, proceeds.
* A crossed book (another account's bid resting above its own ask) pauses placements, but an order of ours
  outside the band of the last trusted reference is still cancelled.
* A level rejected pass after pass is held back from the third pass on (no placement request for it), and is
  tried again once its hold has passed; a success clears it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from rebalancer.engine.runner import PassReport, run_pass
from rebalancer.exchange.client import OpenApiClient
from rebalancer.exchange.profile import ExchangeProfile, RateLimit
from rebalancer.exchange.ratelimit import KeyLimiter
from rebalancer.job import Job
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.state.store import StateStore

SYMBOL = "btcusdt"
JOB = """\
version: 1
name: guards
symbol: btcusdt
exchange: {{url: "{url}"}}
reference: mid
ladder:
{ladder}
limits: {{band: 5%, max_jump: 10%, post_only: true}}
ownership: symbol
"""
TWO_SIDES = (
    '  buy: {levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}\n'
    '  sell: {levels: 2, first: 0.5%, step: 0.25%, size: "0.01"}'
)
ONE_LEVEL = '  buy: {levels: 1, first: 0.5%, step: 0.25%, size: "0.01"}'
OTHER_KEY, OTHER_SECRET = "other-account-key", "other-account-secret"
T0 = datetime(2026, 11, 25, 10, 40, tzinfo=UTC)


class Wall:
    """A wall clock the test steps, for the rejection backoff (the sandbox's own clock is manual too)."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def step(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def world(sandbox: Any, tmp_path: Path) -> Iterator[tuple[Any, OpenApiClient, StateStore]]:
    """The sandbox, a client on it with short backoffs, and a fresh SQLite state store."""
    profile = ExchangeProfile(backoff_base=0.005, backoff_max=0.05, read_timeout=10.0, connect_timeout=2.0)
    limiter = KeyLimiter(RateLimit(100_000, 1.0), RateLimit(100_000, 1.0))
    client = OpenApiClient(sandbox.url, sandbox.api_key, sandbox.secret_key, profile, limiter=limiter)
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store, client:
        yield sandbox, client, store


def load(tmp_path: Path, url: str, ladder: str = TWO_SIDES) -> Job:
    path = tmp_path / "guards.yaml"
    path.write_text(JOB.format(url=url, ladder=ladder))
    return load_job(path)


def mass_replaces(sandbox: Any) -> list[dict[str, Any]]:
    """mass_replaceV2 requests the sandbox served since its log was last cleared; clears it."""
    app = sandbox.server.app
    entries = [e for e in app.request_log() if e["path"].endswith("mass_replaceV2")]
    app.reset(app.engine, app.faults)
    return entries


def sent_placements(store: StateStore, job: str) -> str:
    """The mass_place parameter of every batch the newest pass of ``job`` recorded, joined."""
    newest = store.history(job, limit=1)[0]
    detail = store.pass_detail(newest.id)
    assert detail is not None
    return "".join(str(b.request.get("mass_place", "")) for b in detail.batches)


def one(job: Job, client: OpenApiClient, store: StateStore, **kw: Any) -> PassReport:
    return run_pass(job, client, store, apply=True, mode="run", **kw)


def test_a_jump_pauses_one_pass_and_the_next_pass_follows_the_market(world: Any, tmp_path: Path) -> None:
    sandbox, client, store = world
    job = load(tmp_path, sandbox.url)
    first = one(job, client, store)
    assert first.result == "ok" and first.plan.summary["place"] == 4 and first.plan.paused is None
    start = sandbox.engine.mid(SYMBOL)
    sandbox.engine.set_price(SYMBOL, start * Decimal("1.2"))
    for order in sandbox.engine.open_orders(sandbox.api_key, SYMBOL):
        if order.side is Side.SELL:  # the market ran through our sells; take what set_price left of them
            sandbox.engine.fill(int(order.id))
    assert not sandbox.engine.ticker(SYMBOL).crossed
    mass_replaces(sandbox)

    preview = run_pass(job, client, store, apply=False)
    assert preview.plan.paused is not None and preview.plan.paused.startswith("placements paused: reference moved 2")
    recorded = len(store.history(job.name))

    paused = one(job, client, store)
    assert paused.plan.paused is not None and paused.plan.paused.startswith("placements paused: reference moved 2")
    assert not paused.plan.placements and "paused" in render_words(paused)
    assert mass_replaces(sandbox) == [], "a paused pass with nothing outside the band sends nothing"
    assert len(store.history(job.name)) == recorded + 1, "the dry run recorded nothing, the paused pass one row"
    assert Decimal(store.history(job.name, limit=1)[0].reference_price or "0") > start * Decimal("1.19")

    follow = one(job, client, store)
    assert follow.plan.paused is None and follow.result == "ok" and follow.plan.placements
    mid = sandbox.engine.mid(SYMBOL)
    book = sandbox.engine.open_orders(sandbox.api_key, SYMBOL)
    assert len(book) == 4 and all(abs(o.price - mid) <= mid / 20 for o in book)


def test_a_crossed_book_pauses_placements_but_still_cancels_outside_the_band(world: Any, tmp_path: Path) -> None:
    sandbox, client, store = world
    engine = sandbox.engine
    job = load(tmp_path, sandbox.url)
    assert one(job, client, store).result == "ok"
    mid = engine.mid(SYMBOL)
    stray = engine.place(
        sandbox.api_key, SYMBOL, Side.SELL, (mid * Decimal("1.5")).quantize(Decimal("0.01")), Decimal("0.01")
    )
    engine.add_account(OTHER_KEY, OTHER_SECRET, {"usdt": 10**9, "btc": 1000})
    # Two orders of another account crossing each other: the sandbox never matches accounts against each other.
    # Each trades with the crowd's depth on arrival; 50 is more than that depth holds, so the rest stands.
    engine.place(OTHER_KEY, SYMBOL, Side.BUY, (mid * Decimal("1.01")).quantize(Decimal("0.01")), Decimal("50"))
    engine.place(OTHER_KEY, SYMBOL, Side.SELL, (mid * Decimal("1.005")).quantize(Decimal("0.01")), Decimal("50"))
    assert engine.ticker(SYMBOL).crossed

    paused = one(job, client, store)
    assert paused.plan.paused is not None and paused.plan.paused.startswith("placements paused: the book is crossed")
    assert [(a.action, a.order_id, a.reason) for a in paused.plan.actions if a.action != "keep"] == [
        ("cancel", str(stray), "outside_band")
    ]
    assert paused.result == "ok" and sent_placements(store, job.name) == ""
    assert str(stray) not in {o.id for o in engine.open_orders(sandbox.api_key, SYMBOL)}
    assert store.history(job.name, limit=1)[0].reference_price is None

    engine.cancel_all(OTHER_KEY, SYMBOL)
    after = one(job, client, store)
    assert after.plan.paused is None and not after.plan.has_changes


def test_a_level_rejected_pass_after_pass_is_held_back_then_retried(world: Any, tmp_path: Path) -> None:
    sandbox, client, store = world
    job = load(tmp_path, sandbox.url, ONE_LEVEL)
    wall = Wall()
    sandbox.faults.reject_place = 1.0
    for attempt in (1, 2):
        report = one(job, client, store, wall=wall)
        assert report.result == "rejected" and len(mass_replaces(sandbox)) == 1, f"attempt {attempt}"
        assert sent_placements(store, job.name) != "", "the placement was sent"
        wall.step(1)

    held = one(job, client, store, wall=wall)
    assert not held.plan.placements and mass_replaces(sandbox) == []
    assert any(
        w.startswith("buy[0] held back until 10:40:31 UTC after 2 rejections (code 5:") for w in held.plan.warnings
    )

    wall.step(29.5)  # 30 s after the second rejection: the hold is over
    retry = one(job, client, store, wall=wall)
    assert retry.plan.placements and len(mass_replaces(sandbox)) == 1 and retry.result == "rejected"
    assert store.rejection_counts(job.name)["buy[0]"][1] == 3
    wall.step(59)
    assert not one(job, client, store, wall=wall).plan.placements, "the third rejection holds for 60 s"

    sandbox.faults.reject_place = 0.0
    wall.step(2)
    placed = one(job, client, store, wall=wall)
    assert placed.result == "ok" and [t.level for t in placed.plan.placements] == ["buy[0]"]
    assert store.rejection_counts(job.name) == {}
    assert len(sandbox.engine.open_orders(sandbox.api_key, SYMBOL)) == 1


def render_words(report: PassReport) -> str:
    from rebalancer.cli.render import render_text

    return render_text(report.plan, color=False)
