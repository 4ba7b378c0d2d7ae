"""Coverage of round-capped, round-joined strokes: the distance of each pixel centre within reach to the nearest
piece of the flattened centre line, and the exact box-filtered coverage of a band of the stroke's width there."""
from __future__ import annotations

import torch

from .flatten import clip_stroke_chords, flatten, split_lines

STROKE_PIECE = 4.0       # px: stroke centre lines are cut into pieces this long for the pixel search


def stroke_candidates(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor, height: int,
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
    a, b, cid = flatten(cubics, n_chords, chords)
    lay = layer_of_cubic[cid]
    with torch.no_grad():
        reach_c = (widths.detach()[lay] * 0.5 + 0.5).clamp(min=0)
    a, b, empty = clip_stroke_chords(a, b, reach_c + 1.0, height, width)
    with torch.no_grad():
        length = (b - a).detach().norm(dim=1)
        counts = torch.where(empty, torch.zeros_like(length), (length / STROKE_PIECE).ceil().clamp(min=1)).long()
        n_pieces = int(counts.sum())
        syncs.append("stroke pieces")
    a, b, parent = split_lines(a, b, counts, n_pieces)
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
        dd = squared_distance(c, ad[seg], bd[seg])
    return a, b, lay, seg, px, py, dd, reach[seg, 0]


def stroke_coverage(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor, height: int,
                    width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coverage of round-capped, round-joined strokes (reference: compacted with unique, host syncs).

    cubics: (N, 4, 2) pixels; layer_of_cubic: (N,) long, index into widths (L,) pixels.
    Returns (layer (P,), pixel index y * width + x (P,), coverage (P,)) for the pixels each stroke touches,
    sorted by layer then pixel.
    """
    dev = cubics.device
    a, b, lay, seg, px, py, dd, r = stroke_candidates(cubics, layer_of_cubic, widths, height, width)
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
    dist = torch.sqrt(squared_distance(c, a[seg_best], b[seg_best]) + 1e-12)
    half = widths[layer] * 0.5
    cov = (torch.clamp(half + dist, max=0.5) - torch.clamp(dist - half, min=-0.5)).clamp(0.0, 1.0)
    return layer, py * width + px, cov


def stroke_coverage_batched(cubics: torch.Tensor, layer_of_cubic: torch.Tensor, widths: torch.Tensor,
                            height: int, width: int, n_chords: torch.Tensor, chords: int,
                            syncs: list) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`stroke_coverage` without compaction: one entry per (piece, pixel) pair, the nearest piece of each
    (layer, pixel) carrying its coverage and every other pair 0 (a mask, not boolean indexing or unique).

    Two stable sorts (by distance, then by layer-pixel key) put the nearest pair first in each key's run, ties
    going to the lowest pair index as in the reference. Returns (layer (P,), pixel (P,), coverage (P,)).
    """
    a, b, lay, seg, px, py, dd, r = stroke_candidates(cubics, layer_of_cubic, widths, height, width,
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
    dist = torch.sqrt(squared_distance(c, a[seg], b[seg]) + 1e-12)
    half = widths[layer] * 0.5
    cov = (torch.clamp(half + dist, max=0.5) - torch.clamp(dist - half, min=-0.5)).clamp(0.0, 1.0)
    return layer, py * width + px, torch.where(first, cov, torch.zeros_like(cov))


def squared_distance(c: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Squared distance from points c (P, 2) to segments a-b (P, 2)."""
    d = b - a
    dd = (d * d).sum(1)
    t = (((c - a) * d).sum(1) / dd.clamp(min=1e-12)).clamp(0.0, 1.0)
    e = a + t[:, None] * d - c
    return (e * e).sum(1)
