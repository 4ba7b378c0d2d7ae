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
  composited at once from per-pixel log-transmittances (`composite.composite_entries`).
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

The modules, from a curve to a pixel:
    flatten     cubics to chords (`chord_counts`), lines cut into parts, chords clipped to boxes
    fill        the fills' tiles and their exact area coverage
    stroke      the strokes' coverage by distance to the centre line
    composite   "over" in painter's order: the loop with its analytic backward, and the sorted entries
    reference   the reference method (the CPU default)
    batched     the batched method (the CUDA default) and the cubics' point indices it shares with `cost.py`
    rasterize   `render`, `render_batch`, `output_size`
"""
from __future__ import annotations

from .batched import gather_cubics, shape_cubic_index
from .flatten import FLAT_TOL, MAX_CHORDS, chord_counts
from .rasterize import output_size, render, render_batch
from .stroke import STROKE_PIECE

__all__ = ["FLAT_TOL", "MAX_CHORDS", "STROKE_PIECE", "chord_counts", "gather_cubics", "output_size", "render",
           "render_batch", "shape_cubic_index"]
