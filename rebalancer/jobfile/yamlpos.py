"""Position-tracking YAML reading: text → plain values plus the line:col of every key and value.

Job files are parsed with PyYAML's *safe* composer only; nothing is ever constructed from tags. Scalars are
turned into values here, by their resolved tag and their source text, so that ``0.1`` becomes
``Decimal("0.1")`` and never passes through a float. Anchors and aliases are refused outright (no alias
bombs), nesting is capped, and duplicate keys are reported at their second occurrence. Problems are collected,
not raised, so that a caller can report every one of them together with the problems found later.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, cast

import yaml
from yaml.composer import Composer, ComposerError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.resolver import Resolver

# libyaml's parser when PyYAML was built with it; without it every text takes the pure-Python loader.
_CParser: Any = getattr(importlib.import_module("yaml.cyaml"), "CParser", None) if yaml.__with_libyaml__ else None

MAX_DEPTH = 20
MAX_BYTES = 1024 * 1024

Path = tuple[str | int, ...]
Mark = tuple[int, int]

_STANDARD_TAGS = frozenset(
    f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")
)
_HEX = re.compile(r"[0-9a-fA-F]+")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_TOKENISH = re.compile(r"[A-Za-z0-9+/=_.-]+")
_TEXT_TAGS = frozenset({"tag:yaml.org,2002:timestamp"})
# What PyYAML's reader refuses: every C0 control but tab, LF and CR; DEL and C1 (NEL allowed); surrogates; U+FFFE/F.
_UNPRINTABLE = re.compile(r"[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FLOAT_TEXT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@dataclass(frozen=True, slots=True)
class RawProblem:
    """A problem before it is given a file name: the key path, where it points, and a one-line message."""

    path: Path
    message: str
    mark: Mark


@dataclass(slots=True)
class Positions:
    """Where each key and value of a document stands; unknown paths fall back to their nearest ancestor."""

    keys: dict[Path, Mark] = field(default_factory=dict)
    values: dict[Path, Mark] = field(default_factory=dict)

    def value(self, path: Path) -> Mark:
        """The 1-based line:col of the value at ``path`` (or of its nearest positioned ancestor)."""
        return self._lookup(self.values, path)

    def key(self, path: Path) -> Mark:
        """The 1-based line:col of the key that introduces ``path`` (list items, root: the value's)."""
        return self._lookup(self.keys, path)

    def _lookup(self, table: dict[Path, Mark], path: Path) -> Mark:
        for length in range(len(path), -1, -1):
            prefix = path[:length]
            if prefix in table:
                return table[prefix]
            if prefix in self.values:
                return self.values[prefix]
        return (1, 1)


@dataclass(slots=True)
class Document:
    """The outcome of reading one YAML text: the value (None when unusable), its positions, its problems."""

    data: Any
    positions: Positions
    problems: list[RawProblem]
    refused: frozenset[Path] = frozenset()


def looks_like_secret(text: str, *, min_length: int = 32) -> bool:
    """True when ``text`` looks like a pasted API key or secret: a long run of hex or of mixed-case base64."""
    if len(text) < min_length:
        return False
    if _HEX.fullmatch(text):
        return True
    if _BASE64.fullmatch(text):
        return all(any(test(c) for c in text) for test in (str.isupper, str.islower, str.isdigit))
    if _TOKENISH.fullmatch(text) and len(text) >= 2 * min_length:
        return sum(c.isdigit() for c in text) >= 4 and any(c.isalpha() for c in text)
    return False


def format_path(path: Path) -> str:
    """Render a key path the way users write it: ``ladder.buy.levels``, ``orders[1].price``.

    A key that looks like a secret is shown as ``<secret>``: paths go into messages and logs.
    """
    text = ""
    for part in path:
        if isinstance(part, str) and looks_like_secret(part, min_length=16):
            part = "<secret>"
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


class _Guard:
    """Composing that refuses anchors, aliases and nesting deeper than ``MAX_DEPTH`` (mixed into both loaders)."""

    _depth = 0

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        """Compose one node, refusing anything that could make the document grow or nest without bound."""
        event = self.peek_event()  # type: ignore[attr-defined]
        # The stubs type marks as the pure-Python parser's; the C parser's have the same line and column.
        mark = cast(yaml.error.Mark, event.start_mark)
        if isinstance(event, yaml.AliasEvent):
            raise ComposerError(None, None, "YAML aliases (*name) are not allowed here", mark)
        if getattr(event, "anchor", None) is not None:
            raise ComposerError(None, None, "YAML anchors (&name) are not allowed here", mark)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise ComposerError(None, None, f"nesting deeper than {MAX_DEPTH} levels", mark)
        try:
            node: Node | None = super().compose_node(parent, index)  # type: ignore[misc]
            return node
        finally:
            self._depth -= 1


class _GuardedLoader(_Guard, yaml.SafeLoader):
    """The pure-Python safe loader, guarded: its error messages and marks are the ones reported."""


class _FastLoader(_Guard, Composer, Resolver, _CParser or object):  # type: ignore[misc]
    """The guarded composer over libyaml's C parser: the same nodes and marks in about a third of the time, for a text
    that reads without error (any error is read again with ``_GuardedLoader``, whose words are reported)."""

    def __init__(self, stream: str) -> None:
        _CParser.__init__(self, stream)
        Composer.__init__(self)
        Resolver.__init__(self)


def _mark(node: Node) -> Mark:
    return (node.start_mark.line + 1, node.start_mark.column + 1)


def _error_mark(error: yaml.YAMLError) -> Mark:
    if isinstance(error, yaml.MarkedYAMLError):
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            return (mark.line + 1, mark.column + 1)
    return (1, 1)


def _error_text(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        problem = error.problem or error.context or "invalid YAML"
        if "'\\t'" in problem:
            return "YAML syntax error: tab characters cannot indent YAML; use spaces"
        if "expected a single document" in (error.context or ""):
            return "a job file holds exactly one YAML document"
        return f"YAML syntax error: {problem}"
    return "YAML syntax error"


def _unprintable(text: str) -> RawProblem | None:
    """The first character YAML refuses to read (a control character such as ESC or NUL), positioned.

    PyYAML raises an unpositioned ``ReaderError`` for these before parsing starts; a job file is text a person
    edits, so the character is named by its code point (it cannot be shown) and pointed at by line and column.
    """
    match = _UNPRINTABLE.search(text)
    if match is None:
        return None
    before = text[: match.start()]
    line = before.count("\n") + 1
    column = match.start() - (before.rfind("\n") + 1) + 1
    code = ord(match.group())
    kind = "a control character" if code < 0x20 or 0x7F <= code <= 0x9F else "not printable text"
    message = f"character U+{code:04X} ({kind}) is not allowed in a job file"
    return RawProblem((), message, (line, column))


def _compose_fast(text: str) -> Node | None:
    """The root node by the C parser, for ASCII text without tabs (where the two parsers agree on every column and
    every verdict); None when there is no C parser, the text is not such, anything in it is wrong, or it holds
    what the two parsers read apart: libyaml takes tabs and a ``?`` in flow text that PyYAML refuses, and places
    an empty value one column further."""
    if _CParser is None or not text.isascii() or "\t" in text or "?" in text:
        return None
    loader = _FastLoader(text)
    try:
        root: Node | None = loader.get_single_node()
        return None if root is None or _has_empty_scalar(root) else root
    except (yaml.YAMLError, RecursionError):
        return None
    finally:
        loader.dispose()


def _has_empty_scalar(node: Node) -> bool:
    if isinstance(node, ScalarNode):
        return node.value == ""
    if isinstance(node, MappingNode):
        return any(_has_empty_scalar(key) or _has_empty_scalar(value) for key, value in node.value)
    return isinstance(node, SequenceNode) and any(_has_empty_scalar(item) for item in node.value)


def read_yaml(text: str) -> Document:
    """Parse one YAML document into plain values (dict, list, str, int, Decimal, bool, None) + positions."""
    positions = Positions()
    problems: list[RawProblem] = []
    unreadable = _unprintable(text)
    if unreadable is not None:
        return Document(None, positions, [unreadable])
    root = _compose_fast(text)
    if root is None:
        loader = _GuardedLoader(text)
        try:
            root = loader.get_single_node()
        except yaml.YAMLError as error:
            return Document(None, positions, [RawProblem((), _error_text(error), _error_mark(error))])
        except RecursionError:
            return Document(None, positions, [RawProblem((), f"nesting deeper than {MAX_DEPTH} levels", (1, 1))])
        finally:
            loader.dispose()
    if root is None:
        empty = RawProblem((), "the file is empty; expected a mapping of job keys", (1, 1))
        return Document(None, positions, [empty])
    positions.keys[()] = positions.values[()] = _mark(root)
    if not isinstance(root, MappingNode):
        kind = "a list" if isinstance(root, SequenceNode) else "a single value"
        message = f"a job file must be a mapping of keys such as 'name: ...', got {kind}"
        return Document(None, positions, [RawProblem((), message, _mark(root))])
    converter = _Converter(positions, problems)
    data = converter.convert(root, ())
    return Document(data, positions, problems, frozenset(converter.refused))


class _Converter:
    """Walks composed nodes into plain values, recording positions and collecting problems."""

    def __init__(self, positions: Positions, problems: list[RawProblem]) -> None:
        self.positions = positions
        self.problems = problems
        self.constructor = SafeConstructor()
        self.refused: set[Path] = set()

    def convert(self, node: Node, path: Path) -> Any:
        """The plain value of ``node`` at ``path``; problems are recorded and the value is None."""
        self.positions.values[path] = _mark(node)
        if isinstance(node, ScalarNode) and node.tag in _TEXT_TAGS:
            return str(node.value)
        if node.tag not in _STANDARD_TAGS:
            return self._refuse(path, "YAML tags such as '!name' are not allowed in job files", node)
        if isinstance(node, MappingNode):
            return self._mapping(node, path)
        if isinstance(node, SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                self.positions.keys[(*path, index)] = _mark(item)
                items.append(self.convert(item, (*path, index)))
            return items
        assert isinstance(node, ScalarNode)
        return self._scalar(node, path)

    def _mapping(self, node: MappingNode, path: Path) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, ScalarNode) and key_node.tag == "tag:yaml.org,2002:merge":
                self._problem(path, "YAML merge keys ('<<') are not allowed in job files", key_node)
                continue
            if not isinstance(key_node, ScalarNode) or key_node.tag not in _STANDARD_TAGS | _TEXT_TAGS:
                self._problem(path, "keys must be plain names", key_node)
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in first_seen:
                label = "<secret>" if looks_like_secret(key, min_length=16) else key
                message = f"duplicate key '{label}' (first given on line {first_seen[key]})"
                self._problem(child, message, key_node)
                continue
            first_seen[key] = key_node.start_mark.line + 1
            self.positions.keys[child] = _mark(key_node)
            result[key] = self.convert(value_node, child)
        return result

    def _scalar(self, node: ScalarNode, path: Path) -> Any:
        tag = node.tag.rsplit(":", 1)[-1]
        if tag == "str":
            return str(node.value)
        if tag == "null":
            return None
        if tag == "bool":
            return bool(self.constructor.construct_yaml_bool(node))
        if tag == "int":
            try:
                return int(self.constructor.construct_yaml_int(node))
            except (ValueError, yaml.YAMLError):
                return self._refuse(path, f"{_quoted(node.value)} is not a number this reader reads", node)
        if tag == "float":
            return self._decimal(node, path)
        return self._refuse(path, f"a {tag} is not allowed here", node)

    def _decimal(self, node: ScalarNode, path: Path) -> Decimal | None:
        text = str(node.value).replace("_", "")
        if not _FLOAT_TEXT.fullmatch(text):
            self._refuse(path, f"{_quoted(node.value)} is not a finite decimal number", node)
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            self._refuse(path, f"{_quoted(node.value)} is not a finite decimal number", node)
            return None

    def _refuse(self, path: Path, message: str, node: Node) -> None:
        """Record that the value at ``path`` could not be read: it stands as None, nothing more is said."""
        self.refused.add(path)
        self._problem(path, message, node)

    def _problem(self, path: Path, message: str, node: Node) -> None:
        self.problems.append(RawProblem(path, message, _mark(node)))


def _quoted(text: str) -> str:
    return f"'{text}'" if len(text) <= 40 else f"'{text[:37]}...'"


def walk(value: Any, path: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) pair of a plain value tree, parents before children."""
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from walk(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from walk(child, (*path, index))
