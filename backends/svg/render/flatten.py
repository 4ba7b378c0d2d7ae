"""Cubics to straight pieces: flattening to chords within a flatness tolerance, cutting lines into equal parts,
and clipping chords to boxes (fill tiles, the canvas around strokes) so far-away geometry costs nothing."""
from __future__ import annotations

import math

import torch

FLAT_TOL = 0.02          # px: largest distance between a curve and its flattening chords
MAX_CHORDS = 1024        # per cubic


def _bezier(cubics: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points of cubics (N, 4, 2) at parameters t (N,) in Bernstein form (exact at t = 0 and 1)."""
    s = 1.0 - t
    b0, b1, b2, b3 = s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t
    return (b0[:, None] * cubics[:, 0] + b1[:, None] * cubics[:, 1] + b2[:, None] * cubics[:, 2]
            + b3[:, None] * cubics[:, 3])


def chord_counts(cubics: torch.Tensor, tol: float = FLAT_TOL) -> torch.Tensor:
    """Chords per cubic (N,) long, from the standard flatness bound: with n uniform steps the chord deviates
    at most (3/4) * max|P0 - 2P1 + P2|, |P1 - 2P2 + P3|| / n^2 from the curve; rounded up to a power of two
    (so the chord count, a discontinuity of the rendering, changes rarely as points move), at most MAX_CHORDS."""
    with torch.no_grad():
        c = cubics.detach()
        d2 = torch.maximum((c[:, 0] - 2 * c[:, 1] + c[:, 2]).norm(dim=-1),
                           (c[:, 1] - 2 * c[:, 2] + c[:, 3]).norm(dim=-1))
        n = torch.sqrt(0.75 * d2 / tol).clamp(1, MAX_CHORDS)
        n = torch.exp2(torch.log2(n).ceil()).long()
        return torch.where(torch.isfinite(d2), n, torch.ones_like(n))


def flatten(cubics: torch.Tensor, n: torch.Tensor | None = None,
            total: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cubics (N, 4, 2) -> chords (a (M, 2), b (M, 2)) and the cubic index of each chord (M,).

    n: chords per cubic (default `chord_counts`); total: n.sum() when the caller already knows it (then no
    host sync here).
    """
    if n is None:
        n = chord_counts(cubics)
    with torch.no_grad():
        cubic_id = torch.repeat_interleave(torch.arange(len(cubics), device=cubics.device), n, output_size=total)
        start = torch.cumsum(n, 0) - n
        j = torch.arange(len(cubic_id), device=cubics.device) - start[cubic_id]
        nf = n[cubic_id].to(cubics.dtype)
        t0, t1 = j / nf, (j + 1) / nf
    c = cubics[cubic_id]
    return _bezier(c, t0), _bezier(c, t1), cubic_id


def split_lines(a: torch.Tensor, b: torch.Tensor, counts: torch.Tensor,
                total: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Cut line i into counts[i] equal sub-lines (0 drops it): (a', b', index of the parent line).
    total: counts.sum() when known (no host sync)."""
    with torch.no_grad():
        parent = torch.repeat_interleave(torch.arange(len(a), device=a.device), counts, output_size=total)
        start = torch.cumsum(counts, 0) - counts
        j = (torch.arange(len(parent), device=a.device) - start[parent]).to(a.dtype)
        m = counts[parent].to(a.dtype)
        u0, u1 = (j / m)[:, None], ((j + 1) / m)[:, None]
    pa, pb = a[parent], b[parent]
    d = pb - pa
    return pa + u0 * d, torch.where(u1 >= 1.0, pb, pa + u1 * d), parent


def ragged_arange(counts: torch.Tensor, total: int | None = None) -> torch.Tensor:
    """concat(arange(c) for c in counts); total: counts.sum() when known (no host sync)."""
    total = int(counts.sum()) if total is None else total
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(total, device=counts.device) - torch.repeat_interleave(starts, counts, output_size=total)


def clip_fill_chords(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, x1: torch.Tensor,
                     y1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Clip fill chords to boxes without changing the coverage inside them: (a5, b5) (M, 5, 2).

    a, b: (M, 2) chords, pixels; x0, y0, x1, y1: (M,) the box of each chord (its layer's tile).
    Each chord is split where it crosses the four box lines (5 parts, some empty), and each part is moved
    onto the box: a part left of it becomes a vertical edge on its left side with the same dy (a left edge
    fills the whole row span to its right, as the original did), one right of it a vertical edge on its right
    side (it covers nothing inside), one above or below collapses to a point (its rows are not drawn).
    So a vertex at 1e10 px costs no more than one on the box, and the parts stay differentiable in a, b
    (the crossing parameters carry gradients, so a crossing stays exactly on its box line).
    """
    d = b - a
    with torch.no_grad():
        flat_x, flat_y = d[:, 0].detach() == 0, d[:, 1].detach() == 0
    # Where a chord parallel to a box line would divide by zero, its crossing parameter is 0 (an empty part).
    den_x = torch.where(flat_x, torch.ones_like(d[:, 0]), d[:, 0])
    den_y = torch.where(flat_y, torch.ones_like(d[:, 1]), d[:, 1])
    tx = torch.stack([(x0 - a[:, 0]) / den_x, (x1 - a[:, 0]) / den_x], 1)
    ty = torch.stack([(y0 - a[:, 1]) / den_y, (y1 - a[:, 1]) / den_y], 1)
    tx = torch.where(flat_x[:, None], torch.zeros_like(tx), tx)
    ty = torch.where(flat_y[:, None], torch.zeros_like(ty), ty)
    t = torch.sort(torch.cat([tx, ty], 1).clamp(0.0, 1.0), dim=1).values                    # (M, 4)
    s = torch.cat([torch.zeros_like(t[:, :1]), t, torch.ones_like(t[:, :1])], 1)            # (M, 6)
    p = a[:, None] + s[..., None] * d[:, None]
    p = torch.where((s >= 1.0)[..., None], b[:, None].expand_as(p), p)                      # end exactly at b
    pa, pb = p[:, :-1], p[:, 1:]                                                            # (M, 5, 2)
    with torch.no_grad():
        mid = (pa.detach() + pb.detach()) * 0.5
        X0, X1, Y0, Y1 = x0[:, None], x1[:, None], y0[:, None], y1[:, None]
        off_rows = (mid[..., 1] < Y0) | (mid[..., 1] > Y1)
        left = (mid[..., 0] < X0) & ~off_rows
        right = (mid[..., 0] > X1) & ~off_rows
        corner = torch.stack([X0.expand_as(mid[..., 0]), Y0.expand_as(mid[..., 0])], -1).to(a.dtype)
    xs = torch.where(left, X0.to(a.dtype), torch.where(right, X1.to(a.dtype), pa[..., 0]))
    xe = torch.where(left, X0.to(a.dtype), torch.where(right, X1.to(a.dtype), pb[..., 0]))
    pa = torch.where(off_rows[..., None], corner, torch.stack([xs, pa[..., 1]], -1))
    pb = torch.where(off_rows[..., None], corner, torch.stack([xe, pb[..., 1]], -1))
    return pa, pb


def clip_stroke_chords(a: torch.Tensor, b: torch.Tensor, margin: torch.Tensor, height: int,
                       width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Clip stroke centre-line chords (M, 2) to the canvas grown by margin (M,) px: (a', b', empty (M,) bool).

    With margin > the stroke's reach, a pixel of the canvas within reach of the centre line is within reach
    of the kept part only, and its nearest point is on it, so the coverage is unchanged; far-away points cost
    nothing. (Liang-Barsky: a segment meets a box in one segment or not at all.) The clip parameters carry no
    gradient: the kept part stays on the chord's line, and its clipped ends are out of every pixel's reach.
    """
    with torch.no_grad():
        ad, d = a.detach(), (b - a).detach()
        lo = torch.stack([-margin, -margin], 1)
        hi = torch.stack([width + margin, height + margin], 1)
        zero = d == 0
        den = torch.where(zero, torch.ones_like(d), d)
        ta, tb = (lo - ad) / den, (hi - ad) / den
        t_in = torch.where(zero, torch.full_like(d, -math.inf), torch.minimum(ta, tb)).amax(1).clamp(min=0.0)
        t_out = torch.where(zero, torch.full_like(d, math.inf), torch.maximum(ta, tb)).amin(1).clamp(max=1.0)
        outside = zero & ((ad < lo) | (ad > hi))                 # parallel to a side and beyond it
        empty = (t_in > t_out) | outside.any(1)
        t_in = torch.where(empty, torch.zeros_like(t_in), t_in)[:, None]
        t_out = torch.where(empty, torch.zeros_like(t_out), t_out)[:, None]
    dd = b - a
    na = torch.where(t_in > 0, a + t_in * dd, a)
    nb = torch.where(t_out < 1, a + t_out * dd, b)
    return na, nb, empty
