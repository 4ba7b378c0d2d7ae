"""Which shipped icon a picture is nearest to, and whether that icon shows what a prompt names: the judge of a
text-to-SVG result on the offline `icons` prior's own terms (no CLIP weights needed).

    drawn_icon(png, "red apple")      # DrawnIcon(nearest="red apple", shows=True): the caption carries the words
    shows_prompt(png, "a red apple")  # the nearest icon is one the prompt retrieves (the prior's concept of it)

Pictures are compared over white at 64 x 64 px (box-filtered), L2 over the 3,508 shipped icons
(`backends/priors/data/icons.npz`). It lives here, below both, because the grid report (`backends.compare.report`)
and the benchmarks' judges (`benchmarks.judges`, `benchmarks.eval_icons`) use it, and backends never import
benchmarks.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

SIZE = 64  # px: the shipped icons' native size


def wanted(caption: str, want: str) -> bool:
    """Does an icon caption show the wanted main object ("red apple": both words; "=balloon": exactly; "a|b":
    either)?"""
    if "|" in want:
        return any(wanted(caption, w) for w in want.split("|"))
    if want.startswith("="):
        return caption == want[1:]
    words = set(caption.lower().replace("-", " ").split())
    return set(want.split()) <= words


class Icons:
    """The shipped icons as (N, 3*64*64) float32 in [0, 1] (channel-first), for nearest-icon look-ups (172 MB)."""

    def __init__(self):
        from ..priors.icons import load_icon_data

        data = load_icon_data()
        self.images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).reshape(len(data["images"]), -1).float() / 255
        self.captions = [str(c) for c in data["caption"]]
        self.sq = self.images.pow(2).sum(1)  # |icon|^2, for the distances' one matrix-vector product

    def nearest(self, x: np.ndarray) -> int:
        """Index of the icon closest (L2) to one drawing x (3*64*64,); of equally close ones, the first.

        |icon - x|^2 = |icon|^2 - 2 icon.x + |x|^2: one matrix-vector product ranks all icons (9 ms; torch.cdist
        took 170-200 ms a drawing, which made judging a 40-cell grid's report take 8 s); the 8 best by it are then
        measured exactly, since float32 rounding of the expanded form can swap two nearly equal icons."""
        xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
        rough = self.sq - 2 * (self.images @ xt)
        near = torch.topk(rough, min(8, len(rough)), largest=False).indices.sort().values
        return int(near[torch.argmin((self.images[near] - xt).pow(2).sum(1))])


_icons: Icons | None = None
_lock = threading.Lock()


def icons() -> Icons:
    """The process's one `Icons` (built on first use: about a second and 172 MB)."""
    global _icons
    with _lock:
        if _icons is None:
            _icons = Icons()
        return _icons


def on_white(picture: str | Path | Image.Image) -> Image.Image:
    """A picture (path or image, any mode) composited over white, RGB."""
    im = (picture if isinstance(picture, Image.Image) else Image.open(picture)).convert("RGBA")
    page = Image.new("RGBA", im.size, "white")
    page.alpha_composite(im)
    return page.convert("RGB")


def vector(picture: str | Path | Image.Image) -> np.ndarray:
    """A picture as the icons are stored for look-ups: (3*64*64,) float32 in [0, 1], over white, box-filtered."""
    x = np.asarray(on_white(picture).resize((SIZE, SIZE), Image.BOX), dtype=np.float32) / 255
    return x.transpose(2, 0, 1).reshape(-1)


@dataclass(frozen=True)
class DrawnIcon:
    nearest: str  # the caption of the nearest shipped icon
    shows: bool  # whether it carries the wanted object


def drawn_icon(picture: str | Path | Image.Image, want: str) -> DrawnIcon:
    """Whether a result picture (a PNG path or image) is nearest to an icon of `want` (see `wanted`)."""
    found = icons()
    nearest = found.captions[found.nearest(vector(picture))]
    return DrawnIcon(nearest, wanted(nearest, want))


def shows_prompt(picture: str | Path | Image.Image, prompt: str, prior) -> DrawnIcon:
    """Whether a result picture is nearest to an icon the prompt retrieves from the icons prior (`prior`, an
    `IconPrior`: its finite log-weights are its concept of the prompt's object, so "a slice of pizza" counts the
    "pizza" icon, whose caption lacks "slice"). Raises InputError for a prompt that names no icon."""
    found = icons()
    i = found.nearest(vector(picture))
    return DrawnIcon(found.captions[i], bool(torch.isfinite(prior.log_weights(prompt)[i])))
