"""One score-distillation step on clean latents: the composition every backend and benchmark uses.

    z (latents of the rendered / optimized images, differentiable) -> add noise at t -> the prior's guided noise
    prediction (no gradient through the denoiser) -> SDS or CSD gradient -> a loss whose gradient w.r.t. z is it.
"""
from __future__ import annotations

import torch

from .schedule import weighting as weight_of
from .sds import add_noise, csd_grad, grad_to_loss, sds_grad


def distillation_loss(prior, z: torch.Tensor, cond, t: torch.Tensor, *, generator: torch.Generator | None = None,
                      weighting: str = "sds", objective: str = "sds", repulsion: float = 1.0,
                      bandwidth: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, grad) of one SDS (objective "sds") or CSD ("csd": the batch's rows are the particles) step.

    z: (B, C, h, w) clean latents, differentiable; cond: the prior's condition with batch B; t: (B,) integer
    timesteps; generator: draws the noise eps (on its own device, then moved). grad: (B, C, h, w), detached.
    """
    gen_device = generator.device if generator is not None else z.device
    eps = torch.randn(z.shape, generator=generator, device=gen_device, dtype=z.dtype)
    if eps.device != z.device:  # a CPU generator feeding a GPU run: copy without making the host wait
        eps = eps.pin_memory().to(z.device, non_blocking=True) if z.device.type == "cuda" else eps.to(z.device)
    ab = prior.alphas_cumprod[t]
    z_t = add_noise(z.detach(), eps, ab)
    eps_hat = prior.predict_eps(z_t.to(prior.dtype), t, cond).to(z.dtype)
    w = weight_of(ab, weighting)
    if objective == "csd":
        grad = csd_grad(z_t, eps_hat, eps, w, bandwidth=bandwidth, repulsion=repulsion)
    elif objective == "sds":
        grad = sds_grad(eps_hat, eps, w)
    else:
        raise ValueError(f"objective must be 'sds' or 'csd', not {objective!r}")
    return grad_to_loss(z, grad), grad.detach()
