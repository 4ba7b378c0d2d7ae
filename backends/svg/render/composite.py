"""Painter's-order "over" compositing of coverage onto canvases: layer after layer with an analytic backward pass
(`Composite`, fastest on CPUs), or all layers at once from per-pixel log-transmittances (`composite_entries`, a
fixed number of kernels and no host sync: for GPUs)."""
from __future__ import annotations

import torch

from .flatten import ragged_arange


class Composite(torch.autograd.Function):
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


def composite_sorted(cov: torch.Tensor, colors: torch.Tensor, canvas0: torch.Tensor, plan) -> torch.Tensor:
    """The same "over" compositing as `Composite`, for all layers at once (`composite_entries` on the plan's
    entries). Pays on GPUs, where the per-layer loop of `Composite` is launch-bound; on CPUs the loop is
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
            local = ragged_arange(w * h)
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
    return composite_entries(cov[pos], li, pix, colors, canvas0)


def composite_entries(cov: torch.Tensor, layer: torch.Tensor, pix: torch.Tensor, colors: torch.Tensor,
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
    """The coverage of one plan entry: a tile's (h, w) view (its padding column left out), or its pixels' (n,)."""
    if lay[0] == "tile":
        _, li, k, off, x0, y0, w, h = lay
        return cov[off:off + h * (w + 1)].view(h, w + 1)[:, :w]
    _, li, k, off, n, pix = lay
    return cov[off:off + n]
