"""The vector scene: shapes made of cubic Bezier segments, in canvas pixels, painted in list order.

Coordinates are canvas pixels: x to the right, y down, (0, 0) the top-left corner of the top-left pixel, the
canvas spanning [0, width] x [0, height] (an SVG viewBox "0 0 width height"). Colors are RGBA in [0, 1],
*not* premultiplied. Every tensor field may be a leaf with requires_grad: the renderer differentiates through
points, colors and stroke widths.

Shape kinds
- "path":   closed, filled. points (S*3, 2): segment i runs points[3i] -> [3i+1], [3i+2] (controls) ->
            points[3i+3] (wrapping to points[0] for the last one). A path may also carry a stroke (drawn
            after its fill, as SVG does) when stroke_width > 0 and the stroke color is not transparent.
- "stroke": open, stroked only. points (S*3+1, 2): segment i runs points[3i] .. points[3i+3].
- "square": axis-aligned filled rectangle, points (2, 2) = [[x0, y0], [x1, y1]] (two opposite corners).

Several subpaths in one shape (a donut, letters with holes): `subpaths` lists the segment count of each,
and points are their concatenation (3*s points per closed subpath, 3*s+1 per open one).
Strokes use round caps and round joins (the only kind the renderer draws).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

KINDS = ("path", "stroke", "square")
FILL_RULES = ("nonzero", "evenodd")


def _rgba(value, default, like: torch.Tensor) -> torch.Tensor:
    if value is None:
        value = default
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device) if not isinstance(value, torch.Tensor) else value
    if t.shape == (3,):
        t = torch.cat([t, t.new_ones(1)])
    if t.shape != (4,):
        raise ValueError(f"a color must have shape (4,) RGBA or (3,) RGB, got {tuple(t.shape)}")
    return t


@dataclass
class Shape:
    """One shape of a scene (see the module docstring for the meaning of points per kind).

    fill, stroke: (4,) RGBA in [0, 1] (defaults: an opaque black fill for paths and squares, an opaque black
    stroke 1 px wide for strokes, nothing else); stroke_width: scalar tensor, pixels; fill_rule: "nonzero" | "evenodd";
    subpaths: segment count per subpath (None: a single subpath made of all points).
    """

    kind: str
    points: torch.Tensor
    fill: torch.Tensor | None = None
    stroke: torch.Tensor | None = None
    stroke_width: torch.Tensor | float | None = None
    fill_rule: str = "nonzero"
    subpaths: tuple[int, ...] | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown shape kind {self.kind!r}: use one of {KINDS}")
        if self.fill_rule not in FILL_RULES:
            raise ValueError(f"unknown fill rule {self.fill_rule!r}: use one of {FILL_RULES}")
        if not isinstance(self.points, torch.Tensor):
            self.points = torch.as_tensor(self.points, dtype=torch.float32)
        p = self.points
        if p.dim() != 2 or p.shape[1] != 2:
            raise ValueError(f"points must have shape (N, 2), got {tuple(p.shape)}")
        transparent = (0.0, 0.0, 0.0, 0.0)
        self.fill = _rgba(self.fill, transparent if self.kind == "stroke" else (0.0, 0.0, 0.0, 1.0), p)
        self.stroke = _rgba(self.stroke, (0.0, 0.0, 0.0, 1.0) if self.kind == "stroke" else transparent, p)
        if not isinstance(self.stroke_width, torch.Tensor):
            width = self.stroke_width if self.stroke_width is not None else (1.0 if self.kind == "stroke" else 0.0)
            self.stroke_width = torch.tensor(float(width), dtype=p.dtype, device=p.device)
        if self.kind == "square":
            if p.shape[0] != 2:
                raise ValueError(f"a square needs points (2, 2) (two corners), got {tuple(p.shape)}")
            self.subpaths = None
            return
        counts = self.segment_counts()
        per = (lambda s: 3 * s) if self.kind == "path" else (lambda s: 3 * s + 1)
        need = sum(per(s) for s in counts)
        if any(s < 1 for s in counts) or need != p.shape[0]:
            shape = "S*3" if self.kind == "path" else "S*3+1"
            raise ValueError(f"a {self.kind} with subpaths {counts} needs {need} points ({shape} each), "
                             f"got {p.shape[0]}")

    @property
    def closed(self) -> bool:
        return self.kind != "stroke"

    def segment_counts(self) -> tuple[int, ...]:
        """Segments per subpath."""
        if self.kind == "square":
            return (4,)
        if self.subpaths is not None:
            return tuple(int(s) for s in self.subpaths)
        n = self.points.shape[0]
        return (n // 3,) if self.kind == "path" else ((n - 1) // 3,)

    def cubics(self) -> torch.Tensor:
        """All segments as (S, 4, 2) control points (closed subpaths wrap around), differentiable."""
        if self.kind == "square":
            (x0, y0), (x1, y1) = self.points[0], self.points[1]
            corners = torch.stack([torch.stack([x0, y0]), torch.stack([x1, y0]), torch.stack([x1, y1]),
                                   torch.stack([x0, y1])])
            return _lines_to_cubics(corners, closed=True)
        out, start = [], 0
        for s in self.segment_counts():
            n = 3 * s if self.closed else 3 * s + 1
            pts = self.points[start:start + n]
            start += n
            idx = torch.arange(s, device=pts.device) * 3
            idx = idx[:, None] + torch.arange(4, device=pts.device)[None]
            if self.closed:
                idx = idx % n
            out.append(pts[idx])
        return torch.cat(out) if len(out) > 1 else out[0]

    def detach(self) -> Shape:
        return Shape(self.kind, self.points.detach().clone(), self.fill.detach().clone(),
                     self.stroke.detach().clone(), self.stroke_width.detach().clone(), self.fill_rule, self.subpaths)


@dataclass
class Scene:
    """A canvas of width x height pixels (the viewBox), shapes painted in list order over a background.

    background: (3,) RGB or (4,) RGBA in [0, 1]; a transparent background (alpha 0) shows white in
    `render(..., background=True)` and is not written to SVG.
    warnings: short sentences about what an import approximated or skipped ("2 gradients were drawn as their
    mean colour."), for the UI and result.json to show; empty for scenes made in code.
    """

    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    background: torch.Tensor | None = None
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self):
        if self.background is None:
            self.background = torch.ones(4)
        elif not isinstance(self.background, torch.Tensor):
            self.background = torch.as_tensor(self.background, dtype=torch.float32)
        if self.background.shape == (3,):
            self.background = torch.cat([self.background, self.background.new_ones(1)])
        if self.background.shape != (4,):
            raise ValueError(f"background must have shape (3,) or (4,), got {tuple(self.background.shape)}")
        self.width, self.height = int(self.width), int(self.height)
        if self.width < 1 or self.height < 1:
            raise ValueError(f"canvas size must be positive, got {self.width}x{self.height}")

    def detach(self) -> Scene:
        return Scene(self.width, self.height, [s.detach() for s in self.shapes], self.background.detach().clone(),
                     list(self.warnings))

    def to(self, device) -> Scene:
        """A copy on `device` (not differentiable back to this one)."""
        shapes = [Shape(s.kind, s.points.detach().to(device), s.fill.detach().to(device), s.stroke.detach().to(device),
                        s.stroke_width.detach().to(device), s.fill_rule, s.subpaths) for s in self.shapes]
        return Scene(self.width, self.height, shapes, self.background.detach().to(device), list(self.warnings))


def _lines_to_cubics(corners: torch.Tensor, closed: bool) -> torch.Tensor:
    """(N, 2) polygon corners -> (N or N-1, 4, 2) straight cubics (controls at 1/3 and 2/3)."""
    a = corners
    b = torch.roll(corners, -1, 0) if closed else corners[1:]
    a = a if closed else a[:-1]
    return torch.stack([a, a + (b - a) / 3.0, a + (b - a) * (2.0 / 3.0), b], dim=1)


def unit_circle(segments: int, dtype=torch.float32, device=None) -> torch.Tensor:
    """(segments*3, 2) control points of a closed cubic path approximating the unit circle at the origin
    (error < 0.03% of the radius at 4 segments)."""
    theta = 2 * math.pi / segments
    k = 4.0 / 3.0 * math.tan(theta / 4.0)
    pts = []
    for i in range(segments):
        a0, a1 = i * theta, (i + 1) * theta
        p0 = (math.cos(a0), math.sin(a0))
        p3 = (math.cos(a1), math.sin(a1))
        pts += [p0, (p0[0] - k * p0[1], p0[1] + k * p0[0]), (p3[0] + k * p3[1], p3[1] - k * p3[0])]
    return torch.tensor(pts, dtype=dtype, device=device)
