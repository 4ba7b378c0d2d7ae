"""Render a `Scene` with DiffVG (pydiffvg) when it happens to be importable, for side-by-side comparisons.

Nothing in Distill Studio needs pydiffvg: it is not on the package index and must be compiled from source.
`available()` says whether it can be used; `render_diffvg` mirrors `render.render` (same output layout),
so the benchmark and tests can compare the two renderers on the same scene.
"""
from __future__ import annotations

import torch

from .scene import Scene


def available() -> bool:
    try:
        import pydiffvg  # noqa: F401
    except Exception:     # ImportError, or a broken build that fails while loading its extension
        return False
    return True


def render_diffvg(scene: Scene, *, samples: int = 2, background: bool = True, seed: int = 0) -> torch.Tensor:
    """(H, W, 3) (or straight-alpha (H, W, 4) with background=False), differentiable through pydiffvg.

    samples: DiffVG's s x s stratified samples per pixel (its anti-aliasing). Raises RuntimeError when
    pydiffvg is not importable.
    """
    try:
        import pydiffvg
    except Exception as err:
        raise RuntimeError("pydiffvg is not installed (it is optional; build it from source to compare)") from err
    dev = scene.background.device
    pydiffvg.set_use_gpu(dev.type == "cuda")
    shapes, groups = [], []
    for s in scene.shapes:
        ids = []
        if s.kind == "square":
            shapes.append(pydiffvg.Rect(p_min=s.points.min(0).values, p_max=s.points.max(0).values))
            ids.append(len(shapes) - 1)
        else:
            start = 0
            for count in s.segment_counts():
                n = 3 * count if s.closed else 3 * count + 1
                width = s.stroke_width.reshape(1) if s.kind == "stroke" or float(s.stroke[3]) > 0 else \
                    torch.zeros(1, device=dev)
                shapes.append(pydiffvg.Path(num_control_points=torch.full((count,), 2, dtype=torch.int32),
                                            points=s.points[start:start + n].contiguous(), is_closed=s.closed,
                                            stroke_width=width))
                ids.append(len(shapes) - 1)
                start += n
        fill = s.fill if s.kind != "stroke" else None
        stroke = s.stroke if s.kind != "square" and (s.kind == "stroke" or float(s.stroke[3]) > 0) else None
        groups.append(pydiffvg.ShapeGroup(shape_ids=torch.tensor(ids), fill_color=fill, stroke_color=stroke,
                                          use_even_odd_rule=s.fill_rule == "evenodd"))
    args = pydiffvg.RenderFunction.serialize_scene(scene.width, scene.height, shapes, groups)
    img = pydiffvg.RenderFunction.apply(scene.width, scene.height, samples, samples, seed, None, *args)
    if not background:
        return img
    bg = scene.background
    bg = bg[:3] * bg[3] + (1 - bg[3])
    return img[..., :3] * img[..., 3:4] + bg * (1 - img[..., 3:4])
