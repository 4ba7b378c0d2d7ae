"""What every SVG backend optimizes: the `Painting` (K vector scenes of N same-kind shapes as a few batched leaf
tensors) and its random initializers (VectorFusion's random circles, random-walk strokes, a pixel grid). The
initializers from prior samples (sample -> trace or LIVE) are in `sampled_init.py`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.pixels import to_uint8
from .render import render_batch
from .scene import Scene, Shape, unit_circle
from .svgio import save_svg

SHAPE_KINDS = ("path", "stroke", "square")


@dataclass
class Painting:
    """K vector scenes with one layout, as batched tensors: what an optimizer updates.

    kind: "path" (closed, filled cubic paths), "stroke" (open stroked paths) or "square" (axis-aligned
    squares, pixel art); points: (K, N, P, 2) canvas pixels, P = 3S (paths), 3S + 1 (strokes), 2 (squares:
    two corners); colors: (K, N, 4) RGBA in [0, 1], the fill (paths, squares) or the stroke color (strokes);
    background: (K, 3) RGB in [0, 1]; order: (K, N) long, painter's order (order[k, j] is the shape drawn j-th
    in scene k); stroke_width: pixels (strokes only). The canvas is width x height pixels.
    """

    width: int
    height: int
    kind: str
    points: torch.Tensor
    colors: torch.Tensor
    background: torch.Tensor
    order: torch.Tensor
    stroke_width: float = 0.0

    def __post_init__(self):
        if self.kind not in SHAPE_KINDS:
            raise ValueError(f"unknown shape kind {self.kind!r}: use one of {SHAPE_KINDS}")
        k, n = self.points.shape[:2]
        if self.colors.shape != (k, n, 4) or self.background.shape != (k, 3) or self.order.shape != (k, n):
            raise ValueError("points (K, N, P, 2), colors (K, N, 4), background (K, 3), order (K, N) disagree")

    @property
    def k(self) -> int:
        return self.points.shape[0]

    @property
    def n(self) -> int:
        return self.points.shape[1]

    def cubics(self) -> torch.Tensor:
        """(K, N, S, 4, 2) control points of every segment (closed paths wrap around); differentiable."""
        p = self.points.shape[2]
        if self.kind == "path":
            s = p // 3
            idx = (torch.arange(s)[:, None] * 3 + torch.arange(4)[None]) % p
        elif self.kind == "stroke":
            s = (p - 1) // 3
            idx = torch.arange(s)[:, None] * 3 + torch.arange(4)[None]
        else:
            raise ValueError("squares have no Bezier segments")
        return self.points[:, :, idx.to(self.points.device)]

    def scenes(self) -> list[Scene]:
        """The K scenes, sharing the tensors (rendering them is differentiable in points, colors, background)."""
        out = []
        # the constant parts made once, on the device: a default per Shape would be one host-to-device copy each
        none = torch.zeros(4, device=self.points.device, dtype=self.points.dtype)
        width = torch.tensor(float(self.stroke_width), device=self.points.device, dtype=self.points.dtype)
        for k in range(self.k):
            shapes = []
            for i in self.order[k].tolist():
                if self.kind == "stroke":
                    shapes.append(Shape("stroke", self.points[k, i], fill=none, stroke=self.colors[k, i],
                                        stroke_width=width))
                else:
                    shapes.append(Shape(self.kind, self.points[k, i], fill=self.colors[k, i], stroke=none,
                                        stroke_width=width))
            out.append(Scene(self.width, self.height, shapes, background=self.background[k]))
        return out

    def render(self, size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """(K, 3, H, W) images in [0, 1] (default: the canvas size), one `render_batch` call.

        Pixel-aligned, non-overlapping squares (pixel art) take a shortcut that gives the renderer's exact
        output (each pixel is inside exactly one square or none: coverage 1 or 0) as one gather instead of
        one compositing layer per square; at another `size` it is area-resampled (previews).
        """
        if self.kind == "square":
            cells = self._pixel_cells()
            if cells is not None:
                out = self._render_cells(cells)
                if size is not None and size != self.width and tuple(np.atleast_1d(size)) != (self.height, self.width):
                    hw = (round(size * self.height / self.width), size) if isinstance(size, int) else tuple(size)
                    out = F.interpolate(out, size=hw, mode="area")
                return out
        return render_batch(self.scenes(), size=size).permute(0, 3, 1, 2)

    def _pixel_cells(self) -> torch.Tensor | None:
        """(K, H*W) long: the square covering each pixel (-1: none), or None when some square is not on whole
        pixels inside the canvas or two squares overlap. Cached while the points do not change."""
        key = (self.points.data_ptr(), self.points._version, tuple(self.points.shape))
        cached = getattr(self, "_cells_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        pts = self.points.detach().cpu().double()
        cells = None
        if torch.equal(pts, pts.round()):
            lo = torch.minimum(pts[:, :, 0], pts[:, :, 1]).long().numpy()
            hi = torch.maximum(pts[:, :, 0], pts[:, :, 1]).long().numpy()
            if (lo >= 0).all() and (hi[..., 0] <= self.width).all() and (hi[..., 1] <= self.height).all():
                maps = np.full((self.k, self.height, self.width), -1, dtype=np.int64)
                count = np.zeros((self.k, self.height, self.width), dtype=np.int32)
                for k in range(self.k):
                    for i in range(self.n):
                        (x0, y0), (x1, y1) = lo[k, i], hi[k, i]
                        maps[k, y0:y1, x0:x1] = i
                        count[k, y0:y1, x0:x1] += 1
                if count.max() <= 1:
                    cells = torch.from_numpy(maps.reshape(self.k, -1)).to(self.points.device)
        self._cells_cache = (key, cells)
        return cells

    def _render_cells(self, cells: torch.Tensor) -> torch.Tensor:
        covered = (cells >= 0).unsqueeze(-1).to(self.colors.dtype)
        rgba = torch.gather(self.colors, 1, cells.clamp(min=0).unsqueeze(-1).expand(-1, -1, 4))
        alpha = rgba[..., 3:] * covered
        out = self.background[:, None, :] * (1 - alpha) + alpha * rgba[..., :3]
        return out.clamp(0, 1).reshape(self.k, self.height, self.width, 3).permute(0, 3, 1, 2)

    def scene(self, k: int = 0) -> Scene:
        """Scene k detached, colors clamped to [0, 1] (what is exported)."""
        sc = self.scenes()[k].detach()
        for s in sc.shapes:
            s.fill.clamp_(0, 1)
            s.stroke.clamp_(0, 1)
        sc.background.clamp_(0, 1)
        return sc

    def to_top(self, k: int, idx: list[int]) -> None:
        """Move shapes `idx` of scene k to the top of its painter's order (keeping their relative order)."""
        if not idx:
            return
        moved = set(idx)
        rest = [i for i in self.order[k].tolist() if i not in moved]
        self.order[k] = torch.tensor(rest + [i for i in self.order[k].tolist() if i in moved])


def circle_control_points(centers: torch.Tensor, radius: torch.Tensor | float, segments: int) -> torch.Tensor:
    """(..., 2) centers -> (..., 3*segments, 2) control points of closed paths approximating circles."""
    unit = unit_circle(segments, dtype=centers.dtype, device=centers.device)
    r = torch.as_tensor(radius, dtype=centers.dtype, device=centers.device)
    if r.dim():
        r = r[..., None, None]
    return centers[..., None, :] + unit * r



def _canvas(size) -> torch.Tensor:
    """(2,) canvas [width, height] in pixels from a side (square) or a (width, height) pair."""
    w, h = (size, size) if isinstance(size, (int, float)) else size
    return torch.tensor([float(w), float(h)])


def random_circles(k: int, n: int, segments: int, radius: float, size, generator: torch.Generator | None = None):
    """(k, n, 3S, 2) circle control points with centers uniform over the canvas (a radius in from the edges), and
    (k, n, 4) random colors with opacity U(0.7, 1) (VectorFusion's iconography initialization). size: the canvas
    side, or (width, height)."""
    canvas = _canvas(size)
    lo, hi = radius, (canvas - radius).clamp(min=radius)
    centers = lo + torch.rand(k, n, 2, generator=generator) * (hi - lo)
    points = circle_control_points(centers, radius, segments)
    colors = torch.cat([torch.rand(k, n, 3, generator=generator),
                        0.7 + 0.3 * torch.rand(k, n, 1, generator=generator)], dim=-1)
    return points, colors


def random_strokes(k: int, n: int, segments: int, size, generator: torch.Generator | None = None,
                   step: float = 0.1) -> torch.Tensor:
    """(k, n, 3S+1, 2) open strokes: random walks of control points (each step within `step` x the canvas),
    starting uniformly over the canvas (CLIPDraw / VectorFusion sketch init). size: side or (width, height)."""
    start = torch.rand(k, n, 1, 2, generator=generator)
    steps = (torch.rand(k, n, 3 * segments, 2, generator=generator) * 2 - 1) * step
    walk = torch.cat([start, start + torch.cumsum(steps, dim=2)], dim=2).clamp(0, 1)
    return walk * _canvas(size)


def pixel_squares(k: int, grid: int, size) -> torch.Tensor:
    """(k, grid^2, 2, 2) corners of a grid x grid tiling of the canvas, row by row. size: side or (width, height)."""
    w, h = _canvas(size).tolist()
    xs, ys = torch.linspace(0, w, grid + 1), torch.linspace(0, h, grid + 1)
    y0, x0 = torch.meshgrid(ys[:-1], xs[:-1], indexing="ij")
    y1, x1 = torch.meshgrid(ys[1:], xs[1:], indexing="ij")
    corners = torch.stack([torch.stack([x0, y0], -1), torch.stack([x1, y1], -1)], dim=-2).reshape(-1, 2, 2)
    return corners[None].expand(k, -1, -1, -1).clone()


# ---- the same initializers as lists of shapes for one scene (tests, benchmarks)

def circle_points(center, radius: float, segments: int) -> torch.Tensor:
    """(segments*3, 2) control points of a closed path approximating a circle."""
    return circle_control_points(torch.tensor([float(center[0]), float(center[1])]), radius, segments)


def circle_shapes(n: int, segments: int = 4, radius: float = 20.0, width: int = 224, height: int = 224,
                  generator: torch.Generator | None = None) -> list[Shape]:
    """n filled circles as `random_circles` places them."""
    points, colors = random_circles(1, n, segments, radius, (width, height), generator)
    return [Shape("path", p, fill=c) for p, c in zip(points[0], colors[0])]


def stroke_shapes(n: int, segments: int = 3, width_px: float = 2.0, width: int = 224, height: int = 224,
                  radius: float = 0.1, generator: torch.Generator | None = None) -> list[Shape]:
    """n black open strokes `width_px` wide, as `random_strokes` walks them (`radius`: the step)."""
    points = random_strokes(1, n, segments, (width, height), generator, step=radius)[0]
    return [Shape("stroke", p, stroke=torch.tensor([0.0, 0.0, 0.0, 1.0]), stroke_width=width_px) for p in points]


def pixel_shapes(n: int, width: int = 224, height: int = 224, generator: torch.Generator | None = None) -> list[Shape]:
    """n x n squares tiling the canvas row by row (pixel art), random opaque colors."""
    corners = pixel_squares(1, n, (width, height))[0]
    colors = torch.cat([torch.rand(len(corners), 3, generator=generator), torch.ones(len(corners), 1)], dim=-1)
    return [Shape("square", p, fill=c) for p, c in zip(corners, colors)]


def random_paths(n: int, segments: int = 4, width: int = 600, height: int = 600, box: float = 0.25,
                 generator: torch.Generator | None = None, alpha: tuple[float, float] = (0.5, 1.0)) -> list[Shape]:
    """n closed paths with control points uniform in a random box of `box` x the canvas side, random RGBA fill:
    DiffVG's own benchmark scene, the renderer's benchmark and tests."""
    shapes = []
    size = torch.tensor([width * box, height * box])
    for _ in range(n):
        origin = torch.rand(2, generator=generator) * (torch.tensor([float(width), float(height)]) - size)
        pts = origin + torch.rand(segments * 3, 2, generator=generator) * size
        rgb = torch.rand(3, generator=generator)
        a = alpha[0] + (alpha[1] - alpha[0]) * torch.rand(1, generator=generator)
        shapes.append(Shape("path", pts, fill=torch.cat([rgb, a])))
    return shapes


EXPORT_MIN = 512  # px: the shortest side of the PNG written beside an SVG (a whole multiple of its canvas)


def export_size(scene: Scene) -> tuple[int, int]:
    """(width, height) in px of a result's PNG and of the size its SVG declares: the canvas at a whole multiple, at
    least EXPORT_MIN px (a 75 px canvas, the icons prior's, would otherwise open as a thumbnail). A whole multiple
    keeps pixel art on whole pixels; the SVG drawn by any renderer at that size matches the PNG."""
    scale = max(1, math.ceil(EXPORT_MIN / min(scene.width, scene.height)))
    return scene.width * scale, scene.height * scale


def export_rasters(scenes: list[Scene]) -> torch.Tensor:
    """(K, 3, H, W) the scenes drawn for the PNG beside the SVG, at `export_size`."""
    w, h = export_size(scenes[0])
    with torch.no_grad():
        return render_batch(scenes, size=(h, w)).permute(0, 3, 1, 2)


def export_svg(scene: Scene, path) -> str:
    """The scene as an SVG file that opens at the size of the PNG beside it (`export_size`; the viewBox keeps the
    canvas's coordinates)."""
    return save_svg(scene, path, size=export_size(scene))


def grid_image(images: torch.Tensor) -> np.ndarray:
    """(K, 3, H, W) -> one (rows*H, cols*W, 3) uint8 contact sheet (a preview of K candidates)."""
    k, _, h, w = images.shape
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    sheet = torch.ones(3, rows * h, cols * w, device=images.device)
    for i in range(k):
        r, c = divmod(i, cols)
        sheet[:, r * h:(r + 1) * h, c * w:(c + 1) * w] = images[i]
    return to_uint8(sheet)


def resize_to(images: torch.Tensor, size: int) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 3, size, size), bilinear with antialiasing (a no-op at that size already)."""
    if images.shape[-2:] == (size, size):
        return images
    return F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)


def stack_paintings(paintings: list[Painting]) -> Painting:
    """K = 1 paintings of one kind and canvas as one Painting of K scenes. Scenes with fewer shapes (LIVE stops
    adding paths once nothing is left to fit) are padded with invisible shapes: zero-area and transparent,
    drawn first, so the pictures are unchanged and VectorFusion's re-initialization reuses them as new paths."""
    first = paintings[0]
    if any(p.k != 1 or p.kind != first.kind or (p.width, p.height) != (first.width, first.height)
           or p.points.shape[2:] != first.points.shape[2:] for p in paintings):
        raise ValueError("stack_paintings takes K = 1 paintings of one kind, canvas and segment count")
    n = max(p.n for p in paintings)
    points, colors, orders = [], [], []
    for p in paintings:
        pad = n - p.n
        points.append(torch.cat([p.points[0], p.points[0, :1, :1].expand(pad, *p.points.shape[2:])]))
        colors.append(torch.cat([p.colors[0], p.colors.new_zeros(pad, 4)]))
        orders.append(torch.cat([torch.arange(p.n, n), p.order[0]]))
    return Painting(first.width, first.height, first.kind, torch.stack(points), torch.stack(colors),
                    torch.cat([p.background for p in paintings]), torch.stack(orders), first.stroke_width)
