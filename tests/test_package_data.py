"""What the package reads at run time ships inside it: the schemas (equal to the top-level copies editors use)
and the job template; no module reaches outside the package for a file."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "rebalancer"


@pytest.mark.parametrize("name", ["job.schema.json", "plan.schema.json"])
def test_the_packaged_schema_equals_the_top_level_one(name):
    packaged = files("rebalancer").joinpath("schemas", name).read_text(encoding="utf-8")
    top_level = (REPO / "schemas" / name).read_text(encoding="utf-8")
    assert packaged == top_level, (
        f"rebalancer/schemas/{name} differs from schemas/{name}; after editing the top-level schema run: "
        f"cp schemas/{name} rebalancer/schemas/{name}"
    )


def test_every_packaged_data_file_is_declared_as_package_data():
    declared = re.search(r"rebalancer = \[(.*?)\]", (REPO / "pyproject.toml").read_text()).group(1)
    for folder, pattern in (("schemas", "*.json"), ("templates", "*.yaml")):
        assert f'"{folder}/{pattern}"' in declared
        assert list((PACKAGE / folder).glob(pattern))


def test_no_module_reads_files_relative_to_the_checkout():
    offenders = [
        str(path.relative_to(REPO))
        for path in PACKAGE.rglob("*.py")
        if re.search(r"__file__|\.parent\.parent|parents\[", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
