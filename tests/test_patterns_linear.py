"""Every regular expression in the project reads hostile text in linear time.

Untrusted text reaches these patterns: SVG attributes and CSS, prompts, settings, file names inside zips, the size
names of DISTILL_MEMORY_BUDGET, ffmpeg's description of an uploaded file. A pattern that can backtrack turns 30 KB
into minutes (a width of 30,000 digits once took 99 s). The patterns are found by reading the source (every
`re.compile` / `re.match` / ... call with a literal pattern, in backends/, demo/ and app.py), so a new one is
covered the day it is written; each meets 100 KB runs of every character class, the way the code uses it (a
pattern only ever matched at a position is matched there; one searched, found all, split or substituted is
searched from every position), and each must take under 100 ms of process time (CPU seconds, not a wall clock a
busy machine stretches). A linear pattern takes about 1 ms here.
"""
from __future__ import annotations

import ast
import re
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "backends").rglob("*.py"), *(ROOT / "demo").rglob("*.py"), ROOT / "app.py"])
CALLS = {"compile": 1, "match": 2, "search": 2, "fullmatch": 2, "findall": 2, "finditer": 2, "split": 3, "sub": 4,
         "subn": 4}  # re function -> the position of its flags argument
RUN = 100_000
LIMIT_S = 0.1
UNITS = ["1", "a", "A", " ", "\t", "\n", ".", ",", "-", "+", "(", ")", "#", "%", "e", "x", "_", ":", "<", ">", "/",
         '"', "'", "\\", "é", "\x00", "1.", "1 ", "1,", "a1", "1e", "1x1, ", "px ", " ,", "( ", "rgb(", "url(#a) ",
         "<svg ", "  Stream #0:0: Video: ", ", 1x1", "Duration: ", "matrix(", "white background "]
ALL_USES = {"match", "fullmatch", "search"}
HOSTILE = {repr(unit): (unit * (RUN // len(unit) + 1))[:RUN] + "!" for unit in UNITS}


def _flags(node: ast.expr | None) -> int:
    """The value of a flags argument written as re.I, re.M | re.S, or a number; 0 when absent."""
    if node is None:
        return 0
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "re":
        return int(getattr(re, node.attr))
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        return _flags(node.left) | _flags(node.right)
    if isinstance(node, ast.Constant) and isinstance(node.value, int):
        return node.value
    raise ValueError(f"flags written as {ast.dump(node)}: teach _flags to read them")


def _literal(node: ast.expr, names: dict[str, str]) -> str | None:
    """A pattern written as a string, a module-level string constant, or a + of those."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.Name):
        return names.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left, names), _literal(node.right, names)
        return None if left is None or right is None else left + right
    return None


def _uses(tree: ast.AST) -> dict[str, set[str]]:
    """{name: the methods called on it} for every `name.method(...)` call in a module."""
    uses: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            uses.setdefault(node.func.value.id, set()).add(node.func.attr)
    return uses


def patterns() -> list[tuple[str, str, int, tuple[str, ...]]]:
    """(where, pattern, flags, how it is used) of every re call with a literal pattern in the project's source.
    How: "match" / "fullmatch" (anchored), "search" (from every position); a compiled pattern is used as the
    methods called on the name it is assigned to (all three when that cannot be read)."""
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        names = {t.id: v.value for node in tree.body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)
                 for v in [node.value] if isinstance(v, ast.Constant) and isinstance(v.value, str)}
        uses = _uses(tree)
        assigned = {id(node.value): t.id for node in ast.walk(tree) if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "re"
                    and node.func.attr in CALLS and node.args):
                continue
            pattern = _literal(node.args[0], names)
            if pattern is None:
                raise AssertionError(f"{path.relative_to(ROOT)}:{node.lineno}: a pattern this test cannot read; "
                                     "write it as a literal or a module-level constant")
            pos = CALLS[node.func.attr]
            flags = node.args[pos] if len(node.args) > pos else next(
                (k.value for k in node.keywords if k.arg == "flags"), None)
            how = {node.func.attr} if node.func.attr != "compile" else uses.get(assigned.get(id(node)), set())
            how = {m if m in ("match", "fullmatch") else "search" for m in how if m in CALLS} or ALL_USES
            found.append((f"{path.relative_to(ROOT)}:{node.lineno}", pattern, _flags(flags), tuple(sorted(how))))
    return found


def test_the_source_reader_finds_the_patterns_that_read_untrusted_text():
    where = {w.split(":")[0] for w, *_ in patterns()}
    assert {"backends/svg/svgio/lengths.py", "backends/inputs/media/video_files.py", "backends/core/budget.py",
            "backends/inputs/validate.py", "backends/priors/text_match.py"} <= where
    assert len(patterns()) >= 25


@pytest.mark.parametrize("where, pattern, flags, how", [pytest.param(*p, id=p[0]) for p in patterns()])
def test_pattern_is_linear_on_100_kb_of_every_character_class(where, pattern, flags, how):
    compiled = re.compile(pattern, flags)
    ops = {"match": compiled.match, "fullmatch": compiled.fullmatch,
           "search": lambda s: sum(1 for _ in compiled.finditer(s))}  # every match found: search at every position
    slow = []
    for name, text in HOSTILE.items():
        for op in (ops[h] for h in how):
            # a tenth of the run first: a quadratic pattern shows there in a second, where the whole run would
            # take minutes before the test could say so
            for part, limit in ((text[: RUN // 10], LIMIT_S / 10), (text, LIMIT_S)):
                start = time.process_time()
                op(part)
                took = time.process_time() - start
                if took > limit:
                    slow.append(f"{name} ({len(part) // 1000} KB): {took:.2f} s")
                    break
            if slow and slow[-1].startswith(name):
                break
    assert not slow, f"{where} {pattern!r}, used by {'/'.join(how)}, backtracks on: {', '.join(slow)}"
