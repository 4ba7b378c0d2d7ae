"""Raster to `Painting` in milliseconds: vtracer's colour tracing, refitted to the Painting's fixed path layout.

VectorFusion's best pipeline samples a raster, vectorizes it and refines the paths with SDS. LIVE, its vectorizer
(`vectorize.live_vectorize`), fits paths by gradient descent: minutes on a CPU. vtracer (visioncortex, Rust, MIT)
clusters colours and traces their outlines into Bezier curves in milliseconds; this module turns its output into
what the SDS backends optimize:

1. The background (pixels close to the image's border colour and connected to the border) is made transparent,
   so vtracer traces only the subject; its colour becomes the Painting's background.
2. vtracer traces the rest in "stacked" mode: every shape is a filled region painted over the ones before it, so
   a shape that is dropped leaves the colour of the shape under it (a merge, not a hole).
3. The budget: the smallest shapes (by area) are dropped until at most `paths` are left; painter's order kept.
4. Each shape's outer contour is flattened to a polyline and refitted as `segments` cubic Beziers (least squares,
   ends on the contour, split at equal arc length starting at its sharpest corner): the Painting needs one segment
   count for all shapes. Colours are kept as traced.
"""
from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass

import numpy as np
import torch

from .painting import Painting

TRACE_MIN = 256     # px: the raster is upscaled to at least this long side before tracing (smoother outlines)
BACKGROUND_TOL = 0.08  # RGB distance (of [0, 1] units) within which a border-connected pixel is background

# vtracer's own output: <path d="..." fill="#RRGGBB" transform="translate(x,y)"/>, absolute commands M L C Z
_PATH = re.compile(r'<path d="([^"]*)" fill="#([0-9A-Fa-f]{6})"(?: transform="translate\((-?[\d.]+),(-?[\d.]+)\)")?')
_TOKEN = re.compile(r"[MLCZmlcz]|-?\d+(?:\.\d+)?")


@dataclass
class Traced:
    """One traced shape: its outer contour (M, 2) float64 in trace pixels (closed: the last point is not the first
    repeated), its fill RGB in [0, 1] and its area in trace pixels^2."""

    contour: np.ndarray
    rgb: tuple[float, float, float]
    area: float


def background_mask(image: np.ndarray, tol: float = BACKGROUND_TOL) -> tuple[np.ndarray, np.ndarray]:
    """(mask (H, W) bool, colour (3,)): the pixels within `tol` of the border's median colour that are connected to
    the border (4-connected), and that colour. image: (H, W, 3) float in [0, 1]."""
    from scipy import ndimage

    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    colour = np.median(border, axis=0)
    near = np.linalg.norm(image - colour, axis=-1) <= tol
    labels, _ = ndimage.label(near)
    edge = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, edge[edge > 0]), colour


def trace_shapes(image: np.ndarray, *, speckle: int = 4) -> tuple[list[Traced], np.ndarray]:
    """vtracer's stacked colour trace of `image` (H, W, 3) float in [0, 1] with its background cut out.

    Returns (shapes in painter's order, background RGB (3,)); coordinates in the image's pixels. speckle: vtracer's
    filter_speckle, patches smaller than speckle x speckle px are dropped (at TRACE_MIN px).
    """
    import vtracer
    from PIL import Image

    h, w = image.shape[:2]
    scale = max(1, math.ceil(TRACE_MIN / max(h, w)))
    mask, colour = background_mask(image)
    rgba = np.concatenate([image, (~mask)[..., None].astype(np.float32)], axis=-1)
    pil = Image.fromarray((np.clip(rgba, 0, 1) * 255 + 0.5).astype(np.uint8), "RGBA")
    if scale > 1:  # smooth colours, but a hard alpha edge where the original had it (vtracer takes any alpha > 0)
        pil = pil.resize((w * scale, h * scale), Image.BICUBIC)
        pil.putalpha(pil.getchannel("A").point(lambda a: 255 if a >= 128 else 0))
    buf = io.BytesIO()
    pil.save(buf, format="png")
    svg = vtracer.convert_raw_image_to_svg(buf.getvalue(), img_format="png", colormode="color",
                                           hierarchical="stacked", mode="spline", filter_speckle=speckle,
                                           color_precision=6, layer_difference=16, corner_threshold=60,
                                           length_threshold=4.0, max_iterations=10, splice_threshold=45,
                                           path_precision=3)
    found = _PATH.findall(svg)
    if len(found) != svg.count("<path"):  # a vtracer whose output this reader does not know: say so, never guess
        raise RuntimeError(f"vtracer wrote {svg.count('<path')} paths, of which {len(found)} could be read: its output "
                           "format changed (tested with vtracer 0.6)")
    shapes = []
    for d, hexcol, tx, ty in found:
        contour = _outer_contour(d)
        if contour is None:
            continue
        contour = (contour + [float(tx or 0), float(ty or 0)]) / scale
        area = abs(_shoelace(contour))
        if area <= 0:
            continue
        rgb = tuple(int(hexcol[i:i + 2], 16) / 255.0 for i in (0, 2, 4))
        shapes.append(Traced(contour, rgb, area))
    return shapes, colour


def _outer_contour(d: str, per_curve: int = 8) -> np.ndarray | None:
    """The largest closed subpath of an absolute M/L/C/Z path as a polyline (cubics sampled `per_curve` times)."""
    tokens = _TOKEN.findall(d)
    subpaths, current, pen, i = [], [], None, 0
    while i < len(tokens):
        cmd = tokens[i]
        i += 1
        if cmd in "Mm":
            if len(current) > 2:
                subpaths.append(np.array(current))
            pen = (float(tokens[i]), float(tokens[i + 1]))
            current, i = [pen], i + 2
        elif cmd in "Ll" and pen is not None:
            pen = (float(tokens[i]), float(tokens[i + 1]))
            current.append(pen)
            i += 2
        elif cmd in "Cc" and pen is not None:
            c = np.array([pen] + [(float(tokens[i + 2 * k]), float(tokens[i + 2 * k + 1])) for k in range(3)])
            u = np.linspace(0, 1, per_curve + 1)[1:, None]
            curve = ((1 - u) ** 3 * c[0] + 3 * (1 - u) ** 2 * u * c[1] + 3 * (1 - u) * u ** 2 * c[2] + u ** 3 * c[3])
            current.extend(map(tuple, curve))
            pen = tuple(c[3])
            i += 6
        elif cmd in "Zz":
            if len(current) > 2:
                subpaths.append(np.array(current))
            current = []
        else:  # a number where a command was expected (implicit repeats): vtracer never writes them
            return None
    if len(current) > 2:
        subpaths.append(np.array(current))
    if not subpaths:
        return None
    outer = max(subpaths, key=lambda p: abs(_shoelace(p)))
    if np.allclose(outer[0], outer[-1]):
        outer = outer[:-1]
    return outer if len(outer) > 2 else None


def _shoelace(p: np.ndarray) -> float:
    x, y = p[:, 0], p[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def fit_closed_cubics(contour: np.ndarray, segments: int) -> np.ndarray:
    """(3*segments, 2) control points of a closed path of `segments` cubics following a closed polyline (M, 2).

    The contour is cut at `segments` points of equal arc length, starting at its sharpest corner (so at least one
    corner stays sharp); each piece is a cubic whose ends are the cut points and whose two inner control points are
    the least-squares fit to the piece's points at their chord-length parameters. Layout as `Painting` (anchor of
    segment i at 3i, its controls at 3i + 1 and 3i + 2, the next anchor at 3(i + 1) mod 3S)."""
    pts = np.asarray(contour, dtype=np.float64)
    pts = np.roll(pts, -_sharpest(pts), axis=0)
    closed = np.concatenate([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    length = arc[-1]
    if length <= 0:
        return np.repeat(pts[:1], 3 * segments, axis=0)
    # dense, evenly spaced resampling: every piece gets enough points for a stable fit
    n = max(16 * segments, len(pts))
    s = np.linspace(0.0, length, n, endpoint=False)
    dense = np.stack([np.interp(s, arc, closed[:, 0]), np.interp(s, arc, closed[:, 1])], axis=1)
    cuts = np.linspace(0, n, segments + 1).round().astype(int)
    out = np.zeros((3 * segments, 2))
    for k in range(segments):
        piece = np.concatenate([dense[cuts[k]:cuts[k + 1]], dense[cuts[k + 1] % n][None]])
        out[3 * k:3 * k + 3] = _fit_cubic(piece)[:3]
    return out


def _sharpest(pts: np.ndarray) -> int:
    """Index of the polyline vertex with the largest turning angle."""
    a, b = pts - np.roll(pts, 1, axis=0), np.roll(pts, -1, axis=0) - pts
    cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
    return int(np.argmin(cos))


def _fit_cubic(p: np.ndarray) -> np.ndarray:
    """(4, 2) cubic Bezier with ends p[0], p[-1] whose inner controls fit the points p (M, 2) in least squares."""
    p0, p3 = p[0], p[-1]
    d = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(p, axis=0), axis=1))])
    if len(p) < 4 or d[-1] <= 0:
        return np.stack([p0, p0 + (p3 - p0) / 3, p0 + 2 * (p3 - p0) / 3, p3])
    u = d / d[-1]
    b0, b1, b2, b3 = (1 - u) ** 3, 3 * (1 - u) ** 2 * u, 3 * (1 - u) * u ** 2, u ** 3
    rhs = p - np.outer(b0, p0) - np.outer(b3, p3)
    a = np.stack([b1, b2], axis=1)
    sol, *_ = np.linalg.lstsq(a, rhs, rcond=None)
    return np.stack([p0, sol[0], sol[1], p3])


def trace_painting(image: torch.Tensor, *, paths: int, segments: int, canvas: int, speckle: int = 4) -> Painting:
    """One raster (3, H, W) in [0, 1] traced into a K = 1 Painting of at most `paths` closed paths of `segments`
    cubics each on a `canvas` x `canvas` px canvas (the image is stretched to it). The largest shapes are kept,
    in painter's order; an image with nothing but background gives one invisible, zero-area path (a Painting is
    never empty, and VectorFusion's re-initialization turns it into a live one)."""
    img = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    h, w = img.shape[:2]
    shapes, background = trace_shapes(img, speckle=speckle)
    if len(shapes) > paths:
        keep = sorted(sorted(range(len(shapes)), key=lambda i: -shapes[i].area)[:paths])
        shapes = [shapes[i] for i in keep]
    scale = np.array([canvas / w, canvas / h])
    if shapes:
        points = np.stack([fit_closed_cubics(s.contour * scale, segments) for s in shapes])
        colors = np.array([[*s.rgb, 1.0] for s in shapes])
    else:
        points = np.full((1, 3 * segments, 2), canvas / 2.0)
        colors = np.zeros((1, 4))
    device = image.device
    n = len(points)
    return Painting(canvas, canvas, "path", torch.tensor(points, dtype=torch.float32, device=device)[None],
                    torch.tensor(colors, dtype=torch.float32, device=device)[None],
                    torch.tensor(background, dtype=torch.float32, device=device)[None], torch.arange(n)[None])


def _resample(line: np.ndarray, n: int) -> np.ndarray:
    """n points at equal arc length along an open polyline (M, 2)."""
    seg = np.linalg.norm(np.diff(line, axis=0), axis=1)
    s = np.concatenate([[0.0], np.cumsum(seg)])
    if s[-1] <= 0:
        return np.repeat(line[:1], n, axis=0)
    t = np.linspace(0.0, s[-1], n)
    return np.stack([np.interp(t, s, line[:, 0]), np.interp(t, s, line[:, 1])], axis=1)


def _arc(contour: np.ndarray, lo: float, hi: float, closed: bool) -> np.ndarray:
    """The part of a polyline between arc lengths lo and hi (closed: wrapping once), with its end points."""
    pts = np.concatenate([contour, contour[:1]]) if closed else contour
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    inner = pts[(s > lo) & (s < hi)]
    at = lambda v: np.array([np.interp(v, s, pts[:, 0]), np.interp(v, s, pts[:, 1])])  # noqa: E731
    return np.vstack([at(lo)[None], inner, at(hi)[None]])


def _runs(points: np.ndarray, new: np.ndarray) -> list[np.ndarray]:
    """The maximal runs of consecutive `new` points of a closed polyline (M, 2), as open polylines; the whole
    contour when every point is new."""
    if new.all():
        return [points]
    start = int(np.argmin(new))  # begin at a covered point, so no run wraps past the array's end
    pts, flags = np.roll(points, -start, axis=0), np.roll(new, -start)
    runs, cur = [], []
    for p, f in zip(pts, flags):
        if f:
            cur.append(p)
        elif cur:
            runs.append(np.array(cur))
            cur = []
    if cur:
        runs.append(np.array(cur))
    return [r for r in runs if len(r) > 1]


def _length(line: np.ndarray, closed: bool = False) -> float:
    pts = np.vstack([line, line[:1]]) if closed else line
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum())


class _TakenPoints:
    """The outline points taken so far, asked for each new point's distance to the nearest of them. A k-d tree over
    all of them rebuilt for each shape costs shapes x points, and a noisy sample traces into thousands of shapes
    (minutes); trees of doubling sizes (Bentley and Saxe's logarithmic method) give the same distances, each point rebuilt
    into a tree a logarithmic number of times."""

    def __init__(self):
        self.trees: list = []

    def add(self, points: np.ndarray) -> None:
        from scipy.spatial import cKDTree

        # Each tree holds over twice the next (so at most log2(n) + 1 trees to ask), and a tree that is rebuilt
        # grows by at least half (so each point is rebuilt about log1.5(n) times, however the sizes arrive).
        parts, size = [points], len(points)
        while self.trees and self.trees[-1].n <= 2 * size:
            parts.append(self.trees.pop().data)
            size += len(parts[-1])
        self.trees.append(cKDTree(np.vstack(parts)))

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Each point's distance to the nearest taken point (inf when none is taken)."""
        d = np.full(len(points), np.inf)
        for tree in self.trees:
            d = np.minimum(d, tree.query(points)[0])
        return d


def stroke_lines(image: np.ndarray, count: int, *, speckle: int = 4, min_share: float = 0.04,
                 tol: float = 0.02) -> list[np.ndarray]:
    """The `count` open polylines a sketch of `image` (H, W, 3) in [0, 1] starts from, in image pixels, most salient
    first: the outlines of its colour regions (vtracer's, as `trace_shapes`), the largest region's first (the
    silhouette). A region's outline runs along its neighbours' where they touch: the parts within `tol` (share of
    the image's side) of an outline already taken are dropped, so no edge is drawn twice. What is left is cut into
    pieces of about equal length, so that every stroke covers a like share of the drawing; pieces shorter than
    `min_share` of the image's perimeter are dropped (specks). An image with nothing but background gives none."""
    h, w = image.shape[:2]
    shapes, _ = trace_shapes(image, speckle=speckle)
    shapes = sorted(shapes, key=lambda s: -s.area)
    near = tol * max(h, w)
    taken = _TakenPoints()
    lines: list[tuple[float, np.ndarray, bool]] = []  # (salience rank, polyline, closed)
    for rank, s in enumerate(shapes):
        c = _resample(np.vstack([s.contour, s.contour[:1]]), max(8, int(_length(s.contour, True) / 1.0)))[:-1]
        runs = _runs(c, taken.distance(c) > near)
        for r in runs:
            closed = len(r) == len(c)
            if _length(r, closed) >= min_share * 2 * (h + w):
                lines.append((rank, r, closed))
        taken.add(c)
    if not lines or count < 1:
        return []
    total = sum(_length(r, closed) for _, r, closed in lines)
    chunk = total / count
    pieces: list[tuple[float, np.ndarray]] = []
    for rank, r, closed in lines:
        L = _length(r, closed)
        n = max(1, round(L / chunk))
        for j in range(n):
            pieces.append((rank + j / (n + 1), _arc(r, L * j / n, L * (j + 1) / n, closed=closed)))
    pieces.sort(key=lambda p: p[0])
    out = [p for _, p in pieces[:count]]
    while len(out) < count:  # fewer pieces than strokes: halve the longest
        i = max(range(len(out)), key=lambda k: _length(out[k]))
        line = out.pop(i)
        L = _length(line)
        out[i:i] = [_arc(line, 0.0, L / 2, closed=False), _arc(line, L / 2, L, closed=False)]
    return out


def trace_strokes(image: torch.Tensor, *, paths: int, segments: int, canvas: int, stroke_width: float,
                  speckle: int = 4) -> Painting:
    """A sketch's start from one raster (3, H, W) in [0, 1]: a K = 1 Painting of `paths` open black strokes of
    `segments` cubics and `stroke_width` px on a `canvas` px canvas, laid along the picture's outlines
    (`stroke_lines`: the silhouette first, then inner regions' outlines), each stroke's control points at equal arc
    length along its piece (CLIPasso and DiffSketcher start from a picture's salient edges for the same reason:
    strokes from random walks never organise into a drawing in a short run). An image with nothing but background
    gives strokes along a centred circle."""
    img = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    h, w = img.shape[:2]
    if max(h, w) < TRACE_MIN:  # smoother outlines, as trace_painting
        from PIL import Image

        f = -(-TRACE_MIN // max(h, w))
        img = np.asarray(Image.fromarray((img * 255).round().astype(np.uint8)).resize((w * f, h * f),
                                                                                     Image.BICUBIC)) / 255.0
        h, w = img.shape[:2]
    lines = stroke_lines(img, paths, speckle=speckle)
    scale = np.array([canvas / w, canvas / h])
    if not lines:
        ring = np.stack([np.cos(np.linspace(0, 2 * np.pi, 200)), np.sin(np.linspace(0, 2 * np.pi, 200))], 1)
        ring = (ring * 0.3 + 0.5) * np.array([w, h])
        lines = [_arc(ring, 2 * np.pi * 0.3 * w * j / paths, 2 * np.pi * 0.3 * w * (j + 1) / paths, closed=False)
                 for j in range(paths)]
    points = np.stack([_resample(line * scale, 3 * segments + 1) for line in lines])
    device = image.device
    n = len(points)
    return Painting(canvas, canvas, "stroke", torch.tensor(points, dtype=torch.float32, device=device)[None],
                    torch.tensor([0.0, 0.0, 0.0, 1.0], device=device).expand(1, n, 4).clone(),
                    torch.ones(1, 3, device=device), torch.arange(n)[None], stroke_width)
