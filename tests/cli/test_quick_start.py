"""The README's quick start, then its next step (`init` → `apply` → `plan`), on a fresh state directory: the job
`init` writes and the quick start's job stand side by side on the sandbox, and neither plan cancels the other's
orders."""

from __future__ import annotations

import json
import re
from pathlib import Path

from click.testing import CliRunner, Result

from rebalancer.cli.main import main
from rebalancer.sandbox.engine import Engine
from rebalancer.sandbox.world import WORLD_FILE, save

ROOT = Path(__file__).resolve().parents[2]


def _quick_start_commands() -> list[list[str]]:
    """The `rebalancer` commands of the README's quick start block, in order."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Quick start", 1)[1]
    block = section.split("```sh", 1)[1].split("```", 1)[0]
    return [m.split() for m in re.findall(r"\.venv/bin/rebalancer ([^&\n]+?)\s*(?:&&|$)", block, re.MULTILINE)]


def test_the_quick_start_then_init_apply_plan_leaves_both_jobs_without_cancels(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)  # the README's paths are relative to the checkout
    env = {"REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    # The fresh world a first command would create, with its market held still: a cancel below can then only be
    # one job taking the other's orders, never the simulated price walking past the tolerance on a slow machine.
    (tmp_path / "state").mkdir()
    save(Engine.create(clock="manual"), tmp_path / "state" / WORLD_FILE)

    def run(*args: str) -> Result:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.output)
        return result

    commands = _quick_start_commands()
    assert [c[0] for c in commands] == ["plan", "run", "plan"], commands
    for command in commands:
        run(*command)
    mine = tmp_path / "my-job.yaml"
    assert "rebalancer init --out my-job.yaml" in (ROOT / "README.md").read_text(encoding="utf-8")
    run("init", "--out", str(mine))
    applied = run("apply", str(mine), "--yes")
    assert "0 to cancel" in applied.stdout, applied.stdout
    for job in (str(mine), "jobs/btcusdt-maker.yaml"):
        plan = json.loads(run("plan", job, "--json").stdout)
        assert plan["summary"]["cancel"] == 0, (job, [a for a in plan["actions"] if a["action"] == "cancel"])
