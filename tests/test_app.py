"""The app in-process, without a server: the Blocks build from the registry, the run handler streams previews and
offers files, Stop ends a run, errors (out of GPU memory included) read as one sentence, and the machine
detection decides the priors and the banner without the network."""
from __future__ import annotations

import json
import re
import shlex
import sys
import threading
import time
import types
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import numpy as np
from PIL import Image
import pytest
import torch

import backends
from backends.core import registry
from backends.core.settings import option
from backends.core import settings as bsettings
from backends.core.errors import InputError
from backends.core.types import Inputs
from demo import environment, jobs, requests, runs, widgets, wiring
from demo import tab as tabmod
from demo.launch import AppConfig, build_app, parse_args

ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / "examples" / "image" / "shapes.png")


def cpu_env(prior_mode: str = "tiny") -> environment.Environment:
    """This machine as the app sees it offline without a GPU (tiny priors by default: the diffusers code path)."""
    return environment.detect(prior_mode, "cpu")


def real_env(**weights) -> environment.Environment:
    """A GPU machine with the real models' weights (facts as `describe` gives them, the priors switched to real)."""
    env = environment.detect("tiny", "cpu")
    env.device = "cuda"
    for kind, k in env.facts["kinds"].items():
        k.update(prior=k["real"], uses_real=True, missing=[])
        k["weights"] = {"source": weights.get(kind, k["weights"]["source"]), "state": "download", "detail": "",
                        "usable": True, "downloads": True}
        env.facts["priors"][k["real"]]["offered"] = True
    return env


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    root = tmp_path_factory.mktemp("jobs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        demo = build_app(AppConfig(job_root=str(root)), env=cpu_env())
    demo.job_root = root
    return demo


def session(name="s1"):
    return types.SimpleNamespace(session_hash=name)


def no_progress(*args, **kwargs):
    pass


def run(tab, request: dict | str, inputs=(), who="s1") -> tuple[list[dict], dict]:
    """Drive the run handler like Gradio does; returns every update and the final one by attribute name."""
    text = request if isinstance(request, str) else json.dumps(request)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        updates = list(runs.run_request(tab, text, list(inputs), session(who), no_progress))
    names = {id(getattr(tab, n)): n for n in ("status", "caption_a", "preview_a", "caption_b", "preview_b",
                                               "files_a", "files_b", "notices", "report", "cli", "details")}
    final = {names.get(id(c), str(c)): v for c, v in updates[-1].items()}
    return updates, final


def sds(steps=40, **settings):
    return {"backend": "image/sds", "prior": "analytic", "settings": {"steps": steps, "seed": 1, **settings}}


# ------------------------------------------------------------------------------------------------------- building


def test_every_tab_is_built_from_the_registry_with_stable_endpoints(app):
    found = backends.available()
    assert set(app.tabs_by_name) == {"svg", "panorama", "video", "views3d", "image"}
    api = {fn.api_name for fn in app.fns.values() if fn.api_name and fn.api_visibility != "private"}
    for name, tab in app.tabs_by_name.items():
        assert tab.keys == [f"{tab.spec.task}/{n}" for n in found.get(tab.spec.task, [])]
        if tab.keys:
            assert {f"{name}_run", f"{name}_stop", f"{name}_defaults"} <= api
            assert [v for _, v in tab.backend.choices] == tab.keys
    assert "environment" in api


def test_a_newly_registered_backend_appears_without_ui_code():
    @dataclass
    class FakeSettings:
        prompt: str = option("", "instruction")
        seed: int = option(0, "seed", lo=0, hi=10)
        strength: float = option(0.5, "how much", lo=0.0, hi=1.0)

    @registry.register("panorama", "fake-edit")
    class FakeEdit:
        Settings = FakeSettings
        description = "a plugin that registered itself"
        prior = "none"
        inputs = "image"

    try:
        with gr.Blocks():
            tab = tabmod.Tab(__import__("demo.panorama_tab", fromlist=["SPEC"]).SPEC, tabmod.RunConfig(env=cpu_env()))
            tab.build()
        assert "panorama/fake-edit" in [v for _, v in tab.backend.choices]
        assert ("panorama/fake-edit", "strength") in [(k, n) for k, n, _ in tab.panel_fields]
    finally:
        registry._registry.pop("panorama/fake-edit", None)


def test_a_task_without_backends_renders_a_note():
    spec = tabmod.TabSpec(name="none", task="no-such-task", title="Nothing", intro="nothing", inputs=[])
    with gr.Blocks() as demo:
        tab = tabmod.Tab(spec, tabmod.RunConfig(env=cpu_env()))
        tab.build()
    assert tab.keys == [] and not tab.events
    assert any("No backend for this task" in str(getattr(b, "value", "")) for b in demo.blocks.values())


def test_settings_widgets_follow_the_field_descriptions():
    d = {"name": "lr", "type": "float", "default": 0.05, "help": "rate", "lo": 1e-6, "hi": 10.0, "choices": None}
    with gr.Blocks():
        assert isinstance(widgets.field_widget(d, "x1"), gr.Number)
        assert isinstance(widgets.field_widget({**d, "lo": 0.0, "hi": 1.0}, "x2"), gr.Slider)
        assert isinstance(widgets.field_widget({**d, "type": "str", "choices": ("a", "b"), "default": "a"}, "x3"),
                          gr.Dropdown)
        assert isinstance(widgets.field_widget({**d, "type": "bool", "default": True}, "x4"), gr.Checkbox)


# ------------------------------------------------------------------------------------------------------- running


def test_run_streams_previews_then_offers_files_metrics_and_the_cli_line(app):
    tab = app.tabs_by_name["image"]
    updates, final = run(tab, sds(steps=40), [SHAPES])
    previews = [u[tab.preview_a] for u in updates if isinstance(u.get(tab.preview_a), str)]
    assert len(previews) >= 3  # live previews while optimizing, then the result
    # each preview is a PNG in the job folder, named by its content: the same picture is never written twice
    # (a rewrite while the browser fetched it gave a truncated, broken image)
    images = [np.asarray(Image.open(p)) for p in previews]
    assert all(im.ndim == 3 for im in images) and len(set(previews)) > 1
    assert all(Path(p).parent.name == "previews" for p in previews)
    steps = [u[tab.status] for u in updates if "step **" in str(u.get(tab.status, ""))]
    assert steps and "step **40** of 40" in steps[-1] and "loss" not in steps[-1]  # plain words, no loss figures
    assert final["status"].startswith("**Done**")
    files = [Path(p) for p in final["files_a"]]
    assert {p.suffix for p in files} == {".png", ".json"} and all(p.is_file() for p in files)
    assert all(p.is_relative_to(app.job_root) for p in files)
    assert "psnr" in final["report"] and final["details"]["method"]["seed"] == 1
    assert final["cli"].splitlines()[1].startswith("python -m backends run image/sds --prior analytic")


def test_cli_line_repeats_the_run(app, tmp_path):
    from backends.__main__ import main

    tab = app.tabs_by_name["image"]
    _, final = run(tab, sds(steps=30, lr=0.1), [SHAPES])
    argv = shlex.split(final["cli"].splitlines()[1])[3:]
    argv[argv.index("--input") + 1] = SHAPES
    argv[argv.index("--out") + 1] = str(tmp_path)
    assert main(argv) == 0
    again = json.loads((tmp_path / "result.json").read_text())
    assert again["settings"] == final["details"]["method"]["settings"]
    assert again["metrics"]["psnr"] == pytest.approx(final["details"]["method"]["metrics"]["psnr"], rel=1e-5)


def test_compare_runs_method_and_baseline_on_the_same_input_and_seed(app):
    tab = app.tabs_by_name["image"]
    req = sds(steps=30)
    req["compare"] = {"backend": "image/sds", "prior": "analytic",
                      "settings": {**requests.baseline_settings(tab.classes["image/sds"], tab.classes["image/sds"],
                                                              req["settings"]), "lr": 0.01}}
    _, final = run(tab, req, [SHAPES])
    a, b = final["details"]["method"], final["details"]["baseline"]
    assert a["seed"] == b["seed"] == 1 and a["inputs"] == b["inputs"]
    assert a["settings"]["steps"] == b["settings"]["steps"] == 30 and b["settings"]["lr"] == 0.01
    assert a["metrics"]["psnr"] > b["metrics"]["psnr"]  # the smaller learning rate has not converged yet
    names = {Path(p).name for p in final["files_a"] + final["files_b"]}
    # downloads are named <method>-<task>-seed<N>; the baseline's, of the same backend and seed, say so first
    assert names == {"sds-image-seed1.png", "sds-image-seed1.json", "baseline-sds-image-seed1.png",
                     "baseline-sds-image-seed1.json"}
    assert "| | Method | Baseline |" in final["report"]


def test_collect_turns_widgets_into_the_request_and_refuses_bad_settings(app):
    tab = app.tabs_by_name["image"]
    fields = [(k, n) for k, n, _ in tab.panel_fields]
    values = {n: requests.ui_default(next(d for d in widgets.ui_fields(tab.classes[k]) if d["name"] == n))
              for k, n in fields}
    values["steps"] = 12
    widget_values = [values[n] for _, n in fields]
    text, status = tab.form.collect("image/sds", "analytic", 5, True, "image/sds", '{"lr": 0.2}', "a prompt",
                                    *widget_values)
    assert status.startswith("Waiting")
    req = json.loads(text)
    assert req["settings"]["steps"] == 12 and req["settings"]["seed"] == 5 and req["settings"]["prompt"] == "a prompt"
    assert req["compare"]["settings"]["steps"] == 12 and req["compare"]["settings"]["lr"] == 0.2
    values["steps"] = 0
    with pytest.raises(gr.Error, match="steps"):
        tab.form.collect("image/sds", "analytic", 5, False, None, "{}", "", *[values[n] for _, n in fields])
    with pytest.raises(gr.Error, match="JSON"):
        tab.form.collect("image/sds", "analytic", 5, True, "image/sds", "{lr:", "", *widget_values)


def test_results_of_tiny_priors_are_labelled(app):
    tab = app.tabs_by_name["image"]
    _, final = run(tab, {"backend": "image/sds", "prior": "tiny-sd", "settings": {"steps": 2, "size": 16}}, [SHAPES])
    assert "tiny prior" in final["status"] and "tiny prior" in final["caption_a"]
    assert final["details"]["method"]["prior_is_tiny"] is True and "tiny-sd (tiny)" in final["report"]


def test_auto_prior_means_tiny_without_gpu_or_weights(app):
    tab = app.tabs_by_name["image"]
    cls = tab.classes["image/sds"]
    assert requests.resolve_prior(cls, "auto", cpu_env()) == "tiny-sd"
    assert requests.resolve_prior(cls, "auto", real_env()) == "sd"
    assert requests.resolve_prior(cls, "analytic", real_env()) == "analytic"


def test_each_prior_menu_offers_only_priors_some_method_of_the_tab_can_run(app):
    for name, tab in app.tabs_by_name.items():
        offered = [value for _, value in tab.prior_choices()][1:]
        for prior in offered:
            assert any(tab.prior_fits(key, prior) for key in tab.classes), (name, prior)
    # the analytic prior is centred on target images: only the image tab's method gives it one
    assert "analytic" in [v for _, v in app.tabs_by_name["image"].prior_choices()]
    assert "analytic" not in [v for _, v in app.tabs_by_name["svg"].prior_choices()]


@pytest.mark.parametrize("asked", ["sd:/etc", "sd:/tmp/x", "sd:someone/some-repo", "../sd", 7, ["sd"]])
def test_a_web_request_can_only_pick_priors_the_server_offers_by_name(app, asked):
    cls = app.tabs_by_name["image"].classes["image/sds"]
    with pytest.raises(InputError, match="not offered here"):
        requests.resolve_prior(cls, asked, cpu_env())


# ------------------------------------------------------------------------------------------------------- stop, errors


def test_stop_ends_a_running_optimization_before_it_finishes_and_the_next_run_works(app):
    tab = app.tabs_by_name["image"]
    out: dict = {}

    def long_run():
        out["updates"], out["final"] = run(tab, {"backend": "image/sds", "prior": "tiny-sd",
                                                 "settings": {"steps": 20000, "size": 32}}, [SHAPES], who="stopper")
        out["ended"] = time.monotonic()

    worker = threading.Thread(target=long_run)
    worker.start()
    deadline = time.monotonic() + 600  # a run that never starts, not a slow start on a busy machine
    while not any(j.step > 0 for j in jobs.JOBS.active("stopper", "image")):
        assert time.monotonic() < deadline and worker.is_alive(), "the run never reported a step"
        time.sleep(0.05)
    t0 = time.monotonic()
    message = tab.stopper.stop(session("stopper"))
    worker.join(30)
    assert not worker.is_alive()
    print(f"stop latency {out['ended'] - t0:.2f} s")  # reported, not judged: a busy machine stretches it
    assert out["final"]["status"].startswith("**Stopped** at step") and message.startswith("**Stopped**")
    assert 0 < jobs.JOBS.last("stopper", "image").step < 20000  # ended by Stop, long before its last step
    # what it made so far is offered: the last preview, as a file marked partial
    (partial,) = out["final"]["files_a"]
    assert "_partial_step" in Path(partial).name and np.asarray(Image.open(partial)).ndim == 3
    assert "partial" in out["final"]["status"]
    assert jobs.JOBS.last("stopper", "image").outcome == "stopped" and not jobs.JOBS.active("stopper", "image")
    _, final = run(tab, sds(steps=10), [SHAPES], who="stopper")
    assert final["status"].startswith("**Done**")


def test_stop_with_nothing_running_says_so(app):
    assert app.tabs_by_name["image"].stopper.stop(session("idle")).startswith("Nothing was running here")


def test_out_of_gpu_memory_is_reported_in_one_sentence_and_the_next_run_succeeds(app, monkeypatch):
    tab = app.tabs_by_name["image"]
    cls = tab.classes["image/sds"]
    real_run = cls.run

    def oom_run(self, *args, **kwargs):
        yield from []
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(cls, "run", oom_run)
    _, final = run(tab, sds(steps=10), [SHAPES])
    assert final["status"].startswith("**Run failed:** out of GPU memory: ")
    assert "Traceback" not in final["status"] and "Tried to allocate" not in final["status"]
    monkeypatch.setattr(cls, "run", real_run)
    _, final = run(tab, sds(steps=10), [SHAPES])
    assert final["status"].startswith("**Done**")


@pytest.mark.parametrize("request_text, inputs, expected", [
    (json.dumps(sds()), [], "Input problem:** the analytic prior needs a target image"),
    ("{not json", [SHAPES], "Input problem:** the settings JSON is not valid JSON"),
    ('{"backend": "image/sds", "settings": {"steps": ' + "9" * 5000 + "}}", [SHAPES],
     "Input problem:** the settings JSON has a whole number of 5000 digits"),
    (json.dumps({"settings": {}}), [SHAPES], 'Input problem:** the settings JSON must be an object with a "backend"'),
    (json.dumps({**sds(), "settings": {"steps": -3}}), [SHAPES], "Input problem:** The setting 'steps' must be a whole number from 1 to 20000"),
    (json.dumps({"backend": "video/per-frame", "settings": {}}), [SHAPES], "is not a SDS check backend"),
    (json.dumps({"backend": "no/such"}), [SHAPES], "Input problem:** There is no backend 'no/such'"),
])
def test_bad_requests_are_one_sentence_not_a_traceback(app, request_text, inputs, expected):
    _, final = run(app.tabs_by_name["image"], request_text, inputs)
    assert expected in final["status"] and "Traceback" not in final["status"]
    assert not re.search(r"(?<![\w-])--[a-z]", final["status"]), final["status"]  # a web visitor has no flags


def test_an_unexpected_error_is_one_line_and_logged(app, monkeypatch, caplog):
    cls = app.tabs_by_name["image"].classes["image/sds"]

    def broken(self, *args, **kwargs):
        raise KeyError("oops")
        yield

    monkeypatch.setattr(cls, "run", broken)
    _, final = run(app.tabs_by_name["image"], sds(), [SHAPES])
    assert final["status"].startswith("**Run failed:** internal error (KeyError")
    assert "Traceback" not in final["status"]
    assert any("run failed in tab image" in r.message for r in caplog.records)


def test_missing_input_asks_for_an_upload():
    @dataclass
    class S:
        seed: int = option(0, "seed", lo=0, hi=10)

    cls = types.SimpleNamespace(spec=types.SimpleNamespace(inputs=Inputs.parse("video")), key="video/x", Settings=S)
    with pytest.raises(backends.InputError, match="needs a video: upload one"):
        requests.inputs_for(["video"], cls, [None])
    assert requests.inputs_for(["video", "image"], cls, [["/x/a.mp4", "/x/b.mp4"], "/x/c.png"]) == ["/x/a.mp4"]
    cls.spec.inputs = Inputs.parse("images")
    assert requests.inputs_for(["images"], cls, [[{"path": "/a.png"}, ("/b.png", "caption")]]) == ["/a.png", "/b.png"]
    assert requests.inputs_for(["image"], cls, ["/a.png"]) == ["/a.png"]  # one image serves a views backend


# ------------------------------------------------------------------------------------------------------- files


def test_job_folders_live_under_the_job_root_and_expire(app):
    from backends.core.files import cleanup_expired

    tab = app.tabs_by_name["image"]
    _, final = run(tab, sds(steps=5), [SHAPES])
    folder = Path(final["files_a"][0]).parent
    assert folder.parent == app.job_root and folder.is_dir()
    assert cleanup_expired(3600, root=app.job_root, now=time.time() + 7200) >= 1
    assert not folder.exists()


def test_view_zips_unpack_under_generated_names(tmp_path):
    zpath = tmp_path / "views.zip"
    png = (ROOT / "examples" / "image" / "shapes.png").read_bytes()
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("../../escape.png", png)
        zf.writestr("view_01.png", png)
        zf.writestr("notes.txt", "x")
    out = widgets.unpack_views(str(zpath), tmp_path / "g")
    assert [Path(p).name for p in out] == ["view-000.png", "view-001.png"]
    assert all(Path(p).parent == tmp_path / "g" for p in out) and not (tmp_path.parent / "escape.png").exists()


def test_svg_results_are_drawn_by_the_browser_from_the_file(tmp_path):
    svg = tmp_path / "r.svg"
    svg.write_text('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"><rect width="4" height="4"/></svg>')
    html = widgets.svg_html(str(svg))
    assert html.count("<img") == 1 and "data:image/svg+xml;base64," in html and "<svg" not in html


# ------------------------------------------------------------------------------------------------------- machine


def test_offline_without_gpu_banner_says_what_is_missing_and_how(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("DISTILL_SD_MODEL", "/nowhere/sd15")
    monkeypatch.delenv("DISTILL_IP2P_MODEL", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    env = environment.detect("tiny")
    assert env.device == "cpu" and env.prior_for("text") == "tiny-sd" and env.prior_for("instruct") == "tiny-ip2p"
    kinds = env.facts["kinds"]
    assert kinds["text"]["weights"]["state"] == "missing" and kinds["instruct"]["weights"]["state"] in ("missing", "cached")
    text = environment.banner(environment.detect("auto"))
    for words in ("Try-out mode", "a CUDA GPU", "/nowhere/sd15", "DISTILL_SD_MODEL",
                  "DISTILL_IP2P_MODEL", "hf download"):
        assert words in text


def test_detection_never_waits_for_the_network(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.delenv("DISTILL_SD_MODEL", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1")  # unroutable: any request would hang
    import socket

    tried = []

    def no_network(sock, address, *args):  # any connection attempt is recorded and refused at once
        tried.append(address)
        raise OSError("the network is not for this test")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", no_network)
    env = environment.detect()
    assert tried == []  # judged by what it did, not by a clock
    assert env.facts["kinds"]["text"]["weights"]["state"] in ("cached", "download")


def test_weights_in_a_local_folder_are_used_when_there_is_a_gpu(monkeypatch, tmp_path):
    (tmp_path / "unet").mkdir()
    (tmp_path / "model_index.json").write_text("{}")
    (tmp_path / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"")
    monkeypatch.setenv("DISTILL_IP2P_MODEL", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    from backends.priors import machine

    monkeypatch.setattr(machine, "gpu_memory_gb", lambda device: 24.0)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: "Fake GPU")
    env = environment.detect(device="cuda")
    assert env.facts["kinds"]["instruct"]["weights"]["state"] == "local" and env.prior_for("instruct") == "ip2p"
    assert env.memory == "24gb" and "24gb" in environment.banner(env) and "attention slicing" in environment.banner(env)
    assert environment.detect(prior_mode="tiny", device="cuda").prior_for("instruct") == "tiny-ip2p"


def test_memory_profiles_switch_the_prior_savers():
    from backends.priors.diffusers_prior import DiffusersPrior

    calls = []
    prior = types.SimpleNamespace(switches=[], **{f"enable_{m}": (lambda m=m: calls.append(m)) for m in (
        "attention_slicing", "vae_slicing", "vae_tiling")})
    DiffusersPrior.apply_memory_profile(prior, "none")
    assert calls == []
    DiffusersPrior.apply_memory_profile(prior, "24gb")
    assert calls == ["attention_slicing"]
    calls.clear()
    DiffusersPrior.apply_memory_profile(prior, "16gb")
    assert calls == ["attention_slicing", "vae_slicing", "vae_tiling"] == prior.switches


def test_zero_gpu_decorator_only_on_zero_gpu(monkeypatch):
    def handler():
        yield 1

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert environment.gpu_call(handler) is handler
    seen = {}
    fake = types.ModuleType("spaces")
    fake.GPU = lambda duration: (lambda fn: seen.setdefault("wrapped", (fn, duration))[0])
    monkeypatch.setitem(sys.modules, "spaces", fake)
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert environment.gpu_call(handler) is handler and seen["wrapped"] == (handler, 120)


def test_flags_and_environment_variables_configure_the_launch(monkeypatch):
    monkeypatch.setenv("DISTILL_PORT", "7999")
    monkeypatch.setenv("DISTILL_PRIOR", "tiny")
    monkeypatch.setenv("DISTILL_MEMORY", "16gb")
    cfg = parse_args([])
    assert (cfg.port, cfg.prior, cfg.memory, cfg.share) == (7999, "tiny", "16gb", False)
    cfg = parse_args(["--port", "8001", "--share", "--prior", "real", "--device", "cpu", "--queue-size", "5"])
    assert (cfg.port, cfg.share, cfg.prior, cfg.device, cfg.queue_size) == (8001, True, "real", "cpu", 5)
    with pytest.raises(SystemExit):
        parse_args(["--prior", "huge"])


def test_a_real_prior_loads_once_with_its_own_status_line_and_memory_profile(monkeypatch):
    loads, clips = [], []
    monkeypatch.setattr(runs, "preload", lambda name, device=None, memory="auto": loads.append((name, device, memory)))
    monkeypatch.setattr(runs, "default_clip", clips.append)
    monkeypatch.setattr(runs, "_warmed", set())
    env = real_env(text="org/sd")
    env.facts["kinds"]["instruct"].update(prior="tiny-ip2p", uses_real=False)
    assert "downloading Stable Diffusion 1.5 weights `org/sd`" in runs.prior_loading_message("sd", env)
    assert runs.prior_loading_message("tiny-sd", env) is None
    runs.warm_in_background(env).join(60)
    runs.warm_prior("sd", env)
    # the real prior once, with the memory mode every run of this app asks for; the other kind's prior and the
    # CLIP scorer every run reports with are warmed too
    assert loads == [("sd", "cuda", "auto"), ("tiny-ip2p", "cuda", "auto")]
    assert clips == ["cuda"]
    assert runs.prior_loading_message("sd", env) is None


def test_an_example_sets_its_backend_panel_and_the_compare_switch_in_its_one_update(app):
    """Everything a run reads comes with the click's one update: a chained second update left Run, pressed on a
    busy server before it landed, running the defaults without the baseline."""
    tab = app.tabs_by_name["image"]
    example = tab.examples.rows[1]
    comps = tab.examples.table.inputs
    values = dict(zip(map(id, comps), tab.examples.values(example)))
    assert len(values) == len(comps)
    for widget in [tab.backend, tab.compare, tab.compare_backend, tab.compare_json, *tab.input_widgets]:
        assert id(widget) in values
    by_name = {name: values[id(w)] for key, name, w in tab.panel_fields if key == "image/sds"}
    every = next(d["default"] for d in bsettings.describe(tab.classes["image/sds"].Settings) if d["name"] == "every")
    assert by_name["steps"] == example.settings["steps"] and by_name["every"] == every
    assert values[id(tab.compare)] is True and json.loads(values[id(tab.compare_json)]) == example.compare_settings
    assert values[id(tab.compare_backend)] == tab.baseline_for("image/sds")
    # the Run request built from exactly these values asks for the baseline with the example's settings
    current = {id(w): w.value for _, _, w in tab.panel_fields} | {id(tab.prior): "auto", id(tab.seed): 0}
    current |= values
    req = json.loads(tab.form.collect(*[current[id(w)] for w in wiring.collect_inputs(tab)])[0])
    assert req["settings"]["steps"] == example.settings["steps"]
    assert req["compare"]["backend"] == tab.baseline_for("image/sds")
    assert {k: req["compare"]["settings"][k] for k in example.compare_settings} == example.compare_settings


def test_asking_for_cuda_without_a_gpu_is_one_clear_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    with pytest.raises(ValueError, match="no usable CUDA GPU"):
        environment.detect(device="cuda")


def test_a_preview_sent_again_is_the_same_file_and_is_not_rewritten(app, tmp_path):
    from demo.runs import _Outputs

    out = _Outputs(app.tabs_by_name["image"])
    out.folder = tmp_path
    arr = np.zeros((8, 8, 3), np.uint8)
    first = out._image(arr)
    stamp = Path(first).stat().st_mtime_ns
    assert out._image(arr.copy()) == first and Path(first).stat().st_mtime_ns == stamp
    assert out._image(arr + 1) != first


def test_the_status_line_says_how_long_is_left_at_the_runs_own_pace():
    from demo.runs import eta_text

    assert eta_text(50, 200, 10.0) == " · about 30 s left"      # 0.2 s a step, 150 steps to go
    assert eta_text(10, 1000, 20.0) == " · about 33 min left"
    assert eta_text(0, 200, 1.0) == "" and eta_text(200, 200, 40.0) == ""  # no pace yet / nothing left


# ------------------------------------------------------------------------------------------- what the prior knows


@pytest.fixture(scope="module")
def offline_app(tmp_path_factory):
    """The app as a visitor without a GPU meets it: the offline priors (icons, edits)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_app(AppConfig(job_root=str(tmp_path_factory.mktemp("jobs"))), env=cpu_env("auto"))


def test_a_refused_prompt_offers_its_closest_known_prompts_as_choices_that_fill_the_prompt(offline_app):
    app = offline_app
    tab = app.tabs_by_name["svg"]
    req = {"backend": "svg/vectorfusion", "prior": "auto", "settings": {"prompt": "an elephnat", "steps": 2}}
    _, final = run(tab, req)
    assert final["status"].startswith("**Input problem:** No icon matches the prompt 'an elephnat'"), final["status"]
    offer = tab.offer(session("s1"))  # what the page shows under the prompt once the run has ended
    assert offer["visible"] and offer["choices"][0] == "elephant", offer
    assert tab.suggest not in tab.outputs  # not an output of svg_run: API clients read those by position
    # a click on one puts it in the prompt and folds the choices away; with it the run is accepted
    fill = next(d for d in app.fns.values() if d.inputs == [tab.suggest] and d.outputs == [tab.prompt, tab.suggest])
    prompt, hidden = fill.fn("elephant")
    assert prompt == "elephant" and hidden["visible"] is False
    _, final = run(tab, {**req, "settings": {"prompt": prompt, "steps": 2}})
    assert final["status"].startswith("**Done**"), final["status"]
    assert tab.offer(session("s1"))["visible"] is False  # a run that is not refused offers nothing


def test_an_unknown_instruction_offers_the_closest_known_edit():
    from backends.priors.edits import match_index

    with pytest.raises(InputError) as caught:
        match_index("make it wintr")
    assert caught.value.suggestions == ("make it winter",)
    with pytest.raises(InputError) as caught:
        match_index("make it look like a dream")  # nothing close: every edit it knows is offered
    assert caught.value.suggestions == backends.vocabulary("edits")
    for foreign in ("把它变成冬天", "اجعلها شتاء", "❄️🌙"):  # no English word: refused, not "no edit"
        with pytest.raises(InputError, match="reads English words"):
            match_index(foreign)
    assert match_index("  ") is None  # the empty instruction is still no edit
    assert match_index("ｍａｋｅ ｉｔ ｗｉｎｔｅｒ") == match_index("make it winter")  # fullwidth letters read as ASCII


@pytest.mark.parametrize("name", ["icons", "edits"])
def test_every_prompt_a_closed_vocabulary_lists_is_accepted_by_its_prior(name):
    from backends.priors import load_prior
    from backends.priors.edits import match_index

    words = backends.vocabulary(name)
    assert len(words) == len(set(words)) > 4
    prior = load_prior(name, "cpu")
    for w in words:
        prior.read(w) if name == "icons" else match_index(w)  # raises InputError for a prompt it does not know


def test_each_prompt_tab_lists_what_its_offline_prior_knows_and_a_pick_fills_the_prompt(app, offline_app):
    assert all(t.vocabulary is None for t in app.tabs_by_name.values() if t.keys)  # tiny priors take any text
    app, shown = offline_app, {}
    for name, tab in app.tabs_by_name.items():
        if getattr(tab, "vocabulary", None) is not None:
            shown[name] = len(tab.vocabulary.choices)
            pick = next(d for d in app.fns.values() if d.inputs == [tab.vocabulary])
            first = tab.vocabulary.choices[0][1]
            assert pick.fn(first) == first
    assert shown["svg"] == len(backends.vocabulary("icons"))
    assert shown["panorama"] == shown["video"] == shown["views3d"] == len(backends.vocabulary("edits"))
    assert backends.vocabulary("sd") is None  # a real model takes any text: no list


HOUSE = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"


def test_a_mesh_method_shows_the_mesh_upload_its_viewer_and_pairs_with_the_per_view_mesh_baseline(offline_app):
    tab = offline_app.tabs_by_name["views3d"]
    kinds = [slot.kind for slot in tab.spec.inputs]
    assert kinds == ["images", "mesh"] and tab.baseline_key == "views3d/per-view"
    views = tab.input_widgets[kinds.index("images")]
    mesh_slot, mesh_upload = tab.spec.inputs[1], tab.input_widgets[1]
    assert views.visible and not mesh_upload.visible and tab.input_viewers[1].elem_classes == [widgets.NO_MODEL]

    changed = tab.method_changed("views3d/csd-edit-mesh", "views3d/per-view", None, str(HOUSE))
    n = len(tab.keys)
    panels, note, shown, viewer, baseline = changed[:n], changed[n], changed[n + 1:n + 3], changed[n + 3], changed[-1]
    assert [p["visible"] for p in panels] == [k == "views3d/csd-edit-mesh" for k in tab.keys] and "texture" in note
    assert [s["visible"] for s in shown] == [False, True] and viewer["elem_classes"] == []  # its viewer shows again
    assert baseline["value"] == "views3d/per-view-mesh"  # the baseline takes the same input
    back = tab.method_changed("views3d/csd-edit", "views3d/per-view-mesh", None, str(HOUSE))
    assert back[-1]["value"] == "views3d/per-view" and back[n + 3]["elem_classes"] == [widgets.NO_MODEL]
    assert tab.method_changed("views3d/csd-edit-mesh", "views3d/per-view-mesh", None, None)[-1]["value"] \
        == "views3d/per-view-mesh"  # a baseline that fits is kept

    shown = tab.show_upload(mesh_slot, str(HOUSE))
    assert shown["elem_classes"] == [] and Path(shown["value"]).name == "house-view.glb"  # framed, in a job folder
    assert Path(tab.config.job_root) in Path(shown["value"]).parents and HOUSE.is_file()
    assert tab.show_upload(mesh_slot, None)["elem_classes"] == [widgets.NO_MODEL]


def test_a_zipped_obj_mesh_upload_is_shown_as_the_glb_the_run_reads_and_a_bad_one_is_not(offline_app, tmp_path):
    import trimesh

    tab = offline_app.tabs_by_name["views3d"]
    slot = tab.spec.inputs[1]
    box = trimesh.creation.box()
    box.visual = trimesh.visual.TextureVisuals(uv=np.random.default_rng(0).random((len(box.vertices), 2)),
                                               image=Image.new("RGB", (16, 16), (200, 40, 40)))
    folder = tmp_path / "obj"
    folder.mkdir()
    box.export(folder / "box.obj")
    archive = tmp_path / "box.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for f in folder.iterdir():
            zf.write(f, f.name)
    shown = tab.show_upload(slot, str(archive))
    assert shown["elem_classes"] == [] and shown["value"].endswith(".glb")
    assert Path(shown["value"]).is_relative_to(tab.config.job_root)  # a folder the app serves files from
    read = trimesh.load(shown["value"], force="mesh")
    assert len(read.faces) == len(box.faces)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not a zip")
    assert tab.show_upload(slot, str(bad))["elem_classes"] == [widgets.NO_MODEL]


def test_a_mesh_run_in_the_app_shows_the_edited_mesh_in_the_3d_viewer(offline_app):
    tab = offline_app.tabs_by_name["views3d"]
    req = {"backend": "views3d/csd-edit-mesh", "prior": "auto",
           "settings": {"prompt": "make it night", "steps": 4, "every": 2, "sync_every": 2, "short_side": 32,
                        "particles": 4, "fit_steps": 10, "turntable_frames": 4, "seed": 0}}
    updates, final = run(tab, req, [None, str(HOUSE)])
    assert final["status"].startswith("**Done**"), final["status"]
    kinds = dict(zip(tab.spec.media, tab.media_a))
    viewer = updates[-1][kinds["model3d"]]
    assert viewer["elem_classes"] == [] and viewer["value"].endswith(".glb") and Path(viewer["value"]).is_file()
    assert updates[-1][kinds["video"]].endswith(".mp4") and len(updates[-1][kinds["gallery"]]) == 4
    assert updates[0][kinds["model3d"]]["elem_classes"] == [widgets.NO_MODEL]  # a new run hides the last mesh


AUTO_SAID = re.compile(r"\(auto: (.+?)(?: with the (\S+) prior)? here\)")


def test_each_tabs_help_lines_say_what_auto_becomes_in_a_default_run(offline_app):
    """The "auto" figure under every field of a tab's method is what a default run of it records in result.json
    (its settings with "auto" filled in), on the prior it names."""
    for name, tab in offline_app.tabs_by_name.items():
        cls = tab.classes[tab.method_key]
        fields = widgets.ui_fields(cls)
        lines = tab.field_infos(tab.method_key, tab.spec.default_prior)  # as the page first draws them
        said = {}
        for d in fields:
            if widgets.is_auto(d):
                m = AUTO_SAID.search(lines[d["name"]])
                assert m or "chosen by the method" in lines[d["name"]], (name, d["name"], lines[d["name"]])
                if m:
                    said[d["name"]] = m.groups()
        assert "steps" in said or not any(d["name"] == "steps" and widgets.is_auto(d) for d in fields), lines
        example = next(e for e in tab.spec.examples() if e.available() and tab.method_key.endswith("/" + e.backend))
        inputs = [example.inputs.get(slot.kind) for slot in tab.spec.inputs]  # one value per upload widget
        settings = {"prompt": example.prompt} if tab.prompt is not None else {}
        _, final = run(tab, {"backend": tab.method_key, "prior": tab.spec.default_prior, "settings": settings}, inputs)
        assert final["status"].startswith("**Done**"), (name, final["status"])
        meta = final["details"]["method"]
        for field, (value, prior) in said.items():
            ran = meta["settings"][field]
            assert value == (f"{ran:g}" if isinstance(ran, float) else str(ran)), (name, field, value, ran)
            assert prior == meta["prior"], (name, field, prior, meta["prior"])


def test_picking_another_prior_redraws_what_auto_becomes_under_each_field(offline_app):
    tab = offline_app.tabs_by_name["svg"]
    steps = next(i for i, (key, name, _) in enumerate(tab.panel_fields) if key == tab.method_key and name == "steps")
    assert "with the icons prior here" in tab.panel_fields[steps][2].info
    updates = tab.field_info_updates("tiny-sd")
    assert len(updates) == len(tab.panel_fields)
    expected = backends.resolved_settings(tab.method_key, prior="tiny-sd", device="cpu")["steps"]
    assert f"(auto: {expected} with the tiny-sd prior here)" in updates[steps]["info"]
