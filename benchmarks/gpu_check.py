"""The one-command GPU check: every registered backend through the real loaders, on full-size random weights.

    python -m benchmarks.gpu_check --log $OUT/gpu_check.log     # on the GPU machine (after scripts/gpu_wheels.sh)
    python -m benchmarks.gpu_check --quick --no-record          # the same flow on a CPU, tiny models (a test)

What it does, in order:
1. Builds Stable Diffusion 1.5 and InstructPix2Pix *pipelines as diffusers folders* in a temp dir, with random
   weights: the UNet / VAE configs of `benchmarks.archs`, SD 1.5's CLIP ViT-L/14 text tower (hidden 768, 12 layers,
   12 heads, intermediate 3072, 77 positions, vocab 49408), the tiny generated tokenizer, and the schedulers the
   real repos ship (PNDM for SD, EulerAncestral for IP2P), saved in fp16 (the loaders cast). `--quick` uses the
   tiny recipe's folders instead (`tiny.ensure_tiny`, cached under $DISTILL_CACHE).
2. Points DISTILL_SD_MODEL / DISTILL_IP2P_MODEL at them, so priors "sd" and "ip2p" load through the same code as
   downloaded weights, and runs every backend of `backends.available()` through `backends.run` with short step
   counts: prior "sd" for backends whose class says prior "text", "ip2p" for "instruct", none for "none"; inputs
   from examples/. Per backend: seconds to the first Progress (from calling run: includes loading a prior the
   first time it is used, and compiling), ms per step (from the Progress reports' `elapsed` and `step`, the first
   report of each optimization phase excluded), total seconds, peak GPU memory (reset per backend), and the error,
   if any, in one line (the check goes on with the next backend and exits 1 at the end).
   Then issue 34's clip case (`clip_case`; `--no-clip` skips it): `video/csd-edit` with "ip2p" at the device's
   default settings on a synthetic 10 s, 30 fps, 1920x1080 clip (300 frames, a GIF written in code: no download,
   no ffmpeg to read it), every frame delivered; its row gives the delivered frames, fps and size and the total
   seconds against the 3 min target, at media's own limits (the app's: the clip is streamed, not held). Run it
   alone on the device with
   `--backends none --no-speed --no-cuda-tests --accel-modes ''`.
3. Times one UNet call of the "sd" prior under each `prior.accelerate(mode)` (`--accel-modes`), then the speed
   figures of issue 14, each beside its eager / reference figure (`speed_rows`; `--no-speed` skips them): renderer
   fwd+bwd 600x600 at 16 / 128 paths (batched vs reference), the text-to-SVG step (KL and fast encoder, eager vs
   CUDA graph; the fast encoder is TAESD's architecture with random weights), svg/csd K = 4 vs K = 1, CSD-Edit
   steps at 8 and 16 frames and the 512x2048 panorama (eager vs graph, peak GPU memory).
4. Runs the CUDA-only tests: `pytest -q -k cuda tests/`. So a test that needs a GPU must have "cuda" in its name
   (e.g. `test_cuda_renders_what_the_cpu_renders`) and skip itself when `torch.cuda.is_available()` is False.
5. Prints a table and appends it to benchmarks/RESULTS.md / results.jsonl naming the device (not with
   --no-record); `--json PATH` also writes the rows as JSON (the test reads them).

On the GPU machine (no network): `bash scripts/gpu_wheels.sh` here first, then in one device call with `.whl` carried:
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && export PYTHONPATH=/tmp/site && python3 -m benchmarks.gpu_check --log $OUT/gpu_check.log
`--budget-s` (default 480) bounds the whole check so a 600 s call gets its table back: backends not reached are
rows "not run" (and the exit is 1). Priors load with DISTILL_ACCELERATE as set (default auto: the UNet call as a CUDA
graph on CUDA, captured once per input shape); `--accelerate eager` checks the rest without graphs.

DISTILL_CLIP_MODEL defaults to "tiny" here (no CLIP weights on that machine) and HF_HUB_OFFLINE to 1 (all weights
are local folders). Random weights: the pictures mean nothing; speed, memory and the code path are what is checked.
"""
from __future__ import annotations

import argparse
import colorsys
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# SD 1.5's text encoder: openai/clip-vit-large-patch14's text tower (its config.json in the SD 1.5 repo).
SD15_TEXT_ENCODER = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                         num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu",
                         projection_dim=768)

TEXT_PROMPT = "a red fox"
EDIT_PROMPT = "turn it into a Van Gogh painting"

# Settings per mode, applied to a backend only where its Settings has the field. Full: ~20 optimization steps
# per backend (the whole check within ~5 minutes on an H200). Quick: 2 steps at tiny sizes (a CPU test).
FULL = dict(steps=20, every=5, sample_steps=20, iters=10, live_iters=10)
QUICK = dict(steps=2, every=1, sample_steps=2, iters=2, live_iters=2, live_size=64, short_side=64, particles=2,
             paths=4, k=2, size=64)


# ------------------------------------------------------------------------------------------ model folders

def build_pipeline(kind: str, path: str | os.PathLike, *, device: str | torch.device = "cpu",
                   dtype: torch.dtype = torch.float16, seed: int = 0) -> Path:
    """Save a full-size random-weight SD 1.5 (kind "sd") or InstructPix2Pix ("ip2p") pipeline folder at `path`.

    Weights are drawn on `device` (a GPU draws 1.1 G parameters in well under a second; a CPU takes tens of
    seconds) and saved in `dtype`. The layout is a diffusers pipeline repo's, so `from_pretrained` loads it as
    it loads downloaded weights. Returns `path`.
    """
    from diffusers import (AutoencoderKL, StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from backends.priors import tiny  # the tokenizer writer and the shipped schedulers

    from .archs import IP2P_UNET, SD15_UNET, SD_VAE

    if kind not in ("sd", "ip2p"):
        raise ValueError(f"kind must be 'sd' or 'ip2p', not {kind!r}")
    path = Path(path)
    tiny._write_tokenizer(path / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    with torch.random.fork_rng(devices=[]), torch.device(device):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**(SD15_UNET if kind == "sd" else IP2P_UNET))
        vae = AutoencoderKL(**SD_VAE)
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD15_TEXT_ENCODER, bos_token_id=tokenizer.bos_token_id,
                                                    eos_token_id=tokenizer.eos_token_id,
                                                    pad_token_id=tokenizer.pad_token_id))
    # safetensors writes from host memory; cast on the device first so only half the bytes cross
    unet, vae, text_encoder = (m.to(dtype).to("cpu") for m in (unet, vae, text_encoder))
    parts = dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=tiny._scheduler(kind),
                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline_cls = StableDiffusionPipeline if kind == "sd" else StableDiffusionInstructPix2PixPipeline
    pipeline_cls(**parts).save_pretrained(path)
    return path


def model_folders(quick: bool, root: Path, device: torch.device, log: Callable[[str], None]) -> dict[str, Path]:
    """{"sd": folder, "ip2p": folder}: tiny (cached) with quick, else full-size built under root; logs seconds."""
    from backends.priors import tiny

    folders = {}
    for kind in ("sd", "ip2p"):
        t0 = time.perf_counter()
        if quick:
            folders[kind] = tiny.ensure_tiny(kind)
        else:
            folders[kind] = build_pipeline(kind, root / kind, device=device if device.type == "cuda" else "cpu")
        log(f"{kind} model folder {'(tiny)' if quick else '(full size, fp16)'}: {folders[kind]} "
            f"in {time.perf_counter() - t0:.1f} s")
    return folders


# ------------------------------------------------------------------------------------------ one backend

def example_inputs(cls) -> list[str]:
    """The shipped example a backend of class `cls` takes (by its task and `inputs`); [] for inputs "none"."""
    kind = cls.inputs
    if kind == "none":
        return []
    if kind == "video":
        found = sorted(EXAMPLES.glob("video/*.mp4"))
    elif kind == "images":
        found = sorted(EXAMPLES.glob("views3d/*.png"))
    elif kind == "mesh":
        found = sorted(EXAMPLES.glob("views3d/*.glb"))[:1]
    elif kind in ("image", "image?"):
        folder = {"svg": "svg", "panorama": "panorama"}.get(cls.task, "image")
        found = sorted(EXAMPLES.glob(f"{folder}/*.png"))[:1]
    else:
        raise ValueError(f"no example input in examples/ for inputs={kind!r}")
    if not found:
        raise ValueError(f"examples/ holds no input for {cls.key} (inputs={kind!r})")
    return [str(p) for p in found]


def settings_for(cls, quick: bool) -> dict:
    """Overrides for `cls.Settings`: the mode's short budget where the field exists, and a prompt."""
    fields = {f.name for f in dataclasses.fields(cls.Settings)}
    wanted = dict(QUICK if quick else FULL)
    if cls.spec.prior != "none":
        wanted["prompt"] = TEXT_PROMPT if cls.spec.prior == "text" else EDIT_PROMPT
    if cls.spec.inputs.kind == "images" and "particles" in wanted:  # every view is a particle: all must fit
        wanted["particles"] = max(wanted["particles"], len(example_inputs(cls)))
    if cls.spec.inputs.kind == "mesh" and not quick:  # issue 22's case: 16 views of the mesh at 512 px
        wanted.update(particles=16, short_side=512)
    if "vectorizer" in fields:  # the baseline's LIVE fit runs on the GPU; its default trace runs in every SVG
        wanted["vectorizer"] = "live"  # backend's init (svg/vectorfusion's row checks it)
    return {k: v for k, v in wanted.items() if k in fields}


def ms_per_step(reports: Sequence[tuple[int, float]]) -> float | None:
    """Milliseconds per optimization step from Progress (step, elapsed seconds) pairs, in arrival order.

    `elapsed` counts from the start of one optimization loop, so it restarts when a backend begins a new phase
    (each stage of a LIVE vectorization is its own loop); a report whose elapsed is not above the previous one
    starts a new phase. The first report of each phase is excluded (it carries the warm-up: compilation, cuDNN
    autotuning, the first allocations): only the intervals between later reports of the same phase count.
    Reports with step 0 (messages before any step) are ignored. None when no interval is left.
    """
    seconds, steps = 0.0, 0
    prev = None
    for step, elapsed in reports:
        if step <= 0:
            continue
        if prev is not None and elapsed > prev[1] and step > prev[0]:
            seconds += elapsed - prev[1]
            steps += step - prev[0]
        prev = (step, elapsed)
    return 1000.0 * seconds / steps if steps else None


def one_line(err: BaseException, limit: int = 240) -> str:
    text = " ".join(f"{type(err).__name__}: {err}".split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def project_warnings(caught: Sequence[warnings.WarningMessage], limit: int = 240) -> str | None:
    """The distinct warnings raised from this project's code (backends/), joined in one line; None if none.
    They matter here: a torch.compile failure falls back to eager with a warning instead of failing the run."""
    mine = str(ROOT / "backends")
    texts = list(dict.fromkeys(" ".join(str(w.message).split()) for w in caught if str(w.filename).startswith(mine)))
    if not texts:
        return None
    text = " / ".join(texts)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def empty_row(key: str) -> dict:
    """A backend's row before anything is known: every column None."""
    return dict(backend=key, prior="-", steps=None, first_progress_s=None, ms_per_step=None, total_s=None,
                load_s=None, peak_gib=None, bad_steps=None, warnings=None, error=None)


def check_backend(key: str, *, quick: bool, device: torch.device, out_dir: Path, log: Callable[[str], None],
                  deadline: float = float("inf"), inputs: Sequence[str] | None = None,
                  settings: dict | None = None, on_result: Callable[[object], None] | None = None) -> dict:
    """Run backend `key` once through `backends.run`; returns its row (timings, memory, error or None).
    deadline: a time.perf_counter() value; a run still going then is stopped (closed) and its row says so.
    inputs: the files to run on (default: the shipped example, `example_inputs`); settings: the run's settings
    (default: `settings_for`, the mode's short budget); on_result: called with the run's Result."""
    import backends
    from backends.priors import catalog

    row = empty_row(key)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    reports: list[tuple[int, float]] = []
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            cls = backends.get(key)
            prior = catalog.first(cls.spec.prior, "real") if cls.spec.prior != "none" else None
            row["prior"] = prior or "-"
            run = backends.run(key, settings_for(cls, quick) if settings is None else settings, prior=prior,
                               out_dir=out_dir, device=device,
                               inputs=example_inputs(cls) if inputs is None else inputs)
            for item in run:
                if time.perf_counter() > deadline:
                    run.close()
                    raise TimeoutError("stopped: the check's time budget (--budget-s) ran out during this run")
                if isinstance(item, backends.Result):
                    if on_result is not None:
                        on_result(item)
                    row["load_s"] = item.metadata.get("timings", {}).get("load_s")
                    row["bad_steps"] = (item.metadata.get("metrics") or {}).get("bad_steps", row["bad_steps"])
                    continue
                if row["first_progress_s"] is None:
                    row["first_progress_s"] = time.perf_counter() - t0
                reports.append((item.step, item.elapsed))
                row["steps"] = item.total  # the backend's own count (LIVE stages included)
                if "bad_steps" in item.metrics:
                    row["bad_steps"] = item.metrics["bad_steps"]
            if device.type == "cuda":
                torch.cuda.synchronize(device)
        except Exception as err:  # one backend's failure is a row of the table, not the end of the check
            row["error"] = one_line(err)
            log(f"{key} FAILED: {row['error']}\n{traceback.format_exc()}")
    row["warnings"] = project_warnings(seen)
    row["total_s"] = time.perf_counter() - t0
    row["ms_per_step"] = ms_per_step(reports)
    if device.type == "cuda":
        row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30
    return row


# ------------------------------------------------------------------------------------------ the clip case (issue 34)

# Issue 34's target: a 10 s 1080p clip at 30 fps edited with InstructPix2Pix, every frame delivered, in <= 3 min.
# Quick: the same code path on a tiny clip (9 frames, 30 fps, 96x64) with the tiny model.
CLIP_TARGET_S = 180.0
CLIP_FULL = dict(frames=300, fps=30, size=(1920, 1080))
CLIP_QUICK = dict(frames=9, fps=30, size=(96, 64))
CLIP_KEY = "video/csd-edit"


def write_clip(path: Path, *, frames: int, fps: int, size: tuple[int, int]) -> Path:
    """A synthetic clip as an animated GIF, written by Pillow: coloured bands and a grid, with a disc and a
    square crossing them (every frame differs, so none is merged into the one before).

    GIF because Pillow writes and `media` reads it with no ffmpeg (the device machine has ffmpeg only from
    scripts/gpu_wheels.sh's imageio-ffmpeg wheel, which the edited mp4 needs, not the input). The frames are drawn
    on one palette, so nothing is quantized per frame. GIF delays are whole centiseconds: 30 fps is delays of
    30, 30 and 40 ms in turn, exact over every 3 frames (`frames` a multiple of 3 at 30 fps)."""
    import numpy as np
    from PIL import Image, ImageDraw

    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    band = (x * 6 // w + (y * 4 // h) * 6) % 24  # 24 coloured bands
    grid = ((x % max(8, w // 24) == 0) | (y % max(8, h // 16) == 0))
    base = np.where(grid, 24, band).astype(np.uint8)
    hues = np.linspace(0, 1, 24, endpoint=False)
    colours = [tuple(int(255 * c) for c in colorsys.hsv_to_rgb(hh, 0.6, 0.9)) for hh in hues]
    colours += [(30, 30, 30), (250, 250, 240), (200, 40, 40)]  # the grid, the disc, the square
    palette = [v for c in colours for v in c] + [0] * (3 * (256 - len(colours)))
    images = []
    r = max(3, h // 8)
    for f in range(frames):
        im = Image.frombytes("P", (w, h), base.tobytes())
        im.putpalette(palette)
        draw = ImageDraw.Draw(im)
        t = f / max(frames - 1, 1)
        cx, cy = int(r + t * (w - 2 * r)), int(h / 2 + (h / 4) * np.sin(2 * np.pi * t))
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=25)
        sx = int((1 - t) * (w - 2 * r))
        draw.rectangle([sx, h // 6, sx + r, h // 6 + r], fill=26)
        images.append(im)
    if fps == 30:
        delays = [(30, 30, 40)[f % 3] for f in range(frames)]
    else:
        delays = [round(1000 / fps)] * frames
    images[0].save(path, save_all=True, append_images=images[1:], duration=delays, loop=0, optimize=False)
    return path


def clip_case(*, quick: bool, device: torch.device, work: Path, log: Callable[[str], None],
              deadline: float = float("inf")) -> dict:
    """Issue 34's case: `video/csd-edit` with the "ip2p" prior (InstructPix2Pix's architecture, at full size unless
    quick) at its default settings for the device (quick: the check's quick budget), on a synthetic clip
    (`write_clip`), every frame delivered.

    Returns check_backend's row plus: clip (frames, fps, size asked), frames, fps, size (the delivered mp4's, from
    result.json), every_frame (frames == the clip's), target_s, met (every frame delivered at the clip's fps and
    size, within the target; quick: None, a CPU's time says nothing of the target), write_s (the GIF's writing,
    not counted in total_s)."""
    import backends

    spec = CLIP_QUICK if quick else CLIP_FULL
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    clip = write_clip(work / "clip.gif", **spec)
    write_s = time.perf_counter() - t0
    got: dict = {}
    # full: the backend's own defaults for the device (the run a visitor gets), not the check's 20-step budget
    settings = settings_for(backends.get(CLIP_KEY), quick=True) if quick else dict(prompt=EDIT_PROMPT)
    row = check_backend(CLIP_KEY, quick=quick, device=device, out_dir=work / "out", log=log, deadline=deadline,
                        inputs=[str(clip)], settings=settings, on_result=lambda result: got.update(result.metadata))
    row.update(clip=dict(frames=spec["frames"], fps=spec["fps"], size=list(spec["size"])), write_s=write_s,
               frames=got.get("frames"), fps=got.get("fps"), size=got.get("mp4_size"), target_s=CLIP_TARGET_S,
               keyframes=len(got.get("keyframes") or []) or None, work_size=got.get("work_size"))
    row["every_frame"] = row["frames"] == spec["frames"]
    delivered = (row["every_frame"] and row["size"] == list(spec["size"]) and row["fps"] is not None
                 and abs(row["fps"] - spec["fps"]) < 0.01 and not row["error"])
    row["met"] = None if quick else bool(delivered and row["total_s"] <= CLIP_TARGET_S)
    log(f"clip case: {row['frames']} of {spec['frames']} frames at {_fmt(row['fps'])} fps, {row['size']}, "
        f"total {_fmt(row['total_s'])} s (target {CLIP_TARGET_S:.0f} s)"
        + ("" if row["met"] is None else f": {'met' if row['met'] else 'NOT met'}")
        + (f", ERROR {row['error']}" if row["error"] else ""))
    return row


def clip_table(row: dict) -> str:
    c = row["clip"]
    return ("| clip | delivered | fps | size | keyframes at | steps | first progress s | ms/step | total s | target s | "
            "peak GiB | met | error |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
            f"| {c['frames']} frames, {c['fps']} fps, {c['size'][0]}x{c['size'][1]} | "
            f"{row['frames'] if row['frames'] is not None else '-'} | {_fmt(row['fps'])} | "
            f"{'x'.join(map(str, row['size'])) if row['size'] else '-'} | "
            f"{row['keyframes'] or '-'} at {'x'.join(map(str, row['work_size'])) if row['work_size'] else '-'} | "
            f"{row['steps'] if row['steps'] is not None else '-'} | "
            f"{_fmt(row['first_progress_s'])} | {_fmt(row['ms_per_step'], 1)} | {_fmt(row['total_s'])} | "
            f"{row['target_s']:.0f} | {_fmt(row['peak_gib'])} | "
            f"{'-' if row['met'] is None else ('yes' if row['met'] else 'no')} | "
            f"{(row['error'] or '').replace('|', '/')} |")


# ------------------------------------------------------------------------------------------ extras

def time_accelerate(modes: Sequence[str], device: torch.device, log: Callable[[str], None]) -> list[dict]:
    """Milliseconds of one guided "sd" UNet call (batch 1, the prior's native latent size) under each
    `prior.accelerate(mode)`: the first call (compiles when the mode compiles) and the median of 5 after it.
    The prior is left in "auto" afterwards, as loading leaves it."""
    from backends.priors import load_prior

    from .common import measure, median_ms

    prior = load_prior("sd", device)
    cond = prior.condition(TEXT_PROMPT)
    side = prior.native_size // prior.latent_scale
    z = torch.randn(1, prior.latent_channels, side, side, device=device, dtype=prior.dtype)
    t = torch.tensor([500], device=device)
    rows = []
    try:
        for mode in modes:
            row = dict(mode=mode, latent=side, first_ms=None, ms=None, warnings=None, error=None)
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                try:
                    prior.accelerate(mode)
                    t0 = time.perf_counter()
                    prior.predict_eps(z, t, cond)
                    if device.type == "cuda":
                        torch.cuda.synchronize(device)
                    row["first_ms"] = 1000.0 * (time.perf_counter() - t0)
                    row["ms"] = median_ms(measure(lambda: prior.predict_eps(z, t, cond), device=device, warmup=2,
                                                  repeats=5))
                except Exception as err:
                    row["error"] = one_line(err)
                    log(f"accelerate({mode}) FAILED: {row['error']}\n{traceback.format_exc()}")
            row["warnings"] = project_warnings(seen)
            log(f"accelerate({mode}): first call {_fmt(row['first_ms'], 0)} ms, then {_fmt(row['ms'], 1)} ms"
                + (f"; WARNINGS {row['warnings']}" if row["warnings"] else ""))
            rows.append(row)
    finally:
        prior.accelerate("auto")
    return rows


def run_cuda_tests(log: Callable[[str], None], timeout: float = 240.0) -> dict:
    """`pytest -q -k cuda tests/` in a subprocess; returns {"rc", "failed", "summary"}. A test file that cannot be
    collected there (a package the GPU machine lacks, e.g. gradio for the app tests) does not stop the others; it
    is named in the summary, not counted as a failure."""
    cmd = [sys.executable, "-m", "pytest", "-q", "-rfEs", "-k", "cuda", "--continue-on-collection-errors", "-p",
           "no:cacheprovider", "tests/"]
    log("$ " + " ".join(cmd))
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"cuda tests: timed out after {timeout:.0f} s")
        return dict(rc=None, failed=True, summary=f"timed out after {timeout:.0f} s")
    out = (proc.stdout + proc.stderr).strip()
    log(out)
    failed, summary = pytest_outcome(out, proc.returncode)
    return dict(rc=proc.returncode, failed=failed, summary=summary)


def pytest_outcome(output: str, rc: int) -> tuple[bool, str]:
    """(failed, summary) from `pytest -q -rfE` output: failed when a selected test failed or errored, or pytest
    itself broke (exit codes 2-4); exit 5 (nothing selected) and collection errors alone are not failures. The summary is
    pytest's last line plus the files it could not collect."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    last = lines[-1].strip("= ") if lines else ""
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|skipped|deselected|errors?)", last)}
    errors = [ln.split()[1] for ln in lines if ln.startswith("ERROR ") and len(ln.split()) > 1]
    uncollected = sorted({e for e in errors if e.endswith(".py")})  # a file, not a test: it was not collected
    broken = [e for e in errors if "::" in e]  # a selected test's fixture or setup failed
    failed = counts.get("failed", 0) > 0 or bool(broken) or rc in (2, 3, 4)
    summary = last + (f"; not collected: {', '.join(uncollected)}" if uncollected else "")
    return failed, summary


# ------------------------------------------------------------------------------------------ speed (issue 14)

# The H200 targets, ms (None: no target, the figure is recorded).
SPEED_TARGETS = {"renderer 16 paths": 2.0, "renderer 128 paths": 5.0, "text-to-SVG step kl": 25.0,
                 "text-to-SVG step fast": 12.0, "CSD-Edit 8 frames": 60.0, "CSD-Edit 16 frames": 120.0,
                 "CSD-Edit panorama": 100.0}


def build_fast_vae_folder(path: Path, quick: bool) -> Path:
    """An AutoencoderTiny folder for the fast encoder: TAESD's own architecture (diffusers' default config, 2.4M
    parameters) with random weights, or with quick the tiny one (`fast_vae.ensure_tiny_fast_vae`)."""
    from backends.priors import fast_vae

    if quick:
        return fast_vae.ensure_tiny_fast_vae()
    from diffusers import AutoencoderTiny

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        AutoencoderTiny().save_pretrained(path)
    return path


def _ms(fn: Callable[[], object], device: torch.device, warmup: int, repeats: int) -> float:
    from .common import measure, median_ms

    return median_ms(measure(fn, device=device, warmup=warmup, repeats=repeats))


def _steps_ms(run: Callable[[int, int], object], steps: int) -> float:
    """ms per step of a distillation loop driven by `run(steps, every)` (a generator of Progress): 2 x `steps` steps,
    reported after `steps` (warm-up: captures, autotuning) and at the end; the interval counts, one 256 px preview
    render included."""
    reports = [(p.step, p.elapsed) for p in run(2 * steps, steps)]
    (s0, e0), (s1, e1) = reports[-2], reports[-1]
    return 1000.0 * (e1 - e0) / (s1 - s0)


def speed_rows(device: torch.device, quick: bool, log: Callable[[str], None], work: Path,
               deadline: float = float("inf")) -> list[dict]:
    """The figures of issue 14, each beside its eager figure: renderer fwd+bwd (batched vs reference), the
    text-to-SVG step (KL and fast encoder, eager vs CUDA graph), CSD-Edit steps at 8 and 16 frames and the 512x2048
    panorama (eager vs graph, peak memory), svg/csd with K = 4 vs K = 1. Uses the "sd" / "ip2p" priors of
    DISTILL_SD_MODEL / DISTILL_IP2P_MODEL (set by main). quick: tiny sizes and 2-step loops (the CPU test).

    Rows: dict(what, base_label, base_ms, fast_label, fast_ms, target_ms, peak_gib, note, error). One failure is that
    row's error; items not started before `deadline` are rows "not run".
    """
    from backends.priors import load_prior
    from backends.svg.render import render

    from .renderer import make_scene

    size = 64 if quick else 600
    steps = 2 if quick else 10
    warm, reps = (1, 2) if quick else (3, 10)
    rows: list[dict] = []

    def item(what, base_label, fast_label, fn):
        row = dict(what=what, base_label=base_label, base_ms=None, fast_label=fast_label, fast_ms=None,
                   target_ms=SPEED_TARGETS.get(what), peak_gib=None, note=None, error=None)
        if time.perf_counter() > deadline:
            row["error"] = "not run: the check's time budget (--budget-s) ran out"
        else:
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always")
                try:
                    fn(row)
                except Exception as err:  # one figure's failure is its row, not the end of the check
                    row["error"] = one_line(err)
                    log(f"speed: {what} FAILED: {row['error']}\n{traceback.format_exc()}")
            row["note"] = "; ".join(x for x in (row["note"], project_warnings(seen)) if x) or None
        log(f"speed: {what}: {base_label} {_fmt(row['base_ms'], 1)} ms, {fast_label} {_fmt(row['fast_ms'], 1)} ms"
            + (f", peak {_fmt(row['peak_gib'])} GiB" if row["peak_gib"] is not None else "")
            + (f", ERROR {row['error']}" if row["error"] else ""))
        rows.append(row)

    # 1. the renderer, forward + backward, 600 x 600
    for n in (16, 128):
        def renderer(row, n=n):
            scene = make_scene(n if not quick else 4, size, str(device))

            def fwd_bwd(method):
                render(scene, method=method).mean().backward()

            row["base_ms"] = _ms(lambda: fwd_bwd("reference"), device, warm, reps)
            row["fast_ms"] = _ms(lambda: fwd_bwd("batched"), device, warm, reps)
            row["note"] = f"quick: 4 paths at {size} px" if quick else f"{size}x{size}"
        item(f"renderer {n} paths", "reference", "batched", renderer)

    # 2. the text-to-SVG step (svg/vectorfusion's own loop), eager vs graph, KL vs fast encoder
    from backends.core.settings import resolve_auto
    from backends.svg import distill
    from backends.svg.vectorfusion import VectorFusionSettings

    def svg_loop(prior, k: int, objective: str, encoder: str):
        def run(n_steps, every):
            s = VectorFusionSettings(prompt=TEXT_PROMPT, steps=n_steps, every=every, encoder=encoder,
                                     size=size, paths=4 if quick else 64, reinit_every=0)
            s, _ = resolve_auto(s, "quick" if quick else "full", prior.defaults)
            plan = distill.make_plan(s, prior)
            gen = torch.Generator().manual_seed(0)
            painting = distill.init_painting(plan, k, gen, prior.device)
            return distill.distill_painting(painting, prior, plan, objective=objective, generator=gen)
        return run

    sd = None
    for encoder in ("kl", "fast"):
        def svg_step(row, encoder=encoder):
            nonlocal sd
            sd = load_prior("sd", device) if sd is None else sd
            try:
                sd.accelerate("eager")
                row["base_ms"] = _steps_ms(svg_loop(sd, 1, "sds", encoder), steps)
                sd.accelerate("graph")
                row["fast_ms"] = _steps_ms(svg_loop(sd, 1, "sds", encoder), steps)
            finally:
                sd.accelerate("auto")
        item(f"text-to-SVG step {encoder}", "eager", "graph", svg_step)

    # 3. K = 4 candidates against one (svg/csd's batched step), with the default switches
    def candidates(row):
        nonlocal sd
        sd = load_prior("sd", device) if sd is None else sd
        row["base_ms"] = _steps_ms(svg_loop(sd, 1, "csd", "kl"), steps)
        row["fast_ms"] = _steps_ms(svg_loop(sd, 4, "csd", "kl"), steps)
        row["note"] = f"K=4 / K=1 = {row['fast_ms'] / row['base_ms']:.2f} (target < 1.5)"
    item("svg/csd K candidates", "K=1", "K=4", candidates)

    # 3b. where the default init spends its time: the best sample traced (vtracer, CPU) against LIVE's fit of it;
    # one Stable Diffusion sample at its native size (random weights: a noisy picture, the tracer's worst case)
    def init_cost(row):
        nonlocal sd
        from backends.svg.trace import trace_painting
        from backends.svg.vectorize import live_steps, live_vectorize
        from backends.svg.painting import resize_to

        sd = load_prior("sd", device) if sd is None else sd
        n = sd.native_size
        sample = sd.sample([TEXT_PROMPT], steps=2 if quick else 20, height=n, width=n,
                           generator=torch.Generator().manual_seed(0))[0].clamp(0, 1)
        paths, iters = (4, 2) if quick else (64, 100)
        t0 = time.perf_counter()
        target = resize_to(sample[None], 64 if quick else 256)[0].to(device)
        for _ in live_vectorize(target, paths=paths, iters=iters, every=10**6):
            pass
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        row["base_ms"] = 1000.0 * (time.perf_counter() - t0)
        t0 = time.perf_counter()
        trace_painting(sample, paths=paths, segments=4, canvas=size)
        row["fast_ms"] = 1000.0 * (time.perf_counter() - t0)
        row["note"] = (f"one {n} px sample into {paths} paths; LIVE: {live_steps(paths, iters)} steps "
                       f"({iters} per stage, the full default) at {target.shape[-1]} px")
    item("text-to-SVG init", "LIVE", "trace", init_cost)

    # what the fast encoder costs in results (not a time): PSNR after SDS through each encoder, equal targets
    def fidelity(row):
        nonlocal sd
        from .sds_step import encoder_fidelity_rows

        sd = load_prior("sd", device) if sd is None else sd
        got = {r["metric"]: r["value"] for r in encoder_fidelity_rows(sd, size=64 if quick else sd.native_size,
                                                                      steps=2 if quick else 200)}
        row["note"] = (f"PSNR dB after SDS towards equal targets (analytic prior): kl {got['kl/psnr_db']:.2f}, "
                       f"fast {got['fast/psnr_db']:.2f}, fast - kl {got['fast-kl/psnr_db']:+.2f}"
                       + (" (random weights: checks the path, the figure means little)" if not quick else ""))
    item("fast encoder fidelity", "-", "-", fidelity)
    sd = None

    # 4. CSD-Edit: 8 and 16 frames, and the panorama (13 windows of 512 px at stride 128 over 512 x 2048)
    from backends.csd_edit import csd, windows
    from backends.csd_edit import panorama
    from backends.csd_edit.panorama import PanoramaCSDSettings
    from backends.csd_edit.video import VideoCSDSettings

    from .csd_edit_step import time_steps

    px = 64 if quick else 512
    ip2p = None

    def edit_case(row, n: int | None):
        nonlocal ip2p
        ip2p = load_prior("ip2p", device) if ip2p is None else ip2p
        g = torch.Generator().manual_seed(0)
        for mode, key in (("eager", "base_ms"), ("graph", "fast_ms")):
            ip2p.accelerate(mode)
            if device.type == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats(device)
            if n is not None:
                s, _ = resolve_auto(VideoCSDSettings(prompt=EDIT_PROMPT), "full")
                edit = csd.CSDEdit(ip2p, s, torch.rand(n, 3, px, px, generator=g).to(device), method="csd")
                z = edit.source_latents.clone().requires_grad_(True)
                step = csd.items_step(edit, z)
            else:
                s, _ = resolve_auto(PanoramaCSDSettings(prompt=EDIT_PROMPT), "full")
                scale = ip2p.latent_scale
                edit = csd.CSDEdit(ip2p, s, torch.rand(1, 3, px, 4 * px, generator=g).to(device),
                                           method="csd")
                z = edit.source_latents.clone().requires_grad_(True)
                boxes, _ = windows.window_boxes(z.shape[2], z.shape[3], px // scale, px // 4 // scale)
                step = panorama.make_step(edit, z, boxes, len(boxes))
                row["note"] = f"{len(boxes)} windows"
            row[key] = 1000.0 * time_steps(step, z, warm, reps, device)
            if device.type == "cuda":
                row["peak_gib"] = torch.cuda.max_memory_allocated(device) / 2**30  # the graph run's: the default
        ip2p.accelerate("auto")

    for n in (8, 16):
        item(f"CSD-Edit {n} frames", "eager", "graph", lambda row, n=n: edit_case(row, n))
    item("CSD-Edit panorama", "eager", "graph", lambda row: edit_case(row, None))
    return rows


def speed_table(rows: list[dict]) -> str:
    lines = ["| what | eager / reference ms | accelerated ms | H200 target ms | peak GiB | note | error |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['what']} | {r['base_label']} {_fmt(r['base_ms'], 1)} | {r['fast_label']} "
                     f"{_fmt(r['fast_ms'], 1)} | {_fmt(r['target_ms'], 0)} | {_fmt(r['peak_gib'])} | "
                     f"{(r['note'] or '').replace('|', '/')} | {(r['error'] or '').replace('|', '/')} |")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ report

def _fmt(value, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(rows: list[dict]) -> str:
    lines = ["| backend | prior | steps | first progress s | load s | ms/step | total s | peak GiB | bad steps | "
             "error | warnings |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['prior']} | {r['steps'] if r['steps'] is not None else '-'} | "
                     f"{_fmt(r['first_progress_s'])} | {_fmt(r['load_s'])} | {_fmt(r['ms_per_step'], 1)} | "
                     f"{_fmt(r['total_s'])} | {_fmt(r['peak_gib'])} | {_fmt(r['bad_steps'], 0)} | "
                     f"{(r['error'] or '').replace('|', '/')} | {(r['warnings'] or '').replace('|', '/')} |")
    return "\n".join(lines)


def result_rows(rows: list[dict], build_s: float, accel: list[dict], quick: bool) -> list[dict]:
    """The machine-readable rows for results.jsonl."""
    out = [dict(metric="build_model_folders", value=round(build_s, 2), unit="s",
                note="tiny recipe" if quick else "full-size SD 1.5 + InstructPix2Pix, fp16")]
    for r in rows:
        common = dict(backend=r["backend"], prior=r["prior"], steps=r["steps"], error=r["error"])
        for metric, unit in (("first_progress_s", "s"), ("ms_per_step", "ms"), ("total_s", "s"), ("peak_gib", "GiB")):
            if r[metric] is not None:
                out.append(dict(metric=f"{r['backend']}/{metric}", value=round(r[metric], 3), unit=unit, **common))
    for a in accel:
        if a["ms"] is not None:
            out.append(dict(metric=f"unet_call/accelerate={a['mode']}", value=round(a["ms"], 2), unit="ms",
                            first_ms=round(a["first_ms"], 1)))
    return out


def clip_result_rows(clip: dict | None) -> list[dict]:
    """results.jsonl rows of the clip case: its total seconds against the target, with what was delivered."""
    if clip is None or clip["total_s"] is None:
        return []
    return [dict(metric="clip_case/total_s", value=round(clip["total_s"], 2), unit="s", target_s=clip["target_s"],
                 clip=clip["clip"], frames=clip["frames"], fps=clip["fps"], size=clip["size"], met=clip["met"],
                 peak_gib=clip["peak_gib"], error=clip["error"])]


def speed_result_rows(speed: list[dict]) -> list[dict]:
    """results.jsonl rows of the speed figures: one per figure, the eager one beside it."""
    out = []
    for r in speed:
        for label, key in ((r["base_label"], "base_ms"), (r["fast_label"], "fast_ms")):
            if r[key] is not None:
                out.append(dict(metric=f"speed/{r['what']}/{label}", value=round(r[key], 2), unit="ms",
                                target_ms=r["target_ms"], peak_gib=r["peak_gib"], note=r["note"]))
    return out


# ------------------------------------------------------------------------------------------ main

def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny models, 2 steps, small sizes: the flow on a CPU")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--backends", default="", help="comma list of task/name (default: every registered backend; "
                                                   "none: only the UNet timings and the speed figures)")
    p.add_argument("--accel-modes", default=None,
                   help="prior.accelerate modes to time on one UNet call (default: eager,channels_last,graph on "
                        "CUDA, none on a CPU; add compile to time its 40-50 s warm-up); empty to skip")
    p.add_argument("--no-speed", action="store_true", help="skip the speed figures of issue 14 (renderer, text-to-SVG "
                   "step eager/graph and KL/fast encoder, K=4 vs K=1, CSD-Edit 8/16 frames and panorama)")
    p.add_argument("--no-clip", action="store_true", help="skip issue 34's clip case (video/csd-edit on a 10 s "
                   "1080p 30 fps clip, every frame; quick: 9 frames at 96x64)")
    p.add_argument("--no-cuda-tests", action="store_true", help="skip `pytest -k cuda` (always skipped on a CPU)")
    p.add_argument("--accelerate", default=None,
                   help="DISTILL_ACCELERATE for the priors (auto, eager, channels_last, compile; default: as set, "
                        "else auto = compile on CUDA)")
    p.add_argument("--budget-s", type=float, default=480.0,
                   help="wall-clock budget: backends not started in time are reported as not run, a run still going "
                        "is stopped, later extras are skipped (default 480 s: a 600 s device call keeps its log)")
    p.add_argument("--log", default=None, help="also write the log to this file")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--no-record", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = p.parse_args(argv)

    log_file = open(args.log, "a", encoding="utf-8") if args.log else None

    def log(msg: str) -> None:
        print(msg, flush=True)
        if log_file is not None:
            log_file.write(msg + "\n")
            log_file.flush()

    device = torch.device(args.device)
    if device.type == "cpu" and not args.quick:
        log("warning: full-size models on a CPU take minutes per step; use --quick for the CPU flow")
    saved_env = {k: os.environ.get(k) for k in ("DISTILL_SD_MODEL", "DISTILL_IP2P_MODEL", "DISTILL_ACCELERATE",
                                                "DISTILL_FAST_VAE")}
    # Everything is local: no hub lookups, and no real CLIP (its weights are absent on a fresh machine).
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("DISTILL_CLIP_MODEL", "tiny")
    if args.accelerate:
        os.environ["DISTILL_ACCELERATE"] = args.accelerate  # read when a prior loads
    deadline = time.perf_counter() + args.budget_s
    try:
        import backends

        from .common import device_name, torch_version

        log(f"gpu_check on {device_name(device)}, {torch_version()}{' (quick)' if args.quick else ''}")
        keys = [k for k in args.backends.split(",") if k and k != "none"] or (
            [] if args.backends == "none" else [f"{t}/{n}" for t, names in backends.available().items() for n in names])
        with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
            tmp = Path(tmp)
            t0 = time.perf_counter()
            folders = model_folders(args.quick, tmp / "models", device, log)
            build_s = time.perf_counter() - t0
            os.environ["DISTILL_SD_MODEL"], os.environ["DISTILL_IP2P_MODEL"] = str(folders["sd"]), str(folders["ip2p"])
            rows = []
            for key in keys:
                log(f"--- {key}")
                if time.perf_counter() > deadline:
                    rows.append(dict(empty_row(key), error="not run: the check's time budget (--budget-s) ran out"))
                    log(f"{key}: not run, over the time budget")
                    continue
                row = check_backend(key, quick=args.quick, device=device, out_dir=tmp / "out" / key.replace("/", "_"),
                                    log=log, deadline=deadline)
                log(f"{key}: first progress {_fmt(row['first_progress_s'])} s, {_fmt(row['ms_per_step'], 1)} ms/step, "
                    f"total {_fmt(row['total_s'])} s, peak {_fmt(row['peak_gib'])} GiB"
                    + (f", ERROR {row['error']}" if row["error"] else "")
                    + (f", WARNINGS {row['warnings']}" if row["warnings"] else ""))
                rows.append(row)
            clip = None
            if not args.no_clip:
                log("--- clip case (issue 34)")
                if time.perf_counter() > deadline:
                    log("clip case: not run, over the time budget")
                else:
                    clip = clip_case(quick=args.quick, device=device, work=tmp / "clip", log=log, deadline=deadline)
            modes = args.accel_modes
            if modes is None:
                modes = "eager,channels_last,graph" if device.type == "cuda" else ""
            accel = []
            if modes and time.perf_counter() > deadline:
                log("accelerate timings skipped: over the time budget")
            elif modes and (not keys or any(r["prior"] == "sd" and not r["error"] for r in rows)):
                accel = time_accelerate([m for m in modes.split(",") if m], device, log)
            speed = []
            if not args.no_speed:
                log("--- speed (issue 14)")
                os.environ["DISTILL_FAST_VAE"] = str(build_fast_vae_folder(tmp / "models" / "taesd", args.quick))
                speed = speed_rows(device, args.quick, log, tmp, deadline=deadline)
        cuda_tests = None
        if device.type == "cuda" and not args.no_cuda_tests:
            from backends.priors import unload_all

            unload_all()  # the tests' own process needs the GPU memory more than this one now
            cuda_tests = run_cuda_tests(log, timeout=max(60.0, deadline - time.perf_counter()))
    finally:
        for k, v in saved_env.items():  # a caller's own settings come back (main may run in-process)
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        from backends.priors import unload_all

        unload_all()  # cached "sd"/"ip2p" priors point at the deleted folders

    md = table(rows)
    if clip is not None:
        md += "\n\nIssue 34's clip case (video/csd-edit, every frame delivered):\n\n" + clip_table(clip)
    if speed:
        md += "\n\nSpeed (issue 14), each figure beside its eager / reference one:\n\n" + speed_table(speed)
    log("\n" + md)
    notes = [f"Model folders built in {build_s:.1f} s ({'tiny recipe' if args.quick else 'full-size fp16, random weights'})."]
    if accel:
        notes.append(f"One guided SD UNet call (batch 1, {accel[0]['latent']}x{accel[0]['latent']} latent), "
                     "prior.accelerate(mode): "
                     + "; ".join(f"{a['mode']} {_fmt(a['ms'], 1)} ms (first call {_fmt(a['first_ms'], 0)} ms)"
                                 + (f" ERROR {a['error']}" if a["error"] else "")
                                 + (f" WARNING {a['warnings']}" if a["warnings"] else "") for a in accel) + ".")
    if cuda_tests is not None:
        notes.append(f"pytest -k cuda: {cuda_tests['summary']} (exit {cuda_tests['rc']}).")
    for n in notes:
        log(n)
    failed = ([r["backend"] for r in rows if r["error"]] + (["clip case"] if clip is not None and clip["error"] else [])
              + [f"accelerate({a['mode']})" for a in accel if a["error"]]
              + [f"speed: {r['what']}" for r in speed if r["error"]])
    tests_failed = cuda_tests is not None and cuda_tests["failed"]
    if args.json:
        Path(args.json).write_text(json.dumps(dict(rows=rows, clip=clip, accelerate=accel, speed=speed,
                                                   cuda_tests=cuda_tests,
                                                   build_s=build_s, device=str(device), quick=args.quick),
                                              indent=2))
    if not args.no_record:
        from .common import append_results, device_name

        append_results("gpu_check" + (" (quick: tiny models, 2 steps)" if args.quick else
                                      " (full-size SD 1.5 / InstructPix2Pix, random weights)"),
                       md, result_rows(rows, build_s, accel, args.quick) + speed_result_rows(speed)
                       + clip_result_rows(clip),
                       device=device_name(device), notes=notes)
    if failed:
        log(f"FAILED: {', '.join(failed)}")
    if tests_failed:
        log("FAILED: pytest -k cuda")
    if log_file is not None:
        log_file.close()
    return 1 if failed or tests_failed else 0


if __name__ == "__main__":
    sys.exit(main())
