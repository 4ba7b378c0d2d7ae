"""The import graph of `backends/` and `demo/` has no circle, counting imports inside functions (only imports
under `if TYPE_CHECKING:` are left out: they never run). Read from the source, nothing is imported."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def modules(packages=("backends", "demo")) -> dict[str, Path]:
    out = {}
    for pkg in packages:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def imported(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules `name` imports anywhere in its file (a package's `from . import x` names x's module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guards = [node for node in ast.walk(tree) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)]
    type_only = {id(n) for guard in guards for n in ast.walk(guard)}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(tree):
        if id(node) in type_only:
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            prefix = ".".join(base + ([node.module] if node.module else []))
            found.update(f"{prefix}.{a.name}" if f"{prefix}.{a.name}" in known else prefix for a in node.names)
    return {m for m in found if m in known and m != name}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter[0]
        counter[0] += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            v, edges = work[-1]
            w = next(edges, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                component = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    component.append(w)
                    if w == v:
                        break
                if len(component) > 1:
                    out.append(sorted(component))
    return out


def test_no_import_circle_even_inside_functions():
    known = modules()
    graph = {name: imported(name, path, known) for name, path in known.items()}
    assert len(graph) > 60 and graph["backends.svg.vectorfusion"] >= {"backends.svg.distill", "backends.engine"}
    assert circles(graph) == []


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
    ({"a": {"b"}, "b": set()}, []),
])
def test_the_circle_finder_finds_circles(graph, expected):
    assert circles(graph) == expected


def test_the_demo_decides_nothing_by_prior_vocabulary():
    """The app words facts that `backends.describe_machine()` already decided: no comparison in demo/ against a
    prior's name, kind or role, a weights state or a name prefix (those facts live in the catalog alone)."""
    from backends.priors import catalog

    words = set(catalog.entries()) | set(catalog.KINDS) | set(catalog.ROLES) | {"local", "cached", "download"}
    stems = {n.split("-")[0] for n in catalog.entries()}  # "tiny-" prefixes and the like
    found = []
    for path in sorted((ROOT / "demo").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            probes = []
            if isinstance(node, ast.Compare):
                probes = [node.left, *node.comparators]
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("startswith", "endswith"):
                probes = node.args
            for c in (c for probe in probes for c in _values(probe)):
                if isinstance(c.value, str) and (c.value in words or c.value.rstrip("-") in stems):
                    found.append(f"{path.name}:{node.lineno} {c.value!r}")
    assert not found, found


def _values(node: ast.AST):
    """The string constants an expression compares (a subscript's key, facts["real"], is a name, not a value)."""
    if isinstance(node, ast.Constant):
        yield node
    for name, child in ast.iter_fields(node):
        if isinstance(node, ast.Subscript) and name == "slice":
            continue
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ast.AST):
                yield from _values(c)
