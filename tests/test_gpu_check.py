"""`python -m benchmarks.gpu_check`: its CPU flow (--quick, tiny models) must keep running every backend, so the
GPU run it stands for cannot rot between the rare sessions that have a GPU."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import backends
from benchmarks import gpu_check

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One DISTILL_CACHE for the module: the tiny models are built once."""
    return tmp_path_factory.mktemp("distill_cache")


def test_quick_check_runs_every_registered_backend_without_error(cache, tmp_path):
    out = tmp_path / "rows.json"
    log = tmp_path / "check.log"
    env = dict(os.environ, DISTILL_CACHE=str(cache), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-m", "benchmarks.gpu_check", "--quick", "--no-record", "--device", "cpu",
                           "--json", str(out), "--log", str(log)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    report = json.loads(out.read_text())
    rows = {r["backend"]: r for r in report["rows"]}
    registered = {f"{t}/{n}" for t, names in backends.available().items() for n in names}
    assert len(report["rows"]) == len(rows) == len(registered) and set(rows) == registered
    errors = {k: r["error"] for k, r in rows.items() if r["error"]}
    assert not errors, errors
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for key, r in rows.items():
        assert r["first_progress_s"] is not None and 0 <= r["first_progress_s"] <= r["total_s"], key
        assert r["ms_per_step"] is not None and r["ms_per_step"] > 0, key
        assert r["peak_gib"] is None, key  # a CPU has no peak GPU memory to report
    table = log.read_text()
    for key in registered:
        assert f"| {key} |" in table


def test_a_failing_backend_is_one_row_with_its_error_and_a_nonzero_exit(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(cache))
    monkeypatch.setenv("DISTILL_SD_MODEL", "/somewhere/the/caller/chose")
    out = tmp_path / "rows.json"
    rc = gpu_check.main(["--quick", "--no-record", "--device", "cpu", "--backends", "image/no-such,svg/vectorize",
                         "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert rc == 1
    assert [r["backend"] for r in rows] == ["image/no-such", "svg/vectorize"]
    assert "no backend 'image/no-such'" in rows[0]["error"] and "\n" not in rows[0]["error"]
    assert rows[1]["error"] is None and rows[1]["ms_per_step"] > 0  # the check went on after the failure
    assert os.environ["DISTILL_SD_MODEL"] == "/somewhere/the/caller/chose"  # the caller's setting is back


def test_ms_per_step_skips_each_phases_first_report_and_step_zero_messages():
    reports = [(0, 0.0),  # a message before any step
               (5, 9.0), (10, 9.5), (15, 10.0),  # phase 1: 100 ms/step after its first (warm-up) report
               (20, 4.0), (25, 5.5),  # phase 2 restarts elapsed: 300 ms/step after its first report
               ]
    assert gpu_check.ms_per_step(reports) == pytest.approx(1000 * (1.0 + 1.5) / (10 + 5))
    assert gpu_check.ms_per_step([(0, 0.0), (3, 1.0)]) is None  # one report: nothing but warm-up


def test_settings_fit_each_backend_and_views_get_a_particle_each():
    for task, names in backends.available().items():
        for name in names:
            cls = backends.get(task, name)
            quick = gpu_check.settings_for(cls, quick=True)
            assert set(quick) <= {f.name for f in __import__("dataclasses").fields(cls.Settings)}
            assert ("prompt" in quick) == (cls.prior != "none")
    views = backends.get("views3d/csd-edit")
    assert gpu_check.settings_for(views, quick=True)["particles"] >= len(gpu_check.example_inputs(views))


def test_cuda_test_outcome_fails_on_a_failed_test_but_not_on_a_file_the_machine_cannot_import():
    only_uncollected = ("short test summary info\nERROR tests/test_app.py\n"
                        "1 passed, 1 deselected, 1 error in 2.24s")
    failed, summary = gpu_check.pytest_outcome(only_uncollected, 1)
    assert not failed and summary.endswith("not collected: tests/test_app.py")
    with_failure = ("FAILED tests/test_b.py::test_cuda_fail - assert 0\nERROR tests/test_a.py\n"
                    "1 failed, 1 passed, 1 deselected, 1 error in 2.24s")
    assert gpu_check.pytest_outcome(with_failure, 1)[0]
    setup_error = "ERROR tests/test_b.py::test_cuda_b - RuntimeError: boom\n1 passed, 1 error in 1.00s"
    assert gpu_check.pytest_outcome(setup_error, 1)[0]
    assert not gpu_check.pytest_outcome("no tests ran in 0.50s", 5)[0]  # no test is named *cuda*: nothing to fail
    assert gpu_check.pytest_outcome("ERROR: usage: ...", 4)[0]


def test_only_warnings_raised_from_the_projects_code_are_reported():
    import warnings

    root = gpu_check.ROOT
    caught = [warnings.WarningMessage("torch.compile failed (X: y); running the UNet eagerly", UserWarning,
                                      str(root / "backends" / "engine" / "priors" / "diffusers_prior.py"), 1),
              warnings.WarningMessage("torch.compile failed (X: y); running the UNet eagerly", UserWarning,
                                      str(root / "backends" / "engine" / "priors" / "diffusers_prior.py"), 1),
              warnings.WarningMessage("some library deprecation", FutureWarning, "/site-packages/lib.py", 1)]
    assert gpu_check.project_warnings(caught) == "torch.compile failed (X: y); running the UNet eagerly"
    assert gpu_check.project_warnings(caught[2:]) is None


def test_backends_past_the_time_budget_are_reported_as_not_run(cache, tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(cache))
    out = tmp_path / "rows.json"
    rc = gpu_check.main(["--quick", "--no-record", "--device", "cpu", "--backends", "svg/vectorize,image/sds",
                         "--budget-s", "0", "--json", str(out)])
    rows = json.loads(out.read_text())["rows"]
    assert rc == 1
    assert [r["backend"] for r in rows] == ["svg/vectorize", "image/sds"]
    assert all(r["error"].startswith("not run: the check's time budget") for r in rows)


def test_quick_clip_case_delivers_every_frame_at_the_clips_rate_and_size(cache, tmp_path, monkeypatch):
    """Issue 34's GPU case (a 10 s 1080p clip at 30 fps, every frame) on its CPU path: the tiny model, 9 frames."""
    monkeypatch.setenv("DISTILL_CACHE", str(cache))
    out = tmp_path / "rows.json"
    rc = gpu_check.main(["--quick", "--no-record", "--device", "cpu", "--backends", "none", "--no-speed",
                         "--json", str(out)])
    clip = json.loads(out.read_text())["clip"]
    assert rc == 0 and clip["error"] is None
    assert clip["clip"] == dict(frames=9, fps=30, size=[96, 64])
    assert clip["frames"] == 9 and clip["every_frame"]
    assert clip["fps"] == pytest.approx(30.0) and clip["size"] == [96, 64]
    assert clip["met"] is None  # a CPU's time says nothing of the GPU target
    assert clip["ms_per_step"] > 0 and clip["keyframes"] == 2


def test_the_full_clip_is_ten_seconds_of_1080p_at_30_fps_within_the_apps_own_limits(tmp_path):
    from backends.inputs import media

    assert gpu_check.CLIP_FULL == dict(frames=300, fps=30, size=(1920, 1080))
    # the same writer at a small size: every frame read, the rate exact (GIF delays are whole centiseconds)
    path = gpu_check.write_clip(tmp_path / "clip.gif", frames=30, fps=30, size=(64, 36))
    frames, fps = media.video(str(path))
    assert frames.shape == (30, 36, 64, 3) and fps == pytest.approx(30.0)
    assert all((frames[i] != frames[i + 1]).any() for i in range(29))  # none merged into the one before
    # the case runs at the app's limits: what a visitor's 10 s of 1080p at 30 fps meets
    assert not hasattr(gpu_check, "raised_clip_limits") and not hasattr(backends.get(gpu_check.CLIP_KEY), "clip_limits")
    assert media.MAX_VIDEO_FRAMES >= 300 and media.MAX_VIDEO_SECONDS >= 10
    assert media.MAX_VIDEO_DECODE_PIXELS >= 300 * 1920 * 1080  # each of the backend's two passes
