"""The command line: list, a successful run, bad runs (exit 2, one line), and third-party backends."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import backends

from cli_driver import CliDriver
from throwaway import install_package

ROOT = Path(__file__).resolve().parents[1]


def cli(*args, env=None, timeout=300):
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "backends", *args], capture_output=True, text=True, cwd=ROOT,
                          env=full_env, timeout=timeout)


@pytest.fixture(scope="module")
def forked():
    """The CLI calls whose outcome does not hang on how an interpreter starts, through one that imported it once."""
    driver = CliDriver()
    yield driver
    driver.close()


def make_target(path: Path) -> Path:
    rng = np.random.default_rng(0)
    img = np.zeros((64, 64, 3), np.uint8)
    img[8:40, 10:50] = (220, 60, 40)
    img[30:60, 30:60] = (30, 120, 210)
    img = np.clip(img.astype(int) + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)
    return path


def test_list_shows_the_registry_with_options_and_defaults(forked):
    out = forked("list")
    assert out.returncode == 0, out.stderr
    assert "image/sds" in out.stdout and "--set steps=500" in out.stdout
    data = json.loads(forked("list", "--json").stdout)
    steps = next(o for o in data["backends"]["image/sds"]["settings"] if o["name"] == "steps")
    assert steps["default"] == 500 and "analytic" in data["priors"]


def test_run_image_sds_with_analytic_prior_reconstructs_its_input(forked, tmp_path):
    target = make_target(tmp_path / "target.png")
    out = forked("run", "image/sds", "--prior", "analytic", "--input", str(target), "--set", "steps=300",
              "--out", str(tmp_path / "out"), "--quiet")
    assert out.returncode == 0, out.stderr
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["backend"] == "image/sds" and result["prior"] == "analytic" and result["settings"]["steps"] == 300
    assert result["metrics"]["psnr"] >= 30.0
    made = np.asarray(Image.open(tmp_path / "out" / "result.png")).astype(float)
    mse = ((made - np.asarray(Image.open(target)).astype(float)) ** 2).mean()
    assert 10 * np.log10(255.0**2 / max(mse, 1e-12)) >= 30.0


def _assert_one_line_error(out, code=2):
    assert out.returncode == code, (out.returncode, out.stdout, out.stderr)
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert "Traceback" not in out.stderr


def test_bad_runs_exit_2_with_one_clear_line(forked, tmp_path):
    target = make_target(tmp_path / "target.png")
    _assert_one_line_error(forked("run", "image/sds", "--prior", "analytic", "--input", str(target), "--set", "stepz=3", "--out", str(tmp_path)))
    _assert_one_line_error(forked("run", "image/sds", "--prior", "analytic", "--input", str(target), "--set", "steps=-4", "--out", str(tmp_path)))
    _assert_one_line_error(forked("run", "image/sds", "--prior", "analytic", "--input", str(tmp_path / "missing.png"), "--out", str(tmp_path)))
    _assert_one_line_error(forked("run", "image/nope", "--prior", "analytic", "--out", str(tmp_path)))
    _assert_one_line_error(forked("run", "image/sds", "--prior", "martian", "--out", str(tmp_path)))
    _assert_one_line_error(forked("run", "image/sds", "--prior", "analytic", "--out", str(tmp_path)))  # no target


def test_an_output_folder_that_cannot_take_the_result_is_refused_before_the_run(forked, tmp_path):
    target = make_target(tmp_path / "target.png")
    run = ("run", "image/sds", "--prior", "analytic", "--input", str(target), "--set", "steps=2")
    empty = forked(*run, "--out", "")  # once wrote into the current folder
    _assert_one_line_error(empty)
    assert "output folder must be named" in empty.stderr
    (tmp_path / "taken" / "result.json").mkdir(parents=True)  # once an IsADirectoryError after the whole run
    taken = forked(*run, "--out", str(tmp_path / "taken"))
    _assert_one_line_error(taken)
    assert "folder named result.json" in taken.stderr and "step" not in taken.stderr
    with pytest.raises(backends.InputError, match="must be named"):
        backends.run_to_end("image/sds", {"steps": 2}, prior="analytic", inputs=[str(target)], out_dir=None)
    (tmp_path / "a_file").write_text("x")
    for out, words in ((tmp_path / "a_file", "it is a file"), (tmp_path / "a_file" / "x", "a file is in the way")):
        refused = forked(*run, "--out", str(out))
        _assert_one_line_error(refused)
        assert words in refused.stderr


def test_a_real_prior_without_its_weights_is_refused_naming_them_and_the_gpu_and_leaves_no_folder(tmp_path):
    """The README's Stable Diffusion line on a CPU machine without the weights (HF_HUB_OFFLINE: nothing is
    downloaded): it once heard 'about 3.9 hours on this CPU' and kept an empty out/fox."""
    out = tmp_path / "out" / "fox"
    r = cli("run", "svg/vectorfusion", "--prior", "sd", "--set", "prompt=a red fox", "--out", str(out),
            env={"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")})
    _assert_one_line_error(r)
    assert "Stable Diffusion 1.5 weights" in r.stderr and "DISTILL_SD_MODEL" in r.stderr, r.stderr
    assert "needs a CUDA GPU" in r.stderr, r.stderr  # CI has none
    assert not (tmp_path / "out").exists()


def test_a_refused_run_into_a_new_folder_leaves_no_folder_and_a_finished_one_keeps_it(forked, tmp_path):
    target = make_target(tmp_path / "target.png")
    run = ("run", "image/sds", "--prior", "analytic", "--input", str(target))
    _assert_one_line_error(forked(*run, "--set", "steps=-3", "--out", str(tmp_path / "new" / "refused")))
    assert not (tmp_path / "new").exists()
    assert forked(*run, "--set", "steps=2", "--out", str(tmp_path / "new" / "done")).returncode == 0
    assert (tmp_path / "new" / "done" / "result.json").is_file()


@pytest.mark.parametrize("kwargs, words", [
    ({"inputs": 5}, "inputs must be a list of file paths"),  # was a TypeError
    ({"inputs": "target.png"}, "inputs must be a list of file paths"),  # a string is not a list of its letters
    ({"memory": "bogus"}, "memory must be one of auto, none, 24gb, 16gb"),  # was accepted
])
def test_api_arguments_get_the_same_one_sentence_errors(tmp_path, kwargs, words):
    target = make_target(tmp_path / "target.png")
    call = {"prior": "analytic", "inputs": [str(target)], "out_dir": tmp_path / "o", **kwargs}
    with pytest.raises(backends.InputError, match=words):
        backends.run_to_end("image/sds", {"steps": 2}, **call)


def test_a_third_party_backend_appears_through_the_entry_point_group(tmp_path):
    site = install_package(tmp_path / "site", "throwaway_backend", '''
        from dataclasses import dataclass
        from backends import register, Result
        from backends.core.settings import option

        @dataclass
        class Settings:
            steps: int = option(3, "steps")

        @register("image", "throwaway")
        class Throwaway:
            Settings = Settings
            description = "a plugin installed outside the repository"
            def run(self, settings, *, prior, inputs, out_dir):
                yield Result(metadata={"metrics": {"steps": settings.steps}})
    ''', "distill_studio.backends", "throwaway = throwaway_backend")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    listing = json.loads(cli("list", "--json", env=env).stdout)
    assert "image/throwaway" in listing["backends"]
    ran = cli("run", "image/throwaway", "--set", "steps=7", "--out", str(tmp_path / "o"), env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "o" / "result.json").read_text())["metrics"]["steps"] == 7


def test_an_empty_prompt_is_refused_before_any_weights_load(tmp_path):
    # the real `sd` prior is not here: the prompt error must come first, not a missing-model error
    out = cli("run", "svg/vectorfusion", "--prior", "sd", "--set", "prompt=  ", "--out", str(tmp_path),
              env={"HF_HUB_OFFLINE": "1"})
    _assert_one_line_error(out)
    assert "prompt" in out.stderr


def test_a_third_party_prior_appears_through_its_entry_point_group_and_runs(tmp_path):
    """A plugin package adds a prior (the catalog's entry point group), and a backend of its kind runs on it."""
    site = install_package(tmp_path / "site", "throwaway_prior", '''
        from backends.priors import Entry
        from backends.priors.analytic import AnalyticEditPrior

        class Flat(AnalyticEditPrior):
            """An editing prior from outside the repository (the analytic edit under another name)."""

        def load(source=None, *, device="cpu", memory="none"):
            return Flat(device=device, name="flat-edit")

        ENTRY = Entry("flat-edit", "instruct", "flat edit", "a plugin's editing prior", "throwaway_prior:load")
    ''', "distill_studio.priors", "flat = throwaway_prior:ENTRY")
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), str(site)])}
    listing = json.loads(cli("list", "--json", env=env).stdout)
    assert listing["priors"]["flat-edit"]["kind"] == "instruct"
    clip = next((ROOT / "examples" / "video").glob("*.mp4"))
    ran = cli("run", "video/per-frame", "--prior", "flat-edit", "--input", str(clip), "--set", "prompt=warmer",
              "--set", "steps=2", "--set", "short_side=32", "--out", str(tmp_path / "o"), env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads((tmp_path / "o" / "result.json").read_text())["prior"] == "flat-edit"


def test_the_cli_and_the_app_record_the_same_settings_and_memory_switches(tmp_path):
    """The app's "repeat with the CLI" line, run, gives the result.json settings and switches the app's run gave."""
    from demo import environment, runs
    from demo.launch import AppConfig, build_app

    app = build_app(AppConfig(job_root=str(tmp_path / "jobs")), env=environment.detect("tiny", "cpu"))
    tab = app.tabs_by_name["image"]
    request = json.dumps({"backend": "image/sds", "prior": "tiny-sd", "settings": {"steps": 4, "seed": 3}})
    final = None
    for update in runs.run_request(tab, request, [str(ROOT / "examples" / "image" / "shapes.png")], None,
                                   lambda *a, **k: None):
        final = update
    ui = final[tab.details]["method"]
    line = final[tab.cli].splitlines()[1].split()
    args = [a for a in line[3:] if a != "out/"]  # python -m backends run ... --out out/
    args[args.index("--input") + 1] = str(ROOT / "examples" / "image" / "shapes.png")
    ran = cli(*args, str(tmp_path / "cli"))
    assert ran.returncode == 0, ran.stderr
    cli_meta = json.loads((tmp_path / "cli" / "result.json").read_text())
    assert cli_meta["settings"] == ui["settings"] and cli_meta["switches"] == ui["switches"]
    assert cli_meta["auto"] == ui["auto"] and cli_meta["prior"] == ui["prior"] == "tiny-sd"


def test_run_text_to_svg_says_what_the_offline_prior_understood_and_flags_a_random_clip(tmp_path):
    proc = cli("run", "svg/vectorfusion", "--prior", "icons", "--set", "prompt=a robot holding a balloon",
               "--set", "steps=5", "--out", str(tmp_path), "--quiet", env={"DISTILL_CLIP_MODEL": "tiny"})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "clip_score=" in out and "(random-weight CLIP: not meaningful)" in out
    # both things, and how they are laid out (issue 37: compositions)
    assert "note: The icons prior read the prompt as robot; balloon" in out and "holding a balloon at its side" in out



def test_sigterm_ends_a_run_with_one_line_and_no_partial_files(tmp_path):
    import signal

    target = make_target(tmp_path / "target.png")
    out = tmp_path / "o"
    proc = subprocess.Popen([sys.executable, "-m", "backends", "run", "image/sds", "--prior", "analytic", "--input",
                             str(target), "--set", "steps=20000", "--set", "every=1", "--out", str(out)],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    first = proc.stderr.readline()  # the first progress line: the run is under way
    assert first.startswith("step"), first
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=300)
    lines = [ln for ln in (first + err).splitlines() if not ln.startswith("step")]
    assert proc.returncode == 143 and lines == ["error: terminated (SIGTERM); files being written were removed"], err
    assert not [p.name for p in out.rglob("*") if ".part" in p.name]


def test_a_run_into_a_used_folder_replaces_the_last_result_set_as_a_whole(tmp_path):
    from backends.core.runner import clear_previous_result

    target = make_target(tmp_path / "target.png")
    out = tmp_path / "o"
    first = backends.run_to_end("svg/vectorize", {"iters": 2, "paths": 2, "size": 32}, inputs=[str(target)],
                                out_dir=out)
    listed = json.loads((out / "result.json").read_text())["files"]
    assert set(listed.values()) | {"result.json"} == {p.name for p in out.iterdir()}
    (out / "mine.txt").write_text("not the run's")  # a file the run did not write stays
    clear_previous_result(out)  # what an interrupted next run has done before its first file
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"], first.files
    backends.run_to_end("image/sds", {"steps": 2}, prior="analytic", inputs=[str(target)], out_dir=out)
    names = {p.name for p in out.iterdir()}
    assert set(json.loads((out / "result.json").read_text())["files"].values()) | {"mine.txt", "result.json"} == names


def test_a_refusal_with_an_offline_prior_never_imports_diffusers(tmp_path):
    # the CLI silences diffusers' and transformers' loggers before a prior loads with them; importing them for that
    # once doubled the time of every refusal made after an offline prior loaded (2 s of imports: 6 s a refusal)
    tiny = tmp_path / "tiny.png"
    Image.new("RGB", (4, 4)).save(tiny)
    code = ("import sys; from backends.__main__ import main; "
            f"rc = main(['run', 'image/sds', '--prior', 'analytic', '--input', {str(tiny)!r}, '--out', "
            f"{str(tmp_path / 'out')!r}, '--quiet']); print(rc, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.split() == ["2", "False"], (out.stdout, out.stderr)
    assert "at least 8 pixels" in out.stderr


def test_examples_copies_the_inputs_the_readme_names_and_refuses_a_folder_it_cannot_fill(forked, tmp_path):
    done = forked("examples", str(tmp_path / "here"))
    assert done.returncode == 0, done.stderr
    names = sorted(Path(line).name for line in done.stdout.splitlines())
    assert names == sorted(["shapes.png", "landscape.png", "rolling_ball.mp4", "house.glb", "icon.svg"])
    assert (tmp_path / "here" / "house.glb").read_bytes() == (ROOT / "examples" / "views3d" / "house.glb").read_bytes()
    (tmp_path / "a_file").write_text("x")
    _assert_one_line_error(forked("examples", str(tmp_path / "a_file")))
