"""The reference method (the CPU default): layers chosen on the host, one compositing plan entry per layer."""
from __future__ import annotations

import math

import torch

from ..scene import Scene
from .composite import Composite, composite_sorted
from .fill import fill_coverage
from .stroke import stroke_coverage


def render_reference(scenes: list[Scene], canvas0: torch.Tensor, dtype, composite: str) -> torch.Tensor:
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
        cov_f, t = fill_coverage(cub, lid, len(fills), [eo for _, eo in fills], Hs, Ws)
        fill_tiles = torch.stack([t.offset, t.x0, t.y0, t.w, t.h], 1).tolist()
        covs.append(cov_f)
        offset = cov_f.shape[0]
    if strokes:
        cub = torch.cat([c for c, _ in strokes]).to(dtype)
        lid = torch.repeat_interleave(torch.arange(len(strokes), device=dev),
                                      torch.tensor([len(c) for c, _ in strokes], device=dev))
        widths = torch.stack([w.reshape(()) for _, w in strokes]).to(dtype)
        s_layer, s_pix, cov_s = stroke_coverage(cub, lid, widths, Hs, Ws)
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
        return composite_sorted(cov, col, canvas0, plan)
    return Composite.apply(cov, col, canvas0, plan)
