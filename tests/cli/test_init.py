"""`rebalancer init`: a commented job file that validates and plans against the embedded sandbox as written."""

from __future__ import annotations

import yaml
from click.testing import CliRunner

from rebalancer.cli.main import main
from rebalancer.jobfile.schema import schema


def _run(tmp_path, *args: str):
    env = {"REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_init_writes_a_file_that_validates_and_plans_against_the_sandbox(tmp_path):
    out = tmp_path / "job.yaml"
    written = _run(tmp_path, "init", "--out", str(out))
    assert written.exit_code == 0, written.output
    assert f"rebalancer validate {out}" in written.stdout
    validated = _run(tmp_path, "validate", str(out))
    assert validated.exit_code == 0, validated.output
    planned = _run(tmp_path, "plan", str(out))
    assert planned.exit_code == 0, planned.output
    assert "Plan for job btcusdt-ladder on btcusdt" in planned.stdout
    assert "Plan: 10 to place, 0 to cancel, 0 unchanged." in planned.stdout
    assert "Ownership: tracked" in planned.stdout


def test_init_prints_to_stdout_and_explains_every_key_it_sets(tmp_path):
    result = _run(tmp_path, "init", "--symbol", "ethusdt")
    assert result.exit_code == 0
    data = yaml.safe_load(result.stdout)
    assert data["symbol"] == "ethusdt" and data["name"] == "ethusdt-ladder"
    assert data["exchange"]["url"] == "sandbox" and data["ownership"] == "tracked"
    lines = [line for line in result.stdout.splitlines() if not line.lstrip().startswith("#")]
    keys = {line.split(":")[0].strip() for line in lines if ":" in line}
    commented = {line.split(":")[0].strip() for line in lines if ":" in line and "#" in line}
    assert keys == commented  # every key is explained where it first appears (the sell side repeats the buy's)
    assert set(data) <= set(schema()["properties"])


def test_init_plans_for_another_sandbox_symbol(tmp_path):
    out = tmp_path / "eth.yaml"
    assert _run(tmp_path, "init", "--symbol", "ethusdt", "--out", str(out)).exit_code == 0
    planned = _run(tmp_path, "plan", str(out))
    assert planned.exit_code == 0, planned.output
    assert "to place" in planned.stdout


def test_init_refuses_to_overwrite_without_force(tmp_path):
    out = tmp_path / "job.yaml"
    out.write_text("mine\n")
    refused = _run(tmp_path, "init", "--out", str(out))
    assert refused.exit_code == 1
    assert refused.stderr == f"Error: {out} exists; pass --force to overwrite it\n"
    assert out.read_text() == "mine\n"
    forced = _run(tmp_path, "init", "--out", str(out), "--force")
    assert forced.exit_code == 0
    assert out.read_text().startswith("# A rebalancer job file")


def test_init_rejects_a_symbol_the_schema_would_refuse(tmp_path):
    result = _run(tmp_path, "init", "--symbol", "BTC/USDT")
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: --symbol 'BTC/USDT': expected a lower-case symbol")
