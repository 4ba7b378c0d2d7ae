"""`svg/csd`: K SVG candidates for one prompt, optimized together as Collaborative Score Distillation particles.

Plain VectorFusion run K times gives K near-duplicates: every run follows the same mode of the prior. Here the K
scenes are SVGD particles (Kim et al. 2023): each step renders, augments (one shared augmentation, so particles
are compared like with like), encodes and denoises all K in one batch at one timestep, and `engine.csd_grad`
mixes their SDS scores through an RBF kernel on the noisy latents and adds a repulsive term that pushes the
candidates apart. With K = 1 it is exactly VectorFusion. The candidates are ranked at the end as the samples are
(`sampled_init.rank_samples`): by CLIP with real weights, else by the prior's own score where it has one (the
offline `icons` prior), else in the order made.

Where the particles start matters more than the kernel. Score distillation is mode-seeking: from K random shape
sets every candidate climbs to the same mode. Measured with the exact-score `icons` prior (benchmarks/eval_icons.py,
"a heart", "a cat", "a car", "a tree", "a ball", "a moon"): 4 of 4 candidates on one icon for every prompt from
scratch, and repulsion strong enough to separate them (300-3000, with shared noise or a kernel on the prior's
retrieval posteriors) pushed them off every icon instead of onto different ones. So by default (init "auto" ->
"trace") each particle starts from its own raster sample of the prior, vectorized as VectorFusion's init does:
the samples land in different modes, and CSD refines them together (3.5 distinct icons of 4 on those prompts,
measured with the LIVE init; the default traces each sample instead, the faster of the two, `sampled_init.py`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from .. import engine
from ..measures.clip import default_clip
from ..core.pixels import save_png
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from .painting import export_rasters, export_svg, grid_image
from .sampled_init import INIT_HELP, rank_samples, reading_notes, resolve_init
from .distill import (STYLES, SVGDistillSettings, distill_painting, distillation_work, init_painting, make_plan,
                      sample_init)


@dataclass
class CSDVectorFusionSettings(SVGDistillSettings):
    steps: Optional[int] = option(None, "SDS steps of the K candidates together; the paper's 2000", lo=1, hi=20000,
                                  full=2000, quick=60)
    k: int = option(4, "number of candidates (particles), optimized together in one batch", lo=1, hi=64)
    init: str = option("auto", INIT_HELP + "; each candidate starts from its own sample",
                       choices=("auto", "trace", "live", "scratch"))
    repulsion: float = option(1.0, "weight of the kernel-gradient (repulsive) term; 0 keeps only the "
                                   "kernel-weighted score mixing", lo=0.0, hi=100.0, advanced=True)
    bandwidth: Optional[float] = option(None, "RBF kernel bandwidth h; default the median heuristic "
                                              "med^2 / log K", lo=1e-8, hi=1e12, advanced=True)


@register("svg", "csd")
class CSDVectorFusion:
    Settings = CSDVectorFusionSettings
    description = ("Text to K diverse SVGs: K samples of the prior, vectorized, then optimized together as CSD "
                   "(SVGD) particles in one batch, ranked by CLIP (or by the prior's own score)")
    prior = "text"
    scorer = "clip"  # ranks its results with CLIP: the runner loads the scorer with the prior
    inputs = "none"
    requires_prompt = True

    @classmethod
    def estimate(cls, s: CSDVectorFusionSettings, inputs, facts):
        """The work budget's estimate (see `backends.core.budget`): K paintings optimized together."""
        return distillation_work(s, s.k, facts)

    def run(self, s: CSDVectorFusionSettings, *, prior, inputs, out_dir):
        init = resolve_init(s.init, STYLES[s.style].kind)
        plan = make_plan(s, prior, init=init)
        engine.seed_everything(s.seed)
        device = prior.device
        gen = torch.Generator(device="cpu").manual_seed(s.seed)
        scorer = default_clip(device)
        files, meta = {}, {}
        reading_notes(prior, s.prompt, meta)
        if init == "scratch":
            painting, offset = init_painting(plan, s.k, gen, device), 0
        else:  # one prior sample per particle: see the module docstring for why
            painting, offset = yield from sample_init(plan, prior, s, init, scorer, gen, device, out_dir, files, meta,
                                                      samples=s.k, keep=s.k)
        stats: dict = {}
        yield from distill_painting(painting, prior, plan, objective="csd", repulsion=s.repulsion,
                                    bandwidth=s.bandwidth, generator=gen, step_offset=offset,
                                    total=offset + plan.steps, stats=stats)
        scenes = [painting.scene(i) for i in range(s.k)]
        rasters = export_rasters(scenes)
        scores = scorer.score(rasters, s.prompt)
        # the samples' rule: CLIP with real weights, else the prior's own score (offline the CLIP is a tiny
        # random-weight model whose order is noise; the icons prior's score is exact), else the order made
        order, rank_score, ranked_by = rank_samples(rasters, s.prompt, prior=prior, scorer=scorer)
        for rank, i in enumerate(order, start=1):
            files[f"svg_{rank}"] = export_svg(scenes[i], out_dir / f"candidate_{rank}.svg")
            files[f"png_{rank}"] = save_png(rasters[i], out_dir / f"candidate_{rank}.png")
        files = {"svg": files["svg_1"], "png": files["png_1"], **files}  # the best first (the app lists in order)
        sheet = grid_image(rasters[order])
        files["grid"] = save_png(sheet, out_dir / "candidates.png")
        metrics = {"clip_score": float(scores[order[0]]), "clip_score_mean": float(scores.mean()),
                   "reinitialized": float(stats.get("reinitialized", 0)),
                   "diversity": _diversity(rasters)}
        meta.update({"metrics": metrics, **scorer.label(), "prompt_used": plan.prompt, "canvas": plan.size,
                     "ranking": order, "clip_scores": [float(scores[i]) for i in order],
                     "ranked_by": ranked_by,
                     "rank_scores": [float(rank_score[i]) for i in order], "init": init})
        yield Result(files=files, preview=sheet, metadata=meta)


def _diversity(images: torch.Tensor) -> float:
    """Mean pairwise RMS pixel difference between the K candidates (0 = identical)."""
    k = images.shape[0]
    if k < 2:
        return 0.0
    flat = images.reshape(k, -1).float()
    d = torch.cdist(flat, flat) / flat.shape[1] ** 0.5
    return float(d.sum() / (k * (k - 1)))
