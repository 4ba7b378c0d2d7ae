"""`image/sds`: optimize a raster image directly with SDS (DreamFusion's 2D sanity check).

With the analytic prior centred on the --input image, SDS must reconstruct that image: the end-to-end proof
that sampling, guidance, weighting, the SDS loss and the loop are right. With a text prior it turns a prompt
into an image the slow way, which is the point of the check, not a product.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core import budget
from .. import engine
from ..core.errors import InputError
from ..core.pixels import load_image, psnr, save_png, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result


@dataclass
class ImageSDSSettings:
    prompt: str = option("", "what the image should show (ignored by the analytic prior)")
    steps: int = option(500, "optimization steps", lo=1, hi=20000)
    seed: int = option(0, "random seed", lo=0, hi=2**31 - 1)
    size: int = option(64, "image side in pixels when no target image is given", lo=8, hi=1024)
    lr: float = option(0.05, "Adam learning rate (cosine-decayed to 1% by the end)", lo=1e-6, hi=10.0, advanced=True)
    guidance: float = option(100.0, "classifier-free guidance scale", lo=0.0, hi=500.0, advanced=True)
    t_min: int = option(20, "smallest timestep", lo=0, hi=999, advanced=True, at_most="t_max")
    t_max: int = option(980, "largest timestep", lo=1, hi=999, advanced=True)
    weighting: str = option("sds", "w(t)", choices=engine.WEIGHTINGS, advanced=True)
    anneal: str = option("none", "timestep annealing", choices=("none", "linear", "sqrt"), advanced=True)
    every: int = option(25, "report progress every k steps", lo=1, hi=1000, advanced=True)


@register("image", "sds")
class ImageSDS:
    Settings = ImageSDSSettings
    description = ("Optimize a raster image directly with SDS (DreamFusion's 2D check); the analytic prior "
                   "reconstructs the target image")
    prior = "text"
    analytic_ok = True
    inputs = "image?"

    @classmethod
    def estimate(cls, s: ImageSDSSettings, inputs, facts):
        """The work budget's estimate (see `backends.core.budget`): the image (from --input's header, else size x
        size) as float32 with Adam's two moments, its gradient and the prior's encode: ~80 B a pixel."""

        w, h = budget.image_size(inputs[0]) if inputs else (s.size, s.size)
        return budget.Work(int(80 * w * h), f"a {w}x{h} image", "the input image's size" if inputs else "size")

    def run(self, s: ImageSDSSettings, *, prior, inputs, out_dir):
        device = prior.device
        target = load_image(inputs[0], device=device) if inputs else None
        if prior.needs_target and target is None:
            raise InputError(f"the {prior.name} prior needs a target image: give the image it should reconstruct")
        h, w = (target.shape[-2:] if target is not None else (s.size, s.size))
        scale = prior.latent_scale
        h, w = h // scale * scale, w // scale * scale
        engine.seed_everything(s.seed)
        gen = torch.Generator(device).manual_seed(s.seed)
        image = torch.full((1, 3, h, w), 0.5, device=device).requires_grad_(True)
        cond = prior.condition(s.prompt, guidance=s.guidance,
                               images=target[None, :, :h, :w] if prior.needs_target else None)
        opt = torch.optim.Adam([image], lr=s.lr)

        def step(i: int) -> engine.Step:
            t = engine.sample_timesteps(1, s.t_min, s.t_max, step=i, total_steps=s.steps, anneal=s.anneal,
                                        generator=gen, device=device)
            loss, _ = engine.distillation_loss(prior, prior.encode(image), cond, t, generator=gen,
                                               weighting=s.weighting)
            return engine.Step(loss)

        def preview():
            return to_uint8(image[0])

        def lr_schedule(i: int) -> float:
            return engine.warmup_cosine(i, warmup=0, total=s.steps, start=1.0, peak=1.0, end=0.01)

        def project(i: int) -> None:  # keep pixels valid without cutting the gradient at the bounds
            with torch.no_grad():
                image.clamp_(0, 1)

        last = None
        for progress in engine.distill(step, opt, steps=s.steps, every=s.every, preview=preview,
                                       lr_schedule=lr_schedule, after_step=project):
            if target is not None:
                progress.metrics["psnr"] = psnr(image.detach().clamp(0, 1)[0], target[..., :h, :w])
            last = progress
            yield progress
        final = image.detach().clamp(0, 1)[0]
        files = {"png": save_png(final, out_dir / "result.png")}
        metrics = dict(last.metrics) if last else {}
        yield Result(files=files, preview=to_uint8(final), metadata={"metrics": metrics})
