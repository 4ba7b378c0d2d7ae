"""A differentiable, anti-aliased rasterizer for `Scene`s, in plain PyTorch (CPU and CUDA, float32).

Scenes whose points are float64 render in float64 (for gradient checks); everything else in float32.

How it works, and why
- Fills (paths and squares) use exact area coverage, the font-rasterizer method: each cubic is flattened
  to chords (flatness tolerance `FLAT_TOL` px), each chord is cut into sub-lines no longer than one pixel in
  x and in y, so that each sub-line crosses at most one vertical and one horizontal pixel edge and splits
  into at most three pieces, each inside one pixel cell. A piece from (xa, ya) to (xb, yb) in cell (cx, cy)
  deposits dy * (1 - xm) into that cell and dy * xm into the next one (xm = its mid x within the cell):
  the exact area to its right within the cell row. A cumulative sum along each row then gives the
  integral of the winding number over every pixel; |w| clamped to 1 is the nonzero coverage, w folded
  into [0, 1] the even-odd one. Anti-aliasing is area-exact at 1 sample per pixel, and every deposit is a
  smooth function of the piece endpoints, so autograd gives the boundary gradients (moving an edge
  changes the coverage of the pixels it crosses) with no sampling noise.
- Far-away geometry costs nothing: before a fill chord is cut into pixel pieces it is clipped to its
  layer's tile (split where it crosses the tile's sides; a part left of the tile becomes a vertical edge on
  its left side with the same dy, a part right of it one on its right side, parts above or below vanish),
  which leaves the coverage inside unchanged; stroke centre lines are clipped to the canvas grown by the
  stroke's reach plus a pixel. So `M0 0 L3e6 5 L5 3e6Z` (3.56 GB before clipping) or a vertex at 1e10 px
  renders in milliseconds. What a scene would still cost (66k subpaths, a 16384 px output) is
  `cost.estimate_work`'s to say, before rendering.
- Memory stays bounded by the *area of the shapes' bounding boxes*, not pixels x shapes x segments: each
  fill layer accumulates into its own bounding-box tile (clipped to the canvas), all tiles of all layers
  of all scenes in one flat buffer; the autograd graph holds the pieces (~3 per pixel of outline) and the
  tiles.
- Strokes (round caps and joins) use the distance to the flattened centre line: each short sub-chord
  enumerates the pixels within reach, the nearest sub-chord of every pixel is chosen without grad, and
  only that one distance is recomputed with grad. Coverage is the exact box-filtered coverage of a straight
  band of width w at distance d: clamp(min(1/2, w/2 + d) - max(-1/2, d - w/2), 0, 1).
- Compositing is "over" in painter's order. The reference method (the CPU default), on CPUs: a custom
  autograd function walks the layers forward, keeps each layer's background tile, and walks them backward
  with the analytic gradient (no per-layer copies of the canvas in the graph). Otherwise all layers are
  composited at once from per-pixel log-transmittances (`_composite_entries`).
- Two methods, same pieces, same coverage: "reference" keeps per-layer bookkeeping on the host (Python
  lists of tiles and a compositing plan: cheap on CPUs, but about 30 operators and several host syncs per
  layer, which makes a GPU launch-bound); "batched" (the CUDA default) walks only the scene structure on the
  host, sends its index arrays in one copy, and renders all layers of all K scenes in a fixed number of
  operators (about 810 kernel-equivalents per fwd+bwd, whatever the number of paths) with 2 host syncs
  (4 with strokes): the sizes of the flat buffers. Masks stand in for boolean indexing and compaction.
- Squares go through the fill path (4 straight segments: exact box coverage).

Numbers (benchmarks/renderer.py, 600x600, 128 closed 4-segment paths, 2 CPU threads, idle machine): 51 ms
forward and 115 ms forward + backward (reference method), where DiffVG takes 1.98 s and 12.0 s on the same
kind of machine. Kernel-equivalent operators per fwd+bwd at 16 / 256 paths (`python -m benchmarks.renderer
--ops`, counted on a CPU): 800 / 3920 for the GPU path before the batched method (20 device-to-host reads and 9
blocking copies per render), 812 / 812 for the batched method (2 reads, 0 blocking copies), 1120 / 8560 for the
reference with its loop compositor (8 reads). The batched method is 2-8x slower than the reference on a CPU (it
sorts every tile pixel); its GPU time is not measured yet.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..devices import to_device
from .scene import Scene, Shape

FLAT_TOL = 0.02          # px: largest distance between a curve and its flattening chords
MAX_CHORDS = 1024        # per cubic
STROKE_PIECE = 4.0       # px: stroke centre lines are cut into pieces this long for the pixel search
_EPS_DX = 1e-5           # px: a sub-line shorter than this in x (or y) is never split at a pixel edge


# --------------------------------------------------------------------------------------------- flattening

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


def _flatten(cubics: torch.Tensor, n: torch.Tensor | None = None,
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


def _split(a: torch.Tensor, b: torch.Tensor, counts: torch.Tensor,
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


# -------------------------------------------------------------------------------------------- clipping

def _clip_fill_chords(a: torch.Tensor, b: torch.Tensor, x0: torch.Tensor, y0: torch.Tensor, x1: torch.Tensor,
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


def _clip_stroke_chords(a: torch.Tensor, b: torch.Tensor, margin: torch.Tensor, height: int,
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


# ------------------------------------------------------------------------------------------ fill coverage

@dataclass
class _Tiles:
    """Bounding-box tiles of fill layers in one flat buffer; tile i has rows y0..y0+h, columns x0..x0+w,
    stored row-major with one extra (padding) column, starting at offset[i]. Long tensors (L,) on the device;
    total and rows (the sum of h) are host ints."""

    x0: torch.Tensor
    y0: torch.Tensor
    w: torch.Tensor
    h: torch.Tensor
    offset: torch.Tensor
    total: int
    rows: int


def _tile_extents(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, n_layers: int, height: int,
                  width: int) -> tuple[torch.Tensor, ...]:
    """Each fill layer's bounding box of control points, in whole pixels, clipped to the canvas: x0, y0, w, h
    (L,) long, plus the buffer size of each tile h * (w + 1) (L,) (an empty tile has no rows and no columns)."""
    with torch.no_grad():
        pts = cubics.detach().reshape(-1, 2)
        lid = layer_of_cubic.repeat_interleave(4)
        lo = pts.new_full((n_layers, 2), float("inf")).scatter_reduce(0, lid[:, None].expand(-1, 2), pts, "amin")
        hi = pts.new_full((n_layers, 2), float("-inf")).scatter_reduce(0, lid[:, None].expand(-1, 2), pts, "amax")
        lo = torch.nan_to_num(lo, nan=0.0).floor().clamp(0, None)
        hi = torch.nan_to_num(hi, nan=0.0).ceil()
        # Python scalars, not a new (2,) tensor: on a GPU that would be a blocking host-to-device copy.
        lo = torch.stack([lo[:, 0].clamp(max=width), lo[:, 1].clamp(max=height)], 1)
        hi = torch.stack([hi[:, 0].clamp(0, width), hi[:, 1].clamp(0, height)], 1)
        ext = (hi - lo).clamp(min=0).long()
        ext = torch.where((ext == 0).any(dim=1, keepdim=True), torch.zeros_like(ext), ext)
        w, h = ext[:, 0], ext[:, 1]
        return lo[:, 0].long(), lo[:, 1].long(), w, h, h * (w + 1)


def _fill_coverage(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, n_layers: int, evenodd: list[bool],
                   height: int, width: int, *, extents: tuple[torch.Tensor, ...] | None = None,
                   totals: tuple[int, int, int] | None = None, n_chords: torch.Tensor | None = None,
                   evenodd_t: torch.Tensor | None = None, syncs: list | None = None,
                   batched: bool = False) -> tuple[torch.Tensor, _Tiles]:
    """Area coverage of closed fill layers.

    cubics: (N, 4, 2) pixels, all subpaths of all layers; layer_of_cubic: (N,) long; evenodd: per layer.
    extents: `_tile_extents` of these cubics and totals: (buffer size, rows, chords), when the caller has
    already read them (the batched path reads them in one host sync with other sizes); else read here.
    n_chords: chords per cubic (default `chord_counts`); evenodd_t: evenodd as a (L,) bool device tensor.
    syncs: a list that gets one entry per host read made here (for counting); batched: masks only (every
    chord through the clip) instead of compacting the chords that leave their tile.
    Returns coverage (tiles.total,) in [0, 1] and the tile layout.
    """
    dev = cubics.device
    syncs = [] if syncs is None else syncs
    x0, y0, w, h, sizes = extents if extents is not None else _tile_extents(cubics, layer_of_cubic, n_layers,
                                                                              height, width)
    n_chords = chord_counts(cubics) if n_chords is None else n_chords
    if totals is None:
        totals = tuple(torch.stack([sizes.sum(), h.sum(), n_chords.sum()]).tolist())
        syncs.append("fill sizes")
    total, n_rows, chords = totals
    off = torch.cumsum(sizes, 0) - sizes
    tiles = _Tiles(x0, y0, w, h, off, total, n_rows)
    if total == 0:
        return cubics.new_zeros(0), tiles

    a, b, cid = _flatten(cubics, n_chords, chords)
    lay = layer_of_cubic[cid]
    with torch.no_grad():
        # Chords that cannot touch their tile (above or below it, right of it, horizontal) make no pieces.
        ymin = torch.minimum(a[:, 1], b[:, 1]).detach()
        ymax = torch.maximum(a[:, 1], b[:, 1]).detach()
        xmin = torch.minimum(a[:, 0], b[:, 0]).detach()
        keep = (ymax > y0[lay]) & (ymin < (y0 + h)[lay]) & (xmin < (x0 + w)[lay]) & (w[lay] > 0) \
            & (h[lay] > 0) & (ymax > ymin)
    dt = a.dtype
    # Clip to the tile before cutting into pixel pieces: the piece count is bounded by the tile, not the chord.
    if batched:
        a, b = _clip_fill_chords(a, b, x0[lay].to(dt), y0[lay].to(dt), (x0 + w)[lay].to(dt), (y0 + h)[lay].to(dt))
        a, b, lay, keep = a.reshape(-1, 2), b.reshape(-1, 2), lay.repeat_interleave(5), keep.repeat_interleave(5)
    else:
        # Few chords leave their tile: clip only those (a compaction, so a host sync; 20% of the CPU time
        # of a 128-path render if every chord went through the clip).
        with torch.no_grad():
            lo, hi = torch.minimum(a, b).detach(), torch.maximum(a, b).detach()
            inside = (lo[:, 0] >= x0[lay]) & (hi[:, 0] <= (x0 + w)[lay]) & (lo[:, 1] >= y0[lay]) \
                & (hi[:, 1] <= (y0 + h)[lay])
            out = (keep & ~inside).nonzero().squeeze(1)
            kin = (keep & inside).nonzero().squeeze(1)
            lo_ = lay[out]
        ca, cb = _clip_fill_chords(a[out], b[out], x0[lo_].to(dt), y0[lo_].to(dt), (x0 + w)[lo_].to(dt),
                                   (y0 + h)[lo_].to(dt))
        a, b = torch.cat([a[kin], ca.reshape(-1, 2)]), torch.cat([b[kin], cb.reshape(-1, 2)])
        lay = torch.cat([lay[kin], lo_.repeat_interleave(5)])
        keep = torch.ones_like(lay, dtype=torch.bool)
    with torch.no_grad():
        span = (b - a).detach().abs().amax(dim=1)
        useful = keep & ((b - a).detach()[:, 1] != 0)
        counts = torch.where(useful, span.ceil().clamp(min=1), torch.zeros_like(span)).long()
        n_sub = int(counts.sum())
        syncs.append("fill pieces")
    a, b, parent = _split(a, b, counts, n_sub)
    lay = lay[parent]

    with torch.no_grad():
        ad, bd = a.detach(), b.detach()
        fa, fb = ad.floor(), bd.floor()
        cross = (fa != fb) & ((bd - ad).abs() > _EPS_DX)
        grid = torch.maximum(fa, fb)                   # the pixel edge crossed (each sub-line crosses <= 1)
    d = b - a
    safe = torch.where(cross, d, torch.ones_like(d))
    t = torch.where(cross, (grid - a) / safe, torch.ones_like(d)).clamp(0.0, 1.0)
    t1 = torch.minimum(t[:, 0], t[:, 1])[:, None]
    t2 = torch.maximum(t[:, 0], t[:, 1])[:, None]
    q1 = a + t1 * d
    q2 = a + t2 * d
    p_start = torch.cat([a, q1, q2])                   # three pieces per sub-line
    p_end = torch.cat([q1, q2, b])
    lay3 = lay.repeat(3)
    with torch.no_grad():
        mid = (p_start.detach() + p_end.detach()) * 0.5
        cell = mid.floor()
        cx = cell[:, 0].long() - x0[lay3]
        cy = cell[:, 1].long() - y0[lay3]
        tw = w[lay3] + 1
        # Pieces outside their tile's rows (rounding at its top and bottom) deposit zero: a mask, not a
        # compaction, so no host sync.
        valid = (cy >= 0) & (cy < h[lay3])
        cy = cy.clamp(min=0).minimum(h[lay3] - 1)
        base = off[lay3] + cy * tw
        i0 = base + cx.clamp(0, None).minimum(tw - 1)
        i1 = base + (cx + 1).clamp(0, None).minimum(tw - 1)
    dy = torch.where(valid, p_end[:, 1] - p_start[:, 1], torch.zeros_like(mid[:, 1]))
    xm = (p_start[:, 0] + p_end[:, 0]) * 0.5 - cell[:, 0]
    vals = torch.cat([dy * (1.0 - xm), dy * xm]).double()
    # Row-wise cumulative sums with one global cumsum: each row starts by cancelling the total of the row
    # before it (float64, so rows never leak into each other).
    with torch.no_grad():
        row_first = torch.cumsum(h, 0) - h                            # global index of each tile's first row
        row = (row_first[lay3] + cy).repeat(2)
        row_start = torch.repeat_interleave(off, h, output_size=n_rows) \
            + _ragged_arange(h, n_rows) * torch.repeat_interleave(w + 1, h, output_size=n_rows)
    row_sum = torch.zeros(n_rows, dtype=torch.float64, device=dev).index_add(0, row, vals)
    carry = torch.cat([row_sum.new_zeros(1), row_sum[:-1]])          # what the previous row left behind
    idx = torch.cat([i0, i1, row_start])
    delta = torch.zeros(total, dtype=torch.float64, device=dev).index_add(0, idx, torch.cat([vals, -carry]))
    winding = torch.cumsum(delta, 0).to(cubics.dtype)
    aw = winding.abs()
    cov = aw.clamp(max=1.0)
    if any(evenodd):
        with torch.no_grad():
            eo = torch.tensor(evenodd, device=dev) if evenodd_t is None else evenodd_t
            eo_elem = torch.repeat_interleave(eo, sizes, output_size=total)
        folded = aw - 2.0 * torch.floor(aw.detach() * 0.5)
        folded = 1.0 - (1.0 - folded).abs()
        cov = torch.where(eo_elem, folded, cov)
    return cov, tiles


def _ragged_arange(counts: torch.Tensor, total: int | None = None) -> torch.Tensor:
    """concat(arange(c) for c in counts); total: counts.sum() when known (no host sync)."""
    total = int(counts.sum()) if total is None else total
    starts = torch.cumsum(counts, 0) - counts
    return torch.arange(total, device=counts.device) - torch.repeat_interleave(starts, counts, output_size=total)


# ---------------------------------------------------------------------------------------- stroke coverage

def _stroke_candidates(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor, height: int,
                       width: int, n_chords: torch.Tensor | None = None, chords: int | None = None,
                       syncs: list | None = None):
    """The (piece, pixel) pairs of strokes within reach: centre lines flattened, clipped to the canvas grown by
    the reach plus a pixel (so the search is bounded by the canvas), cut into STROKE_PIECE pieces, each
    enumerating the pixel centres of its box grown by the reach.

    n_chords: chords per cubic (zeros drop a layer's cubics) and chords: its sum, when the caller read it.
    Returns (a, b (Q, 2) pieces with grad, lay (Q,), seg (P,) piece of each pair, px, py (P,) long, dd (P,)
    squared distance pixel centre - piece, r (P,) reach).
    """
    dev = cubics.device
    syncs = [] if syncs is None else syncs
    a, b, cid = _flatten(cubics, n_chords, chords)
    lay = layer_of_cubic[cid]
    with torch.no_grad():
        reach_c = (widths.detach()[lay] * 0.5 + 0.5).clamp(min=0)
    a, b, empty = _clip_stroke_chords(a, b, reach_c + 1.0, height, width)
    with torch.no_grad():
        length = (b - a).detach().norm(dim=1)
        counts = torch.where(empty, torch.zeros_like(length), (length / STROKE_PIECE).ceil().clamp(min=1)).long()
        n_pieces = int(counts.sum())
        syncs.append("stroke pieces")
    a, b, parent = _split(a, b, counts, n_pieces)
    lay = lay[parent]
    with torch.no_grad():
        ad, bd = a.detach(), b.detach()
        reach = (widths.detach()[lay] * 0.5 + 0.5).clamp(min=0)[:, None]
        lo = (torch.minimum(ad, bd) - reach - 0.5).floor()
        hi = (torch.maximum(ad, bd) + reach - 0.5).ceil()          # pixel centres at x + 0.5
        lo[:, 0].clamp_(0, width)
        lo[:, 1].clamp_(0, height)
        hi[:, 0].clamp_(-1, width - 1)
        hi[:, 1].clamp_(-1, height - 1)
        n = (hi - lo + 1).clamp(min=0).long()
        cnt = n[:, 0] * n[:, 1]
        n_pairs = int(cnt.sum())
        syncs.append("stroke pixels")
        seg = torch.repeat_interleave(torch.arange(len(a), device=dev), cnt, output_size=n_pairs)
        start = torch.cumsum(cnt, 0) - cnt
        k = torch.arange(n_pairs, device=dev) - start[seg]
        nx = n[seg, 0]
        px = lo[seg, 0].long() + k % nx
        py = lo[seg, 1].long() + torch.div(k, nx, rounding_mode="floor")
        c = torch.stack([px, py], 1).to(ad.dtype) + 0.5
        dd = _sq_dist(c, ad[seg], bd[seg])
    return a, b, lay, seg, px, py, dd, reach[seg, 0]


def _stroke_coverage(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor, height: int,
                     width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coverage of round-capped, round-joined strokes (reference: compacted with unique, host syncs).

    cubics: (N, 4, 2) pixels; layer_of_cubic: (N,) long, index into widths (L,) pixels.
    Returns (layer (P,), pixel index y * width + x (P,), coverage (P,)) for the pixels each stroke touches,
    sorted by layer then pixel.
    """
    dev = cubics.device
    a, b, lay, seg, px, py, dd, r = _stroke_candidates(cubics, layer_of_cubic, widths, height, width)
    with torch.no_grad():
        near = dd < r * r
        seg, px, py, dd = seg[near], px[near], py[near], dd[near]
        key = (lay[seg] * height + py) * width + px
        uniq, inv = torch.unique(key, return_inverse=True)
        best = torch.full((len(uniq),), float("inf"), device=dev, dtype=dd.dtype).scatter_reduce(0, inv, dd, "amin")
        is_best = dd <= best[inv]
        pair = torch.arange(len(seg), device=dev)
        pick = torch.full((len(uniq),), len(seg), device=dev, dtype=torch.long).scatter_reduce(
            0, inv[is_best], pair[is_best], "amin")
        seg_best = seg[pick]
        px, py = px[pick], py[pick]
        layer = torch.div(uniq, height * width, rounding_mode="floor")
        c = torch.stack([px, py], 1).to(a.dtype) + 0.5
    dist = torch.sqrt(_sq_dist(c, a[seg_best], b[seg_best]) + 1e-12)
    half = widths[layer] * 0.5
    cov = (torch.clamp(half + dist, max=0.5) - torch.clamp(dist - half, min=-0.5)).clamp(0.0, 1.0)
    return layer, py * width + px, cov


def _stroke_coverage_batched(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor,
                             height: int, width: int, n_chords: torch.Tensor, chords: int,
                             syncs: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`_stroke_coverage` without compaction: one entry per (piece, pixel) pair, the nearest piece of each
    (layer, pixel) carrying its coverage and every other pair 0 (a mask, not boolean indexing or unique).

    Two stable sorts (by distance, then by layer-pixel key) put the nearest pair first in each key's run, ties
    going to the lowest pair index as in the reference. Returns (layer (P,), pixel (P,), coverage (P,)).
    """
    a, b, lay, seg, px, py, dd, r = _stroke_candidates(cubics, layer_of_cubic, widths, height, width,
                                                       n_chords, chords, syncs)
    with torch.no_grad():
        layer = lay[seg]
        key = (layer * height + py) * width + px
        o1 = torch.argsort(dd, stable=True)
        o2 = o1[torch.argsort(key[o1], stable=True)]
        ks = key[o2]
        first_sorted = torch.ones_like(ks, dtype=torch.bool)
        first_sorted[1:] = ks[1:] != ks[:-1]
        first = torch.zeros_like(first_sorted).index_put((o2,), first_sorted) & (dd < r * r)
        c = torch.stack([px, py], 1).to(a.dtype) + 0.5
    dist = torch.sqrt(_sq_dist(c, a[seg], b[seg]) + 1e-12)
    half = widths[layer] * 0.5
    cov = (torch.clamp(half + dist, max=0.5) - torch.clamp(dist - half, min=-0.5)).clamp(0.0, 1.0)
    return layer, py * width + px, torch.where(first, cov, torch.zeros_like(cov))


def _sq_dist(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from points c (P, 2) to segments a-b (P, 2)."""
    d = b - a
    dd = (d * d).sum(1)
    t = (((c - a) * d).sum(1) / dd.clamp(min=1e-12)).clamp(0.0, 1.0)
    e = a + t[:, None] * d - c
    return (e * e).sum(1)


# ------------------------------------------------------------------------------------------- compositing

class _Composite(torch.autograd.Function):
    """Painter's-order "over" of layers onto canvases, with the analytic backward pass.

    Layer l covers pixels with coverage cov and has color v_l (C,) and opacity a_l: alpha = cov * a_l and
    C_after = C_before * (1 - alpha) + alpha * v_l. Backward, from the top layer down, with G = dL/dC_after:
    dL/dalpha = sum_c G_c (v_c - C_before_c), dL/dv = sum_pix alpha G, dL/dC_before = (1 - alpha) G.
    """

    @staticmethod
    def forward(ctx, cov, colors, canvas0, plan):
        canvas = canvas0.clone()
        K, H, W, C = canvas.shape
        flat = canvas.view(K * H * W, C)
        saved = []
        for lay in plan:
            alpha = _layer_cov(cov, lay) * colors[lay[1], C]
            if lay[0] == "tile":
                _, li, k, off, x0, y0, w, h = lay
                view = canvas[k, y0:y0 + h, x0:x0 + w]
                saved.append(view.clone())
                view.lerp_(colors[li, :C].expand_as(view), alpha[..., None])       # before + alpha (v - before)
            else:
                _, li, k, off, n, pix = lay
                idx = pix + k * H * W
                before = flat[idx]
                saved.append(before)
                flat[idx] = before * (1.0 - alpha[:, None]) + alpha[:, None] * colors[li, :C]
        ctx.plan, ctx.saved = plan, saved
        ctx.save_for_backward(cov, colors)
        ctx.shape0 = canvas0.shape
        return canvas

    @staticmethod
    def backward(ctx, grad):
        cov, colors = ctx.saved_tensors
        K, H, W, C = ctx.shape0
        g = grad.contiguous().clone()  # the gradient may arrive strided (a permute after rendering)
        gflat = g.view(K * H * W, C)
        d_cov = torch.zeros_like(cov)
        d_col = torch.zeros_like(colors)
        for lay, before in zip(reversed(ctx.plan), reversed(ctx.saved)):
            li = lay[1]
            c = _layer_cov(cov, lay)
            a = colors[li, C]
            alpha = c * a
            v = colors[li, :C]
            if lay[0] == "tile":
                _, li, k, off, x0, y0, w, h = lay
                gv = g[k, y0:y0 + h, x0:x0 + w]
                d_alpha = torch.matmul(gv, v) - torch.linalg.vecdot(gv, before)
                d_col[li, :C] += torch.einsum("hw,hwc->c", alpha, gv)
                gv.mul_((1.0 - alpha)[..., None])
                torch.mul(d_alpha, a, out=_layer_cov(d_cov, lay))
            else:
                _, li, k, off, n, pix = lay
                idx = pix + k * H * W
                gv = gflat[idx]
                d_alpha = (gv * (v - before)).sum(-1)
                d_col[li, :C] += (gv * alpha[:, None]).sum(0)
                gflat[idx] = gv * (1.0 - alpha[:, None])
                d_cov[off:off + n] = d_alpha * a
            d_col[li, C] += (d_alpha * c).sum()
        return d_cov, d_col, g, None


_EPS_T = 1e-6            # smallest 1 - alpha in the log-transmittance of the sorted compositor


def _composite_sorted(cov: torch.Tensor, colors: torch.Tensor, canvas0: torch.Tensor, plan) -> torch.Tensor:
    """The same "over" compositing as `_Composite`, for all layers at once (`_composite_entries` on the plan's
    entries). Pays on GPUs, where the per-layer loop of `_Composite` is launch-bound; on CPUs the loop is
    faster (no sort)."""
    K, H, W, C = canvas0.shape
    dev = cov.device
    with torch.no_grad():
        pos, pix, li = [], [], []
        tiles = [lay for lay in plan if lay[0] == "tile"]
        if tiles:
            t = torch.tensor([list(lay[1:8]) for lay in tiles], device=dev)
            ll, kk, off, x0, y0, w, h = t.unbind(1)
            e = torch.repeat_interleave(torch.arange(len(tiles), device=dev), w * h)
            local = _ragged_arange(w * h)
            we = w[e]
            row, col = torch.div(local, we, rounding_mode="floor"), local % we
            pos.append(off[e] + row * (we + 1) + col)
            pix.append((kk[e] * H + y0[e] + row) * W + x0[e] + col)
            li.append(ll[e])
        for lay in plan:
            if lay[0] == "pixels":
                _, l, k, off, n, p = lay
                pos.append(torch.arange(off, off + n, device=dev))
                pix.append(p + k * H * W)
                li.append(torch.full((n,), l, device=dev, dtype=torch.long))
        pos, pix, li = torch.cat(pos), torch.cat(pix), torch.cat(li)
    return _composite_entries(cov[pos], li, pix, colors, canvas0)


def _composite_entries(cov: torch.Tensor, layer: torch.Tensor, pix: torch.Tensor, colors: torch.Tensor,
                       canvas0: torch.Tensor) -> torch.Tensor:
    """"Over" compositing of (layer, pixel, coverage) entries in a fixed number of kernels and no host sync.

    cov: (E,) coverage; layer: (E,) long, painter's order index into colors (L, C+1) (color, opacity);
    pix: (E,) long, index into the K*H*W pixels of canvas0 (K, H, W, C). A (layer, pixel) pair may repeat
    if all but one of its entries have coverage 0.
    Entries are sorted by pixel, then painter's order; the transmittance above an entry is exp(sum of
    log(1 - alpha) of the entries above it in its pixel), from one global cumulative sum (float64) minus its
    value where the pixel's run starts (found with a running max, no compaction), and
    out = background * T_all + sum_i v_i alpha_i T_above_i, scattered per pixel. Plain autograd ops. An opaque
    layer's 1 - alpha is held at 1e-6 in the log with a straight-through gradient, so its opacity gradient
    stays exact; a count of opaque entries above sets the hidden transmittances to exactly 0 in value, so the
    image does not leak; only the gradients of what an opaque layer hides keep a 1e-6 factor (exactly 0 in
    the loop compositor).
    """
    K, H, W, C = canvas0.shape
    dev = cov.device
    L = colors.shape[0]
    with torch.no_grad():
        order = torch.argsort(pix * L + layer, stable=True)
        pix, layer = pix[order], layer[order]
        n = pix.shape[0]
        start = torch.ones_like(pix, dtype=torch.bool)
        start[1:] = pix[1:] != pix[:-1]
        ar = torch.arange(n, device=dev)
        run_first = torch.cummax(torch.where(start, ar, torch.zeros_like(ar)), 0).values
    alpha = cov[order] * colors[layer, C]
    one_minus = 1.0 - alpha
    safe = one_minus + (_EPS_T - one_minus).clamp(min=0).detach()
    lg = torch.log(safe).double()
    cs = torch.cumsum(lg, 0)
    s_incl = cs - (cs - lg)[run_first]                       # log transmittance of the entry and those below
    s_total = torch.zeros(K * H * W, dtype=torch.float64, device=dev).index_add(0, pix, lg)
    t_above = torch.exp(s_total[pix] - s_incl).to(cov.dtype)
    t_all = torch.exp(s_total).to(cov.dtype)
    with torch.no_grad():
        # The same sums over a count of opaque entries: under one, the transmittance is exactly 0 in value
        # (no leak in the image) while its gradient stays the straight-through one above.
        opaque = (one_minus.detach() < _EPS_T).double()
        co = torch.cumsum(opaque, 0)
        o_total = torch.zeros(K * H * W, dtype=torch.float64, device=dev).index_add(0, pix, opaque)
        hidden = (o_total[pix] - (co - (co - opaque)[run_first])) > 0.5
    t_above = t_above - torch.where(hidden, t_above.detach(), torch.zeros_like(t_above))
    t_all = t_all - torch.where(o_total > 0.5, t_all.detach(), torch.zeros_like(t_all))
    contrib = (alpha * t_above)[:, None] * colors[layer, :C]
    flat = canvas0.reshape(K * H * W, C) * t_all[:, None]
    flat = flat.index_add(0, pix, contrib)
    return flat.view(K, H, W, C)


def _layer_cov(cov: torch.Tensor, lay) -> torch.Tensor:
    if lay[0] == "tile":
        _, li, k, off, x0, y0, w, h = lay
        return cov[off:off + h * (w + 1)].view(h, w + 1)[:, :w]
    _, li, k, off, n, pix = lay
    return cov[off:off + n]


# ------------------------------------------------------------------------------------------------ render

def output_size(scene: Scene, size: int | tuple[int, int] | None = None) -> tuple[int, int]:
    """(H, W) of `render(scene, size=size)`: the scene's own size, an int width keeping the aspect, or (H, W)."""
    if size is None:
        return scene.height, scene.width
    if isinstance(size, int):
        return max(1, round(size * scene.height / scene.width)), size
    h, w = size
    return int(h), int(w)


def render(scene: Scene, *, size: int | tuple[int, int] | None = None, samples: int = 1,
           background: bool = True, composite: str = "auto", method: str = "auto") -> torch.Tensor:
    """Rasterize a scene, differentiably.

    size: None (the scene's width x height), an int (output width, height keeping the aspect ratio) or
    (H, W). samples: s gives s x s supersampling (coverage is already area-exact at 1).
    Returns (H, W, 3) float in [0, 1] (for colors in [0, 1]; not clamped) composited over the scene
    background (a transparent background shows white), or with background=False (H, W, 4) RGBA of the
    shapes alone, straight (not premultiplied) alpha, so that rgb * a + bg * (1 - a) composites it.
    method: "reference" (per-layer bookkeeping on the host: fastest on CPUs), "batched" (all layers of all
    scenes in a fixed number of batched operations and 2 host syncs, 4 with strokes: for GPUs) or "auto"
    (batched on CUDA, else reference). composite (reference method only): "loop" (layer after layer,
    analytic backward: fastest on CPU), "sorted" (all layers at once) or "auto" (sorted on CUDA or beyond 512
    layers, else loop). All give the same image and gradients up to rounding (gradients of what an opaque
    layer hides: 0 with the loop, ~1e-6 with the sorted and batched compositors).
    """
    return render_batch([scene], size=size, samples=samples, background=background, composite=composite,
                        method=method)[0]


def render_batch(scenes: list[Scene], *, size: int | tuple[int, int] | None = None, samples: int = 1,
                 background: bool = True, composite: str = "auto", method: str = "auto") -> torch.Tensor:
    """Rasterize K scenes at one output size in one pass: (K, H, W, 3) (or (K, H, W, 4), see `render`)."""
    if composite not in ("auto", "loop", "sorted"):
        raise ValueError(f"unknown composite {composite!r}: use 'auto', 'loop' or 'sorted'")
    if method not in ("auto", "reference", "batched"):
        raise ValueError(f"unknown method {method!r}: use 'auto', 'reference' or 'batched'")
    if not scenes:
        raise ValueError("render_batch needs at least one scene")
    H, W = output_size(scenes[0], size)
    if any(output_size(s, size) != (H, W) for s in scenes):
        raise ValueError("scenes of different sizes: pass size=(H, W) to render them together")
    samples = int(samples)
    if samples < 1:
        raise ValueError(f"samples must be >= 1, got {samples}")
    Hs, Ws = H * samples, W * samples
    ref = next((s.points for sc in scenes for s in sc.shapes), scenes[0].background)
    dev = ref.device
    dtype = torch.float64 if ref.dtype == torch.float64 else torch.float32    # float64: for gradient checks
    K = len(scenes)
    if background:
        bg = torch.stack([sc.background.to(dev, dtype) for sc in scenes])
        bg = bg[:, :3] * bg[:, 3:] + (1.0 - bg[:, 3:])
        canvas0 = bg[:, None, None, :].expand(K, Hs, Ws, 3).contiguous()
    else:
        canvas0 = torch.zeros(K, Hs, Ws, 4, device=dev, dtype=dtype)
    if method == "batched" or (method == "auto" and dev.type == "cuda"):
        out = _render_batched(scenes, canvas0, dtype, [])
    else:
        out = _render_reference(scenes, canvas0, dtype, composite)
    if samples > 1:
        out = torch.nn.functional.avg_pool2d(out.permute(0, 3, 1, 2), samples).permute(0, 2, 3, 1)
    if not background:
        a = out[..., 3:]
        rgb = torch.where(a > 1e-6, out[..., :3] / a.clamp(min=1e-6), torch.zeros_like(out[..., :3]))
        out = torch.cat([rgb, a], -1)
    # No clamp: with colors in [0, 1] the result is in [0, 1] up to rounding, and a clamp would stop the
    # gradients of every pixel that is exactly 0 or 1 (a black shape could never change color).
    return out


def _render_reference(scenes: list[Scene], canvas0: torch.Tensor, dtype, composite: str) -> torch.Tensor:
    """The reference method: layers chosen on the host, one compositing plan entry per layer."""
    K, Hs, Ws, _ = canvas0.shape
    dev = canvas0.device
    background = canvas0.shape[-1] == 3
    # Layers in painter's order: a shape's fill, then its stroke.
    fills, strokes, order = [], [], []       # order: ("fill"|"stroke", index in its list, scene, color)
    for k, sc in enumerate(scenes):
        scale = torch.tensor([Ws / sc.width, Hs / sc.height], device=dev, dtype=dtype)
        wscale = math.sqrt((Ws / sc.width) * (Hs / sc.height))
        if not sc.shapes:
            continue
        visible = torch.stack([torch.stack([s.fill[3], s.stroke[3], s.stroke_width.reshape(())])
                               for s in sc.shapes]).detach()
        visible = (visible.to("cpu") > 0).tolist()
        for s, (fa, sa, sw) in zip(sc.shapes, visible):
            if s.kind != "stroke" and (fa or s.fill.requires_grad):
                order.append(("fill", len(fills), k, s.fill))
                fills.append((s.cubics() * scale, s.fill_rule == "evenodd"))
            if s.kind == "stroke" or (s.kind == "path" and ((sa and sw) or s.stroke.requires_grad
                                                             or s.stroke_width.requires_grad)):
                order.append(("stroke", len(strokes), k, s.stroke))
                strokes.append((s.cubics() * scale, s.stroke_width * wscale))

    allpts = [c for c, _ in fills] + [c for c, _ in strokes]
    if allpts and not bool(torch.isfinite(torch.cat([c.detach().reshape(-1) for c in allpts])).all()):
        raise ValueError("the scene has non-finite control points (NaN or inf); check the optimizer's step size")

    covs, plan, offset = [], [], 0
    fill_tiles = stroke_px = None
    if fills:
        cub = torch.cat([c for c, _ in fills]).to(dtype)
        lid = torch.repeat_interleave(torch.arange(len(fills), device=dev),
                                      torch.tensor([len(c) for c, _ in fills], device=dev))
        cov_f, t = _fill_coverage(cub, lid, len(fills), [eo for _, eo in fills], Hs, Ws)
        fill_tiles = torch.stack([t.offset, t.x0, t.y0, t.w, t.h], 1).tolist()
        covs.append(cov_f)
        offset = cov_f.shape[0]
    if strokes:
        cub = torch.cat([c for c, _ in strokes]).to(dtype)
        lid = torch.repeat_interleave(torch.arange(len(strokes), device=dev),
                                      torch.tensor([len(c) for c, _ in strokes], device=dev))
        widths = torch.stack([w.reshape(()) for _, w in strokes]).to(dtype)
        s_layer, s_pix, cov_s = _stroke_coverage(cub, lid, widths, Hs, Ws)
        counts = torch.bincount(s_layer, minlength=len(strokes))
        starts = (torch.cumsum(counts, 0) - counts).tolist()
        counts = counts.tolist()
        stroke_px = (s_pix, starts, counts)
        covs.append(cov_s)

    colors = []
    for li, (what, i, k, color) in enumerate(order):
        colors.append(color)
        if what == "fill":
            off, x0, y0, w, h = fill_tiles[i]
            if w > 0 and h > 0:
                plan.append(("tile", li, k, off, x0, y0, w, h))
        else:
            pix, starts, counts = stroke_px
            if counts[i]:
                st = starts[i]
                plan.append(("pixels", li, k, offset + st, counts[i], pix[st:st + counts[i]]))
    if not plan:
        return canvas0
    cov = torch.cat(covs) if len(covs) > 1 else covs[0]
    col = torch.stack([c.to(dtype) for c in colors])
    if not background:
        col = torch.cat([col[:, :3], torch.ones_like(col[:, :1]), col[:, 3:]], 1)   # premultiplied RGBA
    if composite == "sorted" or (composite == "auto" and (dev.type == "cuda" or len(plan) > 512)):
        return _composite_sorted(cov, col, canvas0, plan)
    return _Composite.apply(cov, col, canvas0, plan)


# ------------------------------------------------------------------------------------------ batched method

def _upload(values: list, dtype, device) -> torch.Tensor:
    """One host-to-device copy of host-built values (pinned and asynchronous on CUDA: no host sync)."""
    return to_device(torch.from_numpy(values) if isinstance(values, np.ndarray) else torch.tensor(values, dtype=dtype),
                     device)


def gather_cubics(flat: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Cubic control points from the flat coordinates of all shapes: (N, 4, 2).

    index: (3, N*8) long: coordinate a, coordinate b, and a code: 0 takes a, 1 takes a + (b - a) / 3,
    2 takes a + (b - a) * 2/3 (squares' straight sides, as `Shape.cubics` computes them).
    """
    ia, ib, code = index
    fa, fb = flat[ia], flat[ib]
    q = fb - fa
    return (fa + torch.where(code == 1, q / 3.0, torch.where(code == 2, q * (2.0 / 3.0), q * 0.0))).view(-1, 4, 2)


def _cubic_point_index(s: Shape) -> np.ndarray:
    """(S, 4) indices into s.points of each cubic's control points (closed subpaths wrap), as `Shape.cubics`."""
    segs = np.asarray(s.segment_counts(), dtype=np.int64)
    n = 3 * segs if s.closed else 3 * segs + 1
    starts = np.cumsum(n) - n
    sub = np.repeat(np.arange(len(segs)), segs)
    i = np.arange(len(sub)) - np.repeat(np.cumsum(segs) - segs, segs)
    local = 3 * i[:, None] + np.arange(4)[None]
    if s.closed:
        local = local % n[sub][:, None]
    return starts[sub][:, None] + local


_SQUARE = np.array([[0, 1], [2, 1], [2, 3], [0, 3]])      # corner (x, y) coordinates of [[x0, y0], [x1, y1]]


def shape_cubic_index(s: Shape, base: int) -> np.ndarray:
    """(3, S*8) long: coordinate a, coordinate b, code per coordinate of `s`'s cubics (see `gather_cubics`),
    its points starting at point `base` of the flat list."""
    if s.kind == "square":
        a = _SQUARE + 2 * base                                     # (4 corners, 2)
        b = np.roll(a, -1, 0)
        ca = np.stack([a, a, a, b], 1)                             # (4 cubics, 4 controls, 2)
        cb = np.stack([b, b, b, b], 1)
        code = np.broadcast_to(np.array([0, 1, 2, 0])[None, :, None], ca.shape)
        return np.stack([ca.reshape(-1), cb.reshape(-1), code.reshape(-1)])
    p = 2 * (_cubic_point_index(s) + base)
    coord = np.stack([p, p + 1], -1).reshape(-1)
    return np.stack([coord, coord, np.zeros_like(coord)])


def _render_batched(scenes: list[Scene], canvas0: torch.Tensor, dtype, syncs: list) -> torch.Tensor:
    """The batched method: every layer of every scene in a fixed number of batched operations.

    The host only walks the scene structure (shape kinds and point counts, no tensor values) to build index
    arrays, sent in two copies. Layers are every path's and square's fill and every stroke and path's stroke,
    in painter's order; the ones the reference skips (transparent and not optimized) get empty tiles and no
    chords, decided on the device. Host syncs: one read of the sizes (tile buffer, rows, chords, and the
    finite-points check), one of the fill piece count, and for strokes one of the stroke piece count and one
    of the pixel pairs; `syncs` gets one entry per read.
    """
    K, Hs, Ws, C = canvas0.shape
    dev = canvas0.device
    shapes = [(k, s) for k, sc in enumerate(scenes) for s in sc.shapes]
    if not shapes:
        return canvas0
    # ---- host: layers and index arrays (no tensor values read)
    f_idx, f_layer, f_scene, f_rank, f_eo, f_force = [], [], [], [], [], []
    s_idx, s_layer, s_scene, s_rank, s_force = [], [], [], [], []
    colors, widths, n_f, n_s = [], [], 0, 0
    base = 0
    for k, s in shapes:
        idx = shape_cubic_index(s, base)
        ncub = idx.shape[1] // 8
        base += s.points.shape[0]
        if s.kind != "stroke":
            f_idx.append(idx)
            f_layer += [n_f] * ncub
            f_scene.append(k)
            f_rank.append(len(colors))
            f_eo.append(s.fill_rule == "evenodd")
            f_force.append(s.fill.requires_grad)
            colors.append(s.fill)
            n_f += 1
        if s.kind != "square":
            s_idx.append(idx)
            s_layer += [n_s] * ncub
            s_scene.append(k)
            s_rank.append(len(colors))
            s_force.append(s.kind == "stroke" or s.stroke.requires_grad or s.stroke_width.requires_grad)
            colors.append(s.stroke)
            widths.append(s.stroke_width.reshape(()))
            n_s += 1
    ints = [f_layer, f_scene, f_rank, f_force, f_eo, s_layer, s_scene, s_rank, s_force]
    eo_host = list(f_eo)
    f_idx = np.concatenate(f_idx, 1) if f_idx else np.zeros((3, 0), np.int64)
    s_idx = np.concatenate(s_idx, 1) if s_idx else np.zeros((3, 0), np.int64)
    arrays = [np.asarray(v, dtype=np.int64) for v in ints] + [f_idx.reshape(-1), s_idx.reshape(-1)]
    packed = torch.split(_upload(np.concatenate(arrays), torch.long, dev), [len(v) for v in arrays])
    f_layer, f_scene, f_rank, f_force, f_eo, s_layer, s_scene, s_rank, s_force = packed[:9]
    f_index, s_index = packed[9].view(3, -1), packed[10].view(3, -1)
    scales = _upload([[Ws / sc.width, Hs / sc.height, math.sqrt((Ws / sc.width) * (Hs / sc.height))]
                      for sc in scenes], dtype, dev)

    # ---- device: geometry, visibility, sizes
    pts = torch.cat([s.points for _, s in shapes])
    flat = (pts if pts.dtype == dtype else pts.to(dtype)).reshape(-1)
    col = torch.stack([c if c.dtype == dtype else c.to(dtype) for c in colors])
    finite, counts = [], []
    if n_f:
        cub_f = gather_cubics(flat, f_index) * scales[f_scene[f_layer], None, :2]
        with torch.no_grad():
            active_f = (col[f_rank, 3] > 0) | f_force.bool()
            x0, y0, w, h, _ = _tile_extents(cub_f, f_layer, n_f, Hs, Ws)
            w, h = w * active_f, h * active_f
            ext = (x0, y0, w, h, h * (w + 1))
            nch_f = chord_counts(cub_f) * active_f[f_layer]
            finite.append((torch.isfinite(cub_f.detach()).flatten(1).all(1) | ~active_f[f_layer]).all())
            counts += [ext[4].sum(), h.sum(), nch_f.sum()]
    if n_s:
        cub_s = gather_cubics(flat, s_index) * scales[s_scene[s_layer], None, :2]
        wid = torch.stack(widths)
        wid = (wid if wid.dtype == dtype else wid.to(dtype)) * scales[s_scene, 2]
        with torch.no_grad():
            active_s = ((col[s_rank, 3] > 0) & (wid > 0)) | s_force.bool()
            nch_s = chord_counts(cub_s) * active_s[s_layer]
            finite.append((torch.isfinite(cub_s.detach()).flatten(1).all(1) | ~active_s[s_layer]).all())
            counts.append(nch_s.sum())
    host = torch.stack([torch.stack(finite).all().long()] + counts).tolist()
    syncs.append("sizes")
    if not host[0]:
        raise ValueError("the scene has non-finite control points (NaN or inf); check the optimizer's step size")

    # ---- coverage entries (layer, pixel, coverage), then one compositing pass
    cov, lay, pix = [], [], []
    if n_f:
        total, rows = host[1], host[2]
        cov_f, t = _fill_coverage(cub_f, f_layer, n_f, eo_host, Hs, Ws, extents=ext, totals=(total, rows, host[3]),
                                  n_chords=nch_f, evenodd_t=f_eo.bool(), syncs=syncs, batched=True)
        if total:
            with torch.no_grad():
                e = torch.repeat_interleave(torch.arange(n_f, device=dev), ext[4], output_size=total)
                local = torch.arange(total, device=dev) - t.offset[e]
                tw = t.w[e] + 1
                row, c = torch.div(local, tw, rounding_mode="floor"), local % tw
                pad = c == t.w[e]                   # the padding column holds no pixel
                pix.append((f_scene[e] * Hs + t.y0[e] + row) * Ws + t.x0[e] + c.minimum(t.w[e] - 1))
                lay.append(f_rank[e])
            cov.append(torch.where(pad, torch.zeros_like(cov_f), cov_f))
    if n_s and host[-1]:
        sl, sp, cov_s = _stroke_coverage_batched(cub_s, s_layer, wid, Hs, Ws, nch_s, host[-1], syncs)
        pix.append(s_scene[sl] * (Hs * Ws) + sp)
        lay.append(s_rank[sl])
        cov.append(cov_s)
    if not cov:
        return canvas0
    if C == 4:
        col = torch.cat([col[:, :3], torch.ones_like(col[:, :1]), col[:, 3:]], 1)     # premultiplied RGBA
    return _composite_entries(torch.cat(cov), torch.cat(lay), torch.cat(pix), col, canvas0)
