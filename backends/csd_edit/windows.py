"""Panorama windows: overlapping square windows of one latent (the panorama's particles), and tiled decoding."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .csd import decode

# ------------------------------------------------------------------------------------------------ panorama windows

Box = tuple[int, int, int, int]  # (top, left, height, width) in latent cells


def window_starts(size: int, window: int, stride: int) -> list[int]:
    """Starts of windows of `window` cells every `stride` cells over `size` cells; a last window flush with the end
    is added when the stride does not land there, so every cell is covered."""
    if not 0 < window <= size or stride < 1:
        raise ValueError(f"need 0 < window <= size and stride >= 1, got size={size}, window={window}, stride={stride}")
    starts = list(range(0, size - window + 1, stride))
    if starts[-1] != size - window:
        starts.append(size - window)
    return starts


def window_boxes(height: int, width: int, window: int, stride: int) -> tuple[list[Box], tuple[int, int]]:
    """Row-major windows of window x window cells (clipped to the latent's sides) and the grid's (rows, cols).
    A stride longer than the window is shortened to it, so no cell falls between two windows."""
    wh, ww = min(window, height), min(window, width)
    ys, xs = window_starts(height, wh, min(stride, wh)), window_starts(width, ww, min(stride, ww))
    return [(y, x, wh, ww) for y in ys for x in xs], (len(ys), len(xs))


def take_windows(x: torch.Tensor, boxes: Sequence[Box]) -> torch.Tensor:
    """(1, C, H, W) -> (N, C, h, w): the windows, stacked (all boxes the same size)."""
    return torch.stack([x[0, :, y:y + h, x0:x0 + w] for y, x0, h, w in boxes])


def fold_windows(values: torch.Tensor, boxes: Sequence[Box], shape: torch.Size) -> torch.Tensor:
    """(N, C, h, w) per-window values -> (1, C, H, W) field: each cell the mean over the windows covering it, 0 where
    none does (count-normalized, so overlapping windows' gradients are averaged, not summed)."""
    total = values.new_zeros(shape)
    count = values.new_zeros((1, 1, *shape[-2:]))
    for v, (y, x, h, w) in zip(values, boxes):
        total[0, :, y:y + h, x:x + w] += v
        count[0, :, y:y + h, x:x + w] += 1
    return total / count.clamp_min(1)


def random_windows(boxes: Sequence[Box], n: int, gen: torch.Generator) -> list[Box]:
    """A random batch of n windows (all of them, in random order, when there are fewer)."""
    order = torch.randperm(len(boxes), generator=gen, device=gen.device).tolist()  # a CPU generator: no GPU sync
    return [boxes[k] for k in order[:n]]


@torch.no_grad()
def decode_tiled(prior, z: torch.Tensor, window: int) -> torch.Tensor:
    """(1, C, h, w) latents of any width -> (1, 3, H, W) image, decoding windows of `window` cells at half-window
    stride and blending them with tent weights (no seams where tiles meet; exact where one tile covers)."""
    _, _, h, w = z.shape
    if h <= window and w <= window:
        return decode(prior, z)
    boxes, _ = window_boxes(h, w, window, max(window // 2, 1))
    scale = prior.latent_scale
    out = torch.zeros(1, 3, h * scale, w * scale, device=z.device)
    weight = torch.zeros(1, 1, h * scale, w * scale, device=z.device)
    tiles = decode(prior, take_windows(z, boxes))
    for tile, (y, x, bh, bw) in zip(tiles, boxes):
        ramp = _tent(bh * scale, z.device)[:, None] * _tent(bw * scale, z.device)[None, :]
        sl = (slice(None), slice(None), slice(y * scale, (y + bh) * scale), slice(x * scale, (x + bw) * scale))
        out[sl] += tile * ramp
        weight[sl] += ramp
    return out / weight


def _tent(n: int, device) -> torch.Tensor:
    k = torch.arange(n, device=device, dtype=torch.float32)
    return torch.minimum(k + 1, n - k) / math.ceil(n / 2)
