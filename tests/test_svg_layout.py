"""The svg room reads as issue 39 asks, checked from the source (`ast`, nothing imported but the public names):
modules of at most 700 lines, functions of at most 80, no module named like a module elsewhere in `backends/`
or like its own package, and the import paths users and the README rely on.
"""
from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SVG = ROOT / "backends" / "svg"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80


def svg_modules() -> list[Path]:
    return sorted(SVG.rglob("*.py"))


def test_every_svg_module_is_at_most_700_lines():
    long = {p.relative_to(ROOT).as_posix(): n for p in svg_modules()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}
    assert not long, long


def test_every_svg_function_is_at_most_80_lines():
    long = []
    for path in svg_modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT).as_posix()}:{node.lineno} {node.name} ({n} lines)")
    assert not long, long


def test_no_svg_module_shares_its_name_with_another_module_of_backends_or_its_package():
    """`svg/csd.py` beside `csd_edit/csd.py`, `svg/init.py` beside `svg/__init__.py` and `svg/backends.py` inside
    the package `backends` each made a reader ask which one was meant."""
    others = {p.stem for p in (ROOT / "backends").rglob("*.py") if SVG not in p.parents}
    packages = {"backends"} | {p.name for p in SVG.rglob("*") if p.is_dir()}
    clashes = []
    for path in svg_modules():
        stem = path.stem
        if stem.startswith("__"):
            continue
        if stem in others or stem in packages or stem == "init":
            clashes.append(path.relative_to(ROOT).as_posix())
    assert not clashes, clashes


@pytest.mark.parametrize("module, names", [
    ("backends.svg", ["Painting", "Scene", "Shape", "render", "render_batch", "svg_to_scene", "scene_to_svg",
                      "load_svg", "save_svg"]),
    ("backends.svg.svgio", ["load_svg", "save_svg", "scene_to_svg", "svg_to_scene", "parse_color",
                            "parse_path_data", "parse_transform", "parse_length", "check_work", "MAX_ASPECT",
                            "MAX_BYTES", "MAX_CANVAS", "MAX_ELEMENTS", "MAX_SEGMENTS", "MAX_WORK"]),
    ("backends.svg.render", ["render", "render_batch", "output_size", "chord_counts", "gather_cubics",
                             "shape_cubic_index", "FLAT_TOL", "MAX_CHORDS", "STROKE_PIECE"]),
    ("backends.svg.cost", ["estimate_work", "render_work", "check_work", "painting_bytes", "fit_bytes"]),
])
def test_the_public_names_stay_importable_where_users_import_them(module, names):
    mod = importlib.import_module(module)
    assert [n for n in names if not hasattr(mod, n)] == []
