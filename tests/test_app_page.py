"""The page's parts without a browser: a plugin's new task gets its own tab that runs; the request JSON is bounded
in size and depth; every metric has a human name and caption (and random-CLIP scores say so); what a run changed
is said; inputs only one method reads are shown with that method alone; start-up prints one block."""
from __future__ import annotations

import json
import socket
import sys
import textwrap
import time
import types
import warnings
from pathlib import Path

import gradio as gr
import pytest

import backends
from backends.core import registry
from backends.core.errors import InputError
from demo import environment, metrics, requests, runs, widgets
from demo import tab as tabmod
from demo.launch import AppConfig, build_app, startup_block, tab_specs
from throwaway import install_package

PLUGIN = textwrap.dedent('''
    from dataclasses import dataclass

    import numpy as np

    from backends import Progress, Result, register
    from backends.core.settings import option

    @dataclass
    class Settings:
        prompt: str = option("", "what to make")
        seed: int = option(0, "seed", lo=0, hi=10)
        steps: int = option(3, "steps", lo=1, hi=10)

    @register("throwaway-task", "flat")
    class Flat:
        Settings = Settings
        description = "a plugin task with a tab of its own"
        inputs = "image?"

        def run(self, settings, *, prior, inputs, out_dir):
            for i in range(settings.steps):
                yield Progress(step=i + 1, total=settings.steps, loss=1.0 / (i + 1))
            picture = np.full((8, 8, 3), 200, np.uint8)
            yield Result(preview=picture, metadata={"metrics": {"steps_done": settings.steps},
                                                    "warnings": ["nothing was dropped, this is a test"]})
''')


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A throwaway package registering task "throwaway-task" through the entry point group, on sys.path."""
    site = install_package(tmp_path / "site", "throwaway_task", PLUGIN, registry.ENTRY_POINT_GROUP,
                           "throwaway = throwaway_task")
    monkeypatch.syspath_prepend(str(site))
    backends.reload_plugins()
    yield "throwaway-task"
    registry._registry.pop("throwaway-task/flat", None)
    sys.modules.pop("throwaway_task", None)


def test_a_plugins_new_task_gets_its_own_tab_that_runs(plugin, tmp_path):
    assert plugin in backends.available()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = build_app(AppConfig(job_root=str(tmp_path / "jobs")), env=environment.detect("tiny", "cpu"))
    tab = demo.tabs_by_name["throwaway-task"]
    assert tab.spec.title == "Throwaway task" and tab.keys == ["throwaway-task/flat"]
    assert [s.kind for s in tab.spec.inputs] == ["image"]  # from the backend's inputs ("image?")
    api = {fn.api_name for fn in demo.fns.values() if fn.api_name}
    assert "throwaway-task_run" in api
    req = json.loads(tab.form.defaults())
    req["settings"].update(prompt="anything", steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        updates = list(runs.run_request(tab, json.dumps(req), [None], types.SimpleNamespace(session_hash="p"),
                                        lambda *a, **k: None))
    final = updates[-1]
    assert final[tab.status].startswith("**Done**"), final[tab.status]
    assert final[tab.details]["method"]["metrics"]["steps_done"] == 4
    assert "this is a test" in final[tab.notices]
    names = [p.rsplit("/", 1)[-1] for p in final[tab.files_a]]
    assert names == ["flat-throwaway-task-seed0.json"]


def test_generic_spec_gives_a_slot_per_input_kind():
    svg = tabmod.generic_spec("svg")  # the known svg task, as if no tab module knew it
    assert [s.kind for s in svg.inputs] == ["image"] and svg.title == "Svg"
    with pytest.raises(ValueError, match="unknown input kind"):
        tabmod.input_slot("hologram", "x")


@pytest.mark.parametrize("text, words", [
    (json.dumps({"backend": "image/sds", "settings": {"prompt": "x" * (requests.MAX_REQUEST_BYTES + 1)}}),
     "larger than 64 KiB"),
    ('{"backend": "image/sds", "settings": ' + "[" * 10_000 + "]" * 10_000 + "}", "nests deeper than 8"),
    ("[" * 60_000, "nests deeper"),  # under the byte bound: the depth check must catch it
])
def test_an_oversized_or_deep_request_is_refused_in_one_sentence(text, words):
    with pytest.raises(InputError, match=words):
        requests.parse_request(text)


def test_json_depth_skips_brackets_inside_strings():
    assert requests.json_depth('{"a": "[[[[{{{{", "b": [1, {"c": 2}]}') == 3
    assert requests.json_depth('{"a": "\\"[["}') == 1
    assert requests.parse_request(json.dumps({"backend": "image/sds", "settings": {"prompt": "[" * 50}}))


def test_every_metric_row_has_a_name_and_a_caption():
    meta = {"backend": "svg/vectorfusion", "prior": "icons", "seed": 3, "timings": {"total_s": 1.5},
            "metrics": {"clip_score": -0.3, "shapes": 16.0, "final_t": 20.0, "residual_variation_rel": 0.1,
                        "mystery_figure": 2.0}, "clip_random_weights": True}
    table = widgets.report_markdown([("Method", meta)])
    rows = [line for line in table.splitlines()[2:]]
    assert all(line.rstrip().endswith("|") and line.split("|")[-2].strip() for line in rows[3:]), table
    assert "CLIP score" not in table and "-0.3" not in table  # random CLIP weights: a row that says nothing
    assert "relative edit inconsistency" in table and "lower is better" in table
    assert "noise level t, last step" in table
    assert "no description registered" in table  # an unknown figure still gets a caption, an honest one


def test_a_random_clip_score_beside_a_real_one_is_marked_not_meaningful():
    table = widgets.report_markdown([("Method", {"metrics": {"clip_score": 0.31}, "clip_random_weights": False}),
                                     ("Baseline", {"metrics": {"clip_score": -0.3}, "clip_random_weights": True})])
    assert "0.31" in table and "not meaningful (random CLIP)" in table and "-0.3" not in table


def test_a_real_clip_score_is_shown_as_a_number():
    table = widgets.report_markdown([("Method", {"metrics": {"clip_score": 0.31}, "clip_random_weights": False})])
    assert "0.31" in table and "not meaningful" not in table


def test_what_a_run_changed_is_said_on_the_page():
    meta = {"warnings": ["a linearGradient was drawn as one solid colour"], "input_size": [1024, 256],
            "work_size": [256, 64], "frames_note": "4 of the clip's 36 frames, spread evenly"}
    text = widgets.notices_markdown([("Method", meta)])
    assert "linearGradient" in text and "1024x256 to 256x64" in text and "4 of the clip's 36 frames" in text
    assert widgets.notices_markdown([("Method", {"warnings": []})]) == ""
    every_frame = {"warnings": [], "sampled": False, "frames_note": "every frame of the clip, at its frame rate"}
    assert widgets.notices_markdown([("Method", every_frame)]) == ""
    both = widgets.notices_markdown([("Method", {"warnings": ["a"]}), ("Baseline", {"warnings": ["b"]})])
    assert "**Method:** a" in both and "**Baseline:** b" in both
    # the video backend's warning already says which frames were kept: said once, not twice
    note = "16 of the clip's 20 frames, spread evenly; the frame rate is scaled so the duration is kept"
    once = widgets.notices_markdown([("Method", {"warnings": [f"Kept {note}."], "frames_note": note, "sampled": True})])
    assert once.count("16 of the clip's 20 frames") == 1, once


def test_metric_glossary_says_which_way_is_better():
    assert metrics.caption(metrics.describe("psnr")).endswith("(higher is better)")
    assert metrics.describe("final_residual_variation").name == "edit inconsistency, last step"


def test_an_input_only_one_method_reads_shows_only_with_it():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = build_app(AppConfig(), env=environment.detect("tiny", "cpu"))
    svg = demo.tabs_by_name["svg"]
    raster = svg.spec.inputs[0]
    assert svg.slot_users(raster) == {"svg/vectorize"}
    assert not svg.input_widgets[0].visible  # the default method, VectorFusion, takes no image
    assert svg.slot_visible(raster, "svg/vectorize") and not svg.slot_visible(raster, "svg/vectorfusion")
    panorama = demo.tabs_by_name["panorama"]
    assert panorama.input_widgets[0].visible


def test_start_up_prints_one_block_with_url_mode_and_priors():
    env = environment.detect("auto", "cpu")
    block = startup_block("http://127.0.0.1:7860/", None, env, 2.0)
    lines = block.splitlines()
    assert lines[0] == "Distill Studio is serving at http://127.0.0.1:7860/"
    assert "try-out" in lines[1] and "missing a CUDA GPU" in lines[1]
    assert "icons" in lines[2] and "edits" in lines[2]


def test_download_names_begin_with_what_tells_them_apart():
    taken: set[str] = set()
    first = runs.download_stem("svg", "vectorfusion", 7, taken)
    taken.add(first)
    assert first == "vectorfusion-svg-seed7"
    assert runs.download_stem("svg", "vectorfusion", 7, taken) == "baseline-vectorfusion-svg-seed7"
    assert runs.download_stem("svg", "raster-then-vectorize", 7, taken) == "raster-then-vectorize-svg-seed7"
    # the files box shows a name's beginning: any two of a tab's methods differ within their first 12 letters
    for spec in tab_specs():
        keys = list(backends.available().get(spec.task, []))
        for a in keys:
            for b in keys:
                taken = {runs.download_stem(spec.task, a, 0, set())}
                stem_b = runs.download_stem(spec.task, b, 0, taken)
                assert stem_b[:12] != next(iter(taken))[:12], (a, b)


def test_an_upload_gradio_cannot_decode_says_which_input_and_what_it_takes(tmp_path):
    from gradio.data_classes import FileData

    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"not an image at all")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = build_app(AppConfig(), env=environment.detect("tiny", "cpu"))
    widget = demo.tabs_by_name["panorama"].input_widgets[0]
    with pytest.raises(gr.Error, match=r"Panorama: The file 'holiday.png' is not an image in an allowed format; "
                                       r"use PNG, JPEG"):
        widget.preprocess(FileData(path=str(bad), orig_name="holiday.png"))
    # a decompression bomb: Pillow refuses it by name; the validator says what is wrong with it
    from tests.hostile import png_with_declared_size

    bomb = tmp_path / "huge.png"
    bomb.write_bytes(png_with_declared_size(100_000, 100_000))
    with pytest.raises(gr.Error, match=r"Panorama: The image 'huge.png' has 10,000,000,000 pixels; at most"):
        widget.preprocess(FileData(path=str(bomb), orig_name="huge.png"))


def test_two_runs_of_one_backend_are_told_apart_by_their_settings():
    a = {"prompt": "x", "seed": 1, "steps": 30, "lr": 0.05}
    b = {"prompt": "x", "seed": 1, "steps": 30, "lr": 0.01}
    assert requests.setting_differences([a, b]) == ["lr 0.05", "lr 0.01"]
    assert requests.setting_differences([a]) == [""]
    # a field left to the prior's suggestion reads "auto", never "None"
    c = {**b, "sample_steps": None}
    assert requests.setting_differences([a, c]) == ["lr 0.05", "lr 0.01, sample steps auto"]


def test_the_request_plumbing_imports_without_gradio():
    import subprocess

    code = "import sys, demo.requests, demo.metrics; print('gradio' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-500:]


def test_start_up_waits_for_a_page_that_answers_late_as_on_a_busy_machine():
    """Gradio's own check gives the page 3 s and then ends the app; a page slower than that is still served."""
    import http.server
    import threading

    from demo.launch import served

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(3.5)  # longer than Gradio's 3 s
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        assert served(f"http://127.0.0.1:{server.server_port}/", wait_s=60)
    finally:
        server.shutdown()
    with socket.socket() as s:  # a port nobody serves: said, not waited for forever
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert not served(f"http://127.0.0.1:{port}/", wait_s=1)


@pytest.mark.parametrize("scale, offset", [(0.1, (5.0, -3.0, 0.0)), (200.0, (0.0, 0.0, 0.0))])
def test_the_3d_viewer_shows_any_mesh_centred_at_one_size_with_its_texture(tmp_path, scale, offset):
    import numpy as np
    import trimesh
    from test_first_contact import own_mesh

    src = own_mesh(tmp_path / "box.glb")
    scene = trimesh.load(src, force="scene")
    scene.apply_scale(scale)
    scene.apply_translation(offset)
    src.write_bytes(scene.export(file_type="glb"))
    copy = widgets.framed(str(src), tmp_path / "job")
    assert Path(copy).parent == tmp_path / "job"  # the upload's own folder is left as it was
    shown = trimesh.load(copy, force="scene")
    low, high = shown.bounds
    assert np.allclose((low + high) / 2, 0, atol=1e-5) and np.isclose(float(np.max(high - low)), widgets.VIEW_SIZE)
    (mesh,) = shown.geometry.values()
    assert mesh.visual.material.baseColorTexture is not None  # the texture came along
    assert np.isclose(float(np.max(np.ptp(trimesh.load(src, force="scene").bounds, 0))), 1.0 * scale)  # untouched


def test_each_compare_example_is_a_grid_the_tab_runs_on_the_offline_prior():
    from backends.priors import load_prior
    from demo import compare_tab

    icons = load_prior("icons", "cpu")
    for prompts, methods, seeds in compare_tab.EXAMPLES:
        parsed = compare_tab.parse_prompts(prompts)
        assert 1 <= len(parsed) <= compare_tab.MAX_PROMPTS and compare_tab.parse_seeds(seeds)
        assert {m.split("/", 1)[1] for m in methods} <= set(backends.available()["svg"]), methods
        for prompt in parsed:
            icons.read(prompt)  # an InputError (a prompt the prior cannot draw) fails the test
