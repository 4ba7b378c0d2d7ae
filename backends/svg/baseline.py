"""`svg/raster-then-vectorize`: VectorFusion's baseline. Sample K raster images from the text-to-image prior
(DDIM, CFG 7.5, the style's prompt suffix), keep the best (by CLIP, ViT-B/16 in the paper: rejection sampling; see
`sampled_init.rank_samples` for a machine without CLIP weights), and vectorize it with the same path budget as
VectorFusion: traced (vtracer, milliseconds; the init VectorFusion's default refines, so the two side by side
show what score distillation adds) or LIVE-style (the paper's baseline, minutes on a CPU). No score
distillation: what the diffusion model draws is all the SVG can show, minus what the vectorizer loses.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import budget
from .. import engine
from . import cost
from ..measures.clip import default_clip
from ..core.pixels import save_png, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from .sampled_init import VECTORIZERS, reading_notes, sample_rank_vectorize
from .painting import export_rasters, export_svg, resize_to
from .distill import STYLES, canvas_size, full_prompt
from .vectorize import live_steps

SAMPLE_STEPS = 50  # DDIM steps of a sample when the setting is left to the prior (Stable Diffusion's)


@dataclass
class RasterThenVectorizeSettings:
    prompt: str = option("", "what the SVG should show (the iconography prompt suffix is appended)")
    k: int = option(4, "raster samples drawn; the best is vectorized (paper: K = 4, best by CLIP)", lo=1, hi=64)
    vectorizer: str = option("trace", "trace: vtracer, well under a second; live: LIVE-style path fitting, the "
                                      "paper's baseline (minutes on a CPU)", choices=VECTORIZERS)
    paths: int = option(64, "path budget of the vectorization (VectorFusion's iconography uses 64)", lo=1, hi=512)
    segments: int = option(4, "cubic segments per path", lo=1, hi=32)
    seed: int = option(0, "random seed", lo=0, hi=2**31 - 1)
    size: int | None = option(None, "SVG canvas in px; default 600 for 512-px priors, scaled down for smaller "
                                    "ones (150 for tiny-sd)", lo=16, hi=2048)
    guidance: float | None = option(None, "classifier-free guidance scale of the raster samples (Stable "
                                          "Diffusion's 7.5; closed-form priors suggest 1)", lo=0.0, hi=50.0,
                                    full=7.5, quick=7.5)
    sample_steps: int | None = option(None, "DDIM steps per sample", lo=1, hi=1000, advanced=True, full=50, quick=20)
    suffix: str | None = option(None, "prompt suffix; default the iconography style's (empty text: none)",
                                advanced=True)
    negative: str = option("", "negative prompt", advanced=True)
    iters: int | None = option(None, "LIVE steps per stage (vectorizer live)", lo=1, hi=5000, advanced=True,
                               full=100, quick=25)
    live_size: int | None = option(None, "resolution the sample is fitted at (vectorizer live)", lo=16, hi=1024,
                                   advanced=True, full=256, quick=128)
    every: int = option(25, "report progress every k steps", lo=1, hi=1000, advanced=True)


@register("svg", "raster-then-vectorize")
class RasterThenVectorize:
    Settings = RasterThenVectorizeSettings
    description = ("Baseline: K raster samples from the prior, the best traced (or fitted LIVE-style) into paths "
                   "(no SDS)")
    prior = "text"
    scorer = "clip"  # ranks its results with CLIP: the runner loads the scorer with the prior
    inputs = "none"
    requires_prompt = True

    @classmethod
    def estimate(cls, s: RasterThenVectorizeSettings, inputs, facts):
        """The work budget's estimate (see `backends.core.budget`): the vectorization of one sample at live_size with
        all paths at full-canvas tiles (`cost.fit_bytes`), plus the K samples at the prior's size. Its effort (what
        the time follows, `backends.core.timing`): k x sample_steps prior calls on a sample, plus the vectorize stage
        (LIVE: its steps over the fit's bytes; trace: about one sample's worth)."""

        side = s.live_size or 256
        sample = 3 * facts.native_size ** 2 * 4
        samples = s.k * sample * 4
        fit = cost.fit_bytes(s.paths, side, side)
        vectorize = live_steps(s.paths, s.iters or 100) * fit if s.vectorizer == "live" else SAMPLE_STEPS * sample
        effort = s.k * (s.sample_steps or SAMPLE_STEPS) * sample + vectorize
        return budget.Work(fit + samples, f"{s.paths} paths at {side}x{side} after {s.k} samples of "
                           f"{s.sample_steps or SAMPLE_STEPS} steps", "paths or live_size (or k, sample_steps)",
                           effort=int(effort))

    def run(self, s: RasterThenVectorizeSettings, *, prior, inputs, out_dir):
        suffix = STYLES["iconography"].suffix if s.suffix is None else s.suffix
        text = full_prompt(s.prompt, suffix)
        engine.seed_everything(s.seed)
        gen = torch.Generator(device="cpu").manual_seed(s.seed)
        size = canvas_size(s.size, prior.native_size)
        scorer = default_clip(prior.device)
        meta: dict = {}
        reading_notes(prior, s.prompt, meta)  # before any work: a refused prompt is quoted as the person typed it
        found = yield from sample_rank_vectorize(
            prior, text, rank_prompt=s.prompt, k=s.k, steps=s.sample_steps, guidance=s.guidance, negative=s.negative,
            generator=gen, scorer=scorer, vectorize=s.vectorizer, paths=s.paths, segments=s.segments, iters=s.iters,
            live_size=s.live_size, canvas=size, every=s.every)
        scene = found.painting.scene(0)
        raster = export_rasters([scene])[0]
        files = {"svg": export_svg(scene, out_dir / "result.svg"), "png": save_png(raster, out_dir / "result.png"),
                 "raster": save_png(found.best, out_dir / "sample.png")}
        clip = scorer.score(torch.stack([raster, resize_to(found.best[None], raster.shape[-1])[0]]), s.prompt).tolist()
        metrics = {"clip_score": clip[0], "clip_score_raster": clip[1], "shapes": float(len(scene.shapes))}
        meta.update({"metrics": metrics, **scorer.label(), "prompt_used": text, "canvas": size,
                     "samples_score": [float(x) for x in found.scores], "samples_ranked_by": found.ranked_by,
                     "chosen_sample": int(found.order[0]), "vectorizer": s.vectorizer})
        yield Result(files=files, preview=to_uint8(raster), metadata=meta)
