"""limits.max_loss against the sandbox: the running figure in the plan, the limit firing (cancel everything, pause,
say why), status showing it, and `rebalancer resume` clearing it and starting a new count."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner

from rebalancer.cli.main import main as cli
from rebalancer.core.plan_codec import plan_to_json
from rebalancer.engine.runner import run_pass
from rebalancer.jobfile.load import load_job
from rebalancer.models import Side
from rebalancer.state.store import StateStore
from rebalancer.vocab import ActionKind, PausedBy
from tests.jobtext import ladder_job
from tests.reliability.kit import fast_client


def _job(tmp_path: Path, url: str, limit: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "risky.yaml"
    path.write_text(ladder_job("risky", url, ownership="tracked", limits=f'{{band: 10%, max_loss: "{limit}"}}'))
    return load_job(path)


def test_the_loss_limit_fires_cancels_pauses_and_resume_starts_a_new_count(sandbox, tmp_path, monkeypatch) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    monkeypatch.setenv("REBALANCER_STATE_URL", url)
    job = _job(tmp_path, sandbox.url, "0.1")
    with StateStore(url) as store, fast_client(sandbox.url, sandbox.api_key, sandbox.secret_key) as client:
        first = run_pass(job, client, store, apply=True)
        assert first.plan.loss is not None and first.plan.loss.total == 0
        sell = min(
            (o for o in sandbox.engine.open_orders(sandbox.api_key, job.symbol) if o.side is Side.SELL),
            key=lambda o: o.price,
        )
        sandbox.engine.fill(int(sell.id))  # sold 0.01 at the sell[0] price: short 0.01
        sandbox.engine.set_price(job.symbol, sandbox.engine.mid(job.symbol) * Decimal("1.05"))
        fills = [f for f in sandbox.engine.fills]
        dry = run_pass(job, client, store, apply=False)
        ref = dry.plan.reference_price
        # By hand: loss = -(cash from the sells - cash paid for the buys + net base bought × mark), a short
        # position marked at the higher of the reference and the venue's ask (the most pessimistic price).
        cash = sum(f.price * f.volume * (1 if f.side is Side.SELL else -1) for f in fills)
        base = sum(f.volume * (1 if f.side is Side.BUY else -1) for f in fills)
        assert base < 0 and dry.snapshot.ticker.ask is not None
        expected = -(cash + base * max(ref, dry.snapshot.ticker.ask))
        assert expected > Decimal("0.1"), "the move makes the short lose more than the limit"
        assert dry.plan.loss is not None and dry.plan.loss.total == expected
        assert dry.plan.paused_by is PausedBy.MAX_LOSS
        assert {a.action for a in dry.plan.actions} <= {ActionKind.CANCEL}
        doc = plan_to_json(dry.plan)
        assert doc["paused_by"] == "max_loss" and doc["loss"]["limit"] == "0.1"
        assert Decimal(doc["loss"]["total"]) >= expected
        assert not store.is_paused(job.name), "a dry run pauses nothing"

        fired = run_pass(job, client, store, apply=True)
        assert fired.plan.paused_by is PausedBy.MAX_LOSS and fired.result == "ok"
        assert sandbox.engine.open_orders(sandbox.api_key, job.symbol) == ()
        assert store.is_paused(job.name)
        assert store.paused_by(job.name)[0] == "max_loss"

        shown = CliRunner().invoke(cli, ["status", "--json"])
        assert shown.exit_code == 0, shown.output
        (row,) = [r for r in json.loads(shown.stdout) if r["job"] == "risky"]
        assert row["paused_by"] == "max_loss" and "past limits.max_loss" in row["paused_why"]

        resumed = CliRunner().invoke(cli, ["resume", "risky"])
        assert resumed.exit_code == 0, resumed.output
        assert not store.is_paused(job.name) and store.paused_by(job.name) == (None, None)
        assert store.count_since(job.name) is not None
        again = run_pass(job, client, store, apply=True)
        assert again.plan.loss is not None and again.plan.loss.total == 0, "a new count after resume"
        assert again.plan.paused_by is None and again.plan.summary[ActionKind.PLACE] > 0
