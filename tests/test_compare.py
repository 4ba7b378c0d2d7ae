"""`python -m backends compare SPEC` (backends.compare): a bad spec is one line naming its key; the grid expands as
the spec says; a tiny text-to-SVG grid (2 prompts x 2 methods x 2 seeds, few steps, icons prior) runs to a table
with every cell's metrics, reruns doing nothing, reruns only a missing or interrupted cell, runs on a local Ray to
the same numbers, is refused whole before anything runs when it exceeds the time budget, and its gallery links
only files that exist, with its prompts escaped."""
from __future__ import annotations

import contextlib
import html.parser
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
import ray  # noqa: F401  (CI installs it through requirements-dev.txt: a missing Ray fails here, never skips)

from backends.core import runner
from backends.inputs import validate
from backends.__main__ import main
from backends.compare import Report, finished, load_spec, parse_spec, run_grid

ROOT = Path(__file__).resolve().parents[1]
FAST = {"svg/vectorfusion": "steps = 5, k = 1, sample_steps = 4", "svg/raster-then-vectorize": "k = 1, sample_steps = 4"}
# the first prompt carries markup: the gallery must show it as text
GRID = """out = "out"
prompts = ["a fox <i>", "a red apple"]
seeds = [0, 1]
priors = ["icons"]

[[backends]]
name = "svg/vectorfusion"
settings = {{ {vf} }}

[[backends]]
name = "svg/raster-then-vectorize"
label = "raster, traced"
settings = {{ {rtv} }}
"""


def cli(*argv: str) -> tuple[int, list[str], str]:
    """main() in this process: (exit code, stderr lines, stdout)."""
    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        rc = main(list(argv))
    return rc, err.getvalue().splitlines(), out.getvalue()


def write_spec(folder: Path, text: str, name: str = "grid.toml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def result_mtimes(out: Path) -> dict[str, int]:
    return {p.parent.name: p.stat().st_mtime_ns for p in out.glob("*/result.json")}


def table(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "table.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def local_grid(tmp_path_factory):
    """The tiny grid run once by the CLI, locally: (spec path, its out folder, the CLI's stderr lines)."""
    folder = tmp_path_factory.mktemp("grid")
    spec = write_spec(folder, GRID.format(vf=FAST["svg/vectorfusion"], rtv=FAST["svg/raster-then-vectorize"]))
    rc, err, _ = cli("compare", str(spec))
    assert rc == 0, err
    return spec, folder / "out", err


# ------------------------------------------------------------------------------------------------- bad specs

HOSTILE = [
    ("seed = [0]\n", "seed", "did you mean 'seeds'"),
    ('out = "o"\n', "backends", "at least one method"),
    ('[[backends]]\nname = "svg/nope"\n', "backends[1].name", "no backend"),
    ('[[backends]]\nname = "svg/vectorfusion"\nsettings = { stpes = 5 }\n', "backends[1].settings", "'steps'"),
    ('[[backends]]\nname = "svg/vectorfusion"\nsettings = { steps = -1 }\n', "backends[1].settings", "steps"),
    ('[[backends]]\nname = "svg/vectorfusion"\nsettings = { prompt = "x" }\n', "backends[1].settings.prompt",
     "prompts"),
    ('[[backends]]\nname = "svg/vectorfusion"\nfoo = 1\n', "backends[1].foo", "not a key"),
    ('prompts = ["a"]\nseeds = ["a"]\n[[backends]]\nname = "svg/vectorfusion"\n', "seeds", "whole numbers"),
    ('prompts = ["a"]\nseeds = [-1]\n[[backends]]\nname = "svg/vectorfusion"\n', "seeds[1]", "seed"),
    ('prompts = ["a"]\nseeds = [1, 1]\n[[backends]]\nname = "svg/vectorfusion"\n', "seeds", "twice"),
    ('priors = ["edits"]\n[[backends]]\nname = "svg/vectorfusion"\n', "priors[1]", "text prior"),
    ('prompts = ["a fox", "  "]\n[[backends]]\nname = "svg/vectorfusion"\n', "prompts[2]", "empty"),
    ('prompts = ["a fox", "a fox"]\n[[backends]]\nname = "svg/vectorfusion"\n', "prompts[2]", "twice"),
    ('prompts = ["a\\u0007fox"]\n[[backends]]\nname = "svg/vectorfusion"\n', "prompts[1]", "control character"),
    ('prompts_file = "nowhere.txt"\n[[backends]]\nname = "svg/vectorfusion"\n', "prompts_file", "cannot read"),
    ('[[backends]]\nname = "svg/vectorfusion"\n', "prompts", "needs a prompt"),
    ('prompts = ["make it night"]\n[[backends]]\nname = "panorama/csd-edit"\n', "inputs", "needs an input"),
    ('prompts = ["x"]\ninputs = ["missing.png"]\n[[backends]]\nname = "panorama/csd-edit"\n', "inputs[1]",
     "no file or folder"),
    ('prompts = ["a"]\n[[backends]]\nname = "svg/vectorfusion"\n[[backends]]\nname = "svg/vectorfusion"\n',
     "backends[2].label", "two methods"),
    ('prompts = ["a"]\nworkers = 0\n[[backends]]\nname = "svg/vectorfusion"\n', "workers", "whole number"),
    ('prompts = ["a"\n', "grid.toml", "not valid TOML"),
    ("backends = 3\n", "backends", "at least one method"),
]


@pytest.mark.parametrize("body,key,words", HOSTILE, ids=[h[1] + ":" + h[2] for h in HOSTILE])
def test_a_bad_spec_is_one_line_naming_its_key_and_runs_nothing(tmp_path, body, key, words):
    text = body if body.startswith(("out", "prompts = [\"a\"\n")) else 'out = "o"\n' + body
    spec = write_spec(tmp_path, text)
    rc, err, _ = cli("compare", str(spec))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: grid.toml: ") and f" {key}" in err[0] and words in err[0], err[0]
    assert not (tmp_path / "o").exists()


def test_a_missing_spec_a_yaml_mistake_and_a_bad_worker_count_are_one_line_each(tmp_path):
    rc, err, _ = cli("compare", str(tmp_path / "none.toml"))
    assert rc == 2 and err == [f"error: There is no spec file {validate.quote_path(tmp_path / 'none.toml')}."]
    assert err[0].endswith("/none.toml'.")  # a long path keeps the file's own name
    spec = write_spec(tmp_path, "out: o\nbackend:\n  - name: svg/vectorfusion\n", "grid.yaml")
    rc, err, _ = cli("compare", str(spec))
    assert rc == 2 and len(err) == 1 and "grid.yaml: backend: " in err[0] and "did you mean 'backends'" in err[0]
    rc, err, _ = cli("compare", str(spec), "--workers", "0")
    assert rc == 2 and err == ["error: --workers must be at least 1, not 0."]


def test_ray_asked_for_without_ray_installed_is_one_line_saying_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does where Ray is not installed
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    spec = write_spec(tmp_path, GRID.format(vf=FAST["svg/vectorfusion"], rtv=FAST["svg/raster-then-vectorize"]))
    rc, err, _ = cli("compare", str(spec), "--ray")
    assert rc == 2 and len(err) == 1 and "pip install -r requirements-ray.txt" in err[0], err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------------------------------------- the grid

def test_the_grid_expands_backends_prompts_inputs_and_seeds_item_by_item(tmp_path):
    views = tmp_path / "views"
    views.mkdir()
    for i in range(3):
        shutil.copy(ROOT / "examples" / "views3d" / f"view_0{i}.png", views / f"v{i}.png")
    spec = parse_spec({
        "out": "out", "prompts": ["a fox", "a cat"], "seeds": [0, 1],
        "inputs": [str(ROOT / "examples" / "panorama" / "landscape.png")],
        "backends": [
            {"name": "svg/vectorfusion", "settings": {"steps": 7}},
            {"name": "panorama/csd-edit", "prompts": ["make it night"], "seeds": [3]},
            {"name": "views3d/csd-edit", "prompts": ["make it night"], "inputs": ["views"], "seeds": [3]},
        ]}, base=tmp_path, name="dict")
    assert spec.labels == ("svg/vectorfusion", "panorama/csd-edit", "views3d/csd-edit")
    assert len(spec.cells) == 2 * 2 + 1 + 1 and len({c.id for c in spec.cells}) == 6
    svg = [c for c in spec.cells if c.backend == "svg/vectorfusion"]
    assert [(c.prompt, c.seed) for c in svg] == [("a fox", 0), ("a fox", 1), ("a cat", 0), ("a cat", 1)]
    assert all(c.settings["steps"] == 7 and c.prior == "icons" and c.inputs == () for c in svg)
    assert svg[0].id.startswith("svg-vectorfusion_a-fox_icons_s0_") and svg[0].folder == tmp_path / "out" / svg[0].id
    pano = next(c for c in spec.cells if c.backend == "panorama/csd-edit")
    assert pano.prior == "edits" and pano.seed == 3 and pano.inputs == (str(ROOT / "examples/panorama/landscape.png"),)
    assert pano.item == "landscape.png · make it night" and len(pano.input_sha256[0]) == 64
    views_cell = next(c for c in spec.cells if c.backend == "views3d/csd-edit")
    assert len(views_cell.inputs) == 3  # a folder is one input of a backend that takes several images
    # the same grid read again has the same ids; one changed setting changes only its cells' ids
    again = parse_spec({"out": "out", "prompts": ["a fox", "a cat"], "seeds": [0, 1], "backends": [
        {"name": "svg/vectorfusion", "settings": {"steps": 8}}]}, base=tmp_path)
    assert not {c.id for c in again.cells} & {c.id for c in svg}


def test_a_result_matches_its_cell_with_auto_settings_as_the_run_filled_them(tmp_path):
    spec = parse_spec({"out": "out", "prompts": ["a fox"], "backends": [{"name": "svg/vectorfusion"}]},
                      base=tmp_path)
    cell = spec.cells[0]
    meta = {"backend": cell.backend, "prior": cell.prior, "input_sha256": [], "settings": dict(cell.settings),
            "auto": {"steps": 200}}
    meta["settings"]["steps"] = 200  # auto in the cell, filled in by the run
    cell.folder.mkdir(parents=True)
    (cell.folder / "result.json").write_text(json.dumps(meta))
    assert finished(cell) == meta
    for change in ({"prior": "tiny-sd"}, {"settings": {**meta["settings"], "paths": 9}}, {"input_sha256": ["0" * 64]}):
        (cell.folder / "result.json").write_text(json.dumps({**meta, **change}))
        assert finished(cell) is None, change


# ------------------------------------------------------------------------------------------------- runs

def test_a_tiny_grid_runs_every_cell_to_a_table_with_its_metrics(local_grid):
    spec_path, out, err = local_grid
    rows = table(out)
    assert len(rows) == 8 and all(r["status"] == "done" for r in rows)
    assert {(r["method"], r["prompt"], r["seed"]) for r in rows} == {
        (m, p, s) for m in ("svg/vectorfusion", "raster, traced") for p in ("a fox <i>", "a red apple") for s in (0, 1)}
    for r in rows:
        meta = json.loads((out / r["cell"] / "result.json").read_text())
        assert r["seconds"] == meta["timings"]["total_s"] and r["prior"] == "icons"
        for name, value in meta["metrics"].items():
            assert r[name] == pytest.approx(value)
        assert r["icon_shown"] == 1.0, r  # the icons judge: each SVG is nearest an icon of its prompt
    csv_lines = (out / "table.csv").read_text().splitlines()
    assert len(csv_lines) == 9 and csv_lines[0].startswith("cell,method,backend,prior,prompt,input,seed,status")
    summary = json.loads((out / "summary.json").read_text())["methods"]
    assert [s["method"] for s in summary] == ["svg/vectorfusion", "raster, traced"]
    for s in summary:
        assert s["done"] == 4 and s["metrics"]["clip_score"]["n"] == 4 and "std" in s["metrics"]["seconds"]
        assert s["figures"][0]["figure"].startswith("icons judge") and s["figures"][0]["value"] == 1.0
    assert err[0].startswith("grid.toml: 8 cells, 0 done already, 8 to run on 1 local worker")
    assert any(line.startswith("[1/8] svg/vectorfusion · a fox <i> · seed 0: step 5/5") for line in err)
    # the prior loads once for the whole grid: only the first cell's run counts loading
    assert sum(r["load_s"] > 0.5 for r in rows) <= 1


def test_a_rerun_does_no_work_and_a_deleted_cell_is_the_only_one_run_again(local_grid, tmp_path):
    spec_path, out, _ = local_grid
    copy = tmp_path / "out"
    shutil.copytree(out, copy)
    before = result_mtimes(copy)
    rc, err, _ = cli("compare", str(spec_path), "--out", str(copy))
    assert rc == 0 and err[0] == "grid.toml: all 8 cells are done already; nothing to run"
    assert err[-1] == "0 run, 8 found done, 0 failed" and result_mtimes(copy) == before
    gone = sorted(before)[3]
    shutil.rmtree(copy / gone)
    rc, err, _ = cli("compare", str(spec_path), "--out", str(copy))
    assert rc == 0 and err[-1] == "1 run, 7 found done, 0 failed", err
    after = result_mtimes(copy)
    assert set(after) == set(before) and [c for c in after if after[c] != before[c]] == [gone]
    assert all(r["status"] == "done" for r in table(copy))


def test_a_failing_cell_is_a_line_and_a_table_row_while_the_others_run(tmp_path):
    spec = write_spec(tmp_path, f'out = "out"\nprompts = ["an elephnat", "a fox"]\npriors = ["icons"]\n[[backends]]\n'
                                f'name = "svg/vectorfusion"\nsettings = {{ {FAST["svg/vectorfusion"]} }}\n')
    rc, err, out = cli("compare", str(spec), "--quiet")
    assert rc == 1 and err[-1].startswith("error: 1 of 2 cells failed"), err
    failed = [line for line in err if ": failed: " in line]
    assert len(failed) == 1 and failed[0].startswith("[1/2] svg/vectorfusion · an elephnat · seed 0: failed: No icon matches") \
        and "elephant" in failed[0]  # the icons prior's own sentence, with the names it knows
    rows = table(tmp_path / "out")
    assert [r["status"] for r in rows] == ["failed", "done"] and "elephant" in rows[0]["error"]
    assert not (tmp_path / "out" / rows[0]["cell"]).exists() and "index.html" in out
    rc, err, _ = cli("compare", str(spec), "--quiet")  # a rerun tries the failed cell again, and only it
    assert rc == 1 and err[0] == "grid.toml: 2 cells, 1 done already, 1 to run on 1 local worker (cpu)" + \
        err[0].split("(cpu)")[1]


@pytest.mark.slow
def test_ray_runs_the_grid_to_the_same_numbers_as_the_local_workers(local_grid, tmp_path):
    spec_path, out, _ = local_grid
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        events = list(run_grid(load_spec(spec_path, out=tmp_path / "ray"), executor="ray", workers=2))
    finally:
        ray.shutdown()
    assert events[0].message.startswith("grid.toml: 8 cells, 0 done already, 8 to run on 2 Ray actors (CPU)")
    assert events[-1].kind == "end" and events[-1].ran == 8 and events[-1].failed == 0
    local, remote = table(out), table(tmp_path / "ray")
    timed = {"seconds", "load_s"}
    assert [{k: v for k, v in r.items() if k not in timed} for r in remote] == \
        [{k: v for k, v in r.items() if k not in timed} for r in local]
    # each actor loads its prior once and keeps it for its next cells
    assert sum(r["load_s"] > 0.5 for r in remote) <= 2
    for r in local:
        assert (tmp_path / "ray" / r["cell"] / "result.svg").read_bytes() == (out / r["cell"] / "result.svg").read_bytes()
    # at the driver's priority: Ray starts its workers at nice 15, where a busy process beside them made a cell
    # 25x slower than the local worker's
    for r in remote:
        assert json.loads((tmp_path / "ray" / r["cell"] / "result.json").read_text())["threads"]["nice"] == os.nice(0)


@pytest.mark.slow
def test_two_local_worker_processes_run_the_grid_to_the_same_numbers_as_one(local_grid, tmp_path):
    spec_path, out, _ = local_grid
    events = list(run_grid(load_spec(spec_path, out=tmp_path / "two"), workers=2))
    assert events[0].message.startswith("grid.toml: 8 cells, 0 done already, 8 to run on 2 local workers (cpu)")
    assert events[-1].kind == "end" and events[-1].ran == 8 and events[-1].failed == 0
    assert {e.cell.id for e in events if e.kind == "progress"} == {r["cell"] for r in table(out)}
    timed = {"seconds", "load_s"}
    assert [{k: v for k, v in r.items() if k not in timed} for r in table(tmp_path / "two")] == \
        [{k: v for k, v in r.items() if k not in timed} for r in table(out)]


def test_a_grid_over_the_time_budget_is_refused_whole_before_any_cell_runs(local_grid, tmp_path, monkeypatch):
    spec_path, _, _ = local_grid
    spec = load_spec(spec_path, out=tmp_path / "o")
    seconds = [runner.expect(c.backend, c.settings, prior=c.prior).seconds for c in spec.cells]
    # each cell fits, as a single run would; the grid's eight together do not
    monkeypatch.setenv("DISTILL_TIME_BUDGET", f"{max(seconds) * 1.5:.3f}")
    rc, err, _ = cli("compare", str(spec_path), "--out", str(tmp_path / "o"))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith("error: compare: a grid of 8 runs would take about") and "DISTILL_TIME_BUDGET" in err[0]
    assert "lower the grid (prompts, inputs, seeds or methods) or steps" in err[0]
    assert not (tmp_path / "o").exists()
    monkeypatch.setenv("DISTILL_TIME_BUDGET", f"{max(seconds) * 0.5:.3f}")  # one cell alone is refused as a run is
    rc, err, _ = cli("compare", str(spec_path), "--out", str(tmp_path / "o"))
    assert rc == 2 and len(err) == 1 and err[0].startswith("error: svg/") and "DISTILL_TIME_BUDGET" in err[0]


def test_ctrl_c_keeps_the_finished_cells_and_a_rerun_runs_only_the_rest(tmp_path):
    prompts = ["a fox", "a red apple", "a rocket", "a bicycle", "a cactus", "an umbrella"]
    spec = write_spec(tmp_path, f'out = "out"\nprompts = {json.dumps(prompts)}\npriors = ["icons"]\n[[backends]]\n'
                                f'name = "svg/vectorfusion"\nsettings = {{ {FAST["svg/vectorfusion"]} }}\n')
    err_path = tmp_path / "stderr"
    with err_path.open("w") as err_file:
        # as from a terminal: SIGINT at its default (a suite started in the background, as CI may, runs with it
        # ignored, the child inherits that, and an ignored Ctrl-C stays ignored by design: the grid ran to its end)
        child = subprocess.Popen([sys.executable, "-m", "backends", "compare", str(spec), "--quiet"], cwd=tmp_path,
                                 stdout=subprocess.DEVNULL, stderr=err_file, env=os.environ.copy(),
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while "done in" not in err_path.read_text() and child.poll() is None:  # the first cell ended
            time.sleep(0.05)
        child.send_signal(signal.SIGINT)
        rc = child.wait(timeout=300)
    finally:
        if child.poll() is None:
            child.kill()
    lines = err_path.read_text().splitlines()
    assert rc == 130 and lines[-1].startswith("error: interrupted; ") and "the same command runs the rest" in lines[-1]
    out = tmp_path / "out"
    rows = table(out)
    done = [r["cell"] for r in rows if r["status"] == "done"]
    assert 1 <= len(done) < 6 and f"{len(done)} of 6 cells are done" in lines[-1]
    for folder in (p for p in out.iterdir() if p.is_dir()):  # a cell folder holds a whole result or is gone
        assert (folder / "result.json").is_file() and folder.name in done, sorted(p.name for p in folder.iterdir())
    before = result_mtimes(out)
    rc, err, _ = cli("compare", str(spec))
    assert rc == 0 and err[-1] == f"{6 - len(done)} run, {len(done)} found done, 0 failed"
    after = result_mtimes(out)
    assert all(after[c] == before[c] for c in done) and len(after) == 6


# ------------------------------------------------------------------------------------------------- the report

class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.ids = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[k] for k in ("href", "src") if k in attrs]
        if tag == "figure":
            self.ids.append(attrs.get("id"))


def test_the_gallery_shows_every_cell_by_relative_links_that_exist_with_its_prompts_escaped(local_grid):
    _, out, _ = local_grid
    page = (out / "index.html").read_text()
    parser = _Links()
    parser.feed(page)
    cells = [r["cell"] for r in table(out)]
    assert sorted(parser.ids) == sorted(cells)
    assert sum(link.endswith("result.json") for link in parser.links) == 8 and len(parser.links) > 16
    for link in parser.links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc and not link.startswith("/"), link
        assert (out / unquote(parts.path)).is_file(), link
    assert "a fox &lt;i&gt;" in page and "<i>" not in page


def test_the_report_rates_each_csd_edit_against_its_per_item_baseline_of_the_same_input_and_seed(tmp_path):
    spec = parse_spec({"out": "out", "prompts": ["make it night"], "seeds": [0, 1],
                       "inputs": [str(ROOT / "examples" / "panorama" / "landscape.png")],
                       "backends": [{"name": "panorama/csd-edit"}, {"name": "panorama/per-patch"}]}, base=tmp_path)
    report = Report(spec)
    values = {("panorama/csd-edit", 0): 0.02, ("panorama/csd-edit", 1): 0.03, ("panorama/per-patch", 0): 0.04,
              ("panorama/per-patch", 1): 0.05}
    for cell in spec.cells:
        method = "csd" if cell.backend.endswith("csd-edit") else "per-item"
        report.done(cell, {"method": method, "timings": {"total_s": 1.0, "load_s": 0.0}, "files": {},
                           "metrics": {"colour_map_variation": values[cell.backend, cell.seed],
                                       "edit_strength": 0.2}})
    rows = {(r["backend"], r["seed"]): r for r in report.rows()}
    assert rows["panorama/csd-edit", 0]["colour_map_variation_ratio"] == pytest.approx(0.5)
    assert rows["panorama/csd-edit", 1]["colour_map_variation_ratio"] == pytest.approx(0.6)
    assert rows["panorama/csd-edit", 1]["baseline_cell"] == rows["panorama/per-patch", 1]["cell"]
    assert "colour_map_variation_ratio" not in rows["panorama/per-patch", 0]
    figures = {s["method"]: s["figures"] for s in report.summary(report.rows())}
    assert figures["panorama/csd-edit"] == [{"figure": "colour_map_variation: CSD / per-item baseline",
                                             "value": pytest.approx(0.55), "std": pytest.approx(0.0707, abs=1e-4),
                                             "n": 2}]
    assert figures["panorama/per-patch"] == []


def test_with_real_clip_weights_the_report_gives_r_precision_over_the_prompt_set_per_seed(tmp_path, monkeypatch):
    import numpy as np
    from PIL import Image

    import backends.measures.clip

    spec = parse_spec({"out": "out", "prompts": ["a fox", "a cat"], "seeds": [0, 1], "priors": ["icons"],
                       "backends": [{"name": "svg/vectorfusion"}]}, base=tmp_path)
    report = Report(spec)
    for cell in spec.cells:
        shown = 0 if cell.seed == 1 else ["a fox", "a cat"].index(cell.prompt)  # seed 1 draws a fox for both
        cell.folder.mkdir(parents=True)
        Image.new("RGB", (32, 32), (shown * 200, 0, 0)).save(cell.folder / "result.png")
        report.done(cell, {"files": {"png": "result.png"}, "clip_random_weights": False, "metrics": {},
                           "timings": {"total_s": 1.0, "load_s": 0.0}})

    class Scorer:  # a CLIP that sees the drawn prompt in the red channel
        random_weights = False

        def similarity(self, images, texts):
            import torch

            drawn = [int(np.asarray(im)[0, 0, 0] > 100) for im in images]
            return torch.tensor([[1.0 if t == texts[d] else 0.0 for t in texts] for d in drawn])

    monkeypatch.setattr(backends.measures.clip, "default_clip", lambda device=None: Scorer())
    (summary,) = report.summary(report.rows())
    precision = next(f for f in summary["figures"] if f["figure"] == "CLIP R-precision")
    assert precision == {"figure": "CLIP R-precision", "value": 0.75, "std": pytest.approx(0.3536, abs=1e-4), "n": 2}
