"""The renderer's entry points: `render` (one scene), `render_batch` (K scenes at one size), `output_size`."""
from __future__ import annotations

import torch

from ..scene import Scene
from .batched import render_batched
from .reference import render_reference


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
        out = render_batched(scenes, canvas0, dtype, [])
    else:
        out = render_reference(scenes, canvas0, dtype, composite)
    if samples > 1:
        out = torch.nn.functional.avg_pool2d(out.permute(0, 3, 1, 2), samples).permute(0, 2, 3, 1)
    if not background:
        a = out[..., 3:]
        rgb = torch.where(a > 1e-6, out[..., :3] / a.clamp(min=1e-6), torch.zeros_like(out[..., :3]))
        out = torch.cat([rgb, a], -1)
    # No clamp: with colors in [0, 1] the result is in [0, 1] up to rounding, and a clamp would stop the
    # gradients of every pixel that is exactly 0 or 1 (a black shape could never change color).
    return out
