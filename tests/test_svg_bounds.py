"""No small input may buy gigabytes or minutes: hostile SVGs and paths through the renderer CLI, bounded.

Every case of CORPUS runs the CLI's `main()` (`python -m backends.svg render ...`) in a forked child of one
driver process that imported torch once (torch's import is ~2-5 s on this 2-core machine; the cases are not),
each with an address-space cap of MEM_CAP bytes beyond what the imports mapped and a DEADLINE_S wall-clock
limit. Each must exit 2 with one line on stderr naming the problem, or render a correct PNG, within both.
A few cases run as real `python -m backends.svg` subprocesses: a FIFO input, Ctrl-C during rendering, a good
render, and a hostile file under `prlimit`.

Run the driver alone to see the table of times and memory: `python tests/test_svg_bounds.py`.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.forked import run_forked, vm_size

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 5.0                         # CPU seconds a case may take: the target, judged on the work done
HANG_S = 300.0                           # wall seconds: ends only a case that never finishes, whatever the load
MEM_CAP = int(2.5 * 2 ** 30)             # bytes of address space a case may add to the driver's after imports


def _svg(body: str, size: str = 'width="300" height="150"') -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" {size}>{body}</svg>'


def _refuse(name, svg, words, *args, inp=None, out=None):
    return {"name": name, "svg": svg, "args": list(args), "expect": "refuse", "words": words, "input": inp,
            "output": out}


def _ok(name, svg, size, *args, pixel=None, warns=(), out=None):
    """size: (W, H) of the PNG; pixel: ((x, y), (r, g, b)) to check; warns: words each warning line must hold."""
    return {"name": name, "svg": svg, "args": list(args), "expect": "ok", "size": list(size), "pixel": pixel,
            "warns": list(warns), "input": None, "output": out}


def _full_paths(n: int, side: int) -> str:
    return "".join(f'<path d="M0 0H{side}V{side}H0Z" fill="#{i % 256:02x}4080"/>' for i in range(n))


def corpus() -> list[dict]:
    """Hostile SVG inputs, several of each class (a file that could hang, exhaust or fool the importer), each with
    its expected outcome."""
    rect = '<rect x="10" y="10" width="50" height="50" fill="red"/>'
    c = [
        # coordinates: absurd, overflowing, non-finite
        _refuse("coordinate_3e6", _svg('<path d="M0 0 L3e6 5 L5 3e6Z"/>'), "coordinate of 3e+06"),
        _refuse("coordinate_1e10", _svg('<path d="M0 0 L1e10 5 L5 1e10Z"/>'), "far outside its 300x150 canvas"),
        _refuse("coordinate_1e308", _svg('<path d="M0 0 L1e308 5 L5 1e308Z"/>'), "coordinate"),
        _refuse("coordinate_4e38", _svg('<polygon points="0,0 4e38,0 0,4e38"/>'), "far outside"),
        _refuse("coordinate_overflows_1e999", _svg('<path d="M0 0 L1e999 0 L0 9Z"/>'), "non-finite"),
        _refuse("rect_1e308_overflows", _svg('<rect x="1e308" y="0" width="1e308" height="5"/>'), "overflows"),
        _refuse("circle_r_1e308", _svg('<circle cx="5" cy="5" r="1e308"/>'), "<circle>"),
        _refuse("ellipse_rx_4e38", _svg('<ellipse cx="5" cy="5" rx="4e38" ry="3"/>'), "<ellipse>"),
        _refuse("translate_far_away", _svg('<g transform="translate(1e9 0)">' + rect + "</g>"), "far outside"),
        _refuse("named_element_in_message", _svg('<path id="logo" d="M0 0 L9e5 0 L0 9Z"/>'), '<path id="logo">'),
        # transforms: absurd or overflowing; zero scale hides (SVG spec)
        _refuse("scale_1e30", _svg('<g transform="scale(1e30)">' + rect + "</g>"), "stretches by 1e+30"),
        _refuse("nested_scales_multiply_to_1e30",
                _svg('<g transform="scale(1e5)">' * 6 + rect + "</g>" * 6), "with its parents'"),
        _refuse("skewX_90", _svg('<path transform="skewX(90)" d="M0 0 L10 10 L0 10Z"/>'), "stretches by"),
        _refuse("scale_1e-30", _svg('<g transform="scale(1e-30)">' + rect + "</g>"), "shrinks by"),
        _refuse("matrix_overflow", _svg('<g transform="matrix(1e200 0 0 1e200 0 0) scale(1e200)">' + rect + "</g>"),
                "non-finite or overflowing"),
        _refuse("viewbox_tiny", _svg(rect, 'width="100" height="100" viewBox="0 0 1e-9 1e-9"'), "stretches by"),
        _ok("scale_0_is_hidden", _svg('<g transform="scale(0)">' + rect + "</g>" + rect), (300, 150),
            pixel=((30, 30), (255, 0, 0)), warns=["zero-scale"]),
        _ok("skewX_89_is_fine", _svg('<path transform="skewX(60)" d="M0 0 L20 0 L20 20 L0 20Z" fill="blue"/>'),
            (300, 150), pixel=((30, 10), (0, 0, 255))),
        _ok("deep_moderate_transforms", _svg('<g transform="scale(1.1)">' * 100 + rect + "</g>" * 100,
                                             'width="300" height="150" viewBox="0 0 4e6 2e6"'), (300, 150)),
        # NaN and friends in attributes: ignored like any unparsable value (and said so), or refused where they matter
        _ok("nan_attributes_are_ignored", _svg('<rect x="NaN" y="nan" width="nan" height="5"/>' + rect,
                                               'width="NaN" height="inf"'), (300, 150), pixel=((30, 30), (255, 0, 0)),
            warns=("lengths could not be read",)),
        _refuse("nan_transform", _svg('<g transform="scale(nan)">' + rect + "</g>"), "malformed transform"),
        _ok("nan_in_path_data_keeps_the_part_before",
            _svg('<path d="M10 10 L60 10 L60 60 L10 60 Z M nan nan L 1 1" fill="red"/>'), (300, 150),
            pixel=((30, 30), (255, 0, 0)), warns=("malformed data",)),
        # canvas: size, aspect, zero viewBox with percentages
        _refuse("canvas_16384", _svg(rect, 'width="16384" height="16384"'), "1 to 4096 px"),
        _refuse("canvas_1e308", _svg(rect, 'width="1e308" height="1e308"'), "canvas"),
        _refuse("canvas_from_a_1e-320_viewbox", _svg(rect, 'height="256" viewBox="0 0 100 1e-320"'), "canvas is inf"),
        _refuse("aspect_1_by_16384_size_64", _svg(rect, 'width="1" height="16384"'), "canvas", "--size", "64"),
        _refuse("aspect_1_by_4000", _svg(rect, 'width="1" height="4000"'), "at most 32:1"),
        _refuse("percent_lengths_zero_viewbox", _svg(rect, 'width="50%" height="50%" viewBox="0 0 0 0"'),
                "viewBox"),
        _refuse("nested_svg_zero_viewbox", _svg('<svg width="10%" height="10%" viewBox="0 0 0 0">' + rect + "</svg>"),
                "viewBox"),
        _ok("canvas_2896_one_full_fill", _svg(_full_paths(1, 2896), 'width="2896" height="2896"'), (2896, 2896),
            pixel=((1000, 1000), (0, 0x40, 0x80))),
        _refuse("canvas_4096_two_full_fills", _svg(_full_paths(2, 4096), 'width="4096" height="4096"'),
                "million pixel operations"),
        _refuse("output_size_aspect", _svg(rect, 'width="128" height="4096"'), "--size", "--size", "4096"),
        _refuse("samples_8_at_4096", _svg(rect, 'width="1024" height="1024"'), "--samples", "--samples", "8",
                "--size", "4096"),
        _refuse("size_option_out_of_range", _svg(rect), "--size must be", "--size", "100000"),
        # counts: subpaths, shapes, segments, stops
        _refuse("66k_full_canvas_subpaths", _svg('<path d="' + "M0 0H300V150H0Z" * 66_000 + '"/>'),
                "curve segments"),
        _refuse("40k_full_canvas_subpaths", _svg('<path d="' + "M0 0H300V150Z" * 40_000 + '"/>'),
                "at most 4096 per shape"),
        _refuse("15k_full_canvas_paths", _svg(_full_paths(15_000, 300)), "shapes"),
        _refuse("4k_full_canvas_paths_of_1024", _svg(_full_paths(4000, 1024), 'width="1024" height="1024"'),
                "pixel operations"),
        _refuse("300k_segments", _svg('<path d="M0 0' + "l1 1" * 300_000 + '" fill="none" stroke="red"/>'),
                "curve segments"),
        _refuse("10k_stops_9k_rects",
                _svg('<linearGradient id="g">' + '<stop offset="0" stop-color="#123"/>' * 10_000 + "</linearGradient>"
                     + '<rect width="300" height="150" fill="url(#g)"/>' * 9_000), "stops"),
        _refuse("many_gradients_5000_stops",
                _svg("".join(f'<linearGradient id="g{i}">' + '<stop stop-color="red"/>' * 250 + "</linearGradient>"
                             for i in range(20))), "in all"),
        _ok("gradient_used_by_3k_rects",
            _svg('<linearGradient id="g"><stop stop-color="#000"/><stop stop-color="#fff"/></linearGradient>'
                 + '<rect x="1" y="1" width="3" height="3" fill="url(#g)"/>' * 3_000
                 + '<rect x="100" y="100" width="40" height="40" fill="url(#g)"/>'), (300, 150),
            pixel=((120, 120), (128, 128, 128)), warns=["gradient"]),
        # strokes
        _refuse("stroke_width_1e5", _svg('<path d="M0 0 L100 100" stroke="red" stroke-width="1e5"/>'), "stroke"),
        _refuse("wide_long_strokes", _svg('<path d="M0 0 L4096 4096 L0 4096 L4096 0" fill="none" stroke="red" '
                                          'stroke-width="2000"/>', 'width="4096" height="4096"'), "pixel operations"),
        # arcs: degenerate radii follow the SVG spec (zero -> line, tiny -> scaled up, huge small arc -> chord)
        _ok("arc_zero_radius_is_a_line", _svg('<path d="M10 10 A0 5 0 0 1 100 10" stroke="red" stroke-width="9" '
                                              'fill="none" stroke-linecap="round" stroke-linejoin="round"/>'),
            (300, 150), pixel=((50, 10), (255, 0, 0))),
        _ok("arc_tiny_radii_scaled_up", _svg('<path d="M10 50 A1e-300 1e-300 0 0 1 110 50 Z" fill="red"/>'),
            (300, 150), pixel=((60, 40), (255, 0, 0))),
        _ok("arc_huge_radii_small_arc", _svg('<path d="M10 50 A1e300 1e300 0 0 1 110 50 L60 90 Z" fill="red"/>'),
            (300, 150), pixel=((60, 60), (255, 0, 0))),
        _refuse("arc_huge_radii_large_arc", _svg('<path d="M10 50 A1e300 1e300 0 1 1 110 50 Z"/>'), "arc"),
        _refuse("arc_radius_1e200_nearly_large", _svg('<path d="M10 50 A1e5 1e5 0 1 1 110 50 Z"/>'), "far outside"),
        # bytes and XML
        _refuse("over_2MB", _svg(" " * (2 * 1024 * 1024) + rect), "at most 2 MB"),
        _refuse("entity_bomb", '<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
                + "".join(f'<!ENTITY a{i} "{"&a;" * 10}">' for i in range(5)) + ']><svg xmlns="http://www.w3.org/'
                '2000/svg"><text>&a4;</text></svg>', "entities"),
        _refuse("empty_file", "", "empty"),
        _refuse("binary_file", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10, "UTF-8"),
        # what the renderer approximates is said, not silent
        _ok("warnings_for_skipped_and_approximated",
            _svg('<linearGradient id="a"><stop stop-color="red"/></linearGradient><text>hi</text><text>x</text>'
                 '<image href="x.png"/><use href="#r"/><rect id="r" width="50" height="50" fill="url(#a)" '
                 'clip-path="url(#c)"/><path d="M0 100 L99 100" stroke="blue" stroke-dasharray="4"/>'), (300, 150),
            pixel=((20, 20), (255, 0, 0)),
            warns=["gradient", "2 <text> elements", "<image>", "<use>", "clip path", "dashed", "round"]),
        # paths: input and output
        _refuse("input_fifo", None, "not a regular file", inp="FIFO"),
        _refuse("input_dev_zero", None, "not a regular file", inp="/dev/zero"),
        _refuse("input_directory", None, "not a regular file", inp="DIR"),
        _refuse("input_missing", None, "does not exist", inp="MISSING"),
        _refuse("output_directory", _svg(rect), "is a directory", out="DIR"),
        _refuse("output_dev_null", _svg(rect), "not a regular file", out="/dev/null"),
        _refuse("output_missing_folder", _svg(rect), "does not exist", out="MISSING"),
        _refuse("output_read_only_folder", _svg(rect), "not writable", out="RO"),
        _refuse("output_name_too_long", _svg(rect), "longer than", out="LONG"),
        _refuse("output_not_png", _svg(rect), "would hold a PNG; name it .png (not .jpg)", out="JPG"),
        _ok("output_replaces_an_existing_png", _svg(rect), (300, 150), pixel=((30, 30), (255, 0, 0)), out="EXISTS"),
    ]
    return c


# ------------------------------------------------------------------------------------------------ driver

def _paths(case: dict, work: Path) -> tuple[str, str]:
    """The input and output paths of a case, creating what they name."""
    name = case["name"]
    inp = case.get("input")
    if inp is None:
        src = work / f"{name}.svg"
        data = case["svg"]
        src.write_bytes(data.encode() if isinstance(data, str) else data)
        inp = str(src)
    elif inp == "FIFO":
        inp = str(work / f"{name}.fifo")
        os.mkfifo(inp)
    elif inp == "DIR":
        inp = str(work)
    elif inp == "MISSING":
        inp = str(work / "missing.svg")
    out = case.get("output")
    if out is None or out == "EXISTS":
        out = str(work / f"{name}.png")
        if case.get("output") == "EXISTS":
            Path(out).write_bytes(b"old")
    elif out == "DIR":
        out = str(work)
    elif out == "MISSING":
        out = str(work / "no" / "such" / "folder" / "x.png")
    elif out == "RO":
        if os.geteuid() == 0:                # root writes through chmod; sysfs refuses new files even to root
            out = "/sys/svg-bounds-test.png"
        else:
            ro = work / "read-only"
            ro.mkdir(exist_ok=True)
            ro.chmod(0o555)
            out = str(ro / "x.png")
    elif out == "LONG":
        out = str(work / ("x" * 300 + ".png"))
    elif out == "JPG":
        out = str(work / "x.jpg")
    return inp, out


def run_cases(cases: list[dict], work: Path, deadline_s: float = HANG_S, mem_cap: int = MEM_CAP) -> list[dict]:
    """Run each case through the CLI's main() in a forked child (`tests.forked`: address space capped, wall time
    limited). Returns per case: rc (-9 when killed at the deadline), seconds, extra_rss (bytes beyond the
    driver's), stderr lines, and the output path.
    """
    import torch

    torch.set_num_threads(1)
    import backends.svg.render  # noqa: F401  (imported once here, not in every child)
    from backends.svg.__main__ import main

    results = []
    for case in cases:
        inp, out = _paths(case, work)
        res = run_forked(main, ["render", inp, out, *case["args"]], work / f"{case['name']}.stderr",
                         deadline_s=deadline_s, mem_cap=mem_cap)
        results.append({"name": case["name"], **res, "output": out})
    return results


def check(case: dict, res: dict) -> str | None:
    """None when the result is what the case expects, else why not."""
    lines, rc = res["stderr"], res["rc"]
    if rc == -9:
        return f"still running after {HANG_S:.0f} s"
    if res["cpu_s"] > DEADLINE_S:
        return f"took {res['cpu_s']:.1f} CPU seconds"
    if case["expect"] == "refuse":
        if rc != 2:
            return f"exit code {rc}, stderr {lines[-3:]}"
        if len(lines) != 1 or not lines[0].startswith("error: ") or not lines[0].endswith("."):
            return f"stderr is not one sentence on one line: {lines[-3:]}"
        if case["words"] not in lines[0]:
            return f"message lacks {case['words']!r}: {lines[0]}"
        if case.get("output") is None and os.path.exists(res["output"]):
            return "an output file was written"
        return None
    if rc != 0:
        return f"exit code {rc}, stderr {lines[-3:]}"
    from PIL import Image

    img = Image.open(res["output"])
    if list(img.size) != case["size"]:
        return f"PNG is {img.size}, expected {case['size']}"
    if case["pixel"]:
        (x, y), rgb = case["pixel"]
        got = img.getpixel((x, y))[:3]
        if max(abs(a - b) for a, b in zip(got, rgb)) > 2:
            return f"pixel {(x, y)} is {got}, expected {rgb}"
    warnings = [line for line in lines if line.startswith("warning: ")]
    if len(warnings) != len(lines):
        return f"stderr has more than warnings: {lines}"
    for words in case["warns"]:
        if not any(words in line for line in warnings):
            return f"no warning mentions {words!r}: {warnings}"
    if not case["warns"] and warnings:
        return f"unexpected warnings {warnings}"
    if any(p.name.endswith(".png.part") for p in Path(res["output"]).parent.iterdir()):
        return "a temporary file was left behind"
    return None


@pytest.fixture(scope="module")
def driven(tmp_path_factory):
    """All of CORPUS run by one driver subprocess (a fresh interpreter, so its imports are measured apart)."""
    work = tmp_path_factory.mktemp("bounds")
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), str(work)], cwd=ROOT, capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in json.loads((work / "results.json").read_text())}


@pytest.mark.parametrize("case", corpus(), ids=lambda c: c["name"])
def test_hostile_case_is_refused_in_one_line_or_rendered_correctly_within_time_and_memory(case, driven):
    res = driven[case["name"]]
    problem = check(case, res)
    assert problem is None, f"{case['name']}: {problem}"
    assert res["extra_rss"] < MEM_CAP


# ---------------------------------------------------------------------------------------- real processes

def _cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "backends.svg", "render", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, **kw)


def test_cli_refuses_a_fifo_at_once_instead_of_blocking(tmp_path):
    fifo = tmp_path / "in.svg"
    os.mkfifo(fifo)
    proc = _cli(str(fifo), str(tmp_path / "out.png"))
    assert proc.returncode == 2 and proc.stderr.strip().splitlines() == [
        "error: The path 'in.svg' is not a regular file; upload a SVG file."]


def test_cli_under_an_address_space_cap_refuses_the_3_5_gb_path_of_the_trial(tmp_path):
    src = tmp_path / "in.svg"
    src.write_text(_svg('<path d="M0 0 L3e6 5 L5 3e6Z"/>'))
    cap = vm_size() + MEM_CAP               # this process has imported torch too (conftest), as the CLI will
    proc = subprocess.run(["prlimit", f"--as={cap}", sys.executable, "-m", "backends.svg", "render", str(src),
                           str(tmp_path / "out.png")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(proc.stderr.strip().splitlines()) == 1 and "coordinate of 3e+06" in proc.stderr


def test_ctrl_c_during_rendering_exits_130_with_one_line_and_leaves_no_file(tmp_path):
    src = tmp_path / "in.svg"
    src.write_text(_svg(_full_paths(1, 4096), 'width="4096" height="4096"'))
    out = tmp_path / "out.png"
    # as from a terminal: SIGINT at its default. A suite started in the background (`cmd &` in a script) runs with
    # SIGINT ignored, which children inherit, and Python then never raises KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "backends.svg", "render", str(src), str(out), "--samples", "1"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    t0 = time.monotonic()
    while not any(p.name.endswith(".png.part") for p in tmp_path.iterdir()):   # the temp file precedes rendering
        assert proc.poll() is None and time.monotonic() - t0 < 600, proc.stderr.read()  # a stuck start, not a slow one
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 130 and err.strip().splitlines() == ["error: interrupted"]
    assert list(tmp_path.iterdir()) == [src]                                      # neither out.png nor a .part


if __name__ == "__main__":
    # The driver: `python tests/test_svg_bounds.py [WORK_DIR]` runs CORPUS and writes WORK_DIR/results.json.
    sys.path.insert(0, str(ROOT))
    work_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="svg-bounds-"))
    cases = corpus()
    results = run_cases(cases, work_dir)
    (work_dir / "results.json").write_text(json.dumps(results))
    for case, res in zip(cases, results):
        print(f"{res['name']:42s} rc={res['rc']:3d} {res['seconds']:6.2f} s ({res['cpu_s']:5.2f} CPU s) {res['extra_rss'] / 2 ** 20:7.0f} MB  "
              f"{check(case, res) or 'ok'}")
