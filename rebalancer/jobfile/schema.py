"""The job file's JSON Schema: loading it once, validating against it, saying what is wrong in plain words.

The schema ships inside the package (``rebalancer/schemas/job.schema.json``, read with ``importlib.resources``,
so a wheel installed anywhere has it); the repository's top-level ``schemas/`` holds the same file for editors,
and a test keeps the two equal. It is the single source of the file's shape, defaults included: ``default_of``
reads defaults from it so that the loader and editors agree.

jsonschema's own messages are written for schema authors; each error is rewritten here from its keyword and
two annotations the schema carries: ``x-expect`` (what a value should look like) and ``x-messages`` (a message
per keyword). Values are echoed only through ``shown``, which never repeats what looks like a secret.
"""

from __future__ import annotations

import difflib
import functools
import json
import re
from collections.abc import Iterator, Mapping
from decimal import Decimal
from importlib.resources import files
from typing import Any

import jsonschema
from jsonschema.exceptions import ValidationError

from rebalancer.jobfile.yamlpos import Path, Positions, RawProblem, looks_like_secret

SCHEMA_RESOURCE = ("schemas", "job.schema.json")  # inside the ``rebalancer`` package

_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "object": "a mapping of keys",
    "array": "a list",
    "null": "nothing",
}


@functools.cache
def schema() -> Mapping[str, Any]:
    """The job file schema, read once from the package's ``SCHEMA_RESOURCE``."""
    loaded: dict[str, Any] = json.loads(files("rebalancer").joinpath(*SCHEMA_RESOURCE).read_text(encoding="utf-8"))
    return loaded


@functools.cache
def validator() -> jsonschema.protocols.Validator:
    """The compiled (and self-checked) validator, built once per process.

    Its ``pattern`` keyword reads patterns as JSON Schema means them (ECMA-262): ``$`` matches only at the very
    end of the text. Python's ``$`` also matches before a final line break, which let ``"name\\n"`` through.
    """
    jsonschema.Draft202012Validator.check_schema(schema())
    strict = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"pattern": _ecma_pattern})
    return strict(_inlined(schema(), schema()))


def _inlined(node: Any, root: Mapping[str, Any], through: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points to (beside its other keywords, through
    ``allOf``, which means the same): the validator then never looks a reference up, which was a third of the time
    a fleet's start spent checking a thousand job files. A reference back into one it is inside stays as it is."""
    if isinstance(node, list):
        return [_inlined(item, root, through) for item in node]
    if not isinstance(node, Mapping):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/") and ref not in through:
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        inlined = _inlined(target, root, (*through, ref))
        others = {key: _inlined(value, root, through) for key, value in node.items() if key != "$ref"}
        return {"allOf": [inlined], **others} if others else inlined
    return {key: _inlined(value, root, through) for key, value in node.items()}


def _ecma_pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``pattern`` keyword with ECMA-262's ``$`` (end of text only)."""
    if isinstance(instance, str) and re.search(ecma_regex(pattern), instance) is None:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@functools.cache
def ecma_regex(pattern: str) -> str:
    """``pattern`` for Python's ``re`` with every ``$`` outside a character class made ``\\Z``."""
    out: list[str] = []
    escaped = in_class = False
    for char in pattern:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "[":
            in_class = True
        elif char == "]":
            in_class = False
        elif char == "$" and not in_class:
            out.append(r"\Z")
            continue
        out.append(char)
    return "".join(out)


def _resolve(node: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in node:
        ref = str(node["$ref"])
        target: Any = schema()
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def subschema(path: Path) -> Mapping[str, Any]:
    """The schema of the key at ``path`` (list indices step into ``items``), with ``$ref`` resolved."""
    node = _resolve(schema())
    for part in path:
        node = _resolve(node["items"] if isinstance(part, int) else node["properties"][part])
    return node


def default_of(path: Path) -> Any:
    """The schema's default for the key at ``path``; KeyError when the schema gives none."""
    return subschema(path)["default"]


def shown(value: Any) -> str:
    """A value as a message may echo it: short, one line, and never something that looks like a secret."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "nothing"
    if isinstance(value, int | Decimal):
        text = format(value, "f") if isinstance(value, Decimal) else str(value)
        return text if len(text) <= 40 else text[:37] + "..."
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = str(value)
    if looks_like_secret(text, min_length=16):
        return "a value that looks like a secret"
    if "://" in text and ("?" in text or "@" in text):
        return "a URL (not shown: its query or credentials may hold a secret)"
    text = json.dumps(text, ensure_ascii=False)
    return text if len(text) <= 42 else text[:38] + '..."'


def _under(path: Path, suppressed: frozenset[Path]) -> bool:
    return any(path[: len(prefix)] == prefix for prefix in suppressed)


def check_shape(data: Any, positions: Positions, suppressed: frozenset[Path] = frozenset()) -> list[RawProblem]:
    """Every schema violation of ``data`` as a positioned plain-words problem, none under ``suppressed``."""
    problems: dict[RawProblem, None] = {}
    for error in validator().iter_errors(data):
        problems.update((p, None) for p in _explain(error, positions) if not _under(p.path, suppressed))
    return sorted(problems, key=lambda p: (p.mark, p.path))


def _explain(error: ValidationError, positions: Positions) -> Iterator[RawProblem]:
    path: Path = tuple(error.absolute_path)
    keyword = str(error.validator)
    instance = error.instance
    node = error.schema if isinstance(error.schema, Mapping) else {}
    custom = node.get("x-messages", {}).get(keyword)
    if keyword == "required":
        # jsonschema reports each missing key apart; one line naming them all reads better (duplicates merge).
        missing = [f"'{name}'" for name in error.validator_value if name not in instance]
        noun = "key" if len(missing) == 1 else "keys"
        yield RawProblem(path, f"missing required {noun} {', '.join(missing)}", positions.key(path))
        return
    if keyword == "additionalProperties":
        known = sorted(node.get("properties", {}))
        for name in instance:
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f"; expected one of: {', '.join(known)}"
                shown_name = name.encode("unicode_escape").decode("ascii")  # a key may hold a line break
                label = "that looks like a secret" if looks_like_secret(name, min_length=16) else f"'{shown_name}'"
                yield RawProblem((*path, name), f"unknown key {label}{hint}", positions.key((*path, name)))
        return
    if node.get("type") == "object" and keyword != "type" and not isinstance(instance, dict):
        return  # the type error says it all; object-only rules hold vacuously or fail confusingly here
    fitting = _fitting_branch(error) if keyword in ("anyOf", "oneOf") and isinstance(instance, dict) else None
    if fitting:
        # A mapping that only one alternative can be (reference: {source: ...}): say what is wrong inside it.
        for sub in fitting:
            yield from _explain(sub, positions)
        return
    mark = positions.key(path) if isinstance(instance, dict) else positions.value(path)
    yield RawProblem(path, custom or _message(keyword, error, node), mark)


_SHAPE_KEYWORDS = frozenset({"type", "enum", "const", "anyOf", "oneOf"})


def _fitting_branch(error: ValidationError) -> list[ValidationError] | None:
    """The errors of the one alternative of an anyOf/oneOf whose shape the value has, or None if not exactly one."""
    branches: dict[object, list[ValidationError]] = {}
    for sub in error.context or ():
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    fitting = [
        errors
        for errors in branches.values()
        if not any(e.validator in _SHAPE_KEYWORDS and not e.relative_path for e in errors)
    ]
    return fitting[0] if len(fitting) == 1 else None


def _message(keyword: str, error: ValidationError, node: Mapping[str, Any]) -> str:
    instance, limit = error.instance, error.validator_value
    expect = node.get("x-expect")
    if keyword == "minimum":
        return f"{shown(instance)} is less than the minimum of {limit}"
    if keyword == "maximum":
        return f"{shown(instance)} is greater than the maximum of {limit}"
    if keyword == "exclusiveMinimum":
        return f"{shown(instance)} must be greater than {limit}"
    if keyword == "minItems":
        return f"needs at least {limit} item{'s' if limit != 1 else ''}"
    if keyword == "maxItems":
        return f"has {len(instance)} items, more than the maximum of {limit}"
    if keyword == "maxLength":
        return f"is longer than {limit} characters"
    if keyword == "enum" and not expect:
        choices = ", ".join(str(choice) for choice in limit)
        return f"expected one of {choices}, got {shown(instance)}"
    if keyword == "type" and not expect:
        wanted = limit if isinstance(limit, list) else [limit]
        return f"expected {' or '.join(_TYPE_WORDS.get(str(w), str(w)) for w in wanted)}, got {shown(instance)}"
    if keyword == "const" and not expect:
        return f"expected {shown(limit)}, got {shown(instance)}"
    if expect:
        return f"expected {expect}, got {shown(instance)}"
    return f"{shown(instance)} is not valid here"
