"""What drawing costs, before drawing: the one cost model of this project's renderer (render/), in two units.

- `estimate_work(scenes)`: peak memory of one forward + backward of `render_batch`, in bytes, from the scenes'
  geometry; the distillation and vectorization backends' estimates (`painting_bytes`, `fit_bytes`) apply the same
  per-unit costs to shapes they have not built yet, from their settings alone.
- `render_work(scene)` / `check_work(scene)`: pixel operations of one forward pass, per shape, the SVG importer's
  bound (MAX_WORK) on a file before it is drawn.
Both count chords as the renderer does (`render.chord_counts`: its flatness tolerance and cap) and cut strokes
into its STROKE_PIECE-long pieces; the per-unit costs are measured (see each constant).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..core.errors import InputError
from .render import STROKE_PIECE, chord_counts, gather_cubics, output_size, shape_cubic_index
from .scene import Scene

# Peak bytes of one forward + backward, per unit (measured peak RSS growth on a CPU: 0.3x (reference) to 0.9x
# (batched) of the estimate for 128 paths at 600x600).
TILE_PIXEL_BYTES = 300    # per fill-tile pixel: the batched compositor sorts every tile pixel
PIECE_BYTES = 120         # per pixel piece (3 per sub-line)
STROKE_PAIR_BYTES = 80    # per (stroke piece, pixel) pair searched
SAMPLE_BYTES = 16         # per output sample and channel (4 channels)
STEP_PIXEL_BYTES = 200    # per canvas pixel of a distillation step: the render, its augmentation, their gradients
PIECES_PER_CUBIC = 8 * 5  # a distillation path's cubic: ~8 chords of at most 5 + its length sub-lines each

# Pixel operations of a forward pass (measured on a loaded 2-core CPU: 400-650 ns and ~90 bytes per stroke pixel
# candidate, against ~37 ns and ~40 bytes per fill pixel, canvas included).
STROKE_CANDIDATE_OPS = 16
SHAPE_OPS = 256           # a shape's fixed overhead
# Estimated pixel operations for one image (`check_work`: the canvas plus `render_work`): a 4096 x 4096 canvas
# with one fill over all of it is 33.6 million, and 40 million leaves room for its outline and small shapes:
# about 3 s and 0.6 GB on an idle 2-core CPU with this project's renderer.
MAX_WORK = 40_000_000


# ------------------------------------------------------------------------------------------------ bytes

def estimate_work(scenes: list[Scene], size: int | tuple[int, int] | None = None, samples: int = 1) -> dict:
    """What rendering `scenes` would cost, cheaply and without rendering: a dict of

    pixels: K * H * W output samples (with samples**2 per pixel); layers: fill and stroke layers;
    chords: flattened chords (exact: the renderer's own count); tile_pixels: summed area of the fill tiles
    (each fill layer's control-point box clipped to the canvas); pieces: an upper bound of the pixel pieces
    (3 per sub-line; a chord clipped to the canvas gives at most 5 + its L1 length sub-lines, and a cubic's
    chords are no longer than its control polygon); stroke_pairs: an upper bound of the (stroke piece, pixel)
    pairs searched; bytes: an estimate of the peak memory of one forward + backward (about 300 B per tile
    pixel (the batched compositor sorts every tile pixel), 120 B per piece, 80 B per stroke pair and 16 B per
    output sample and channel; measured peak RSS growth on a CPU: 0.3x (reference) to 0.9x (batched) of it
    for 128 paths at 600x600).
    A work budget can refuse a scene before anything large is allocated. Reads the points on the host
    (one device copy per scene on a GPU).
    """
    H, W = output_size(scenes[0], size)
    samples = int(samples)
    Hs, Ws = H * samples, W * samples
    out = {"pixels": len(scenes) * Hs * Ws, "layers": 0, "chords": 0, "tile_pixels": 0, "pieces": 0,
           "stroke_pairs": 0}
    for sc in scenes:
        shapes = [s for s in sc.shapes]
        if not shapes:
            continue
        scale = torch.tensor([Ws / sc.width, Hs / sc.height], dtype=torch.float64)
        wscale = math.sqrt((Ws / sc.width) * (Hs / sc.height))
        pts = torch.cat([s.points.detach().reshape(-1, 2) for s in shapes]).to("cpu", torch.float64)
        flat = pts.reshape(-1)
        idx, base, owner = [], 0, []
        for i, s in enumerate(shapes):
            ix = shape_cubic_index(s, base)
            idx.append(ix)
            owner.append(np.full(ix.shape[1] // 8, i))
            base += s.points.shape[0]
        cub = gather_cubics(flat, torch.from_numpy(np.concatenate(idx, 1))) * scale
        owner = torch.from_numpy(np.concatenate(owner))
        cub = torch.nan_to_num(cub, nan=0.0, posinf=1e30, neginf=-1e30)
        n = chord_counts(cub).double()
        l1 = (cub[:, 1:] - cub[:, :-1]).abs().sum((1, 2))
        sub = 5 * n + torch.minimum(l1, n * 2 * (Ws + Hs))
        is_fill = torch.tensor([s.kind != "stroke" for s in shapes])
        is_stroke = torch.tensor([s.kind == "stroke" or (s.kind == "path" and float(s.stroke_width) > 0)
                                  for s in shapes])
        out["layers"] += int(is_fill.sum()) + int(is_stroke.sum())
        cf, cs = is_fill[owner], is_stroke[owner]
        out["chords"] += int(n[cf].sum()) + int(n[cs].sum())
        out["pieces"] += int(3 * sub[cf].sum())
        o4 = owner.repeat_interleave(4)[:, None].expand(-1, 2)
        lo = cub.new_full((len(shapes), 2), math.inf).scatter_reduce(0, o4, cub.reshape(-1, 2), "amin")
        hi = cub.new_full((len(shapes), 2), -math.inf).scatter_reduce(0, o4, cub.reshape(-1, 2), "amax")
        lo = torch.minimum(lo.floor().clamp(min=0), torch.tensor([Ws, Hs], dtype=lo.dtype))
        hi = torch.minimum(hi.ceil().clamp(min=0), torch.tensor([Ws, Hs], dtype=hi.dtype))
        area = ((hi - lo).clamp(min=0)[:, 0] + 1) * (hi - lo).clamp(min=0)[:, 1]
        out["tile_pixels"] += int(area[is_fill].sum())
        if bool(cs.any()):
            width = torch.tensor([float(s.stroke_width) * wscale for s in shapes], dtype=torch.float64)[owner]
            reach = width * 0.5 + 0.5
            length = torch.minimum(l1, n * 2 * (Ws + Hs))
            stroke_pieces = n + length / STROKE_PIECE
            window = torch.minimum((STROKE_PIECE + 2 * reach + 2) ** 2, torch.tensor(float(Hs * Ws)))
            out["stroke_pairs"] += int((stroke_pieces * window)[cs].sum())
    out["bytes"] = (TILE_PIXEL_BYTES * out["tile_pixels"] + PIECE_BYTES * out["pieces"]
                    + STROKE_PAIR_BYTES * out["stroke_pairs"] + SAMPLE_BYTES * 4 * out["pixels"])
    return out


def painting_bytes(shapes: int, side: int, outline: int, size: int) -> int:
    """`estimate_work`'s bytes for one painting of `shapes` shapes not built yet: each a side x side tile and an
    outline of `outline` sub-lines, on a size x size canvas, plus the distillation step's per-pixel cost."""
    return shapes * (TILE_PIXEL_BYTES * side * side + PIECE_BYTES * 3 * outline) + STEP_PIXEL_BYTES * size * size


def fit_bytes(paths: int, width: int, height: int) -> int:
    """A vectorization's bytes: `paths` shapes and the canvas, every one at a full-canvas tile (the worst case of
    layer-wise fitting, and a bound on a trace)."""
    return (paths + 1) * TILE_PIXEL_BYTES * width * height


# ------------------------------------------------------------------------------------------ pixel operations

def render_work(scene: Scene, size: int | tuple[int, int] | None = None, samples: int = 1) -> torch.Tensor:
    """Estimated pixel operations of `render(scene, size=size, samples=samples)`, per shape: (n_shapes,) float64.

    A model of this project's renderer (backends/svg/render/), an upper bound rather than a prediction:
    - a fill costs its bounding box clipped to the canvas (one winding accumulator per pixel, plus the
      padding column) plus three pieces per pixel-long sub-line of its flattened outline (the control
      polygon's spans in output pixels, plus one per flatness chord, counted as the renderer does);
    - a stroke costs, per 4 px piece of its centre line, the pixel candidates of the piece's box grown by half
      the width (at most the canvas), weighted 16x (measured on a loaded 2-core CPU: 400-650 ns and ~90 bytes
      per candidate, against ~37 ns and ~40 bytes per fill pixel, canvas included);
    - every shape costs 256 for its fixed overhead.
    The canvas itself is not included (see `check_work`). Non-finite geometry costs inf.
    """
    H, W = output_size(scene, size)
    Hs, Ws = H * samples, W * samples
    n = len(scene.shapes)
    if n == 0:
        return torch.zeros(0, dtype=torch.float64)
    kx, ky = Ws / scene.width, Hs / scene.height
    f64 = torch.float64
    with torch.no_grad():
        pts, idx, nxt, seg_leg, seg_shape, square = [], [], [], [], [], []
        off = 0
        for i, s in enumerate(scene.shapes):       # index lists only; the arithmetic is vectorized below
            p = s.points.detach()
            pts.append(p)
            square.append(s.kind == "square")
            counts = s.segment_counts()
            if s.kind == "square":
                idx += [off, off + 1]
                nxt += [off + 1, off]
                off += 2
                continue
            for cnt in counts:
                k = 3 * cnt if s.closed else 3 * cnt + 1
                seg_leg.extend(range(len(idx), len(idx) + 3 * cnt, 3))   # a segment's legs: 3j, 3j+1, 3j+2
                seg_shape.extend([i] * cnt)
                idx.extend(range(off, off + k))
                nxt.extend(range(off + 1, off + k))
                nxt.append(off if s.closed else off + k - 1)       # wrap, or a zero-length leg
                off += k
        sizes = torch.tensor([len(p) for p in pts])
        P = torch.cat(pts).to("cpu", f64) * torch.tensor([kx, ky], dtype=f64)
        sid = torch.repeat_interleave(torch.arange(n), sizes)
        idx_t, nxt_t = torch.tensor(idx), torch.tensor(nxt)
        leg = P[nxt_t] - P[idx_t]
        span = torch.zeros(n, dtype=f64).index_add(0, sid[idx_t], leg.abs().amax(-1))
        length = torch.zeros(n, dtype=f64).index_add(0, sid[idx_t], leg.norm(dim=-1))
        sq = torch.tensor(square)
        span = torch.where(sq, 2 * span, span)     # a square's two "legs" are its diagonal; its outline is 2(w+h)
        chords = torch.zeros(n, dtype=f64)
        if seg_leg:                                # the renderer's own chord count of each cubic
            j = torch.tensor(seg_leg)
            cubics = torch.stack([P[idx_t[j]], P[idx_t[j + 1]], P[idx_t[j + 2]], P[nxt_t[j + 2]]], 1)
            chords.index_add_(0, torch.tensor(seg_shape), chord_counts(cubics).to(f64))
        chords = torch.where(sq, 4.0, chords)
        sid2 = sid[:, None].expand(-1, 2)
        lo = torch.full((n, 2), math.inf, dtype=f64).scatter_reduce(0, sid2, P, "amin")
        hi = torch.full((n, 2), -math.inf, dtype=f64).scatter_reduce(0, sid2, P, "amax")
        lim = torch.tensor([Ws, Hs], dtype=f64)
        lo = torch.minimum(lo.clamp(min=0), lim).floor()
        hi = torch.minimum(hi.clamp(min=0), lim).ceil()
        ext = (hi - lo).clamp(min=0)
        tile = (ext[:, 0] + 1) * ext[:, 1]
        lines = 3 * (span + chords)
        pieces = length / STROKE_PIECE + chords
        width = torch.tensor([float(s.stroke_width) for s in scene.shapes], dtype=f64) * math.sqrt(kx * ky)
        box = torch.minimum((STROKE_PIECE + width + 3) * (width + 3), torch.tensor((Ws + 1.0) * (Hs + 1.0), dtype=f64))
        has_fill = torch.tensor([s.kind != "stroke" and float(s.fill[3]) > 0 for s in scene.shapes])
        has_stroke = torch.tensor([s.kind == "stroke" or (s.kind == "path" and float(s.stroke[3]) > 0
                                                          and float(s.stroke_width) > 0) for s in scene.shapes])
        work = (SHAPE_OPS + torch.where(has_fill, tile + lines, 0.0)
                + torch.where(has_stroke, STROKE_CANDIDATE_OPS * pieces * box, 0.0))
        bad = torch.zeros(n, dtype=f64).index_add(0, sid, (~torch.isfinite(P)).any(1).to(f64))
        return torch.where(bad > 0, math.inf, torch.nan_to_num(work, nan=math.inf))


def check_work(scene: Scene, *, size: int | tuple[int, int] | None = None, samples: int = 1,
               max_work: float = MAX_WORK, sources: list[str] | None = None,
               reduce: str = "a smaller canvas") -> float:
    """The estimated work of rendering `scene` (`render_work`, summed, plus one per canvas pixel); InputError
    when over max_work.

    sources: the element each shape came from, to name a shape that alone takes most of the work;
    reduce: what else the person can change, for the message.
    """
    work = render_work(scene, size, samples)
    H, W = output_size(scene, size)
    # The canvas: background, compositing, clamping and PNG encoding cost about one fill pixel per pixel.
    total = float(work.sum()) + (H * samples) * (W * samples)
    if total <= max_work:
        return total
    worst = int(work.argmax())
    culprit = ""
    if sources is not None and float(work[worst]) > total / 2:
        alone = float(work[worst])
        culprit = (f"; its {sources[worst]} alone takes "
                   + (f"{alone / 1e6:.0f} million" if math.isfinite(alone) else "an unbounded amount"))
    amount = f"about {total / 1e6:.0f} million" if math.isfinite(total) else "an unbounded number of"
    raise InputError(f"The SVG would take {amount} pixel operations to draw at {W * samples}x{H * samples} px, "
                     f"more than the {max_work / 1e6:.0f} million allowed{culprit}; use fewer, smaller or "
                     f"thinner-stroked shapes, or {reduce}.")
