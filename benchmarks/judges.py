"""The project's judges of a picture, on the offline priors' own terms: does an SVG show the object its prompt names,
does an edited image show the edit its instruction names? Used by the browser test that runs every example
(tests/test_examples_browser.py) and open to the evaluations.

drawn_icon     the nearest shipped icon (L2 at 64 px over white) to a result picture, and whether its caption
               carries the wanted object ("fox", "red apple"): `backends.measures.icon_judge`, where the grid report
               (`backends.compare`) finds it too.
likeness       the RMS difference of a result from its input (both over white, 64 px on the short side, [0, 1]
               units): a vectorized image or a reconstructed target must look like what it was made from.
composed       for a composition ("a cat wearing a top hat"): each wanted object found by its best-matching windows,
               the picture cut into square windows (0.25-1 of its side, stride 1/32) compared at 32 px with the icons
               on the icons' own pixels; an object is shown when one of the 3 nearest of all shipped icons to one of
               the 5 windows that best match its own icons carries it.
sketch_icon    for a sketch: the shipped icon whose outline its strokes follow best, by chamfer distance between the
               strokes' ink (64 px) and each icon's outline (its silhouette and colour edges), both ways.
shown_edit     which of the `edits` prior's known edits a result moved its source towards: the displacement
               result - source (both at 64 px on the short side, box-filtered) against each edit's variants'
               displacements T_k(source) - source. direction: the best cosine over an edit's variants; reach: how
               far along that variant's displacement the result went (1 = all the way to the variant's look).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backends.measures.icon_judge import DrawnIcon, drawn_icon, on_white as _on_white

LIKENESS = 0.08  # a result looks like its input within this RMS
EDIT_DIRECTION = 0.8  # an edit is shown when the result moved this closely along one of its variants...
EDIT_REACH = 0.4  # ...and at least this far towards it (a visible edit, not a faint tint)

__all__ = ["DrawnIcon", "drawn_icon", "likeness", "shown_edit", "ShownEdit", "LIKENESS", "composed", "Composed",
           "sketch_icon"]
WINDOWS = tuple(round(0.25 + 0.05 * i, 2) for i in range(16))  # window sides, share of the picture's side: 0.25-1
JUDGE = 32  # px: windows and icons are compared at this size (a quarter of the work of 64 px)
FLAT = 0.08  # icons whose own pixels' colour spreads less than this (a black square, a new moon) judge nothing:
# they match any flat patch of anything
TOP_WINDOWS = 5  # a thing is shown when one of its best-matching windows ...
TOP_ICONS = 3  # ... has one of its icons among the few shipped icons it looks most like (of 3,508)


@dataclass(frozen=True)
class Composed:
    found: dict  # wanted object -> the caption of its best window's nearest icon ("" when none carries it)

    @property
    def shows_all(self) -> bool:
        return all(self.found.values())


def _windows(picture, work: int = 128) -> torch.Tensor:
    """(W, 3*JUDGE*JUDGE) every square window of the picture (over white, `work` px), each WINDOWS side at a stride
    of 1/32 of the picture, resized to JUDGE px (box-filtered: the picture is resized once per side, then cut)."""
    x = torch.from_numpy(np.asarray(_on_white(picture if isinstance(picture, Image.Image) else Image.open(picture))
                                    .resize((work, work), Image.BOX), dtype=np.float32) / 255).permute(2, 0, 1)
    out = []
    for share in WINDOWS:
        full = max(JUDGE, round(JUDGE / share))  # the picture's side when a window is JUDGE px
        small = F.interpolate(x[None], size=(full, full), mode="area") if full < work else \
            F.interpolate(x[None], size=(full, full), mode="bilinear", align_corners=False)
        stride = max(1, round(full / 32))
        patches = F.unfold(small, JUDGE, stride=stride)  # (1, 3*J*J, L)
        out.append(patches[0].T)
    return torch.cat(out)


_masks: tuple | None = None


def _icon_masks():
    """(masks (N, 3*J*J) float: each icon's own pixels (not the white around it, holes filled) at JUDGE px, repeated
    per channel; masked icons; their masked squared norms (N,); eligible (N,) bool: icons that fill at least a fifth
    of their square and are not one flat colour (FLAT), so a dot, a thin line or a black square cannot match every
    window; ink (N,): each masked icon's squared difference from white)."""
    global _masks
    if _masks is None:
        from scipy import ndimage

        from backends.measures.icon_judge import icons

        found = icons()
        x = found.images.view(-1, 3, 64, 64)
        ink = ((1 - x).amax(1) > 0.06).numpy()
        own = torch.from_numpy(np.stack([ndimage.binary_fill_holes(m) for m in ink])).float()
        small = F.avg_pool2d(x, 64 // JUDGE).flatten(1)
        own = F.avg_pool2d(own[:, None], 64 // JUDGE)[:, 0]
        m = own[:, None].expand(-1, 3, -1, -1).reshape(len(x), -1)
        masked = small * m
        ink = ((1 - small) * m).pow(2).sum(1).clamp_min(1e-6)  # how far the icon is from a blank window
        area = own.flatten(1).sum(1).clamp_min(1)
        mean = masked.view(len(x), 3, -1).sum(2) / area[:, None]
        spread = (((small.view(len(x), 3, -1) - mean[..., None]) * own.flatten(1)[:, None]).pow(2).sum((1, 2))
                  / (3 * area)).sqrt()
        eligible = (own.flatten(1).mean(1) >= 0.2) & (spread >= FLAT)
        _masks = (m, masked, (masked * small).sum(1), eligible, ink)
    return _masks


def _distances(win: torch.Tensor, cols: torch.Tensor | None = None) -> torch.Tensor:
    """(W, M) each window's difference from each icon (all, or the ids `cols`) over the icon's own pixels, relative
    to the icon's own difference from white (a pale icon, a white cloud, would otherwise match every empty corner);
    icons too small to judge by (`_icon_masks`) are infinitely far."""
    m, masked, msq, eligible, ink = _icon_masks()
    if cols is not None:
        m, masked, msq, eligible, ink = m[cols], masked[cols], msq[cols], eligible[cols], ink[cols]
    # sum over the mask of (w - i)^2 = M.w^2 - 2 (M*i).w + M.i^2: one product each
    d = (win.pow(2) @ m.T - 2 * win @ masked.T + msq[None]) / ink[None]
    d[:, ~eligible] = float("inf")
    return d


def composed(picture: str | Path | Image.Image, wants: list[str]) -> Composed:
    """Which of `wants` (as `drawn_icon`'s want: "cat", "top hat", "a|b") a picture shows somewhere. Per want: the
    TOP_WINDOWS windows that best match one of the icons carrying it (`_windows`: every square window, compared on the icon's
    own pixels, so another thing overlapping the window's corner does not count against it), then that window
    against every shipped icon: the want is shown when one of the TOP_ICONS nearest icons of one of them carries it
    (its caption is returned), else "" (those windows look more like other things)."""
    from backends.measures.icon_judge import icons, wanted

    found = icons()
    win = _windows(picture)
    out = {}
    for want in wants:
        cols = torch.tensor([i for i, c in enumerate(found.captions) if wanted(c, want)], dtype=torch.long)
        if not len(cols):
            out[want] = ""
            continue
        d = _distances(win, cols).min(1).values
        best = torch.topk(d, min(TOP_WINDOWS, len(d)), largest=False).indices
        near = torch.topk(_distances(win[best]), TOP_ICONS, dim=1, largest=False).indices  # (TOP_WINDOWS, TOP_ICONS)
        out[want] = next((found.captions[int(i)] for i in near.flatten() if wanted(found.captions[int(i)], want)), "")
    return Composed(out)


_outlines: tuple | None = None


def outlines(images: torch.Tensor) -> torch.Tensor:
    """(N, 64, 64) bool outlines of (N, 3, 64, 64) pictures in [0, 1] over white: where the colour changes by more
    than 0.25 (max over channels of a 3x3 Sobel, scaled to [0, 1] steps), the silhouette included."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]]) / 4
    k = torch.stack([kx, kx.T])[:, None].repeat(3, 1, 1, 1)  # (6, 1, 3, 3), grouped per channel
    g = F.conv2d(F.pad(images, (1, 1, 1, 1), mode="replicate"), k, groups=3)  # (N, 6, 64, 64)
    mag = g.view(len(images), 3, 2, 64, 64).pow(2).sum(2).sqrt().amax(1)
    return mag > 0.25


def _icon_outlines():
    """The shipped icons' outlines (N, 4096) float, their distance transforms (N, 4096) in px, built once."""
    global _outlines
    if _outlines is None:
        from scipy import ndimage

        from backends.measures.icon_judge import icons

        found = icons()
        edges = outlines(found.images.view(-1, 3, 64, 64))
        dts = np.stack([ndimage.distance_transform_edt(~e) for e in edges.numpy()])
        _outlines = (edges.flatten(1).float(), torch.from_numpy(dts.astype(np.float32)).flatten(1), found.captions)
    return _outlines


def sketch_icon(picture: str | Path | Image.Image, want: str) -> DrawnIcon:
    """The shipped icon whose outline a sketch (dark strokes over white; a PNG path or image) follows best, and
    whether its caption carries `want`: the least chamfer distance, mean distance (px at 64) from the sketch's ink
    to the icon's outline plus from the outline to the ink."""
    from scipy import ndimage

    from backends.measures.icon_judge import vector, wanted

    x = torch.from_numpy(vector(picture)).view(3, 64, 64)
    ink = (x.mean(0) < 0.75).numpy()
    if not ink.any():
        return DrawnIcon("", False)
    edges, dts, captions = _icon_outlines()
    inkv = torch.from_numpy(ink.reshape(-1).astype(np.float32))
    to_icon = dts @ inkv / inkv.sum()  # (N,)
    dt_ink = torch.from_numpy(ndimage.distance_transform_edt(~ink).astype(np.float32)).reshape(-1)
    to_ink = edges @ dt_ink / edges.sum(1).clamp_min(1)
    i = int(torch.argmin(to_icon + to_ink))
    return DrawnIcon(captions[i], wanted(captions[i], want))


@dataclass(frozen=True)
class ShownEdit:
    edit: str  # the known edit the result moved towards most closely
    direction: float  # cosine between the result's displacement and that edit's nearest variant's
    reach: float  # the share of that variant's displacement the result went

    def shows(self, want: str) -> bool:
        return self.edit == want and self.direction >= EDIT_DIRECTION and self.reach >= EDIT_REACH


def _small(im: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    arr = np.asarray(_on_white(im).resize(size, Image.BOX), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


def _pair(source, result, short_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, result) as (1, 3, h, w) tensors in [0, 1] at the result's aspect, `short_side` px on the short side."""
    res = result if isinstance(result, Image.Image) else Image.open(result)
    src = source if isinstance(source, Image.Image) else Image.open(source)
    scale = short_side / min(res.size)
    size = (max(1, round(res.size[0] * scale)), max(1, round(res.size[1] * scale)))
    return _small(src, size), _small(res, size)


def likeness(source: str | Path | Image.Image, result: str | Path | Image.Image, short_side: int = 64) -> float:
    """The RMS difference of `result` from `source` ([0, 1] units; 0: the same picture)."""
    x, y = _pair(source, result, short_side)
    return float((x - y).pow(2).mean().sqrt())


def shown_edit(source: str | Path | Image.Image, result: str | Path | Image.Image, short_side: int = 64) -> ShownEdit:
    """Which known edit `result` shows of `source` (the same picture before the edit; any sizes, same aspect)."""
    from backends.priors.edits import EDITS

    x, y = _pair(source, result, short_side)
    moved = (y - x).flatten()
    best = ShownEdit("", -1.0, 0.0)
    for edit in EDITS:
        toward = (edit.variants(x)[0] - x).flatten(1)  # (K, N): each variant's displacement
        cos = F.cosine_similarity(toward, moved[None], dim=1)
        k = int(cos.argmax())
        if float(cos[k]) > best.direction:
            best = ShownEdit(edit.name, float(cos[k]), float(toward[k] @ moved / (toward[k] @ toward[k]).clamp_min(1e-12)))
    return best
