"""Deterministic DDIM sampling over any noise predictor (a plain function, as k-diffusion's samplers are)."""
from __future__ import annotations

from typing import Callable

import torch


def ddim_timesteps(steps: int, num_train_timesteps: int, device=None) -> torch.Tensor:
    """`steps` timesteps, high to low, with Stable Diffusion's "leading" spacing and steps_offset = 1."""
    if not 1 <= steps <= num_train_timesteps:
        raise ValueError(f"steps must be between 1 and {num_train_timesteps}, not {steps}")
    ratio = num_train_timesteps // steps
    return (torch.arange(steps, device=device) * ratio + 1).clamp(max=num_train_timesteps - 1).flip(0)


@torch.no_grad()
def ddim(predict_eps: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], z: torch.Tensor,
         alphas_cumprod: torch.Tensor, steps: int) -> torch.Tensor:
    """DDIM with eta = 0 from the noise z (B, C, h, w) to clean latents.

    predict_eps(z_t, t) -> eps, t a 0-dim long tensor. The last step lands on alphabar_0 (SD's
    set_alpha_to_one = False), as diffusers' DDIMScheduler does for Stable Diffusion.
    """
    ac = alphas_cumprod
    timesteps = ddim_timesteps(steps, ac.shape[0], device=ac.device)
    z = z.float()
    for i, t in enumerate(timesteps):
        eps = predict_eps(z, t).float()
        a_t = ac[t]
        a_prev = ac[timesteps[i + 1]] if i + 1 < steps else ac[0]
        x0 = (z - (1 - a_t).sqrt() * eps) / a_t.sqrt()
        z = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
    return z


def ddim_sample(prior, cond, z: torch.Tensor, steps: int) -> torch.Tensor:
    """A prior's deterministic sample: DDIM (eta = 0) of its guided prediction under `cond` from the start z
    (B, C, h, w) at the first timestep, decoded to (B, 3, H, W) images in [0, 1]. How every prior's `sample` ends;
    the condition and the start are the prior's own (pure noise, or the icons prior's exact noisy marginal)."""
    return prior.decode(ddim(lambda z_t, t: prior.predict_eps(z_t, t, cond), z, prior.alphas_cumprod, steps))
