"""A prior whose exact noise prediction is known in closed form: a Gaussian mixture around target latents.

Data x0 ~ sum_m w_m N(mu_m, sigma^2 I). Then z_t = a x0 + s eps is a mixture of N(a mu_m, (a^2 sigma^2 + s^2) I),
and the optimal noise prediction E[eps | z_t] = -s * grad log p(z_t) is

    eps_hat(z_t) = sum_m r_m(z_t) * s (z_t - a mu_m) / (a^2 sigma^2 + s^2),

with r_m the posterior responsibilities. With it, SDS must reconstruct a single target and CSD must spread
particles over several modes, so the engine's correctness is measured, not judged by eye. The "encoder" is the
identity up to the affine map [0, 1] -> [-1, 1]; text is ignored (the mixture is the whole conditional).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import Cond, as_list


def scaled_linear_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion's "scaled_linear" beta schedule, as alphabar_t, shape (T,) float32."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


class AnalyticPrior:
    """Gaussian-mixture prior with exact eps. means: (M, C, H, W) in latent units ([-1, 1] for images)."""

    kind = "text"
    tiny = False
    analytic = True
    latent_scale = 1
    dtype = torch.float32

    def __init__(
        self,
        means: torch.Tensor | None = None,
        weights: Sequence[float] | torch.Tensor | None = None,
        sigma: float = 0.0,
        *,
        device: torch.device | str = "cpu",
        num_train_timesteps: int = 1000,
        name: str = "analytic",
    ):
        self.name = name
        self.device = torch.device(device)
        self.sigma = float(sigma)
        self.num_train_timesteps = num_train_timesteps
        self.alphas_cumprod = scaled_linear_alphas_cumprod(num_train_timesteps).to(self.device)
        self.means = None if means is None else means.to(self.device, torch.float32)
        if weights is None and means is not None:
            weights = torch.full((means.shape[0],), 1.0 / means.shape[0])
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        self.latent_channels = 3 if means is None else means.shape[1]

    @classmethod
    def from_images(cls, images: torch.Tensor, **kwargs) -> "AnalyticPrior":
        """Centre one mode on each (3, H, W) image in [0, 1] of `images` (M, 3, H, W)."""
        return cls(images * 2.0 - 1.0, **kwargs)

    def with_means(self, means: torch.Tensor, weights=None) -> "AnalyticPrior":
        return AnalyticPrior(means, weights, self.sigma, device=self.device,
                             num_train_timesteps=self.num_train_timesteps, name=self.name)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        return images * 2.0 - 1.0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((latents + 1.0) / 2.0).clamp(0.0, 1.0)

    def condition(self, prompts="", *, negative="", images=None, guidance=7.5, image_guidance=1.5, means=None) -> Cond:
        """Text is ignored; `means` ((M, C, H, W) or (B, M, C, H, W)) overrides the prior's modes per sample."""
        b = len(as_list(prompts))
        g = torch.full((b,), float(guidance), device=self.device)
        if means is not None:
            means = means.to(self.device, torch.float32)
            if means.dim() == 4:
                means = means.unsqueeze(0).expand(b, *means.shape)
        return Cond(guidance=g, means=means)

    @torch.no_grad()
    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        z_t = z_t.float()
        b = z_t.shape[0]
        if cond is not None and cond.means is not None:
            mu = cond.means  # (B, M, C, H, W)
            w = torch.full(mu.shape[:2], 1.0 / mu.shape[1], device=z_t.device)
        elif self.means is not None:
            mu = self.means.unsqueeze(0).expand(b, *self.means.shape)
            w = self.weights.unsqueeze(0).expand(b, -1)
        else:
            raise ValueError("the analytic prior has no target: give it means (e.g. the --input image)")
        ab = self.alphas_cumprod[t.long()].reshape(b, 1, 1, 1, 1)
        a, s2 = ab.sqrt(), 1.0 - ab
        var = a * a * self.sigma**2 + s2
        diff = z_t.unsqueeze(1) - a * mu  # (B, M, C, H, W)
        # responsibilities from log N(z_t; a mu_m, var I): the shared normaliser cancels
        logits = torch.log(w) - 0.5 * diff.pow(2).flatten(2).sum(-1) / var.reshape(b, 1)
        r = torch.softmax(logits, dim=1).reshape(*logits.shape, 1, 1, 1)
        return (r * s2.sqrt() * diff / var).sum(dim=1)
