"""The README's examples of command output match what the commands print: the `status` table's columns and the
words `history --result` takes."""

from __future__ import annotations

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def _columns(header: str) -> list[str]:
    return re.split(r"\s{2,}", header.strip())


def test_the_status_example_has_the_columns_status_prints(cli, write_job):
    assert cli("apply", str(write_job("shown", levels=1)), "--yes").exit_code == 0
    printed = cli("status").stdout.splitlines()
    example = README.split("$ rebalancer status\n", 1)[1].splitlines()
    assert _columns(example[0]) == _columns(printed[0])
    notes = [line for line in printed if re.match(r"^[A-Z]+: ", line)]
    assert notes and all(note in example for note in notes), notes


def test_the_results_history_takes_are_the_ones_the_readme_lists(cli):
    listed = re.search(r"`--result` one of ([a-z_, ]+);", README)
    assert listed is not None
    refused = cli("history", "--result", "bogus")
    offered = re.findall(r"'([a-z_]+)'", refused.stderr.split("is not one of", 1)[1].splitlines()[0])
    assert offered and sorted(listed.group(1).split(", ")) == sorted(offered)
