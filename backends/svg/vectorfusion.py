"""`svg/vectorfusion`: text to SVG by score distillation through the vector renderer (Jain et al., CVPR 2023).

One step: render the scene (600 px), augment it (random perspective + 512 crop, from-scratch runs only), resize
it to the prior's native resolution, encode it (fp32 VAE, differentiable), add noise at t ~ U(50, 950), ask the
frozen UNet for the guided noise (one call, CFG inside the prior) and backpropagate the SDS gradient
w(t) (eps_hat - eps) through the encoder and the renderer into control points and colors. The self-
intersection (Xing) loss keeps paths from looping; every 50 steps, paths that faded (opacity < 0.05) or
collapsed (area < 64 px^2) are re-initialized as fresh circles on top.

The default init is the paper's best variant, "sample, vectorize, refine": K raster samples from the same prior,
ranked (CLIP with real weights, else the prior's own score: `sampled_init.rank_samples`), the best one traced into
paths (init "trace", milliseconds; "live" fits LIVE-style instead, minutes on a CPU), then 1K SDS steps without
augmentation. init "scratch" starts from random circles (2K steps with augmentation).

The machinery (`Plan`, `distill_painting`, the init from samples) lives in `svg/distill.py`, which optimizes K scenes
at once; `svg/csd` uses it with the CSD objective so K candidates are one batched optimization.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .. import engine
from ..measures.clip import default_clip
from ..core.pixels import save_png, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from .distill import (STYLES, SVGDistillSettings, clip_metadata, distill_painting, distillation_work, init_painting,
                      make_plan, sample_init, with_encoder)
from .sampled_init import INIT_HELP, reading_notes, resolve_init
from .painting import export_rasters, export_svg


@dataclass
class VectorFusionSettings(SVGDistillSettings):
    init: str = option("auto", INIT_HELP, choices=("auto", "trace", "live", "scratch"))
    k: int = option(4, "raster samples drawn for init trace or live (the best one is vectorized)", lo=1, hi=64)


@register("svg", "vectorfusion")
class VectorFusion:
    Settings = VectorFusionSettings
    description = ("Text to SVG (VectorFusion): score distillation through a differentiable vector renderer; "
                   "iconography, pixel art or sketch; optional sample -> vectorize -> fine-tune init")
    prior = "text"
    scorer = "clip"  # ranks its results with CLIP: the runner loads the scorer with the prior
    inputs = "none"
    requires_prompt = True

    @classmethod
    def estimate(cls, s: VectorFusionSettings, inputs, facts):
        """The work budget's estimate (see `backends.core.budget`): one painting (init=live adds K raster samples at
        the prior's size, bounded by the model's own memory)."""
        return distillation_work(s, 1, facts)

    def run(self, s: VectorFusionSettings, *, prior, inputs, out_dir):
        init = resolve_init(s.init, STYLES[s.style].kind)
        plan = make_plan(s, prior, init=init)
        with_encoder(prior, s.encoder)  # a missing fast VAE fails here, not after the init's sampling
        engine.seed_everything(s.seed)
        device = prior.device
        gen = torch.Generator(device="cpu").manual_seed(s.seed)
        scorer = default_clip(device)
        files, meta = {}, {"init": init}
        reading_notes(prior, s.prompt, meta)
        if init == "scratch":
            painting, offset = init_painting(plan, 1, gen, device), 0
        else:
            painting, offset = yield from sample_init(plan, prior, s, init, scorer, gen, device, out_dir, files, meta,
                                                      samples=s.k)
        stats: dict = {}
        yield from distill_painting(painting, prior, plan, objective="sds", generator=gen, step_offset=offset,
                                    total=offset + plan.steps, stats=stats)
        scene = painting.scene(0)
        raster = export_rasters([scene])[0]
        # the result first (the app lists files in this order), then what the init made
        files = {"svg": export_svg(scene, out_dir / "result.svg"), "png": save_png(raster, out_dir / "result.png"),
                 **files}
        scores, label = clip_metadata(scorer, raster[None], s.prompt)
        metrics = {"clip_score": scores[0], "reinitialized": float(stats.get("reinitialized", 0)),
                   "shapes": float(len(scene.shapes))}
        meta.update({"metrics": metrics, **label, "prompt_used": plan.prompt, "canvas": plan.size,
                     "prior_resolution": plan.native, "augment": plan.augment})
        yield Result(files=files, preview=to_uint8(raster), metadata=meta)
