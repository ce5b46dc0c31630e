"""`rebalancer init`: a commented job file that validates and plans against the embedded sandbox as written."""

from __future__ import annotations

import re

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


def _schema_keys(node: object, root: dict, path: str = "", seen: frozenset[str] = frozenset()) -> set[str]:
    """Every key path of the job schema (``exchange.rate_limit.reads``), through $ref, anyOf/oneOf/allOf and items."""
    if not isinstance(node, dict):
        return set()
    keys: set[str] = set()
    ref = node.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        target = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        keys |= _schema_keys(target, root, path, seen | {ref})
    for name, sub in (node.get("properties") or {}).items():
        keys.add(path + name)
        keys |= _schema_keys(sub, root, f"{path}{name}.", seen)
    for word in ("anyOf", "oneOf", "allOf"):
        for sub in node.get(word) or ():
            keys |= _schema_keys(sub, root, path, seen)
    keys |= _schema_keys(node.get("items"), root, path, seen)
    return keys


_COMMENTED_KEY = re.compile(r"^\s*#( ?\s*#)*\s*(- )?([a-z_]+:|\{)")


def _uncommented(text: str) -> str:
    """The template with every commented-out key line put back (nested ones too), at its own indentation."""
    lines = []
    for line in text.splitlines():
        while _COMMENTED_KEY.match(line):
            line = re.sub(r"^(\s*)# ?", r"\1", line, count=1)
        lines.append(line)
    return "\n".join(lines) + "\n"


def _node_keys(node: yaml.Node, path: str = "") -> set[str]:
    """Every key path of a composed YAML node: duplicate keys (a commented alternative) count too."""
    keys: set[str] = set()
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            keys.add(path + key.value)
            keys |= _node_keys(value, f"{path}{key.value}.")
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            keys |= _node_keys(item, path)
    return keys


def test_the_template_names_every_key_of_the_schema_and_no_other(tmp_path):
    text = _run(tmp_path, "init").stdout
    root = schema()
    expected = _schema_keys(root, root)
    assert {"limits.max_jump", "exchange.rate_limit.reads", "reference.source.ask", "orders.side"} <= expected
    written = _node_keys(yaml.compose(_uncommented(text)))
    assert expected - written == set(), "keys of the schema the template does not show"
    assert written - expected == set(), "keys in the template the schema does not know"
    assert yaml.safe_load(text)["exchange"].get("account") is None, "the optional ones stay commented out"


def test_the_uncommenting_puts_nested_alternatives_back_in_place():
    text = "a: 1  # one\n# b:\n#   c: 2\n#   # c:\n#   #   d: 3\n# A header: prose\n# f:\n#   - {e: 4}\n"
    assert _node_keys(yaml.compose(_uncommented(text))) == {"a", "b", "b.c", "b.c.d", "f", "f.e"}
