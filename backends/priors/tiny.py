"""Tiny random-weight Stable Diffusion / InstructPix2Pix models, for tests and for trying the flow offline.

They are built from the very classes the real models use (UNet2DConditionModel, AutoencoderKL, CLIPTextModel,
CLIPTokenizer, a scheduler with SD's betas), saved with `save_pretrained` in the layout of a diffusers pipeline
repo, and loaded back through the same `load_diffusers_prior` path as a hub model. So every test that runs on
them runs the production loading and prediction code; only the weights are noise. Results are meaningless as
images, which the prior says with `tiny = True`.

Sizes are chosen so that one guided step on a 128x128 image takes a few milliseconds on a CPU, while keeping
the real models' structure: 8x VAE downsampling, 4 latent channels, 77-token prompts, cross-attention.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from .diffusers_prior import load_pipeline
from .machine import build_once, cache_dir

TINY_VERSION = "v1"  # bump when the recipe below changes, so stale caches are not reused
KINDS = ("sd", "ip2p")

# A few merges on top of the byte-level base vocabulary, so the tokenizer exercises real BPE merging.
_MERGES = [
    ("t", "h"), ("th", "e</w>"), ("o", "f</w>"), ("a", "n"), ("an", "d</w>"), ("i", "n"), ("in", "g</w>"),
    ("c", "a"), ("ca", "t</w>"), ("d", "o"), ("do", "g</w>"), ("p", "h"), ("ph", "o"), ("pho", "t"),
    ("phot", "o</w>"),
]
_BOS, _EOS = "<|startoftext|>", "<|endoftext|>"
_MAX_LENGTH = 77  # CLIP's context, as in Stable Diffusion


def tiny_vocab() -> tuple[dict[str, int], list[str]]:
    """CLIP-style byte-level BPE vocabulary: 256 byte symbols, the same with the end-of-word mark, the merged
    symbols, then the two special tokens. Returns (vocab, merges lines)."""
    from tokenizers import pre_tokenizers

    base = sorted(pre_tokenizers.ByteLevel.alphabet())  # the 256 printable stand-ins for bytes
    symbols = base + [s + "</w>" for s in base] + [a + b for a, b in _MERGES] + [_BOS, _EOS]
    vocab = {s: i for i, s in enumerate(symbols)}
    return vocab, [f"{a} {b}" for a, b in _MERGES]


def _write_tokenizer(folder: Path) -> None:
    from transformers import CLIPTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    vocab, merges = tiny_vocab()
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, indent=1), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps({"model_max_length": _MAX_LENGTH}), encoding="utf-8")
    # Load the files we wrote (checks they parse) and let transformers add its own files beside them.
    CLIPTokenizer.from_pretrained(folder).save_pretrained(folder)


def _scheduler(kind: str):
    from diffusers import EulerAncestralDiscreteScheduler, PNDMScheduler

    betas = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    if kind == "sd":  # what stable-diffusion-v1-5 ships
        return PNDMScheduler(**betas, skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    return EulerAncestralDiscreteScheduler(**betas)  # what instruct-pix2pix ships


def build_tiny(kind: str, path: str | os.PathLike, seed: int = 0) -> Path:
    """Build the tiny `kind` ("sd" or "ip2p") model with weights drawn from `seed`, and save it to `path` in
    the layout of a diffusers pipeline repo (model_index.json, unet/, vae/, text_encoder/, tokenizer/,
    scheduler/). Deterministic: the same seed gives the same weights. Returns `path`."""
    if kind not in KINDS:
        raise ValueError(f"tiny model kind must be one of {KINDS}, not {kind!r}")
    from diffusers import AutoencoderKL, StableDiffusionInstructPix2PixPipeline, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    path = Path(path)
    _write_tokenizer(path / "tokenizer")
    tokenizer = CLIPTokenizer.from_pretrained(path / "tokenizer")
    vocab_size = len(tokenizer)

    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=16,
            in_channels=4 if kind == "sd" else 8,
            out_channels=4,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=8,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            sample_size=64,  # also the tile size when tiling is enabled
            in_channels=3,
            out_channels=3,
            latent_channels=4,
            block_out_channels=(8, 16, 16, 16),  # 4 levels: 8x downsampling, like SD's VAE
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            layers_per_block=1,
            norm_num_groups=8,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=_MAX_LENGTH,
                bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id,
                pad_token_id=tokenizer.pad_token_id,
            )
        )

    parts = dict(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=_scheduler(kind),
                 safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipeline_cls = StableDiffusionPipeline if kind == "sd" else StableDiffusionInstructPix2PixPipeline
    pipeline_cls(**parts).save_pretrained(path)
    return path


def _folder(kind: str) -> str:
    if kind not in KINDS:
        raise ValueError(f"tiny model kind must be one of {KINDS}, not {kind!r}")
    return f"tiny-{kind}-{TINY_VERSION}"


def tiny_dir(kind: str) -> Path:
    """Where the tiny `kind` model is cached: $DISTILL_CACHE/tiny-<kind>-v1 (default ~/.cache/distill_studio)."""
    return cache_dir(_folder(kind))


def ensure_tiny(kind: str) -> Path:
    """Build the tiny `kind` model into the cache once (race-safe, see `machine.build_once`); its directory."""
    return build_once(_folder(kind), lambda folder: build_tiny(kind, folder), "model_index.json")


def load_tiny_sd(source=None, *, device=None, memory: str = "auto"):
    """The `tiny-sd` prior (catalog loader), through the same path as a downloaded model."""
    return load_pipeline("text", str(ensure_tiny("sd")), device, memory, name="tiny-sd", tiny=True)


def load_tiny_ip2p(source=None, *, device=None, memory: str = "auto"):
    """The `tiny-ip2p` prior (catalog loader)."""
    return load_pipeline("instruct", str(ensure_tiny("ip2p")), device, memory, name="tiny-ip2p", tiny=True)
