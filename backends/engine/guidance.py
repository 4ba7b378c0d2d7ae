"""Guidance rules that combine several noise predictions into one (plain functions over tensors)."""
from __future__ import annotations

import torch


def cfg(eps_uncond: torch.Tensor, eps_cond: torch.Tensor, scale: float | torch.Tensor) -> torch.Tensor:
    """Classifier-free guidance: eps_uncond + scale * (eps_cond - eps_uncond).

    scale = 1 returns eps_cond, scale = 0 returns eps_uncond. (Not eps_cond + scale * (eps_cond - eps_uncond),
    which is guidance at scale + 1.) A tensor scale broadcasts per sample: shape (B, 1, 1, 1).
    """
    return eps_uncond + scale * (eps_cond - eps_uncond)


def ip2p_guidance(
    eps_uncond: torch.Tensor,
    eps_image: torch.Tensor,
    eps_full: torch.Tensor,
    text_scale: float | torch.Tensor,
    image_scale: float | torch.Tensor,
) -> torch.Tensor:
    """InstructPix2Pix 3-way guidance (Brooks et al. 2023, eq. 3).

    eps_uncond = eps(z_t, no image, no text), eps_image = eps(z_t, image, no text), eps_full = eps(z_t, image, text):
    eps_uncond + image_scale * (eps_image - eps_uncond) + text_scale * (eps_full - eps_image).
    """
    return eps_uncond + image_scale * (eps_image - eps_uncond) + text_scale * (eps_full - eps_image)
