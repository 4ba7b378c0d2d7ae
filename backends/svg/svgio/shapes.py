"""The basic shapes (ellipse, polyline, rect with rounded corners) as subpaths of cubics, and subpaths closed
into the point lists of a `Shape`."""
from __future__ import annotations

import torch

from .pathdata import PathBuilder, SegmentBudget

_KAPPA = 0.5522847498307936      # 4/3 (sqrt(2) - 1): quarter circle as one cubic


def ellipse(cx, cy, rx, ry):
    """The ellipse centred at (cx, cy) with radii rx, ry: one closed subpath of four quarter cubics."""
    k = _KAPPA
    pts = [(cx + rx, cy), (cx + rx, cy + k * ry), (cx + k * rx, cy + ry), (cx, cy + ry),
           (cx - k * rx, cy + ry), (cx - rx, cy + k * ry), (cx - rx, cy),
           (cx - rx, cy - k * ry), (cx - k * rx, cy - ry), (cx, cy - ry),
           (cx + k * rx, cy - ry), (cx + rx, cy - k * ry), (cx + rx, cy)]
    return [(pts, True)]


def polyline(coords, closed):
    """Flat coordinates x0 y0 x1 y1 ... as straight cubics, closed or open; no subpath under two points."""
    pb = PathBuilder(SegmentBudget(len(coords)))
    pts = list(zip(coords[0::2], coords[1::2]))
    if len(pts) < 2:
        return []
    pb.move(pts[0])
    for p in pts[1:]:
        pb.line(p)
    if closed:
        pb.close()
    return pb.finish()


def rect(x, y, w, h, rx, ry):
    """The rectangle at (x, y), w x h, its corners rounded by rx, ry (0: square corners)."""
    if rx <= 0 or ry <= 0:
        return polyline([x, y, x + w, y, x + w, y + h, x, y + h], True)
    k = _KAPPA
    pb = PathBuilder(SegmentBudget(8))
    pb.move((x + rx, y))
    pb.line((x + w - rx, y))
    pb.cubic((x + w - rx + k * rx, y), (x + w, y + ry - k * ry), (x + w, y + ry))
    pb.line((x + w, y + h - ry))
    pb.cubic((x + w, y + h - ry + k * ry), (x + w - rx + k * rx, y + h), (x + w - rx, y + h))
    pb.line((x + rx, y + h))
    pb.cubic((x + rx - k * rx, y + h), (x, y + h - ry + k * ry), (x, y + h - ry))
    pb.line((x, y + ry))
    pb.cubic((x, y + ry - k * ry), (x + rx - k * rx, y), (x + rx, y))
    pb.close()
    return pb.finish()


def closed_points(subpaths):
    """Subpaths (p0 c c p1 ... pn) -> closed point lists (implicitly closed with a line), concatenated."""
    flat, counts = [], []
    for pts, _ in subpaths:
        pts = list(pts)
        if pts[-1] != pts[0]:
            a, b = pts[-1], pts[0]
            pts += [(a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
                    (a[0] + (b[0] - a[0]) * 2 / 3, a[1] + (b[1] - a[1]) * 2 / 3), b]
        flat += pts[:-1]
        counts.append((len(pts) - 1) // 3)
    return torch.tensor(flat, dtype=torch.float32), tuple(counts)
