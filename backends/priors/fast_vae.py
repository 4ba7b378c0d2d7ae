"""An opt-in `fast` encoder/decoder for Stable Diffusion latents: diffusers' `AutoencoderTiny` (TAESD).

Why: score distillation backpropagates through the encoder at every step. SD's KL encoder costs 28.9 ms fwd+bwd
at 512 px on an H200 (fp32); TAESD (2.4M parameters) costs 6.3 ms, at some cost in fidelity that
`encoder_fidelity` below measures. Used where a backend's `encoder` setting asks for it (see `with_encoder`).

The latent convention, in one place (`to_sd_latents` / `from_sd_latents`). The priors work in SD's *scaled*
latents, z = AutoencoderKL mean * 0.18215, the latents the UNet sees. TAESD was distilled to produce those
directly: its config says `scaling_factor = 1.0`, and diffusers' pipelines, which take
`pipe.vae = AutoencoderTiny.from_pretrained("madebyollin/taesd")` as a drop-in (diffusers docs, "Tiny
AutoEncoder"), apply the same formulas to either VAE: `latents = vae.config.scaling_factor * vae.encode(x)` in
img2img's prepare_latents, and `vae.decode(latents / vae.config.scaling_factor)` before the image processor. So a
TAESD encoding is used as is (times 1.0), never times 0.18215; applying the config's factor (not a constant)
keeps that true for any AutoencoderTiny whose config says otherwise. Images: the encoder takes [-1, 1] (diffusers'
EncoderTiny maps it to TAESD's own [0, 1]) and the decoder returns [-1, 1], as for the KL VAE.

InstructPix2Pix's image condition is the KL encoder's *unscaled* mode, computed once per run under no_grad; keep
the KL encoder for it and use this one only where the per-step gradient flows.

Weights: `madebyollin/taesd` (for SD 1.x / 2.x; the SDXL VAE's latents differ, that is `taesdxl`) from a local
folder or the local Hugging Face cache only (`local_files_only=True`: never downloaded implicitly), or "tiny": a
random-weight AutoencoderTiny with small channel counts, built in code and loaded through the same function,
for tests (its pictures mean nothing).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Mapping

import torch

from ..engine.schedule import sample_timesteps
from ..engine.step import distillation_loss
from ..core.errors import ModelUnavailableError
from ..core.pixels import psnr
from .analytic import AnalyticPrior
from .base import Cond
from .catalog import HELPERS
from .machine import build_once, default_device, looks_like_path

ENV = HELPERS["fast-vae"].env  # a hub id or a local folder to use instead of the catalog's default
TINY = "tiny"
TINY_VERSION = "v1"  # bump when build_tiny_fast_vae's recipe changes
_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")


# ---- the latent convention ----
def to_sd_latents(raw: torch.Tensor, config: Mapping) -> torch.Tensor:
    """AutoencoderTiny encoder output (B, C, h, w) -> the UNet's scaled latents: raw * config["scaling_factor"]
    (1.0 for TAESD, whose raw output already is SD's scaled latent), as diffusers' img2img pipeline does."""
    return raw * float(config["scaling_factor"])


def from_sd_latents(latents: torch.Tensor, config: Mapping) -> torch.Tensor:
    """The UNet's scaled latents (B, C, h, w) -> AutoencoderTiny decoder input: latents / config["scaling_factor"],
    as diffusers' pipelines do before `vae.decode`."""
    return latents / float(config["scaling_factor"])


# ---- where the weights are ----
def default_source() -> str:
    """$DISTILL_FAST_VAE if set, else the catalog's default (madebyollin/taesd)."""
    return HELPERS["fast-vae"].source()


def available(source: str | os.PathLike | None = None) -> tuple[bool, str]:
    """Whether `source` (default: default_source()) can be loaded without a download, and why (not).

    Cheap: it looks for the config and weight files, it does not load them. "tiny" is always available.
    """
    source = str(source) if source is not None else default_source()
    if source == TINY:
        return True, "the tiny random-weight fast VAE, built in code (for tests: its pictures mean nothing)"
    if looks_like_path(source):
        folder = Path(source).expanduser()
        if not (folder / "config.json").is_file():
            return False, f"no AutoencoderTiny folder at '{folder}' (config.json missing)"
        if not any((folder / w).is_file() for w in _WEIGHTS):
            return False, f"'{folder}' has no weights ({' or '.join(_WEIGHTS)})"
        return True, f"local folder '{folder}'"
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = [try_to_load_from_cache(source, f) for f in ("config.json",) + _WEIGHTS]
    except ValueError as err:  # a malformed repo id
        return False, f"'{source}' is not a hub id or a folder ({err})"
    if isinstance(cached[0], str) and any(isinstance(w, str) for w in cached[1:]):
        return True, f"'{source}' from the local Hugging Face cache"
    return False, (f"'{source}' is not in the local Hugging Face cache and is never downloaded implicitly: run "
                   f"`hf download {source}` (about 10 MB), or set {ENV} to a local folder")


# ---- the model ----
class FastVAE:
    """AutoencoderTiny behind the two calls the priors need. Deterministic: no posterior to sample.

    Attributes: name, device, dtype (of the weights; fp32 by default because SDS gradients pass through it),
    latent_channels, latent_scale (pixels per latent cell, 8 for TAESD), tiny, vae (the diffusers module).
    """

    def __init__(self, vae, *, name: str, device: torch.device, tiny: bool = False):
        self.vae = vae.to(device).eval().requires_grad_(False)  # no weight grads; input grads still flow
        # diffusers' EncoderTiny skips its [-1, 1] -> [0, 1] input map when gradient checkpointing is on, which
        # would silently shift every latent; it is off after from_pretrained, and must stay off.
        if getattr(self.vae, "is_gradient_checkpointing", False):
            self.vae.disable_gradient_checkpointing()
        self.name, self.tiny = name, tiny
        self.device = torch.device(device)
        self.dtype = next(self.vae.parameters()).dtype
        self.latent_channels = int(self.vae.config.latent_channels)
        self.latent_scale = 2 ** (len(self.vae.config.encoder_block_out_channels) - 1)

    def __repr__(self) -> str:
        return f"FastVAE(name={self.name!r}, device={self.device}, dtype={self.dtype})"

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1], H and W multiples of latent_scale -> (B, C, H/8, W/8) SD-scaled latents,
        float32, differentiable with respect to images (for SDS)."""
        h, w = images.shape[-2:]
        if h % self.latent_scale or w % self.latent_scale:
            raise ValueError(f"image size {h}x{w} is not a multiple of {self.latent_scale}")
        x = images.to(self.device, self.dtype) * 2.0 - 1.0
        return to_sd_latents(self.vae.encode(x).latents.float(), self.vae.config)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) SD-scaled latents -> (B, 3, 8h, 8w) float32 images in [0, 1]. Differentiable; wrap in
        torch.no_grad() for previews."""
        x = self.vae.decode(from_sd_latents(latents.to(self.device, self.dtype), self.vae.config)).sample
        return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)


def load_fast_vae(source: str | os.PathLike | None = None, *, device: torch.device | str | None = None,
                  dtype: torch.dtype = torch.float32) -> FastVAE:
    """Load the fast VAE from `source` (default default_source(): $DISTILL_FAST_VAE or madebyollin/taesd; a hub id
    found in the local cache, a local folder, or "tiny").

    device: default CUDA when available, else CPU. dtype: of the weights, default float32 (fp16 is faster on a
    GPU, and TAESD tolerates it, but opt in). Raises ModelUnavailableError, with `available`'s reason, when the
    weights are not on this machine; nothing is downloaded.
    """
    source = str(source) if source is not None else default_source()
    device = torch.device(device) if device is not None else default_device()
    folder = str(ensure_tiny_fast_vae()) if source == TINY else source
    ok, reason = available(folder)
    if not ok:
        raise ModelUnavailableError(f"The fast VAE could not be loaded: {reason}.")
    from diffusers import AutoencoderTiny

    try:
        vae = AutoencoderTiny.from_pretrained(str(Path(folder).expanduser()) if looks_like_path(folder) else folder,
                                              torch_dtype=dtype, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelUnavailableError(f"The fast VAE '{source}' could not be loaded ({err}).") from err
    return FastVAE(vae, name=source, device=device, tiny=source == TINY)


# ---- the tiny random-weight one ----
def build_tiny_fast_vae(path: str | os.PathLike, seed: int = 0) -> Path:
    """An AutoencoderTiny of TAESD's structure (4 levels: 8x downsampling, 4 latent channels) with 8 channels per
    level and one block per level, weights drawn from `seed`, saved with save_pretrained to `path`."""
    from diffusers import AutoencoderTiny

    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        torch.manual_seed(seed)
        vae = AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                              num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1), latent_channels=4)
    vae.save_pretrained(path)
    return Path(path)


def ensure_tiny_fast_vae() -> Path:
    """Build the tiny fast VAE into $DISTILL_CACHE/tiny-taesd-v1 (default ~/.cache/distill_studio) once (race-safe,
    see `machine.build_once`); its folder."""
    return build_once(f"tiny-taesd-{TINY_VERSION}", build_tiny_fast_vae, "config.json")


# ---- what the fast encoder costs in results ----
def encoder_fidelity(
    encoders: Mapping[str, Callable[[torch.Tensor], torch.Tensor]],
    targets: torch.Tensor,
    reference: Callable[[torch.Tensor], torch.Tensor],
    *,
    steps: int = 200,
    lr: float = 0.03,
    t_range: tuple[int, int] = (20, 980),
    seed: int = 0,
) -> dict[str, dict[str, float]]:
    """SDS reconstruction through each encoder towards the same latent targets; how close each gets in pixels.

    The analytic prior (a single-mode Gaussian at `reference(targets)`, exact eps) is the target for every
    encoder, so the encoders see equal targets and differ only in the map images -> latents the SDS gradient
    passes through. For each encoder: images start at mid-grey (plus seeded noise), then `steps` SDS steps
    (w(t) = 1 - alphabar_t, t uniform in t_range, Adam on the pixels, clamped to [0, 1]); with the reference encoder
    itself this recovers the targets as well as the reference encoder can be inverted, so the gap to its row is
    what the other encoder costs.

    encoders: name -> encode ((B, 3, H, W) in [0, 1] -> (B, C, h, w) scaled latents, differentiable).
    targets: (B, 3, H, W) in [0, 1]. reference: the encoder that defines the target latents (the KL encoder's
    posterior *mean*, so the target is not noisy).
    Returns name -> {"psnr_db": pixel PSNR to the targets, "latent_rmse": RMS of reference(result) - target latents,
    "start_psnr_db": PSNR of the initial grey}.

    On the GPU (the issue's measurement): targets = a few 512 px icons; reference = the SD prior's
    `encode(x, mode="mean")`; encoders = {"kl": the same, "fast": load_fast_vae(device="cuda").encode};
    steps 200-500. Report both rows and their difference.
    """
    targets = targets.detach().float()
    with torch.no_grad():
        means = reference(targets).float()
    prior = AnalyticPrior(device=means.device)  # its exact eps towards each row's own target latents
    cond = Cond(guidance=torch.ones(targets.shape[0], device=means.device), image=means)
    results = {}
    for name, encode in encoders.items():
        gen = torch.Generator(device="cpu").manual_seed(seed)
        x = (0.5 + 0.05 * torch.randn(targets.shape, generator=gen)).clamp(0, 1).to(targets.device)
        start = psnr(x, targets)
        x.requires_grad_(True)
        opt = torch.optim.Adam([x], lr=lr)
        for _ in range(steps):
            z = encode(x)
            t = sample_timesteps(z.shape[0], *t_range, generator=gen).to(z.device)
            loss, _ = distillation_loss(prior, z, cond, t, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                x.clamp_(0.0, 1.0)
        with torch.no_grad():
            rmse = float((reference(x) - means).pow(2).mean().sqrt())
        results[name] = {"psnr_db": psnr(x.detach(), targets), "latent_rmse": rmse, "start_psnr_db": start}
    return results
