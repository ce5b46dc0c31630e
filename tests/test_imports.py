"""Import rules: the contracts of ``.importlinter`` hold, and no module takes part in an import circle.

import-linter checks the layers and what ``rebalancer.core`` may import, from every import statement (in-function
ones included), but reports circles only between layers. So this file also walks every ``import`` in every module
(top level, in functions, under ``TYPE_CHECKING``) and asserts that the graph has no cycle at all.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "rebalancer"


def modules() -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__``)."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imported_names(tree: ast.AST) -> Iterator[str]:
    """Every dotted name an import statement anywhere in ``tree`` may load (``from a import b``: a, a.b)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
    """Module → the package's modules it imports. A name resolves to the longest module it names."""
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target in imported_names(ast.parse(path.read_text(encoding="utf-8"))):
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                graph[name].add(target)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_contracts_hold() -> None:
    # In a child process: import-linter reconfigures logging, which silenced the log lines of tests run after it.
    script = (
        "import sys; from importlinter.cli import lint_imports; "
        f"sys.exit(lint_imports(config_filename={str(ROOT / '.importlinter')!r}, no_cache=True, no_logo=True))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_package_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


def test_the_cycle_finder_sees_in_function_imports() -> None:
    source = "def f():\n    from rebalancer.b import x\n"
    assert set(imported_names(ast.parse(source))) == {"rebalancer.b", "rebalancer.b.x"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


IN_FUNCTION_LIMIT = 44
"""The most import statements of the package's own modules inside functions: only where start-up time needs them
(the command line loads a command's modules when the command runs, so that ``--help`` stays quick; hoisting the
rest of them doubles its start-up time) and where a library is needed only on one path (the embedded sandbox's
server, the webhook's HTTP client)."""


def in_function_imports(tree: ast.AST) -> list[int]:
    """The line of every import statement inside a function of ``tree`` that names one of the package's modules."""
    lines: list[int] = []

    def visit(node: ast.AST, inside: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if inside and isinstance(child, ast.ImportFrom):
                own = bool(child.level) or (child.module or "").split(".")[0] == "rebalancer"
            elif inside and isinstance(child, ast.Import):
                own = any(alias.name.split(".")[0] == "rebalancer" for alias in child.names)
            else:
                own = False
            if own:
                lines.append(child.lineno)
            visit(child, inside or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return lines


def test_in_function_imports_are_few() -> None:
    found = {
        str(path.relative_to(ROOT)): len(lines)
        for path in modules().values()
        if (lines := in_function_imports(ast.parse(path.read_text(encoding="utf-8"))))
    }
    assert sum(found.values()) <= IN_FUNCTION_LIMIT, sorted(found.items(), key=lambda item: -item[1])


def test_the_in_function_count_sees_nested_functions_once() -> None:
    source = (
        "import rebalancer.a\n"
        "def f():\n    from rebalancer.b import x\n    def g():\n        import rebalancer.c\n"
        "    from requests import get\n"
        "class C:\n    def m(self):\n        from . import d\n"
    )
    assert in_function_imports(ast.parse(source)) == [3, 5, 9]


def test_plan_against_the_embedded_sandbox_imports_no_websockets(tmp_path: Path) -> None:
    """``plan`` of a job without a stream on ``url: sandbox`` serves the sandbox's world in its own process, with
    the world's market stream, yet never imports the websockets library: the stream starts serving at its first
    client, and a job without a stream is none."""
    job = ROOT / "jobs" / "btcusdt-maker.yaml"
    assert "url: sandbox" in job.read_text() and "stream:" not in job.read_text()
    env = {**os.environ, "REBALANCER_STATE_DIR": str(tmp_path / "state"), "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rebalancer", "plan", str(job)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "rebalancer.sandbox.stream" in imported  # this process served the world and its stream
    assert sorted(name for name in imported if name.split(".")[0] == "websockets") == []
