"""Pictures of two or three icons laid out by the relation a prompt names: the components of the `icons` prior's
mixture for a compositional prompt ("a cat wearing a top hat", "an astronaut riding a horse").

Each icon is cut out by its own mask (its pixels that are not the white connected to the border, holes filled)
and placed by its own bounding box, so a wide rainbow and a tall bottle take the room their shapes need. The rules,
in canvas units (0..1, y down; M the main thing, O the other), one table (docs/text_to_svg_layout.md repeats it):

    relation   M (the first thing named)            O (the other)                              drawn
    wearing    fits x 0.14-0.86, y 0.30-0.98        hat: width w x M's, centred on M's head    M, then O
               (bottom-centred)                     (the largest blob of its top 40 %), its
                                                    bottom 0.12 of M's height into the head's
                                                    top; glasses: centred on the head blob;
                                                    else at its neck (0.8 of its height)
    holding    fits x 0.02-0.70, y 0.08-0.98        height h x M's, centred on M's right edge  M, then O
               (mirrored in a variant)              at 0.58 of M's height (hand height)
    riding     width r, centred over O, its bottom  fits x 0.04-0.96, y 0.40-0.98              O, then M
               0.45 of O's height into O
    on         as riding, 0.15 into O               as riding                                  O, then M
    in         as riding, 0.50 into O, r x 0.85     as riding                                  O, then M
    under      fits x 0.2-0.8, y 0.45-0.98          fits x 0.02-0.98, y 0.02-0.55 (top)        O, then M
    over       fits x 0.2-0.8, y 0.02-0.55 (top)    fits x 0.04-0.96, y 0.45-0.98              O, then M
    beside     side by side, each fits 1/n of the width (gap g), bottoms on one line           left to right
    backdrop   the composed scene shrinks to 0.8, bottom corner; the backdrop icon fits 0.34 in the other top
               corner, behind it

A third thing relates to M by its own rule (a hat and a held balloon); two "beside" things and M share a row.
Each relation has a few variants (`VARIANTS`: sizes, and the side for holding / beside / the backdrop); every
variant of every pair of retrieved icons is one component.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .reading import EYE_WORN, HEAD_WORN

WORK = 128  # px: layouts are drawn at twice the icons' size, then box-filtered to it (clean edges)
WHITE_TOL = 0.06  # a pixel differs from white by more than this (any channel): part of an icon

# Per relation, the variants' parameters: size (hat width / held height / rider width / row gap) and mirrored.
VARIANTS = {
    "wearing": [(0.62, False), (0.74, False), (0.52, False)],
    "holding": [(0.50, False), (0.42, True), (0.58, False)],
    "riding": [(0.52, False), (0.44, False), (0.60, False)],
    "on": [(0.52, False), (0.44, False), (0.60, False)],
    "in": [(0.52, False), (0.44, False), (0.60, False)],
    "under": [(0.60, False), (0.50, False), (0.68, False)],
    "over": [(0.60, False), (0.50, False), (0.68, False)],
    "beside": [(0.04, False), (0.04, True), (0.12, False)],
}


@dataclass(frozen=True)
class Cutout:
    """An icon cut out of its white: rgb (3, h, w) in [0, 1] and mask (h, w) float in [0, 1], cropped to its box."""

    rgb: torch.Tensor
    mask: torch.Tensor

    @property
    def aspect(self) -> float:
        """width / height"""
        return self.rgb.shape[-1] / self.rgb.shape[-2]


def cutout(image: torch.Tensor) -> Cutout:
    """The icon in `image` (3, n, n) in [0, 1] over white, cropped to its bounding box (its own pixels: all but the
    white connected to the border, so a white belly or eye stays)."""
    from scipy import ndimage

    x = image.detach().float().cpu().clamp(0, 1)
    ink = (1.0 - x).amax(0).numpy() > WHITE_TOL
    own = ndimage.binary_fill_holes(ink)
    if not own.any():
        own[:] = True
    ys, xs = np.nonzero(own)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    mask = torch.from_numpy(own[y0:y1, x0:x1].astype(np.float32))
    return Cutout(x[:, y0:y1, x0:x1].contiguous(), mask)


@dataclass
class Placed:
    """Where a cutout landed on the work canvas: its box (x0, y0, x1, y1) in canvas units and its scaled mask."""

    box: tuple[float, float, float, float]
    mask: np.ndarray  # (h, w) bool at WORK px, the placed pixels
    head_width: float = 0.0  # set by `head`: the head blob's width, canvas units

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]

    def head(self) -> tuple[float, float]:
        """(x, y) in canvas units of the thing's head: the centre of the largest blob of its top 40 % (a cat's
        head, not its raised tail's tip); a hat sits on its top, glasses across its middle."""
        from scipy import ndimage

        ys, xs = np.nonzero(self.mask)
        if not len(ys):
            return (self.box[0] + self.box[2]) / 2, self.box[1]
        top = self.mask.copy()
        top[int(ys.min() + 0.4 * (ys.max() - ys.min() + 1)):] = False
        labels, n = ndimage.label(top)
        sizes = ndimage.sum(top, labels, range(1, n + 1))
        blob = labels == int(np.argmax(sizes)) + 1
        cy, cx = ndimage.center_of_mass(blob)
        cols = np.nonzero(blob.any(0))[0]
        self.head_width = float(cols.max() - cols.min() + 1) / WORK
        return float(cx + 0.5) / WORK, float(cy + 0.5) / WORK

    def head_top(self) -> float:
        """The top (canvas units) of the head blob's column band."""
        x, _ = self.head()
        col = self.mask[:, min(WORK - 1, max(0, int(x * WORK)))]
        rows = np.nonzero(col)[0]
        return float(rows.min()) / WORK if len(rows) else self.box[1]


class Canvas:
    """A WORK x WORK white canvas that cutouts are pasted on in painter's order."""

    def __init__(self):
        self.rgb = torch.ones(3, WORK, WORK)

    def fit(self, c: Cutout, rect, anchor: str = "bottom") -> tuple[float, float, float, float]:
        """The box (canvas units) of `c` scaled to fit inside rect (x0, y0, x1, y1), centred across and placed at the
        rect's bottom, top or middle (anchor)."""
        x0, y0, x1, y1 = rect
        scale = min((x1 - x0) / c.aspect, y1 - y0)  # the placed height
        w, h = scale * c.aspect, scale
        cx = (x0 + x1) / 2
        top = {"bottom": y1 - h, "top": y0, "middle": (y0 + y1 - h) / 2}[anchor]
        return (cx - w / 2, top, cx + w / 2, top + h)

    def paste(self, c: Cutout, box) -> Placed:
        """Draw `c` into box (canvas units; may reach past the canvas, which clips it)."""
        x0, y0, x1, y1 = (round(v * WORK) for v in box)
        w, h = max(1, x1 - x0), max(1, y1 - y0)
        rgb = F.interpolate(c.rgb[None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
        m = F.interpolate(c.mask[None, None], size=(h, w), mode="bilinear", antialias=True, align_corners=False)[0]
        cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(WORK, x0 + w), min(WORK, y0 + h)
        placed = np.zeros((WORK, WORK), dtype=bool)
        if cx1 > cx0 and cy1 > cy0:
            src = (slice(None), slice(cy0 - y0, cy1 - y0), slice(cx0 - x0, cx1 - x0))
            a = m[src].clamp(0, 1)
            region = self.rgb[:, cy0:cy1, cx0:cx1]
            self.rgb[:, cy0:cy1, cx0:cx1] = region * (1 - a) + rgb[src] * a
            placed[cy0:cy1, cx0:cx1] = a[0].numpy() > 0.5
        return Placed((x0 / WORK, y0 / WORK, (x0 + w) / WORK, (y0 + h) / WORK), placed)

    def image(self, size: int) -> torch.Tensor:
        """(3, size, size) in [0, 1]: the canvas box-filtered down."""
        return F.adaptive_avg_pool2d(self.rgb[None], size)[0].clamp(0, 1)


def _mirror(rect, on: bool):
    x0, y0, x1, y1 = rect
    return (1 - x1, y0, 1 - x0, y1) if on else rect


def _other_box(m: Placed, o: Cutout, relation: str, size: float, mirrored: bool, head: str):
    """The box of a thing placed relative to the placed main thing `m` (see the module's table)."""
    if relation == "wearing":
        w = size * m.width
        h = w / o.aspect
        hx, hy = m.head()
        if head in EYE_WORN:
            w = 0.95 * m.head_width
            h = w / o.aspect
            return (hx - w / 2, hy - h / 2, hx + w / 2, hy + h / 2)
        if head in HEAD_WORN:
            bottom = m.head_top() + 0.12 * m.height
            return (hx - w / 2, bottom - h, hx + w / 2, bottom)
        w, h = 0.45 * m.width, 0.45 * m.width / o.aspect  # at the neck
        cx, cy = (m.box[0] + m.box[2]) / 2, m.box[1] + 0.8 * m.height
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    if relation == "holding":
        h = size * m.height
        w = h * o.aspect
        if w > 0.5:  # a wide thing (a skateboard, a book open flat) is held at most half the canvas wide
            w, h = 0.5, 0.5 / o.aspect
        cx = m.box[0] if mirrored else m.box[2]
        cx = min(max(cx, w / 2 + 0.01), 0.99 - w / 2)
        cy = m.box[1] + 0.58 * m.height
        return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    # beside, as a third thing: a smaller one at the bottom corner away from M's side
    w = min(0.36, 0.36 * o.aspect)
    h = w / o.aspect
    left = m.box[0] + m.box[2] > 1.0
    x0 = 0.02 if left else 0.98 - w
    return (x0, 0.98 - h, x0 + w, 0.98)


def layout(things: list[tuple[Cutout, str]], relations: list[str], variant: int = 0,
           backdrop: Cutout | None = None, size: int = 64) -> torch.Tensor:
    """One composed picture (3, size, size) in [0, 1] over white.

    things: (cutout, head noun) for the main thing then up to two others; relations: one key of VARIANTS per other
    (how it relates to the main thing); variant: which of the relation's VARIANTS (sizes, sides) to draw;
    backdrop: a setting's icon drawn small behind, in a top corner."""
    if len(relations) != len(things) - 1:
        raise ValueError(f"{len(things)} things need {len(things) - 1} relations, not {len(relations)}")
    cv = Canvas()
    first = relations[0] if relations else None
    (m, _), others = things[0], things[1:]
    param, mirrored = VARIANTS[first][variant % len(VARIANTS[first])] if first else (0.0, variant % 2 == 1)
    scale = 0.8 if backdrop is not None else 1.0
    shift_x = (1 - scale) if (backdrop is not None and not mirrored) else 0.0  # away from the backdrop's corner

    def at(rect):  # a rect of the full canvas, moved into the part the backdrop leaves
        x0, y0, x1, y1 = rect
        return (shift_x + x0 * scale, 1 - scale + y0 * scale, shift_x + x1 * scale, 1 - scale + y1 * scale)

    if backdrop is not None:
        corner = (0.02, 0.02, 0.36, 0.36) if not mirrored else (0.64, 0.02, 0.98, 0.36)
        cv.paste(backdrop, cv.fit(backdrop, corner, "top"))
    if first is None:
        cv.paste(m, cv.fit(m, at((0.1, 0.1, 0.9, 0.98))))
        return cv.image(size)
    if all(r == "beside" for r in relations):
        n, gap = len(things), param
        width = (1 - gap * (n - 1) - 0.04) / n
        order = list(reversed(things)) if mirrored else things
        boxes = []
        for j, (c, _) in enumerate(order):
            x0 = 0.02 + j * (width + gap)
            boxes.append(cv.fit(c, at((x0, 0.15, x0 + width, 0.85)), "bottom"))
        for (c, _), box in zip(order, boxes):
            cv.paste(c, box)
        return cv.image(size)
    o, head = others[0]
    if first in ("riding", "on", "in", "over", "under"):
        if first in ("riding", "on", "in"):
            ob = cv.fit(o, at((0.04, 0.40, 0.96, 0.98)))
            r = param * (0.85 if first == "in" else 1.0)
            w = min(r * m.aspect, r) if m.aspect < 1 else r
            h = w / m.aspect
            into = {"riding": 0.45, "on": 0.15, "in": 0.5}[first] * (ob[3] - ob[1])
            cx = (ob[0] + ob[2]) / 2
            bottom = max(ob[1] + into, h * scale + (1 - scale))  # never above the canvas' top
            mb = (cx - w * scale / 2, bottom - h * scale, cx + w * scale / 2, bottom)
        elif first == "under":  # O over M: a rainbow, a cloud, an umbrella above
            ob = cv.fit(o, at((0.02, 0.02, 0.98, 0.55)), "top")
            half = param / 2
            mb = cv.fit(m, at((0.5 - half, 0.45, 0.5 + half, 0.98)))
        else:  # over: M over O
            ob = cv.fit(o, at((0.04, 0.45, 0.96, 0.98)))
            half = param / 2
            mb = cv.fit(m, at((0.5 - half, 0.02, 0.5 + half, 0.55)), "top")
        cv.paste(o, ob)
        placed = cv.paste(m, mb)
        rest = others[1:]
        rest_rel = relations[1:]
    else:  # wearing, holding: M takes most of the canvas, O goes on it
        rect = (0.14, 0.30, 0.86, 0.98) if first == "wearing" else _mirror((0.02, 0.08, 0.70, 0.98), mirrored)
        placed = cv.paste(m, cv.fit(m, at(rect)))
        rest, rest_rel = others, relations
    for (c, h), rel in zip(rest, rest_rel):
        p, mir = VARIANTS[rel][variant % len(VARIANTS[rel])]
        cv.paste(c, _other_box(placed, c, rel, p, mir, h))
    return cv.image(size)


# Where each colour word puts a recoloured pixel: (hue in degrees or None to keep it, saturation factor, value cap).
# Hues are the middle of `reading.colour_shares`' bins; brown is a dark orange, black / white / gray lose their hue.
RECOLOUR = {"red": (0.0, 1.0, 1.0), "orange": (28.0, 1.0, 1.0), "yellow": (52.0, 1.0, 1.0),
            "green": (120.0, 1.0, 1.0), "blue": (215.0, 1.0, 1.0), "purple": (275.0, 1.0, 1.0),
            "pink": (320.0, 0.6, 1.0), "brown": (25.0, 1.0, 0.5), "black": (None, 0.0, 0.2),
            "white": (None, 0.05, 1.0), "gray": (None, 0.0, 0.6)}


def recolour(images: torch.Tensor, colour: str) -> torch.Tensor:
    """Icons (M, 3, n, n) in [0, 1] over white, each with its main colour turned to `colour` (a key of RECOLOUR):
    the pixels of the icon's most common hue (30-degree bins of its saturated pixels) take the colour's hue,
    keeping their shading; outlines, eyes and white parts stay. For a colour word no icon of the thing has ("a
    yellow umbrella")."""
    import kornia.color

    hue, sat_factor, value_cap = RECOLOUR[colour]
    hsv = kornia.color.rgb_to_hsv(images.float().clamp(0, 1))  # h in radians [0, 2pi), s and v in [0, 1]
    h, s, v = hsv.unbind(1)
    saturated = (s > 0.25) & (v > 0.2)
    bins = (h / (2 * np.pi) * 12).long().clamp(0, 11)
    out = []
    for i in range(len(images)):
        counts = torch.bincount(bins[i][saturated[i]], minlength=12)
        main = saturated[i] & (bins[i] == int(counts.argmax())) if int(counts.sum()) else saturated[i]
        hi, si, vi = h[i].clone(), s[i].clone(), v[i].clone()
        if hue is not None:
            hi[main] = float(np.deg2rad(hue))
        si[main] = si[main] * sat_factor
        vi[main] = torch.minimum(vi[main], torch.tensor(value_cap)) if colour != "white" else \
            vi[main].clamp(min=0.9)
        out.append(kornia.color.hsv_to_rgb(torch.stack([hi, si, vi])[None])[0])
    return torch.stack(out).clamp(0, 1)
