"""Priors whose exact noise prediction is known in closed form, for measuring the engine and CSD-Edit.

`AnalyticPrior`: data x0 ~ sum_m w_m N(mu_m, sigma^2 I). Then z_t = a x0 + s eps is a mixture of
N(a mu_m, (a^2 sigma^2 + s^2) I), and the optimal noise prediction E[eps | z_t] = -s * grad log p(z_t) is

    eps_hat(z_t) = sum_m r_m(z_t) * s (z_t - a mu_m) / (a^2 sigma^2 + s^2),

with r_m the posterior responsibilities. With it, SDS must reconstruct a single target and CSD must spread
particles over several modes, so the engine's correctness is measured, not judged by eye. The "encoder" is the
identity up to the affine map [0, 1] -> [-1, 1]; text is ignored. The targets are the prior's own means, or the
images a backend gives to `condition(images=...)` (one target per row: `needs_target`).

`AnalyticEditPrior` ("analytic-edit"): an editing model whose answer is known. The empty instruction is a point
mass at the source itself; any other instruction is, at each call and for each row independently, a point mass at
the source + one of `EDIT_DIRECTIONS` (two colour shifts), picked by a hash of the row's source and the timestep:
random-looking across particles and steps, yet the same whether a batch is split into chunks or not, and the same
for CSD-Edit and its per-item baseline under one seed. Its expected edit is their mean (warmer: red up, blue down), but each call's score is noisy per
particle, as a real instruction-following model's is: per-item SDS-edit lets every particle follow its own noise,
so neighbours end with different shifts, while CSD-Edit should end with one consistent shift.
"""
from __future__ import annotations

from typing import Sequence

import torch

from ..engine.sampling import ddim_sample
from ..engine.step import noise
from . import catalog
from .base import Cond, as_list, per_row

# Colour shifts of the analytic edit, in latent units ([-1, 1] per RGB channel).
EDIT_DIRECTIONS = torch.tensor([[0.5, 0.0, -0.1], [0.1, 0.0, -0.5]])


def scaled_linear_alphas_cumprod(num_train_timesteps: int = 1000, beta_start: float = 0.00085, beta_end: float = 0.012) -> torch.Tensor:
    """Stable Diffusion's "scaled_linear" beta schedule, as alphabar_t, shape (T,) float32."""
    betas = torch.linspace(beta_start**0.5, beta_end**0.5, num_train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, dim=0).float()


def mixture_eps(z_t: torch.Tensor, t: torch.Tensor, mu: torch.Tensor, log_w: torch.Tensor, sigma: float,
                alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Exact eps of an isotropic Gaussian mixture: z_t (B, C, H, W), mu (B, M, C, H, W), log_w (B, M) (log weights,
    need not be normalized), t (B,) integer timesteps. Returns (B, C, H, W)."""
    b = z_t.shape[0]
    ab = alphas_cumprod[t.long()].reshape(b, 1, 1, 1, 1)
    a, s2 = ab.sqrt(), 1.0 - ab
    var = a * a * sigma**2 + s2
    diff = z_t.float().unsqueeze(1) - a * mu  # (B, M, C, H, W)
    # responsibilities from log N(z_t; a mu_m, var I): the shared normaliser cancels
    logits = log_w - 0.5 * diff.pow(2).flatten(2).sum(-1) / var.reshape(b, 1)
    r = torch.softmax(logits, dim=1).reshape(*logits.shape, 1, 1, 1)
    return (r * s2.sqrt() * diff / var).sum(dim=1)


# their kinds and sizes: the catalog is their one source
ENTRY, EDIT_ENTRY = catalog.builtin("analytic"), catalog.builtin("analytic-edit")


class _PixelSpace:
    """What both analytic priors share: pixel-space latents in [-1, 1], SD's noise schedule, DDIM sampling."""

    dtype = torch.float32
    latent_channels = 3

    def _setup(self, name: str, device, num_train_timesteps: int) -> None:
        self.name = name
        self.device = torch.device(device)
        self.num_train_timesteps = num_train_timesteps
        self.alphas_cumprod = scaled_linear_alphas_cumprod(num_train_timesteps).to(self.device)
        self.defaults: dict = {}
        self.switches: list = []

    def encode(self, images: torch.Tensor, mode: str = "sample", generator=None) -> torch.Tensor:
        return images.to(self.device) * 2.0 - 1.0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return ((latents + 1.0) / 2.0).clamp(0.0, 1.0)

    @torch.no_grad()
    def sample(self, prompts="", *, steps: int = 50, guidance: float = 7.5, height: int = 64, width: int = 64,
               generator: torch.Generator | None = None, negative="", images=None, image_guidance: float = 1.5):
        cond = self.condition(prompts, negative=negative, images=images, guidance=guidance,
                              image_guidance=image_guidance)
        if images is not None:
            height, width = images.shape[-2:]
        z = noise((len(cond), 3, height, width), self.device, generator)
        return ddim_sample(self, cond, z, steps)


class AnalyticPrior(_PixelSpace):
    """Gaussian-mixture prior with exact eps. means: (M, C, H, W) in latent units ([-1, 1] for images)."""

    kind, tiny, needs_target = ENTRY.kind, ENTRY.tiny, ENTRY.needs_target
    native_size, latent_scale, size_multiple = ENTRY.native_size, ENTRY.latent_scale, ENTRY.size_multiple
    description = "a Gaussian around the target image with its exact noise prediction (measures the engine)"

    def __init__(self, means: torch.Tensor | None = None, weights: Sequence[float] | torch.Tensor | None = None,
                 sigma: float = 0.0, *, device: torch.device | str = "cpu", num_train_timesteps: int = 1000,
                 name: str = "analytic"):
        self._setup(name, device, num_train_timesteps)
        self.sigma = float(sigma)
        self.means = None if means is None else means.to(self.device, torch.float32)
        if weights is None and means is not None:
            weights = torch.full((means.shape[0],), 1.0 / means.shape[0])
        self.weights = None if weights is None else torch.as_tensor(weights, dtype=torch.float32, device=self.device)
        if means is not None:
            self.latent_channels = means.shape[1]

    def condition(self, prompts="", *, negative="", images=None, guidance=7.5, image_guidance=1.5) -> Cond:
        """Text is ignored; images (B, 3, H, W) in [0, 1], if given, are each row's one target."""
        b = len(as_list(prompts))
        if images is not None and b == 1:
            b = images.shape[0]
        g = torch.full((b,), float(guidance), device=self.device)
        return Cond(guidance=g, image=None if images is None else self.encode(images).float())

    @torch.no_grad()
    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond | None = None) -> torch.Tensor:
        b = z_t.shape[0]
        if cond is not None and cond.image is not None:
            mu, log_w = cond.image.unsqueeze(1), torch.zeros(b, 1, device=z_t.device)
        elif self.means is not None:
            mu = self.means.unsqueeze(0).expand(b, *self.means.shape)
            log_w = torch.log(self.weights).unsqueeze(0).expand(b, -1)
        else:
            raise ValueError("the analytic prior has no target: give it means or condition(images=targets)")
        return mixture_eps(z_t, torch.as_tensor(t, device=z_t.device).reshape(-1).expand(b), mu, log_w, self.sigma,
                           self.alphas_cumprod)


class AnalyticEditPrior(_PixelSpace):
    """The analytic colour-shift edit (see the module docstring), behind the InstructPix2Pix-like protocol.

    Cond.text holds (B, 1): 1 for an instruction, 0 for the empty one; Cond.image the sources' latents. The
    guidance scales are ignored: the edit's size is fixed by `EDIT_DIRECTIONS`, so the figures stay comparable.
    """

    kind, tiny, needs_target = EDIT_ENTRY.kind, EDIT_ENTRY.tiny, EDIT_ENTRY.needs_target
    native_size, latent_scale, size_multiple = EDIT_ENTRY.native_size, EDIT_ENTRY.latent_scale, EDIT_ENTRY.size_multiple
    description = ("a closed-form edit by one of two random colour shifts per call (measures CSD-Edit's "
                   "consistency; knows no words)")

    def __init__(self, *, device: torch.device | str = "cpu", num_train_timesteps: int = 1000,
                 name: str = "analytic-edit"):
        self._setup(name, device, num_train_timesteps)
        self.directions = EDIT_DIRECTIONS.to(self.device).reshape(-1, 3, 1, 1)

    def condition(self, prompts="", *, negative="", images=None, guidance=1.0, image_guidance=1.5) -> Cond:
        if images is None:
            raise ValueError("an editing prior needs the source images to condition on")
        b = images.shape[0]
        prompts = per_row(prompts, b)
        edit = torch.tensor([[1.0 if p.strip() else 0.0] for p in prompts], device=self.device)
        return Cond(text=edit, uncond=torch.zeros_like(edit), image=self.encode(images).float(),
                    guidance=torch.full((b,), float(guidance), device=self.device),
                    image_guidance=torch.full((b,), float(image_guidance), device=self.device))

    @torch.no_grad()
    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        b = z_t.shape[0]
        t = torch.as_tensor(t, device=z_t.device).reshape(-1).expand(b)
        src = cond.image.float()
        pick = _row_hash(src, t) % len(self.directions)
        edited = src + cond.text.reshape(b, 1, 1, 1) * self.directions[pick]
        zero = torch.zeros(b, 1, device=z_t.device)
        return mixture_eps(z_t, t, edited.unsqueeze(1), zero, 0.0, self.alphas_cumprod)


def load_analytic(source=None, *, device="cpu", memory="none") -> AnalyticPrior:
    return AnalyticPrior(device=device)


def load_edit(source=None, *, device="cpu", memory="none") -> AnalyticEditPrior:
    return AnalyticEditPrior(device=device)


def _row_hash(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """(B,) non-negative int64 from each row's values (quantized to 1/255) and its timestep, well mixed (a
    splitmix-style finalizer, so every bit depends on both): a deterministic stand-in for a random draw that does
    not depend on how rows are batched."""
    mask = (1 << 62) - 1
    flat = (x.flatten(1) * 255).round().long()
    h = (flat * torch.arange(1, flat.shape[1] + 1, device=x.device) % 1_000_003).sum(1) * 1_000_033 + t.long()
    for mult in (0x5851F42D4C957F2D, 0x14057B7EF767814F):
        h = h & mask
        h = ((h ^ (h >> 31)) * (mult & mask)) & mask
    return (h ^ (h >> 29)) >> 8
