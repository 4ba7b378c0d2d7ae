"""One score-distillation step on clean latents: the only SDS / CSD step; every backend and benchmark calls it.

    z (latents of the rendered / optimized images) -> add noise eps at t -> a noise prediction (no gradient through
    the denoiser) and the baseline it is compared with -> the SDS or CSD gradient with respect to z.

As k-diffusion's samplers take a model, the step takes the prediction as a callable, so what differs between methods
is only that callable: text-conditioned SDS / CSD compare the prior's guided prediction with the sampled noise;
CSD-Edit compares it with the prior's prediction for the source image noised by the same eps.
"""
from __future__ import annotations

from typing import Callable, NamedTuple

import torch

from ..core.devices import to_device
from .schedule import weighting as weight_of
from .sds import Correspondence, add_noise, csd_grad, grad_to_loss, sds_grad

# (z_t, t, eps) -> (eps_hat, eps_base): the guided prediction and the baseline subtracted from it, both (B, C, h, w)
Predict = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
# z_t -> (K (N, N), grad_K (N, C, h, w)): a kernel other than the RBF on the noisy latents (e.g. a perceptual one)
Kernel = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
OBJECTIVES = ("sds", "csd")


class Distilled(NamedTuple):
    """One step's gradient (B, C, h, w) on the clean latents, detached, and the two predictions it came from."""
    grad: torch.Tensor
    eps_hat: torch.Tensor
    eps_base: torch.Tensor


def distillation_grad(predict: Predict, z: torch.Tensor, t: torch.Tensor, eps: torch.Tensor,
                      alphas_cumprod: torch.Tensor, *, weighting: str = "sds", objective: str = "sds",
                      repulsion: float = 1.0, bandwidth: float | None = None, bandwidth_scale: float = 1.0,
                      kernel: Kernel | None = None, correspondence: Correspondence | None = None
                      ) -> Distilled:
    """The gradient of one SDS (objective "sds") or CSD ("csd": the batch's rows are the particles) step.

    z: (B, C, h, w) clean latents; t: (B,) integer timesteps; eps: (B, C, h, w) the sampled noise; alphas_cumprod:
    the prior's schedule. predict(z_t, t, eps) -> (eps_hat, eps_base) runs the denoiser. SDS: w(t) (eps_hat -
    eps_base); CSD: SVGD over those scores with the RBF kernel on z_t (bandwidth: the median heuristic times
    bandwidth_scale when None), or with kernel(z_t) when given; correspondence: where each particle's cells are
    in the others (see `csd_grad`).
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be 'sds' or 'csd', not {objective!r}")
    ab = alphas_cumprod[t]
    z_t = add_noise(z.detach(), eps, ab)
    with torch.no_grad():
        eps_hat, eps_base = predict(z_t, t, eps)
    w = weight_of(ab, weighting)
    if objective == "sds" or z.shape[0] == 1:
        grad = sds_grad(eps_hat, eps_base, w)
    else:
        grad = csd_grad(z_t, eps_hat, eps_base, w, bandwidth=bandwidth, bandwidth_scale=bandwidth_scale,
                        repulsion=repulsion, kernel=None if kernel is None else kernel(z_t),
                        correspondence=correspondence)
    return Distilled(grad.detach(), eps_hat, eps_base)


def draw_noise(like: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal noise shaped like `like`, drawn on the generator's own device, then moved to `like`'s."""
    return noise(like.shape, like.device, generator, like.dtype)


def noise(shape, device, generator: torch.Generator | None = None, dtype=torch.float32) -> torch.Tensor:
    """Standard normal noise of `shape` on `device`, drawn on the generator's own device (so a seeded CPU generator
    gives the same numbers on any machine) and copied over without making the host wait."""
    gen_device = generator.device if generator is not None else device
    return to_device(torch.randn(shape, generator=generator, device=gen_device, dtype=dtype), device)


def distillation_loss(prior, z: torch.Tensor, cond, t: torch.Tensor, *, generator: torch.Generator | None = None,
                      weighting: str = "sds", objective: str = "sds", repulsion: float = 1.0,
                      bandwidth: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, grad) of one text-conditioned step: the prior's guided prediction against the sampled noise.

    z: (B, C, h, w) clean latents, differentiable; cond: the prior's condition with batch B; t: (B,) integer
    timesteps; generator: draws the noise. loss: a scalar whose gradient with respect to z is grad (detached).
    """
    def predict(z_t, tt, eps):
        return prior.predict_eps(z_t.to(prior.dtype), tt, cond).to(z.dtype), eps

    step = distillation_grad(predict, z, t, draw_noise(z, generator), prior.alphas_cumprod, weighting=weighting,
                             objective=objective, repulsion=repulsion, bandwidth=bandwidth)
    return grad_to_loss(z, step.grad), step.grad
