"""The one small protocol every diffusion prior implements, and the batched condition it takes.

A prior turns images into latents and back, and predicts (guided) noise for noisy latents. The engine and the
backends only ever talk to this protocol, so Stable Diffusion, InstructPix2Pix, the tiny random-weight models
and the analytic Gaussian prior are interchangeable.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Protocol, Sequence, runtime_checkable

import torch


@dataclass
class Cond:
    """A batch of conditions, one row per sample; every tensor field has the batch on dim 0.

    text: (B, L, D) prompt embeddings; uncond: (B, L, D) embeddings of the negative / empty prompt;
    image: (B, C, h, w) InstructPix2Pix image latents (unscaled `latent_dist.mode()`, as diffusers' pipeline);
    guidance: (B,) text guidance scale; image_guidance: (B,) image guidance scale;
    means: (B, M, C, h, w) per-sample mixture means, only for analytic priors.
    """

    text: torch.Tensor | None = None
    uncond: torch.Tensor | None = None
    image: torch.Tensor | None = None
    guidance: torch.Tensor | None = None
    image_guidance: torch.Tensor | None = None
    means: torch.Tensor | None = None

    def __len__(self) -> int:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                return v.shape[0]
        return 0

    def repeat(self, n: int) -> "Cond":
        """The whole batch tiled n times ([a, b] -> [a, b, a, b]); a condition of batch 1 becomes batch n."""
        return self._map(lambda v: v.repeat(n, *([1] * (v.dim() - 1))))

    def index(self, idx) -> "Cond":
        return self._map(lambda v: v[idx])

    def to(self, device=None, dtype=None) -> "Cond":
        return self._map(lambda v: v.to(device=device, dtype=dtype if v.is_floating_point() else None))

    @staticmethod
    def cat(conds: Sequence["Cond"]) -> "Cond":
        """Concatenate along the batch: all must have the same fields set."""
        out = {}
        for f in fields(Cond):
            vals = [getattr(c, f.name) for c in conds]
            if all(v is None for v in vals):
                out[f.name] = None
            elif any(v is None for v in vals):
                raise ValueError(f"cannot concatenate conditions where only some have {f.name!r}")
            else:
                out[f.name] = torch.cat(vals, dim=0)
        return Cond(**out)

    def _map(self, fn) -> "Cond":
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None})


@runtime_checkable
class Prior(Protocol):
    """What the engine needs from a diffusion model.

    Attributes: name (as the user picked it), kind ("text" or "instruct"), tiny (random weights: results are
    for trying the flow only), analytic (exact closed-form noise prediction), device, dtype (of the denoiser),
    latent_scale (pixels per latent cell: 8 for Stable Diffusion, 1 for analytic), latent_channels,
    alphas_cumprod ((T,) float32 on device), num_train_timesteps.
    """

    name: str
    kind: str
    tiny: bool
    analytic: bool
    device: torch.device
    dtype: torch.dtype
    latent_scale: int
    latent_channels: int
    alphas_cumprod: torch.Tensor
    num_train_timesteps: int

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H/s, W/s) scaled latents; differentiable (float32 path)."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) scaled latents -> (B, 3, h*s, w*s) images in [0, 1]."""

    def condition(
        self,
        prompts: str | Sequence[str],
        *,
        negative: str | Sequence[str] = "",
        images: torch.Tensor | None = None,
        guidance: float = 7.5,
        image_guidance: float = 1.5,
    ) -> Cond:
        """Build a batched condition (text embeddings are cached per prompt string)."""

    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Guided noise prediction for (B, C, h, w) noisy latents at integer timesteps t (B,), all in one call."""


def as_list(prompts: str | Sequence[str]) -> list[str]:
    return [prompts] if isinstance(prompts, str) else list(prompts)
