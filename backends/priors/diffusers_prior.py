"""Stable Diffusion (text) and InstructPix2Pix (text + image) priors, loaded with diffusers' `from_pretrained`.

Loading, memory switches and the UNet call live here; the guidance arithmetic is `engine.guidance` (pure
functions), so this file only decides which noise predictions to batch together and in what order.

Precision: on CUDA the UNet and the text encoder run in fp16, the VAE in fp32 (score-distillation gradients
flow back through the encoder, and fp16 VAEs overflow); on CPU everything is fp32.
"""
from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import torch

from ..core.errors import InputError, ModelUnavailableError
from ..engine.guidance import cfg, ip2p_guidance
from ..engine.sampling import ddim_sample
from ..engine.step import noise
from .base import Cond, as_list, per_row, per_sample
from .cuda_graph import CAPTURE_STATUS, GraphedUNet, disabled_reason

from . import catalog
from .machine import default_device, hub_offline, looks_like_path, offline_reason

def _check_kind(kind: str) -> str:
    if kind not in catalog.KINDS:
        raise ValueError(f"prior kind must be one of {catalog.KINDS}, not {kind!r}")
    return kind


def _unavailable(source: str, kind: str, reason: str) -> ModelUnavailableError:
    real = catalog.real(kind)
    hint = f"set {real.env} to a local directory with the model"
    if not looks_like_path(source):
        hint += f", or download it first with `hf download {source}`"
    return ModelUnavailableError(f"The {real.label} model '{source}' could not be loaded ({reason}): {hint}.")


def load_diffusers_prior(
    source: str | os.PathLike,
    kind: str,
    *,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    tiny: bool = False,
    name: str | None = None,
) -> "DiffusersPrior":
    """Load a Stable Diffusion (kind "text") or InstructPix2Pix (kind "instruct") prior from a
    hub id or a local pipeline directory.

    device: default CUDA when available, else CPU. dtype: of the UNet and text encoder, default fp16 on CUDA, fp32
    on CPU (the VAE is always fp32). A hub id is looked up in the local cache first, then downloaded, unless
    HF_HUB_OFFLINE is set. Raises ModelUnavailableError when the weights cannot be found, InputError when the
    model is of the wrong kind.
    """
    kind = _check_kind(kind)
    source = str(source)
    device = torch.device(device) if device is not None else default_device()
    if dtype is None:
        dtype = torch.float16 if device.type == "cuda" else torch.float32
    if looks_like_path(source):
        source = str(Path(source).expanduser())
        if not (Path(source) / "model_index.json").is_file() and not (Path(source) / "unet").is_dir():
            raise _unavailable(source, kind, "no model directory there")
    # The local cache first, so a downloaded model loads without a network round-trip (huggingface_hub retries an
    # unreachable hub for minutes); then the hub, unless HF_HUB_OFFLINE forbids it.
    offline = hub_offline()
    local_first = [True] if offline or looks_like_path(source) else [True, False]
    for local_only in local_first:
        try:
            unet, vae, text_encoder, tokenizer, scheduler = _load_components(source, dtype, local_only)
            break
        except (OSError, ValueError) as err:  # hub and file errors are OSError; a malformed id is a ValueError
            error = err
    else:
        if looks_like_path(source):
            reason = "its files are incomplete or unreadable"
        elif offline:
            reason = f"it is not in the local cache, and {offline_reason()}"
        else:
            reason = "not in the local cache, and the Hugging Face Hub is unreachable or has no such model"
        raise _unavailable(source, kind, reason) from error
    return DiffusersPrior(unet, vae, text_encoder, tokenizer, scheduler, kind=kind, device=device,
                          name=name or source, tiny=tiny)


def _sample_size(unet) -> int:
    size = unet.config.sample_size
    return int(size[0] if isinstance(size, (tuple, list)) else size)


def load_pipeline(kind: str, source: str | None, device, memory: str, name: str,
                  tiny: bool = False) -> "DiffusersPrior":
    from .machine import accelerate_mode, hub_reachable, memory_profile

    if not tiny:
        hub_reachable()  # an unreachable hub then fails at once, not after minutes of retries
    prior = load_diffusers_prior(source or catalog.real(kind).source(), kind, device=device, tiny=tiny, name=name)
    prior.apply_memory_profile(memory_profile(prior.device, memory))
    prior.accelerate(accelerate_mode(prior.device))  # records its switches in prior.switches
    return prior


def load_sd(source: str | None = None, *, device=None, memory: str = "auto") -> "DiffusersPrior":
    """The `sd` prior: Stable Diffusion from `source` (hub id or folder; default $DISTILL_SD_MODEL or the hub id)."""
    return load_pipeline("text", source, device, memory, name="sd" if source is None else f"sd:{source}")


def load_ip2p(source: str | None = None, *, device=None, memory: str = "auto") -> "DiffusersPrior":
    """The `ip2p` prior: InstructPix2Pix from `source` (default $DISTILL_IP2P_MODEL or timbrooks/instruct-pix2pix)."""
    return load_pipeline("instruct", source, device, memory, name="ip2p" if source is None else f"ip2p:{source}")


def _load_components(source: str, dtype: torch.dtype, local_only: bool):
    from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    hub = dict(local_files_only=local_only)
    tokenizer = CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **hub)
    text_encoder = CLIPTextModel.from_pretrained(source, subfolder="text_encoder", dtype=dtype, **hub)
    unet = UNet2DConditionModel.from_pretrained(source, subfolder="unet", torch_dtype=dtype, **hub)
    vae = AutoencoderKL.from_pretrained(source, subfolder="vae", torch_dtype=torch.float32, **hub)
    # Only the noise schedule is read from it; clip_sample=False because latents are not confined to [-1, 1]
    # (SD ships a PNDM config, which has no such key, and DDPM's default would clip).
    scheduler = DDPMScheduler.from_pretrained(source, subfolder="scheduler", clip_sample=False, **hub)
    return unet, vae, text_encoder, tokenizer, scheduler


class DiffusersPrior:
    """A diffusers UNet + VAE + CLIP text encoder behind the `Prior` protocol (see base.py).

    kind "text": predict_eps is classifier-free guidance between the negative/empty prompt and the prompt.
    kind "instruct": the UNet also sees the source image's latent (8 input channels) and predict_eps is
    InstructPix2Pix's 3-way guidance, batched in its pipeline's order.
    """

    needs_target = False

    def __init__(self, unet, vae, text_encoder, tokenizer, scheduler, *, kind: str, device: torch.device,
                 name: str, tiny: bool = False):
        from diffusers.models.attention_processor import AttnProcessor2_0

        kind = _check_kind(kind)
        self.name, self.kind, self.tiny = name, kind, tiny
        self.device = torch.device(device)
        self.unet = unet.to(self.device).eval().requires_grad_(False)
        self.vae = vae.to(self.device).eval().requires_grad_(False)  # no weight grads; input grads still flow
        self.text_encoder = text_encoder.to(self.device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.scheduler = scheduler
        self.unet.set_attn_processor(AttnProcessor2_0())  # torch's scaled_dot_product_attention
        self.dtype = self.unet.dtype
        self.latent_channels = int(self.vae.config.latent_channels)
        self.latent_scale = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling_factor = float(self.vae.config.scaling_factor)
        self.num_train_timesteps = int(scheduler.config.num_train_timesteps)
        self.alphas_cumprod = scheduler.alphas_cumprod.to(self.device, torch.float32)
        self._compiled_unet = None
        self._graphed_unet = None  # cuda_graph.GraphedUNet when accelerate("graph") is on
        self._channels_last = False
        self._fast_vae = None  # fast_vae.FastVAE, loaded by with_fast_encoder() on first use
        self.description = (f"{'tiny random-weight ' if tiny else ''}{catalog.real(kind).label} ({name}): "
                            + ("tests the code path, its pictures mean nothing" if tiny else "diffusers weights"))
        self.native_size = _sample_size(self.unet) * self.latent_scale
        self.size_multiple = self.latent_scale * 2 ** (len(self.unet.config.block_out_channels) - 1)
        self.defaults: dict = {}
        self.switches: list[str] = []
        self.text_cache: dict[str, torch.Tensor] = {}  # prompt -> (L, D) embedding, in self.dtype on device
        want = self.latent_channels * (2 if kind == "instruct" else 1)
        if self.unet.config.in_channels != want:
            what = "an InstructPix2Pix" if kind == "instruct" else "a text-to-image"
            raise InputError(f"The model '{name}' is not {what} model: its UNet takes "
                             f"{self.unet.config.in_channels} input channels, not {want}.")

    def __repr__(self) -> str:
        return f"DiffusersPrior(name={self.name!r}, kind={self.kind!r}, device={self.device}, dtype={self.dtype})"

    # ---- memory switches (all off by default; a memory profile turns them on) ----
    def apply_memory_profile(self, profile: str) -> list[str]:
        """Switch on the memory savers of a profile ("none", "24gb", "16gb"; see machine.MEMORY_SWITCHES)."""
        from .machine import MEMORY_SWITCHES

        for switch in MEMORY_SWITCHES[profile]:
            getattr(self, f"enable_{switch}")()
            if switch not in self.switches:
                self.switches.append(switch)
        return list(MEMORY_SWITCHES[profile])

    def enable_attention_slicing(self, slice_size: str | int = "auto") -> None:
        """Compute attention in slices: less memory, slower (replaces the SDPA processors)."""
        self.unet.set_attention_slice(slice_size)

    def enable_vae_tiling(self) -> None:
        """Encode/decode large images in overlapping tiles (the VAE's sample_size, 512 px for SD) and blend them."""
        self.vae.enable_tiling()

    def enable_vae_slicing(self) -> None:
        """Run the VAE one image of the batch at a time."""
        self.vae.enable_slicing()

    # ---- images <-> latents ----
    def encode(self, images: torch.Tensor, mode: str = "sample",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H/8, W/8) scaled latents, differentiable, float32.

        mode: "sample" draws from the VAE posterior (as SDS implementations do), "mean" takes its mean.
        """
        x = images.to(self.device, self.vae.dtype) * 2.0 - 1.0
        dist = self.vae.encode(x).latent_dist
        if mode == "sample":
            z = dist.sample(generator)
        elif mode == "mean":
            z = dist.mode()
        else:
            raise ValueError(f"mode must be 'sample' or 'mean', not {mode!r}")
        return z * self.scaling_factor

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) scaled latents -> (B, 3, 8h, 8w) float32 images in [0, 1]. Differentiable; wrap in
        torch.no_grad() for previews. Wide inputs: call enable_vae_tiling() first."""
        x = self.vae.decode(latents.to(self.device, self.vae.dtype) / self.scaling_factor).sample
        return ((x.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    @torch.no_grad()
    def encode_image_condition(self, images: torch.Tensor) -> torch.Tensor:
        """InstructPix2Pix image condition: (B, 3, H, W) in [0, 1] -> (B, C, H/8, W/8) *unscaled* posterior mode,
        as StableDiffusionInstructPix2PixPipeline does; in self.dtype."""
        x = images.to(self.device, self.vae.dtype) * 2.0 - 1.0
        return self.vae.encode(x).latent_dist.mode().to(self.dtype)

    # ---- conditions ----
    @torch.no_grad()
    def embed_text(self, prompts: str | Sequence[str]) -> torch.Tensor:
        """Prompts -> (B, 77, D) CLIP embeddings in self.dtype; each distinct prompt is encoded once and cached."""
        prompts = as_list(prompts)
        missing = list(dict.fromkeys(p for p in prompts if p not in self.text_cache))
        if missing:
            ids = self.tokenizer(missing, padding="max_length", max_length=self.tokenizer.model_max_length,
                                 truncation=True, return_tensors="pt").input_ids.to(self.device)
            mask = None
            if getattr(self.text_encoder.config, "use_attention_mask", False):
                mask = (ids != self.tokenizer.pad_token_id).long()
            emb = self.text_encoder(ids, attention_mask=mask)[0].to(self.dtype)
            self.text_cache.update(zip(missing, emb))
        return torch.stack([self.text_cache[p] for p in prompts])

    def condition(
        self,
        prompts: str | Sequence[str],
        *,
        negative: str | Sequence[str] = "",
        images: torch.Tensor | None = None,
        guidance: float | Sequence[float] | torch.Tensor = 7.5,
        image_guidance: float | Sequence[float] | torch.Tensor = 1.5,
    ) -> Cond:
        """Batched condition. prompts: B strings (one string is used for every image); negative: one string or B;
        images: (B, 3, H, W) in [0, 1], required for "instruct", refused for "text"; guidance, image_guidance: a
        number or B numbers (per-sample scales)."""
        prompts = as_list(prompts)
        b = len(prompts)
        if self.kind == "instruct":
            if images is None:
                raise ValueError("an InstructPix2Pix prior needs the source images to condition on")
            b = images.shape[0]
            prompts = per_row(prompts, b)
        elif images is not None:
            raise ValueError("a text-to-image prior takes no images; use an InstructPix2Pix prior to edit images")
        negative = per_row(negative, b, "negative prompts")
        return Cond(
            text=self.embed_text(prompts),
            uncond=self.embed_text(negative),
            image=None if images is None else self.encode_image_condition(images),
            guidance=per_sample(guidance, b, self.device),
            image_guidance=per_sample(image_guidance, b, self.device) if self.kind == "instruct" else None,
        )

    # ---- noise prediction ----
    @torch.no_grad()
    def predict_eps_parts(self, z_t: torch.Tensor, t: torch.Tensor | int, cond: Cond) -> dict[str, torch.Tensor]:
        """Guided and unguided noise predictions from ONE UNet call over the stacked batch, all (B, C, h, w) in
        z_t's dtype. Keys: "guided" and, for "text", "uncond", "cond"; for "instruct", "uncond" (no image, no
        text), "image" (image, no text: CSD-Edit's baseline) and "full" (image and text).

        t: integer timesteps, (B,) or one for all. cond: from `condition`, with batch B.
        """
        b = z_t.shape[0]
        if len(cond) != b:
            raise ValueError(f"condition has batch {len(cond)} but the latents have {b}: use cond.repeat / cond.index")
        if cond.text is None or cond.uncond is None or cond.guidance is None:
            raise ValueError("the condition needs text, uncond and guidance: build it with prior.condition(...)")
        t = torch.as_tensor(t, device=self.device).reshape(-1).expand(b)
        z = z_t.to(self.device, self.dtype)
        g = cond.guidance.to(self.device, torch.float32).reshape(b, 1, 1, 1)
        if self.kind == "text":
            eps = self._unet(torch.cat([z, z]), t.repeat(2), torch.cat([cond.uncond, cond.text]))
            eps_uncond, eps_cond = eps.float().chunk(2)
            parts = dict(guided=cfg(eps_uncond, eps_cond, g), uncond=eps_uncond, cond=eps_cond)
        else:
            if cond.image is None or cond.image_guidance is None:
                raise ValueError("an InstructPix2Pix condition needs image latents and image_guidance")
            img = cond.image.to(self.device, self.dtype)
            # StableDiffusionInstructPix2PixPipeline's order: text [prompt, empty, empty], image [img, img, 0].
            z3 = torch.cat([torch.cat([z, z, z]), torch.cat([img, img, torch.zeros_like(img)])], dim=1)
            eps = self._unet(z3, t.repeat(3), torch.cat([cond.text, cond.uncond, cond.uncond]))
            eps_full, eps_image, eps_uncond = eps.float().chunk(3)
            ig = cond.image_guidance.to(self.device, torch.float32).reshape(b, 1, 1, 1)
            parts = dict(guided=ip2p_guidance(eps_uncond, eps_image, eps_full, g, ig),
                         uncond=eps_uncond, image=eps_image, full=eps_full)
        return {k: v.to(z_t.dtype) for k, v in parts.items()}

    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor | int, cond: Cond) -> torch.Tensor:
        """Guided noise prediction for (B, C, h, w) noisy latents at integer timesteps t, in one UNet call;
        per-sample guidance scales from cond. No gradient (SDS skips the UNet Jacobian); z_t's dtype."""
        return self.predict_eps_parts(z_t, t, cond)["guided"]

    def _unet(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        if self._channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        text = text.to(self.dtype)
        if self._graphed_unet is not None:
            # falls back to the eager call by itself (one warning) where graphs cannot run: CPU, ZeroGPU, a failure
            return self._graphed_unet(x, t, text)
        # `is not None`, never truthiness: a torch.compile'd module raises TypeError on bool() (it asks len()).
        fn = self._compiled_unet if self._compiled_unet is not None else self.unet
        try:
            return fn(x, t, encoder_hidden_states=text, return_dict=False)[0]
        except Exception as err:  # a compiler failure must cost speed, never the run
            if fn is self.unet:
                raise
            warnings.warn(f"torch.compile failed ({type(err).__name__}: {err}); running the UNet eagerly")
            self._compiled_unet = None
            return self.unet(x, t, encoder_hidden_states=text, return_dict=False)[0]

    # ---- speed switches ----
    ACCELERATE_MODES = ("eager", "channels_last", "graph", "compile")

    def accelerate(self, mode: str = "auto") -> list[str]:
        """Speed-ups that keep results equal within fp16 tolerance; returns the speed switches now on, which also
        replace the earlier ones in `self.switches` (result.json; the app's status reads "cuda_graph" there).

        "channels_last": the UNet's convolutions in NHWC (faster on tensor cores).
        "graph": channels_last, and the UNet call captured as a CUDA graph per input shape on its first call, then
        replayed (`cuda_graph.GraphedUNet`: seconds of capture, against 40-50 s of torch.compile warm-up). Where
        graphs cannot run (a CPU, ZeroGPU, DISTILL_CUDA_GRAPHS=0, a failed capture) the same wrapper calls the UNet
        eagerly, with one warning, and the switch "cuda_graph" is not reported.
        "compile": channels_last plus torch.compile(mode="reduce-overhead") of the UNet (explicit only: it compiles
        on the first call of each shape, 40-50 s on an H200). A compiler failure falls back to eager with a warning.
        "auto": `machine.auto_accelerate(device)`: "graph" on CUDA unless ZeroGPU or DISTILL_CUDA_GRAPHS=0, else
        eager. "eager": switch everything off.
        """
        from .machine import auto_accelerate

        if mode == "auto":
            mode = auto_accelerate(self.device)
        if mode not in self.ACCELERATE_MODES:
            raise ValueError(f"accelerate mode must be auto, {', '.join(self.ACCELERATE_MODES)}, not {mode!r}")
        self._channels_last = mode != "eager"
        self.unet.to(memory_format=torch.channels_last if self._channels_last else torch.contiguous_format)
        self._compiled_unet = None
        self._graphed_unet = None  # its graphs and their memory pool go with it
        switches = ["channels_last"] if self._channels_last else []
        if mode == "compile":
            self._compiled_unet = torch.compile(self.unet, mode="reduce-overhead" if self.device.type == "cuda" else None,
                                                dynamic=False)
            switches.append("compile")
        elif mode == "graph":
            self._graphed_unet = GraphedUNet(self.unet)
            if disabled_reason(self.device) is None:
                switches.append("cuda_graph")
        # self.switches: the memory switches as they were, then the speed switches now on (none stale)
        self.switches[:] = [w for w in self.switches if w not in ("channels_last", "compile", "cuda_graph")] + switches
        return switches

    # ---- the fast VAE (opt-in, AutoencoderTiny) ----
    def fast_vae(self, source: str | None = None):
        """The fast VAE (`fast_vae.FastVAE`, AutoencoderTiny; default $DISTILL_FAST_VAE or madebyollin/taesd from
        the local cache, never downloaded), loaded once. Raises InputError when its weights are not on this
        machine: the fast encoder is an opt-in setting, so its absence is the setting's problem, not the run's."""
        from . import fast_vae

        if self._fast_vae is None or (source is not None and self._fast_vae.name != source):
            try:
                self._fast_vae = fast_vae.load_fast_vae(source, device=self.device)
            except ModelUnavailableError as err:
                raise InputError(f"encoder 'fast' needs the fast VAE: {err} Or use encoder 'kl'.") from err
            if self._fast_vae.latent_channels != self.latent_channels or \
                    self._fast_vae.latent_scale != self.latent_scale:
                bad, self._fast_vae = self._fast_vae, None
                raise InputError(f"the fast VAE '{bad.name}' makes {bad.latent_channels}-channel latents at 1/"
                                 f"{bad.latent_scale} scale, the prior '{self.name}' needs {self.latent_channels} "
                                 f"at 1/{self.latent_scale}: use encoder 'kl'")
        return self._fast_vae

    def with_fast_encoder(self, source: str | None = None) -> "FastEncoderPrior":
        """This prior with `encode` through the fast VAE (the UNet, conditions and everything else shared, not
        copied). For the per-step SDS encode; InstructPix2Pix's image condition keeps the KL encoder."""
        return FastEncoderPrior(self, self.fast_vae(source))

    def start_notice(self) -> str | None:
        """The line a run shows before its first step when that step captures the UNet as a CUDA graph."""
        return CAPTURE_STATUS if "cuda_graph" in self.switches else None

    def preview_decoder(self):
        """A decode for live previews: the fast VAE's when its weights are on this machine (or already loaded),
        else the KL `decode`. Previews only: outputs keep the KL decoder. (B, C, h, w) -> (B, 3, 8h, 8w) in [0, 1]."""
        from . import fast_vae

        if self._fast_vae is None and fast_vae.available()[0]:
            try:
                self.fast_vae()
            except InputError:
                pass
        return self._fast_vae.decode if self._fast_vae is not None else self.decode

    # ---- sampling (for raster baselines and VectorFusion's initialisation) ----
    @torch.no_grad()
    def sample(
        self,
        prompts: str | Sequence[str],
        *,
        steps: int = 50,
        guidance: float | Sequence[float] = 7.5,
        height: int = 512,
        width: int = 512,
        generator: torch.Generator | None = None,
        negative: str | Sequence[str] = "",
        images: torch.Tensor | None = None,
        image_guidance: float | Sequence[float] = 1.5,
    ) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) from pure noise with `steps` evenly spaced ("leading", as SD) timesteps.
        Returns (B, 3, height, width) float32 images in [0, 1]. For "instruct", images (B, 3, H, W) in [0, 1]
        are the sources to edit and fix the output size."""
        cond = self.condition(prompts, negative=negative, images=images, guidance=guidance,
                              image_guidance=image_guidance)
        if images is not None:
            height, width = images.shape[-2:]
        s = self.latent_scale
        if height % s or width % s:
            raise ValueError(f"height and width must be multiples of {s}, not {height}x{width}")
        shape = (len(cond), self.latent_channels, height // s, width // s)
        z = noise(shape, self.device, generator)
        return ddim_sample(self, cond, z, steps)


class FastEncoderPrior:
    """A DiffusersPrior whose `encode` goes through the fast VAE (AutoencoderTiny); every other attribute is the
    wrapped prior's own (same UNet, text cache, switches). Built by `DiffusersPrior.with_fast_encoder()`.

    Its latents are SD's scaled latents, as the KL encoder's (see fast_vae's module docstring); the fast encoder is
    deterministic, so mode "sample" and "mean" give the same latents.
    """

    def __init__(self, prior: DiffusersPrior, fast):
        self._prior, self.fast = prior, fast

    def __getattr__(self, name):
        return getattr(self._prior, name)

    def __repr__(self) -> str:
        return f"FastEncoderPrior({self._prior!r}, {self.fast!r})"

    def encode(self, images: torch.Tensor, mode: str = "sample",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H/8, W/8) scaled latents through the fast encoder, differentiable,
        float32. mode is checked but changes nothing (no posterior to sample)."""
        if mode not in ("sample", "mean"):
            raise ValueError(f"mode must be 'sample' or 'mean', not {mode!r}")
        return self.fast.encode(images)
