"""The running app through its API (gradio_client): every public endpoint, Stop, 20 jobs at once, out of GPU memory.

The app is started as a person starts it (`python app.py`, offline, CPU), on a free localhost port.
"""
from __future__ import annotations

import json
import re
import time
import warnings
from pathlib import Path

import pytest
import torch
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

import backends
from app_server import free_port
from demo.launch import AppConfig, build_app, tab_specs

ROOT = Path(__file__).resolve().parents[1]
SHAPES = str(ROOT / "examples" / "image" / "shapes.png")
# The least work that still runs each tab's method end to end on the tiny prior (the browser test runs the examples).
SMALLEST = {"steps": 2, "short_side": 64, "particles": 2, "every": 1}


@pytest.fixture(scope="module")
def client(server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Client(server.url, verbose=False)


def sds(steps=20, seed=0, **settings):
    settings = {"steps": steps, "seed": seed, **settings}
    return json.dumps({"backend": "image/sds", "prior": "analytic", "settings": settings})


def outputs(result) -> dict:
    """The `<tab>_run` outputs by name (status, captions, previews, media..., files, report, cli, details, notices)."""
    status, caption_a, preview_a, caption_b, preview_b, *rest = result
    files_a, files_b, report, cli, details, notices = rest[-6:]
    return dict(status=status, caption_a=caption_a, preview_a=preview_a, caption_b=caption_b, preview_b=preview_b,
                media=rest[:-6], files_a=files_a or [], files_b=files_b or [], report=report, cli=cli, details=details,
                notices=notices)


def test_the_page_is_served_offline(server):
    print(f"startup (offline, CPU): {server.startup_s:.1f} s")  # timed by benchmarks, not judged here
    assert server.proc.poll() is None


def test_every_tab_has_stable_endpoints(client):
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    expected = {"/environment"}
    for spec in tab_specs():
        if backends.available().get(spec.task):
            expected |= {f"/{spec.name}_run", f"/{spec.name}_stop", f"/{spec.name}_defaults"}
    assert expected <= names, expected - names
    assert not [n for n in names if n.endswith("_settings")]  # UI plumbing stays private


def test_environment_reports_cpu_and_tiny_priors(client):
    env = client.predict(api_name="/environment")
    from backends.priors import auto_prior

    offline = {kind: auto_prior(kind, "auto", "cpu") for kind in ("text", "instruct")}
    assert env["device"] == "cpu" and {k: v["prior"] for k, v in env["kinds"].items()} == offline
    assert env["kinds"]["text"]["weights"]["state"] in ("missing", "cached", "local")


def test_defaults_then_run_repeats_through_the_api(client):
    req = json.loads(client.predict("image/sds", api_name="/image_defaults"))
    assert req["backend"] == "image/sds" and req["settings"]["steps"] == 500
    req["prior"], req["settings"]["steps"] = "analytic", 25
    out = outputs(client.predict(json.dumps(req), handle_file(SHAPES), api_name="/image_run"))
    assert out["status"].startswith("**Done**"), out["status"]
    assert {Path(p).suffix for p in out["files_a"]} == {".png", ".json"}
    assert Path(out["preview_a"]).is_file() and out["details"]["method"]["metrics"]["psnr"] > 20


@pytest.mark.parametrize("spec", [s for s in tab_specs() if s.name != "image"], ids=lambda s: s.name)
def test_each_tab_runs_on_this_machines_offline_prior(client, spec):
    keys = backends.available()[spec.task]  # every built-in tab has its backends and example files
    example = next(e for e in spec.examples() if e.available() and e.backend in keys)
    key = f"{spec.task}/{example.backend}"
    defaults = json.loads(client.predict(key, api_name=f"/{spec.name}_defaults"))["settings"]
    settings = {**example.settings, **{k: v for k, v in SMALLEST.items() if k in defaults}, "seed": 0}
    if "prompt" in defaults:
        settings["prompt"] = example.prompt
    if spec.name == "views3d":
        settings["particles"] = len(example.inputs["images"])
    files = []
    for slot in spec.inputs:
        value = example.inputs.get(slot.kind)
        if isinstance(value, list):
            files.append([handle_file(p) for p in value])
        else:
            files.append(handle_file(value) if value else None)
    t0 = time.perf_counter()
    out = outputs(client.predict(json.dumps({"backend": key, "prior": "auto", "settings": settings}), *files,
                                 api_name=f"/{spec.name}_run"))
    print(f"{spec.name}: {key} {settings} in {time.perf_counter() - t0:.1f} s")
    assert out["status"].startswith("**Done**"), out["status"]
    used = out["details"]["method"]["prior"]
    cls = backends.get(key)
    if cls.prior != "none":
        from backends.priors import auto_prior

        assert used == auto_prior(cls.prior, "auto", "cpu") and f"`{used}`" in out["status"]
    assert out["files_a"] and all(Path(p).is_file() for p in out["files_a"])
    assert out["preview_a"] and Path(out["preview_a"]).is_file()
    for kind, value in zip(spec.media, out["media"]):
        assert value, f"{kind} result missing"


def test_stop_through_the_api_ends_the_run_and_the_next_one_runs(client):
    job = client.submit(json.dumps({"backend": "image/sds", "prior": "tiny-sd", "settings": {"steps": 20000}}),
                        handle_file(SHAPES), api_name="/image_run")
    deadline = time.monotonic() + 600  # a run that never starts, not a slow start on a busy machine
    while "step **" not in str((job.outputs() or [[""]])[-1][0]):
        assert time.monotonic() < deadline and not job.done(), "the long run never reported a step"
        time.sleep(0.1)
    t0 = time.monotonic()
    message = client.predict(api_name="/image_stop")
    print(f"stop through the API: {time.monotonic() - t0:.2f} s ({message})")  # reported, not judged
    assert message.startswith("**Stopped** at step"), message
    assert int(re.search(r"step (\d+)", message).group(1)) < 20000  # ended by Stop, not by finishing
    final = outputs(job.result(timeout=300))
    assert final["status"].startswith("**Stopped**")
    out = outputs(client.predict(sds(steps=10), handle_file(SHAPES), api_name="/image_run"))
    assert out["status"].startswith("**Done**")


def test_twenty_jobs_at_once_all_come_back_right(server):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clients = [Client(server.url, verbose=False) for _ in range(4)]  # several sessions, as several people
    t0 = time.perf_counter()
    jobs = [clients[i % 4].submit(sds(steps=20, seed=i), handle_file(SHAPES), api_name="/image_run")
            for i in range(20)]
    results, errors = {}, []
    for i, job in enumerate(jobs):
        try:
            results[i] = outputs(job.result(timeout=240))
        except Exception as err:  # counted, not raised: the test reports all of them
            errors.append(f"job {i}: {type(err).__name__}: {err}")
    print(f"20 concurrent jobs: {len(results)} results, {len(errors)} errors in {time.perf_counter() - t0:.1f} s")
    assert not errors, errors
    assert len(results) == 20
    folders = set()
    for i, out in results.items():
        assert out["status"].startswith("**Done**"), (i, out["status"])
        meta = out["details"]["method"]
        assert meta["seed"] == i and meta["settings"]["steps"] == 20  # each result is its own job's
        assert json.loads(Path(next(p for p in out["files_a"] if p.endswith(".json"))).read_text())["seed"] == i
        folders.add(Path(out["files_a"][0]).parent)
    assert len(folders) == 20


def test_out_of_gpu_memory_shows_in_the_ui_and_the_next_run_succeeds(tmp_path, monkeypatch):
    """The real server path in this process, with torch.cuda.OutOfMemoryError raised inside the backend."""
    import demo.environment as environment

    env = environment.detect("tiny", "cpu")
    demo = build_app(AppConfig(job_root=str(tmp_path)), env=env)
    cls = backends.get("image/sds")
    real_run, calls = cls.run, []

    def run_once_out_of_memory(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
        yield from real_run(self, *args, **kwargs)

    monkeypatch.setattr(cls, "run", run_once_out_of_memory)
    port = free_port()
    demo.launch(server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        out = outputs(client.predict(sds(steps=5), handle_file(SHAPES), api_name="/image_run"))
        assert out["status"].startswith("**Run failed:** out of GPU memory: "), out["status"]
        assert "Traceback" not in out["status"]
        out = outputs(client.predict(sds(steps=5), handle_file(SHAPES), api_name="/image_run"))
        assert out["status"].startswith("**Done**"), out["status"]
    finally:
        demo.close()


def test_an_upload_larger_than_any_validator_takes_is_refused_at_the_door(server):
    import httpx

    from demo.launch import UPLOAD_LIMIT_BYTES

    ok = httpx.post(server.url + "gradio_api/upload", files={"files": ("small.png", b"\0" * 1024)}, timeout=120)
    assert ok.status_code == 200, ok.text
    big = httpx.post(server.url + "gradio_api/upload", files={"files": ("big.mp4", b"\0" * (UPLOAD_LIMIT_BYTES + 1))},
                     timeout=300)
    assert big.status_code == 413, (big.status_code, big.text[:200])


def test_hostile_runs_through_the_api_are_one_sentence_each_and_the_app_keeps_serving(client, tmp_path):
    """The run cases of `tests.hostile` (all but the CLI-only ones: variables, output folders, the 8 GB cap), as a
    web client sends them: each is refused in one sentence holding the CLI's words, or done."""
    from tests.hostile import RUN_CASES, make_run_inputs

    files = make_run_inputs(tmp_path)
    specs = {spec.task: spec for spec in tab_specs()}
    wrong = []
    for case in [c for c in RUN_CASES if not c.cli_only]:
        spec = specs[case.backend.split("/")[0]]
        uploads = [handle_file(str(files[name])) for name in case.inputs]
        takes = backends.get(case.backend).spec.inputs  # the slot the page shows for this backend gets the files
        slots = [None if not takes.accepts(slot.kind) else uploads if slot.kind == "images" else
                 (uploads[0] if uploads else None) for slot in spec.inputs]
        # as text, as the CLI passes them: the API's JSON is strict about types ("schedule" is text, not 1)
        settings = {key: str(value) for key, value in case.settings.items()}
        request = {"backend": case.backend, "prior": case.prior or "auto", "settings": settings}
        t0 = time.perf_counter()
        try:
            status = outputs(client.predict(json.dumps(request), *slots, api_name=f"/{spec.name}_run"))["status"]
            refusal = status.removeprefix("**Input problem:** ") if status.startswith("**Input problem:** ") else None
        except AppError as err:  # refused at upload: Gradio's file-type gate, or a decoder failure (`guard_upload`)
            status = str(err)
            refusal = "" if "Invalid file type" in status else status.partition(": ")[2]
        print(f"{case.name}: {time.perf_counter() - t0:.1f} s: {status[:120]}")
        if case.expect:
            fine = refusal == "" or (refusal is not None and refusal.endswith(".") and "\n" not in refusal
                                     and (case.expect.lower() in refusal.lower() or "not offered here" in refusal))
        else:
            fine = status.startswith("**Done**")
        if not fine:
            wrong.append(f"{case.name}: {status[:300]}")
    assert not wrong, "\n".join(wrong)
    out = outputs(client.predict(sds(steps=10), handle_file(SHAPES), api_name="/image_run"))
    assert out["status"].startswith("**Done**")
