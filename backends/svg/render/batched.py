"""The batched method (the CUDA default): every layer of every scene in a fixed number of batched operations,
the host walking only the scenes' structure (shape kinds and point counts, never tensor values)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ...core.devices import to_device
from ..scene import Scene, Shape
from .composite import composite_entries
from .fill import fill_coverage, tile_extents
from .flatten import chord_counts
from .stroke import stroke_coverage_batched


def upload(values: list, dtype, device) -> torch.Tensor:
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


def render_batched(scenes: list[Scene], canvas0: torch.Tensor, dtype, syncs: list) -> torch.Tensor:
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
    layers = _Layers.of(shapes, dev)
    scales = upload([[Ws / sc.width, Hs / sc.height, math.sqrt((Ws / sc.width) * (Hs / sc.height))]
                     for sc in scenes], dtype, dev)
    geo = _Geometry.of(shapes, layers, scales, dtype, Hs, Ws)
    host = torch.stack([torch.stack(geo.finite).all().long()] + geo.counts).tolist()
    syncs.append("sizes")
    if not host[0]:
        raise ValueError("the scene has non-finite control points (NaN or inf); check the optimizer's step size")
    cov, lay, pix = _coverage_entries(layers, geo, host, Hs, Ws, syncs)
    if not cov:
        return canvas0
    col = geo.col
    if C == 4:
        col = torch.cat([col[:, :3], torch.ones_like(col[:, :1]), col[:, 3:]], 1)     # premultiplied RGBA
    return composite_entries(torch.cat(cov), torch.cat(lay), torch.cat(pix), col, canvas0)


@dataclass
class _Layers:
    """The layers of K scenes in painter's order, from their structure alone: per fill layer (f_) and stroke
    layer (s_) its scene, its rank in painter's order (an index into `colors`), whether it is drawn even when
    transparent (optimized), even-odd (fills); per cubic its layer; `f_index`, `s_index` the cubics' point
    indices (`gather_cubics`). Index tensors are on the device (one upload); `eo_host` is the fills' even-odd
    as host bools."""

    n_f: int
    n_s: int
    colors: list
    widths: list
    eo_host: list
    f_layer: torch.Tensor
    f_scene: torch.Tensor
    f_rank: torch.Tensor
    f_force: torch.Tensor
    f_eo: torch.Tensor
    s_layer: torch.Tensor
    s_scene: torch.Tensor
    s_rank: torch.Tensor
    s_force: torch.Tensor
    f_index: torch.Tensor
    s_index: torch.Tensor

    @classmethod
    def of(cls, shapes: list[tuple[int, Shape]], dev) -> _Layers:
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
        f_idx = np.concatenate(f_idx, 1) if f_idx else np.zeros((3, 0), np.int64)
        s_idx = np.concatenate(s_idx, 1) if s_idx else np.zeros((3, 0), np.int64)
        arrays = [np.asarray(v, dtype=np.int64) for v in ints] + [f_idx.reshape(-1), s_idx.reshape(-1)]
        packed = torch.split(upload(np.concatenate(arrays), torch.long, dev), [len(v) for v in arrays])
        return cls(n_f, n_s, colors, widths, list(f_eo), *packed[:9], packed[9].view(3, -1), packed[10].view(3, -1))


@dataclass
class _Geometry:
    """The layers' cubics in output pixels on the device (cub_f, cub_s), their colours (col) and stroke widths
    (wid), which layers are drawn (zero tiles and chords for the others), the fills' tile extents (ext) and the
    chords per cubic (nch_f, nch_s); `finite` and `counts` are the values the one host read of sizes reads."""

    col: torch.Tensor
    finite: list
    counts: list
    cub_f: torch.Tensor | None = None
    ext: tuple | None = None
    nch_f: torch.Tensor | None = None
    cub_s: torch.Tensor | None = None
    wid: torch.Tensor | None = None
    nch_s: torch.Tensor | None = None

    @classmethod
    def of(cls, shapes, layers: _Layers, scales: torch.Tensor, dtype, Hs: int, Ws: int) -> _Geometry:
        L = layers
        pts = torch.cat([s.points for _, s in shapes])
        flat = (pts if pts.dtype == dtype else pts.to(dtype)).reshape(-1)
        col = torch.stack([c if c.dtype == dtype else c.to(dtype) for c in L.colors])
        geo = cls(col, [], [])
        if L.n_f:
            geo.cub_f = gather_cubics(flat, L.f_index) * scales[L.f_scene[L.f_layer], None, :2]
            with torch.no_grad():
                active_f = (col[L.f_rank, 3] > 0) | L.f_force.bool()
                x0, y0, w, h, _ = tile_extents(geo.cub_f, L.f_layer, L.n_f, Hs, Ws)
                w, h = w * active_f, h * active_f
                geo.ext = (x0, y0, w, h, h * (w + 1))
                geo.nch_f = chord_counts(geo.cub_f) * active_f[L.f_layer]
                geo.finite.append((torch.isfinite(geo.cub_f.detach()).flatten(1).all(1) | ~active_f[L.f_layer]).all())
                geo.counts += [geo.ext[4].sum(), h.sum(), geo.nch_f.sum()]
        if L.n_s:
            geo.cub_s = gather_cubics(flat, L.s_index) * scales[L.s_scene[L.s_layer], None, :2]
            wid = torch.stack(L.widths)
            geo.wid = (wid if wid.dtype == dtype else wid.to(dtype)) * scales[L.s_scene, 2]
            with torch.no_grad():
                active_s = ((col[L.s_rank, 3] > 0) & (geo.wid > 0)) | L.s_force.bool()
                geo.nch_s = chord_counts(geo.cub_s) * active_s[L.s_layer]
                geo.finite.append((torch.isfinite(geo.cub_s.detach()).flatten(1).all(1) | ~active_s[L.s_layer]).all())
                geo.counts.append(geo.nch_s.sum())
        return geo


def _coverage_entries(L: _Layers, geo: _Geometry, host: list, Hs: int, Ws: int, syncs: list):
    """(coverage, painter's-order layer, pixel) entries of every fill tile pixel (the padding column at 0) and
    every stroke (piece, pixel) pair, as lists of tensors to concatenate; host: the sizes read once."""
    dev = geo.col.device
    cov, lay, pix = [], [], []
    if L.n_f:
        total, rows = host[1], host[2]
        ext = geo.ext
        cov_f, t = fill_coverage(geo.cub_f, L.f_layer, L.n_f, L.eo_host, Hs, Ws, extents=ext,
                                 totals=(total, rows, host[3]), n_chords=geo.nch_f, evenodd_t=L.f_eo.bool(),
                                 syncs=syncs, batched=True)
        if total:
            with torch.no_grad():
                e = torch.repeat_interleave(torch.arange(L.n_f, device=dev), ext[4], output_size=total)
                local = torch.arange(total, device=dev) - t.offset[e]
                tw = t.w[e] + 1
                row, c = torch.div(local, tw, rounding_mode="floor"), local % tw
                pad = c == t.w[e]                   # the padding column holds no pixel
                pix.append((L.f_scene[e] * Hs + t.y0[e] + row) * Ws + t.x0[e] + c.minimum(t.w[e] - 1))
                lay.append(L.f_rank[e])
            cov.append(torch.where(pad, torch.zeros_like(cov_f), cov_f))
    if L.n_s and host[-1]:
        sl, sp, cov_s = stroke_coverage_batched(geo.cub_s, L.s_layer, geo.wid, Hs, Ws, geo.nch_s, host[-1], syncs)
        pix.append(L.s_scene[sl] * (Hs * Ws) + sp)
        lay.append(L.s_rank[sl])
        cov.append(cov_s)
    return cov, lay, pix
