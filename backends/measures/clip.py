"""CLIP scoring (open_clip): pick the best of K samples, score results, measure edit directions.

    scorer = default_clip()                        # real ViT-B/16 when its weights are on disk, else tiny
    scorer.score(images, ["a fox"])                # (B,) cosine similarities
    order = rerank(images, "a fox", model=scorer)  # best first

Nothing here touches the network. `load_clip` takes weights that are already on this machine (a checkpoint
file, or open_clip's / Hugging Face's cache) and raises `ModelUnavailableError` otherwise. `tiny_clip` builds a
random-weight CLIP in code (open_clip's own `CLIP` class, its bundled BPE tokenizer), so ranking and evaluation
code runs offline and in tests; its scores carry no meaning, and the scorer says so (`random_weights`).

Which model `default_clip` picks: $DISTILL_CLIP_MODEL if set ("tiny", "ViT-B-16:openai", "ViT-B-16:/path/to.bin"),
else ViT-B/16 (OpenAI weights, VectorFusion's reranker) if cached, else the tiny one.
"""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import InputError, ModelUnavailableError
from ..priors.catalog import HELPERS
from ..priors.machine import default_device

# Where the scorer comes from is the catalog's fact ("clip": its environment variable, "model:pretrained" default).
ENV = HELPERS["clip"].env
DEFAULT_MODEL, _, DEFAULT_PRETRAINED = HELPERS["clip"].default.partition(":")
# open_clip's default image normalization (OpenAI's), used by the tiny model too
_MEAN = (0.48145466, 0.4578275, 0.40821073)
_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipScorer:
    """An open_clip model with its tokenizer and preprocessing, scoring images against texts.

    name: what it is ("ViT-B-16:openai", "tiny-random(seed=0)"); random_weights: True for the tiny model (its
    scores rank consistently but mean nothing). Images are (B, 3, H, W) float in [0, 1] (or (B, H, W, 3) / (H, W, 3)
    uint8 arrays); they are resized (shorter side, bicubic with antialiasing) and center-cropped to the model's
    input size, then normalized. No gradients.
    """

    def __init__(self, model, tokenizer, *, name: str, random_weights: bool, device, image_size: int,
                 mean=_MEAN, std=_STD):
        self.model = model.to(device).eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.name = name
        self.random_weights = random_weights
        self.device = torch.device(device)
        self.image_size = int(image_size)
        self.mean = torch.tensor(mean, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(std, device=self.device).view(1, 3, 1, 1)

    def __repr__(self) -> str:
        return f"ClipScorer({self.name!r}, random_weights={self.random_weights}, device={self.device})"

    def label(self) -> dict:
        """What to write next to scores in result metadata."""
        out = {"clip_model": self.name, "clip_random_weights": self.random_weights}
        if self.random_weights:
            out["clip_note"] = "scored with a tiny random-weight CLIP (no real weights on this machine): not meaningful"
        return out

    # ---- embeddings ----
    def _pixels(self, images) -> torch.Tensor:
        x = _as_batch(images).to(self.device, torch.float32)
        h, w = x.shape[-2:]
        s = self.image_size
        scale = s / min(h, w)
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", antialias=True, align_corners=False)
        top, left = (nh - s) // 2, (nw - s) // 2
        x = x[..., top:top + s, left:left + s].clamp(0, 1)
        return (x - self.mean) / self.std

    @torch.no_grad()
    def embed_images(self, images) -> torch.Tensor:
        """(B, D) unit-norm image embeddings."""
        return F.normalize(self.model.encode_image(self._pixels(images)).float(), dim=-1)

    @torch.no_grad()
    def embed_texts(self, texts: str | Sequence[str]) -> torch.Tensor:
        """(T, D) unit-norm text embeddings."""
        texts = [texts] if isinstance(texts, str) else list(texts)
        tokens = self.tokenizer(texts).to(self.device)
        return F.normalize(self.model.encode_text(tokens).float(), dim=-1)

    # ---- scores ----
    def similarity(self, images, texts: str | Sequence[str]) -> torch.Tensor:
        """(B, T) cosine similarities between every image and every text (CPU float32)."""
        return (self.embed_images(images) @ self.embed_texts(texts).T).cpu()

    def score(self, images, texts: str | Sequence[str]) -> torch.Tensor:
        """(B,) cosine similarity of image i with text i (one text is used for all images)."""
        n = _as_batch(images).shape[0]
        texts = [texts] * n if isinstance(texts, str) else list(texts)
        if len(texts) == 1:
            texts = texts * n
        if len(texts) != n:
            raise ValueError(f"{len(texts)} texts for {n} images: give one text or one per image")
        img = self.embed_images(images)
        txt = self.embed_texts(texts)
        return (img * txt).sum(-1).cpu()


def _as_batch(images) -> torch.Tensor:
    """Images as (B, 3, H, W) float in [0, 1], from tensors or uint8 arrays (HWC / BHWC) or a list of them."""
    if isinstance(images, (list, tuple)):
        return torch.cat([_as_batch(im) for im in images])
    if isinstance(images, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(images))
        if x.dtype == torch.uint8:
            x = x.float() / 255.0
        if x.dim() == 3:
            x = x[None]
        return x.permute(0, 3, 1, 2).float()
    x = images
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    if x.dim() == 3:
        x = x[None]
    if x.shape[1] != 3 and x.shape[-1] == 3:
        x = x.permute(0, 3, 1, 2)
    return x.float()


# ------------------------------------------------------------------------------------------------- models

def tiny_clip(seed: int = 0, device: str | torch.device = "cpu") -> ClipScorer:
    """A tiny random-weight CLIP (open_clip's `CLIP` class, 2-layer ViT on 32x32 images and 2-layer text
    transformer, 32-d embeddings) with open_clip's real BPE tokenizer, built in code: the same seed gives the
    same weights. For offline use and tests only: its scores are meaningless, which the scorer says."""
    import open_clip
    from open_clip.model import CLIPTextCfg, CLIPVisionCfg

    tokenizer = open_clip.SimpleTokenizer()  # its vocabulary ships inside the package: no download
    vision = CLIPVisionCfg(layers=2, width=32, head_width=16, patch_size=8, image_size=32)
    text = CLIPTextCfg(context_length=77, vocab_size=len(tokenizer.encoder), width=32, heads=2, layers=2)
    with torch.random.fork_rng(devices=[]):  # leave the caller's random stream alone
        torch.manual_seed(seed)
        model = open_clip.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text)
    return ClipScorer(model, tokenizer, name=f"tiny-random(seed={seed})", random_weights=True, device=device,
                      image_size=32)


def _cached_weights(name: str, pretrained: str) -> str | None:
    """The local file of open_clip's pretrained `name`/`pretrained` if it is already downloaded, else None."""
    from open_clip import pretrained as oc_pretrained

    cfg = oc_pretrained.get_pretrained_cfg(name, pretrained)
    if not cfg:
        return None
    if cfg.get("file"):
        return cfg["file"] if Path(cfg["file"]).is_file() else None
    hub = cfg.get("hf_hub", "")
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:  # pragma: no cover - huggingface_hub is a dependency of diffusers
            try_to_load_from_cache = None
        if try_to_load_from_cache is not None:
            repo, filename = os.path.split(hub.rstrip("/")) if not hub.endswith("/") else (hub.rstrip("/"), "")
            names = [filename] if filename else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
            for fn in names:
                hit = try_to_load_from_cache(repo, fn)
                if isinstance(hit, str) and Path(hit).is_file():
                    return hit
    url = cfg.get("url", "")
    if url:
        local = Path(os.path.expanduser("~/.cache/clip")) / os.path.basename(url)
        if local.is_file():
            return str(local)
    return None


def load_clip(name: str = DEFAULT_MODEL, pretrained: str = DEFAULT_PRETRAINED,
              device: str | torch.device | None = None) -> ClipScorer:
    """A real open_clip model from weights already on this machine; never downloads.

    pretrained: an open_clip tag ("openai", "laion2b_s34b_b88k", ...) found in the local caches, or a path to a
    checkpoint file. Raises ModelUnavailableError (one sentence saying how to get the weights) otherwise.
    """
    import open_clip

    device = torch.device(device) if device is not None else default_device()
    if name not in open_clip.list_models():
        raise ModelUnavailableError(f"unknown CLIP architecture {name!r}: use one of open_clip.list_models(), e.g. ViT-B-16")
    path = pretrained if Path(os.path.expanduser(pretrained)).is_file() else _cached_weights(name, pretrained)
    if path is None:
        raise ModelUnavailableError(
            f"CLIP weights {name}:{pretrained} are not on this machine (nothing is downloaded): download them once "
            f"(e.g. open_clip.create_model_and_transforms('{name}', pretrained='{pretrained}') with network access) "
            f"or set {ENV} to {name}:/path/to/checkpoint.")
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=os.path.expanduser(path),
                                                                     device=device)
    except Exception as err:  # a corrupt or mismatched checkpoint
        raise ModelUnavailableError(f"CLIP weights {path} could not be loaded into {name} ({type(err).__name__})") from err
    size = model.visual.image_size
    size = size[0] if isinstance(size, (tuple, list)) else size
    mean = getattr(model.visual, "image_mean", None) or _MEAN
    std = getattr(model.visual, "image_std", None) or _STD
    label = f"{name}:{pretrained if not Path(os.path.expanduser(pretrained)).is_file() else Path(pretrained).name}"
    return ClipScorer(model, open_clip.get_tokenizer(name), name=label, random_weights=False, device=device,
                      image_size=size, mean=mean, std=std)


_default: dict[str, ClipScorer] = {}
_lock = threading.Lock()


def check_spec(spec: str, name: str = "clip_model") -> None:
    """An InputError naming the setting `name` when `spec` is none of: empty (the default scorer), "tiny", or
    "NAME:PRETRAINED" (a pretrained tag or a weights file); checked before a run starts."""
    if spec and spec != "tiny" and ":" not in spec:
        raise InputError(f"{name} must be NAME:PRETRAINED, e.g. ViT-B-32:openai, or tiny; got {spec[:60]!r}")


def split_spec(spec: str) -> tuple[str, str]:
    """(model name, pretrained tag or weights file) of "NAME:PRETRAINED"; a bare NAME takes the default's tag."""
    name, _, pretrained = spec.partition(":")
    return name, pretrained or DEFAULT_PRETRAINED


def default_clip(device: str | torch.device | None = None) -> ClipScorer:
    """The process-wide scorer (cached per device): $DISTILL_CLIP_MODEL, else cached ViT-B/16, else tiny.

    Falling back to the tiny random-weight model keeps every backend runnable offline; its scores are labelled
    as meaningless in the metadata (`ClipScorer.label()`).
    """
    device = torch.device(device) if device is not None else default_device()
    key = str(device)
    with _lock:
        if key not in _default:
            spec = os.environ.get(ENV, "").strip()
            if spec == "tiny":
                _default[key] = tiny_clip(device=device)
            elif spec:
                _default[key] = load_clip(*split_spec(spec), device)  # asked for: fail loudly
            else:
                try:
                    _default[key] = load_clip(DEFAULT_MODEL, DEFAULT_PRETRAINED, device)
                except ModelUnavailableError:
                    _default[key] = tiny_clip(device=device)
        return _default[key]


def get_clip(spec: str | None = None, device: str | torch.device | None = None) -> ClipScorer:
    """A scorer from a spec string: None / "default" (see default_clip), "tiny", "NAME:PRETRAINED"."""
    if spec in (None, "", "default"):
        return default_clip(device)
    if spec == "tiny":
        return tiny_clip(device=device or "cpu")
    return load_clip(*split_spec(spec), device)


# ------------------------------------------------------------------------------------------- functions

def clip_score(images, texts: str | Sequence[str], *, model: ClipScorer | None = None) -> torch.Tensor:
    """(B,) cosine similarity of each image with its text (or the one text), by `model` (default_clip())."""
    return (model or default_clip()).score(images, texts)


def rerank(images, text: str, *, model: ClipScorer | None = None) -> tuple[list[int], torch.Tensor]:
    """Indices of `images` best first by CLIP similarity to `text`, and the (B,) scores (rejection sampling)."""
    scores = clip_score(images, text, model=model)
    order = torch.argsort(scores, descending=True, stable=True).tolist()
    return order, scores


def directional_similarity(src_imgs, edit_imgs, src_text: str | Sequence[str], tgt_text: str | Sequence[str], *,
                           model: ClipScorer | None = None) -> torch.Tensor:
    """CLIP directional similarity (InstructPix2Pix / CSD-Edit's edit metric), per image pair.

    cos(E_I(edit) - E_I(src), E_T(tgt) - E_T(src)): how well the change in the image follows the change in the
    caption. src_imgs, edit_imgs: B images each; texts: one string or B. Returns (B,); take .mean() to report.
    """
    m = model or default_clip()
    src, edit = m.embed_images(src_imgs), m.embed_images(edit_imgs)
    if src.shape[0] != edit.shape[0]:
        raise ValueError(f"{src.shape[0]} source images for {edit.shape[0]} edited ones")
    n = src.shape[0]
    ts, tt = m.embed_texts(src_text), m.embed_texts(tgt_text)
    ts = ts.expand(n, -1) if ts.shape[0] == 1 else ts
    tt = tt.expand(n, -1) if tt.shape[0] == 1 else tt
    return F.cosine_similarity(edit - src, tt - ts, dim=-1).cpu()


def r_precision(similarity: torch.Tensor, true_index: Sequence[int] | torch.Tensor) -> float:
    """CLIP R-precision (R = 1): the fraction of images whose most similar caption (row argmax of the (B, T)
    similarity matrix) is their own caption (true_index[i])."""
    truth = torch.as_tensor(list(true_index) if not isinstance(true_index, torch.Tensor) else true_index)
    return float((similarity.argmax(dim=1) == truth).float().mean())
