"""Faults mid-run through the API: a cancel, a divergence and an out-of-memory in a row leave the process as
it was (memory back to its idle level, no stray files) and the next run works."""
import errno
import gc
import io
import os
import resource
import signal
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import psutil
import pytest
import torch
from PIL import Image, ImageOps

import backends
from backends.priors import AnalyticPrior
from backends.core.errors import RunError
from backends.core.runner import OOM_MESSAGE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def target(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "target.png"
    Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path)
    return str(path)


def rss_mb() -> float:
    gc.collect()
    return psutil.Process().memory_info().rss / 2**20


def run(target, out, steps=30, **settings):
    return backends.run_to_end("image/sds", {"steps": steps, "every": 5, **settings}, prior="analytic",
                               inputs=[target], out_dir=out)


def test_cancel_divergence_and_oom_in_a_row_leave_memory_at_idle_and_the_next_run_works(target, tmp_path, monkeypatch):
    for i in range(3):  # warm up allocators and caches so "idle" is the steady state
        run(target, tmp_path / f"warm{i}")
    idle = rss_mb()

    # 1. cancel: stop iterating after two reports
    gen = backends.run("image/sds", {"steps": 20000, "every": 5}, prior="analytic", inputs=[target],
                       out_dir=tmp_path / "cancel")
    for n, _ in enumerate(gen):
        if n == 1:
            break
    gen.close()
    assert not (tmp_path / "cancel" / "result.png").exists()  # a cancelled run writes no result

    # 2. divergence: the prior starts answering NaN; the engine's guard stops with a clear message
    real = AnalyticPrior.predict_eps
    monkeypatch.setattr(AnalyticPrior, "predict_eps", lambda self, z, t, c=None: torch.full_like(z, float("nan")))
    with pytest.raises(RunError, match="diverged"):
        run(target, tmp_path / "nan", steps=200)

    # 3. out of GPU memory, simulated inside the step
    def oom(self, z, t, c=None):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(AnalyticPrior, "predict_eps", oom)
    with pytest.raises(RunError) as err:
        run(target, tmp_path / "oom")
    assert str(err.value) == OOM_MESSAGE

    monkeypatch.setattr(AnalyticPrior, "predict_eps", real)
    after = rss_mb()
    assert after <= idle * 1.05, f"memory {after:.0f} MB after the faults vs {idle:.0f} MB idle"
    result = run(target, tmp_path / "next", steps=200)
    assert result.metadata["metrics"]["psnr"] >= 30.0


@pytest.mark.parametrize("error", [MemoryError(), RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. "
                                   "DefaultCPUAllocator: can't allocate memory: you tried to allocate 9000000000 bytes")])
def test_running_out_of_cpu_memory_is_one_sentence_naming_what_to_lower(tmp_path, monkeypatch, error):
    # was a 29-40 line traceback
    cls = backends.get("image/sds")

    def exhausted(self, *args, **kwargs):
        yield from []
        raise error

    monkeypatch.setattr(cls, "run", exhausted)
    target = tmp_path / "t.png"
    Image.new("RGB", (64, 64), "red").save(target)
    with pytest.raises(backends.InputError, match=r"image/sds ran out of memory on the CPU .*; lower the input image.s size"):
        backends.run_to_end("image/sds", {"steps": 2}, prior="analytic", inputs=[str(target)], out_dir=tmp_path / "o")


@pytest.mark.parametrize("code, error, words", [
    (errno.ENOSPC, RunError, "no space left on device; free some space there"),
    (errno.EDQUOT, RunError, "the disk quota is exceeded"),
    (errno.EROFS, backends.InputError, "the file system is read-only; choose another output folder"),
    (errno.EACCES, backends.InputError, "permission denied; choose another output folder"),
])
def test_a_failed_write_of_an_output_is_one_sentence_naming_the_file_and_leaves_no_partial_file(
        target, tmp_path, monkeypatch, code, error, words):
    # was the writer's OSError: a 37-line traceback from the CLI
    real_save = Image.Image.save

    def save_then_fail(self, fp, *args, **kwargs):
        if str(fp).endswith(".png") and ".partial-" in str(fp):
            Path(fp).write_bytes(b"\x89PNG half")          # what a writer leaves when the disk fills mid-file
            raise OSError(code, os.strerror(code), str(fp))
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Image.Image, "save", save_then_fail)
    out = tmp_path / "out"
    with pytest.raises(error) as err:
        run(target, out, steps=2)
    assert str(err.value).startswith(f"Could not write {out / 'result.png'}: {words}")
    assert len(str(err.value).splitlines()) == 1 and str(err.value).endswith(".")
    assert not out.exists()   # neither result.png nor its .partial, nor the folder the run made


def _fail_writing(monkeypatch, cls, method, name, code):
    """Make `cls.method` raise OSError(code) when it writes the temporary file of `name` (atomic_path's
    ".<stem>.partial-<hex><suffix>"), as a disk that fills there would."""
    real = getattr(cls, method)
    stem, suffix = name.split(".")

    def failing(self, *args, **kwargs):
        fp = str(args[0]) if method == "save" else str(self)
        if Path(fp).name.startswith(f".{stem}.partial-") and fp.endswith(f".{suffix}"):
            raise OSError(code, os.strerror(code), fp)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, method, failing)


@pytest.mark.parametrize("code, exit_code", [(errno.ENOSPC, 1), (errno.EACCES, 2)])
def test_a_run_whose_result_json_cannot_be_written_leaves_none_of_its_files(target, tmp_path, monkeypatch, capsys,
                                                                             code, exit_code):
    # its result.png stayed without a result.json: a half result set that no later run would clear
    from backends.__main__ import main

    out = tmp_path / "out"
    run(target, out, steps=2)  # the folder's previous result set, which the failed run replaces as a whole
    (out / "mine.txt").write_text("not a run's")
    _fail_writing(monkeypatch, Path, "write_text", "result.json", code)
    rc = main(["run", "image/sds", "--prior", "analytic", "--input", target, "--set", "steps=2", "--out", str(out),
               "--quiet"])
    err = capsys.readouterr().err.splitlines()
    assert rc == exit_code and len(err) == 1 and err[0].startswith(f"error: Could not write {out / 'result.json'}: ")
    assert sorted(p.name for p in out.iterdir()) == ["mine.txt"]


def test_a_run_whose_second_output_cannot_be_written_removes_its_first(tmp_path, monkeypatch):
    # svg/vectorize writes result.svg, then result.png; the svg stayed when the png failed
    src = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(src)
    written = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda a, b: (written.append(Path(b).name), real_replace(a, b))[1])
    _fail_writing(monkeypatch, Image.Image, "save", "result.png", errno.ENOSPC)
    out = tmp_path / "out"
    with pytest.raises(RunError, match="result.png: no space left on device"):
        backends.run_to_end("svg/vectorize", {"iters": 2, "paths": 2, "size": 32}, inputs=[str(src)], out_dir=out)
    assert "result.svg" in written  # the first file was written, and is gone
    assert not out.exists()  # nothing of the run: the folder it made is gone with its files


def _limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)       # a write past the limit fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def test_the_cli_says_in_one_line_which_file_could_not_be_written_under_a_file_size_limit(target, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backends", "run", "image/sds", "--prior", "analytic", "--input",
                           target, "--set", "steps=2", "--out", str(out), "--quiet"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          preexec_fn=_limit_file_size(4000), timeout=300)
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"error: Could not write {out / 'result.png'}: the file is larger than this process may write (its file "
        "size limit); raise the limit (ulimit -f) or lower the output's size."], proc.stderr[-3000:]
    assert not out.exists()  # nothing of the run: the folder it made is gone with its files


def _jpeg_with_exif(path, tiff: bytes) -> str:
    """A plain JPEG with an EXIF block of the given TIFF bytes (APP1 right after SOI)."""
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    exif = b"Exif\x00\x00" + tiff
    data = buf.getvalue()
    path.write_bytes(data[:2] + b"\xff\xe1" + (len(exif) + 2).to_bytes(2, "big") + exif + data[2:])
    return str(path)


DAMAGED_EXIF = {  # as phones and editors write them; each makes Pillow warn
    "Corrupt EXIF data": b"II*\x00\x08\x00\x00\x00\xff\xff" + bytes(20),          # 65535 entries in 22 bytes
    "Truncated File Read": b"II*\x00\x08\x00\x00\x00\x01\x00" + struct.pack("<HHII", 0x010E, 2, 100, 0x1000) + bytes(4),
    # an Orientation tag holding two values ("tag 274 had too many entries")
    "Metadata Warning": b"II*\x00\x08\x00\x00\x00\x01\x00" + struct.pack("<HHIHH", 0x0112, 3, 2, 6, 6) + bytes(4),
}


@pytest.mark.parametrize("warning", DAMAGED_EXIF)
def test_a_successful_run_on_a_jpeg_with_damaged_exif_prints_nothing_on_stderr(tmp_path, warning):
    src = _jpeg_with_exif(tmp_path / "photo.jpg", DAMAGED_EXIF[warning])
    with warnings.catch_warnings(record=True) as seen:   # the file does make Pillow warn
        warnings.simplefilter("always")
        ImageOps.exif_transpose(Image.open(src))
    assert any(warning in str(w.message) for w in seen)
    proc = subprocess.run([sys.executable, "-m", "backends", "run", "image/sds", "--prior", "analytic", "--input",
                           src, "--set", "steps=2", "--out", str(tmp_path / "out"), "--quiet"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]


def test_a_successful_edit_of_an_odd_sized_video_prints_nothing_on_stderr(tmp_path):
    # imageio's writer warned "input image is not divisible by macro_block_size=16, resizing" for such sizes
    import imageio.v2 as iio

    src = tmp_path / "odd.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (6, 37, 45, 3), dtype=np.uint8)
    with iio.get_writer(src, format="FFMPEG", fps=8, codec="libx264", pixelformat="yuv444p", macro_block_size=1,
                        ffmpeg_log_level="error") as writer:
        for frame in frames:
            writer.append_data(frame)
    proc = subprocess.run([sys.executable, "-m", "backends", "run", "video/csd-edit", "--prior", "edits", "--set",
                           "prompt=make it winter", "--set", "steps=2", "--input", str(src), "--out",
                           str(tmp_path / "out"), "--quiet"], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr[-3000:]
    assert iio.get_reader(tmp_path / "out" / "edited.mp4").get_meta_data()["size"] == (44, 36)  # even: yuv420p


def test_an_mp4_cut_short_by_ffmpeg_is_refused_not_renamed_into_place(tmp_path):
    # imageio does not read ffmpeg's exit code: an mp4 cut short by a full disk was renamed into place as finished
    from backends.csd_edit.outputs import _mp4_boxes_add_up, write_mp4

    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 48, 3), dtype=np.uint8)
    whole = Path(write_mp4(frames, 8, tmp_path / "whole.mp4")).read_bytes()
    assert _mp4_boxes_add_up(whole)
    assert not any(_mp4_boxes_add_up(whole[:n]) for n in (0, 100, len(whole) // 2, len(whole) - 1))


def test_the_cli_refuses_an_mp4_that_ffmpeg_could_not_finish_under_a_file_size_limit(tmp_path):
    import imageio.v2 as iio

    src = tmp_path / "clip.mp4"
    with iio.get_writer(src, format="FFMPEG", fps=8, codec="libx264", macro_block_size=1,
                        ffmpeg_log_level="error") as writer:
        for frame in np.random.default_rng(0).integers(0, 255, (6, 32, 48, 3), dtype=np.uint8):
            writer.append_data(frame)
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "backends", "run", "video/per-frame", "--set", "prompt=make it winter",
                           "--set", "steps=2", "--input", str(src), "--out", str(out), "--quiet"], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
                          preexec_fn=_limit_file_size(300), timeout=300)
    assert proc.returncode == 1 and proc.stderr.splitlines() == [
        f"error: Could not write {out / 'edited.mp4'}: the file is larger than this process may write (its file "
        "size limit); raise the limit (ulimit -f) or lower the output's size."], proc.stderr[-3000:]
    assert not out.exists()   # before: a 300-byte edited.mp4 that no player opens; the run's folder goes too


def test_the_cli_says_in_one_line_that_torch_cannot_load_under_a_small_address_space_limit():
    """ulimit -v of 600 MB: torch's libraries do not fit (its import was an ImportError of 20 lines)."""
    limit = 600 * 2**20

    def preexec():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    proc = subprocess.run([sys.executable, "-m", "backends", "list"], cwd=ROOT, preexec_fn=preexec,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr[-3000:]
    assert lines[0].startswith("error: torch could not be loaded (") and "ulimit -v) is 0.6 GB" in lines[0]
