"""The docs travel with the code: generated references are current, and nothing points outside the repository."""

from __future__ import annotations

import ast
import importlib.util
import json
import re
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rebalancer"


def _job_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("job_docs", ROOT / "tools" / "job_docs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_job_file_reference_is_generated_from_the_current_schema() -> None:
    assert _job_docs().main(["--check"]) == 0, "docs/job-file.md is out of date: run python tools/job_docs.py"


def test_the_job_file_reference_names_every_key_of_the_schema() -> None:
    docs = _job_docs()
    schema = json.loads((ROOT / "schemas" / "job.schema.json").read_text(encoding="utf-8"))
    keys = [row[0] for row in docs.rows(schema, schema["$defs"])]
    page = (ROOT / "docs" / "job-file.md").read_text(encoding="utf-8")
    assert len(keys) > 40 and "`ladder.buy.levels`" in keys and "`orders[].price`" in keys
    assert [key for key in keys if f"| {key} |" not in page] == []


def test_the_architecture_page_names_every_error_and_every_layer() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    tree = ast.parse((PACKAGE / "errors.py").read_text(encoding="utf-8"))
    errors = [node.name for node in tree.body if isinstance(node, ast.ClassDef) and node.bases]  # the exceptions
    assert "RebalancerError" in errors and [name for name in errors if name not in page] == []
    config = (ROOT / ".importlinter").read_text(encoding="utf-8")
    layers = config.split("layers =", 1)[1].split("\n\n", 1)[0]
    names = [name.strip() for line in layers.splitlines() for name in line.split("|") if name.strip()]
    assert "core" in names and [name for name in names if f"`{name}" not in page] == []


def test_no_module_refers_to_a_file_outside_the_repository() -> None:
    outside = re.compile(r"DESIGN\.md|STYLE\.md|/work/|\bshared/")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted(PACKAGE.rglob("*"))
        if path.is_file() and path.suffix in (".py", ".json", ".yaml", ".html", ".css")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if outside.search(line)
    ]
    assert found == []


def test_the_readme_layout_matches_the_tree() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    layout = readme.split("## Layout", 1)[1].split("```", 2)[1]
    words = set(re.findall(r"[\w.]+\.py|[\w]+/", layout))
    modules = {path.name for path in PACKAGE.rglob("*.py")}
    packages = {f"{path.name}/" for path in PACKAGE.iterdir() if path.is_dir() and not path.name.startswith((".", "_"))}
    assert sorted(modules - words) == [], "modules missing from the README's layout"
    assert sorted(packages - words) == [], "packages missing from the README's layout"
    named = {w for w in words if w.endswith(".py")}
    assert sorted(w for w in named if w not in modules and not (ROOT / "tools" / w).exists()) == []
