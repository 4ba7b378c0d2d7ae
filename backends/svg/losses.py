"""Regularizers for optimizing vector scenes: self-intersection (Xing) loss, UDF pixel weights, saturation.

Pure functions over tensors (no scenes, no renderer), each testable on a handful of points.
"""
from __future__ import annotations

import numpy as np
import torch


def _cross(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """z-component of the 2D cross product, (..., 2) x (..., 2) -> (...)."""
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def xing_loss(cubics: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Self-intersection ("Xing") loss of LIVE (Ma et al. 2022), as VectorFusion uses it, per cubic segment.

    cubics: (..., S, 4, 2) control points A, B, C, D of S cubic segments (pixels). Returns (...) the mean over
    the S segments of D1 * ReLU(-D2) + (1 - D1) * ReLU(D2), where D1 = [AB x BC > 0] (which way the control
    polygon turns at B, no gradient) and D2 = (AB x CD) / (|AB| |CD|) (the sine of the angle between the
    first and last control legs). A segment whose control polygon keeps turning the same way (every segment
    of a convex path) costs 0; one whose last leg turns back against its first (the curve loops on itself)
    costs up to 1. Cross products, not dot products: the sign of the turn is what tells a loop.
    """
    a, b, c, d = cubics.unbind(-2)
    ab, bc, cd = b - a, c - b, d - c
    d1 = (_cross(ab, bc) > 0).to(cubics.dtype)
    d2 = _cross(ab, cd) / (ab.norm(dim=-1) * cd.norm(dim=-1) + eps)
    per_segment = d1 * torch.relu(-d2) + (1.0 - d1) * torch.relu(d2)
    return per_segment.mean(dim=-1)


def closed_area(points: torch.Tensor) -> torch.Tensor:
    """Unsigned shoelace area of closed control polygons, (..., P, 2) pixels -> (...) square pixels.

    The control polygon of a closed Bezier path is a cheap stand-in for the shape's area: enough to tell a
    path that collapsed to a sliver (VectorFusion's re-initialization test) from a live one.
    """
    x, y = points[..., 0], points[..., 1]
    xn, yn = torch.roll(x, -1, dims=-1), torch.roll(y, -1, dims=-1)
    return 0.5 * (x * yn - xn * y).sum(dim=-1).abs()


def udf_weights(mask: np.ndarray | torch.Tensor, tau: float = 10.0) -> torch.Tensor:
    """LIVE's unsigned-distance-field weighting: 1 on the outline of `mask`, falling linearly to 0 at `tau` px.

    mask: (H, W) bool or coverage in [0, 1] (thresholded at 0.5), e.g. the newly added paths. Returns (H, W)
    float32 weights relu(tau - d) / tau, d the distance (px) from a pixel to the mask's boundary, inside or
    outside. Multiplying the reconstruction error by them makes a new path fit the edges of the region it was
    placed on instead of only its average color. All zeros when the mask is empty or full (no boundary).
    """
    from scipy.ndimage import distance_transform_edt

    m = mask.detach().cpu().numpy() if isinstance(mask, torch.Tensor) else np.asarray(mask)
    m = m > 0.5
    if m.all() or not m.any():
        return torch.zeros(m.shape, dtype=torch.float32)
    # distance to the nearest pixel of the other side, minus half a pixel: the boundary runs between them
    d = np.where(m, distance_transform_edt(m), distance_transform_edt(~m)) - 0.5
    w = np.clip(tau - d, 0.0, None) / tau
    return torch.from_numpy(w.astype(np.float32))


def saturation_penalty(rgb: torch.Tensor) -> torch.Tensor:
    """L2 saturation penalty: sum over colors of (max(r, g, b) - min(r, g, b))^2.

    rgb: (..., 3) in [0, 1]. The chroma max - min is 0 for greys and 1 for pure hues; VectorFusion's pixel-art
    style adds this (weight 0.05) because SDS at high guidance drives colors to saturate.
    """
    chroma = rgb.amax(dim=-1) - rgb.amin(dim=-1)
    return chroma.pow(2).sum()
