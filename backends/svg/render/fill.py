"""Exact area coverage of closed fills (the font-rasterizer method of the package docstring): chords clipped
to their layer's tile, cut into pixel pieces, each depositing the area to its right; a cumulative sum along each
row gives the winding number integrated over every pixel."""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .flatten import chord_counts, clip_fill_chords, flatten, ragged_arange, split_lines

_EPS_DX = 1e-5           # px: a sub-line shorter than this in x (or y) is never split at a pixel edge


@dataclass
class Tiles:
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


def tile_extents(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, n_layers: int, height: int,
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


def fill_coverage(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, n_layers: int, evenodd: list[bool],
                  height: int, width: int, *, extents: tuple[torch.Tensor, ...] | None = None,
                  totals: tuple[int, int, int] | None = None, n_chords: torch.Tensor | None = None,
                  evenodd_t: torch.Tensor | None = None, syncs: list | None = None,
                  batched: bool = False) -> tuple[torch.Tensor, Tiles]:
    """Area coverage of closed fill layers.

    cubics: (N, 4, 2) pixels, all subpaths of all layers; layer_of_cubic: (N,) long; evenodd: per layer.
    extents: `tile_extents` of these cubics and totals: (buffer size, rows, chords), when the caller has
    already read them (the batched path reads them in one host sync with other sizes); else read here.
    n_chords: chords per cubic (default `chord_counts`); evenodd_t: evenodd as a (L,) bool device tensor.
    syncs: a list that gets one entry per host read made here (for counting); batched: masks only (every
    chord through the clip) instead of compacting the chords that leave their tile.
    Returns coverage (tiles.total,) in [0, 1] and the tile layout.
    """
    syncs = [] if syncs is None else syncs
    x0, y0, w, h, sizes = extents if extents is not None else tile_extents(cubics, layer_of_cubic, n_layers,
                                                                             height, width)
    n_chords = chord_counts(cubics) if n_chords is None else n_chords
    if totals is None:
        totals = tuple(torch.stack([sizes.sum(), h.sum(), n_chords.sum()]).tolist())
        syncs.append("fill sizes")
    total, n_rows, chords = totals
    off = torch.cumsum(sizes, 0) - sizes
    tiles = Tiles(x0, y0, w, h, off, total, n_rows)
    if total == 0:
        return cubics.new_zeros(0), tiles
    a, b, lay, keep = _chords_in_tiles(cubics, layer_of_cubic, n_chords, chords, tiles, batched)
    p_start, p_end, lay3 = _pixel_pieces(a, b, lay, keep, syncs)
    winding = _winding(p_start, p_end, lay3, tiles).to(cubics.dtype)
    aw = winding.abs()
    cov = aw.clamp(max=1.0)
    if any(evenodd):
        with torch.no_grad():
            eo = torch.tensor(evenodd, device=cubics.device) if evenodd_t is None else evenodd_t
            eo_elem = torch.repeat_interleave(eo, sizes, output_size=total)
        folded = aw - 2.0 * torch.floor(aw.detach() * 0.5)
        folded = 1.0 - (1.0 - folded).abs()
        cov = torch.where(eo_elem, folded, cov)
    return cov, tiles


def _chords_in_tiles(cubics, layer_of_cubic, n_chords, chords: int, tiles: Tiles, batched: bool):
    """The fill chords (a, b (M, 2), their layer (M,)) clipped to their layer's tile, and keep (M,): the chords
    that can make pieces. Clipped before cutting into pixel pieces: the piece count is bounded by the tile, not
    the chord. batched: every chord through the clip (masks only); else only the chords that leave their tile."""
    x0, y0, w, h = tiles.x0, tiles.y0, tiles.w, tiles.h
    a, b, cid = flatten(cubics, n_chords, chords)
    lay = layer_of_cubic[cid]
    with torch.no_grad():
        # Chords that cannot touch their tile (above or below it, right of it, horizontal) make no pieces.
        ymin = torch.minimum(a[:, 1], b[:, 1]).detach()
        ymax = torch.maximum(a[:, 1], b[:, 1]).detach()
        xmin = torch.minimum(a[:, 0], b[:, 0]).detach()
        keep = (ymax > y0[lay]) & (ymin < (y0 + h)[lay]) & (xmin < (x0 + w)[lay]) & (w[lay] > 0) \
            & (h[lay] > 0) & (ymax > ymin)
    dt = a.dtype
    if batched:
        a, b = clip_fill_chords(a, b, x0[lay].to(dt), y0[lay].to(dt), (x0 + w)[lay].to(dt), (y0 + h)[lay].to(dt))
        return a.reshape(-1, 2), b.reshape(-1, 2), lay.repeat_interleave(5), keep.repeat_interleave(5)
    # Few chords leave their tile: clip only those (a compaction, so a host sync; 20% of the CPU time of a
    # 128-path render if every chord went through the clip).
    with torch.no_grad():
        lo, hi = torch.minimum(a, b).detach(), torch.maximum(a, b).detach()
        inside = (lo[:, 0] >= x0[lay]) & (hi[:, 0] <= (x0 + w)[lay]) & (lo[:, 1] >= y0[lay]) \
            & (hi[:, 1] <= (y0 + h)[lay])
        out = (keep & ~inside).nonzero().squeeze(1)
        kin = (keep & inside).nonzero().squeeze(1)
        lo_ = lay[out]
    ca, cb = clip_fill_chords(a[out], b[out], x0[lo_].to(dt), y0[lo_].to(dt), (x0 + w)[lo_].to(dt),
                              (y0 + h)[lo_].to(dt))
    a, b = torch.cat([a[kin], ca.reshape(-1, 2)]), torch.cat([b[kin], cb.reshape(-1, 2)])
    lay = torch.cat([lay[kin], lo_.repeat_interleave(5)])
    return a, b, lay, torch.ones_like(lay, dtype=torch.bool)


def _pixel_pieces(a, b, lay, keep, syncs: list):
    """Chords cut into sub-lines no longer than a pixel in x and y (one host read: their count), each split at
    the pixel edges it crosses into three pieces (some empty), each inside one pixel cell: (start, end (3S, 2),
    layer (3S,))."""
    with torch.no_grad():
        span = (b - a).detach().abs().amax(dim=1)
        useful = keep & ((b - a).detach()[:, 1] != 0)
        counts = torch.where(useful, span.ceil().clamp(min=1), torch.zeros_like(span)).long()
        n_sub = int(counts.sum())
        syncs.append("fill pieces")
    a, b, parent = split_lines(a, b, counts, n_sub)
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
    return torch.cat([a, q1, q2]), torch.cat([q1, q2, b]), lay.repeat(3)


def _winding(p_start, p_end, lay3, tiles: Tiles) -> torch.Tensor:
    """The winding number integrated over every tile pixel (tiles.total,) float64: each piece from (xa, ya) to
    (xb, yb) deposits dy * (1 - xm) into its cell and dy * xm into the next (xm: its mid x within the cell), and
    one cumulative sum runs along the rows."""
    x0, y0, w, h, off = tiles.x0, tiles.y0, tiles.w, tiles.h, tiles.offset
    dev, n_rows = p_start.device, tiles.rows
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
            + ragged_arange(h, n_rows) * torch.repeat_interleave(w + 1, h, output_size=n_rows)
    row_sum = torch.zeros(n_rows, dtype=torch.float64, device=dev).index_add(0, row, vals)
    carry = torch.cat([row_sum.new_zeros(1), row_sum[:-1]])          # what the previous row left behind
    idx = torch.cat([i0, i1, row_start])
    delta = torch.zeros(tiles.total, dtype=torch.float64, device=dev).index_add(0, idx, torch.cat([vals, -carry]))
    return torch.cumsum(delta, 0)
