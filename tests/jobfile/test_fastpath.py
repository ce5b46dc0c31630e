"""libyaml's parser is only a faster way to the same reading: for any text, the document (values, positions,
problems) equals the pure-Python loader's, which alone words the errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rebalancer.jobfile import yamlpos
from rebalancer.jobfile.yamlpos import Document, read_yaml

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "jobs").glob("*.yaml"))
PIECES = [*":-[]{},#&*!|>'\"\n \t?%@`0123456789.abxyz~=\\/;<()^$+_", "\n  ", ": ", "- ", "---\n", "...\n"]


def _slow(text: str) -> Document:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(yamlpos, "_CParser", None)
        return read_yaml(text)


def _same(text: str) -> None:
    fast, slow = read_yaml(text), _slow(text)
    assert (fast.data, fast.positions, fast.problems, fast.refused) == (
        slow.data,
        slow.positions,
        slow.problems,
        slow.refused,
    )


def test_the_fast_path_is_taken_for_the_example_files() -> None:
    assert yamlpos._CParser is not None, "PyYAML without libyaml: job files load several times slower"
    for example in EXAMPLES:
        assert yamlpos._compose_fast(example.read_text()) is not None, example.name


@pytest.mark.parametrize(
    "text",
    [
        "ladder:\n  buy: {levels: , first: 0.2%}\n",  # libyaml places the empty value a column further
        "a: {b: x?y}\n",  # PyYAML refuses a '?' in flow text, libyaml takes it
        "a: {b: x\ty}\n",  # likewise a tab
        "a: 1\n---\nb: 2\n",
        "a: &x 1\nb: *x\n",
        "",
    ],
)
def test_texts_the_two_parsers_read_apart_are_read_as_pyyaml_does(text: str) -> None:
    _same(text)


@settings(max_examples=300, deadline=None)
@given(
    base=st.sampled_from(EXAMPLES),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 3), st.sampled_from(PIECES)), min_size=1, max_size=4),
)
def test_an_edited_example_reads_the_same_either_way(base: Path, edits: list[tuple[float, int, str]]) -> None:
    text = base.read_text()
    for where, cut, piece in edits:
        at = int(where * len(text))
        text = text[:at] + piece + text[at + cut :]
    _same(text)
