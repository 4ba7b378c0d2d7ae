"""Small image helpers shared by backends: tensors <-> uint8 arrays, PNG writing, loading validated images."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..inputs import media
from .files import atomic_path


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (B, 3, H, W) or (H, W, 3) float in [0, 1] -> (H, W, 3) / (B, H, W, 3) uint8."""
    x = images.detach().float().clamp(0, 1).cpu()
    if x.dim() == 3 and x.shape[0] in (1, 3, 4) and x.shape[-1] not in (1, 3, 4):
        x = x.permute(1, 2, 0)
    elif x.dim() == 4:
        x = x.permute(0, 2, 3, 1)
    return (x * 255.0 + 0.5).to(torch.uint8).numpy()


def to_tensor(image: Image.Image | np.ndarray, device="cpu") -> torch.Tensor:
    """PIL RGB image or (H, W, 3) uint8 -> (3, H, W) float32 in [0, 1]."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div(255.0).to(device)


def load_image(path: str | Path, *, size: tuple[int, int] | None = None, device="cpu") -> torch.Tensor:
    """A validated image file as (3, H, W) float in [0, 1], optionally resized to size=(W, H)."""
    img = media.image(path)
    if size is not None and img.size != tuple(size):
        img = img.resize(tuple(size), Image.LANCZOS)
    return to_tensor(img, device)


def save_png(image: torch.Tensor | np.ndarray, path: str | Path) -> str:
    """Write a PNG whole or not at all (a temporary name renamed into place: an interrupted run leaves no file that
    looks finished)."""
    arr = image if isinstance(image, np.ndarray) else to_uint8(image)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    return str(path)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """PSNR in dB between two images in [0, 1]."""
    mse = (a.float() - b.float()).pow(2).mean().clamp_min(1e-12)
    return float(10.0 * torch.log10(1.0 / mse))
