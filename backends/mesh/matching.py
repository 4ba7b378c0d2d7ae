"""Which pixels of different views of one mesh show the same point of its surface.

CSD-Edit shares each particle's score with the others cell by cell (`engine.csd_grad`): frames of a clip and
windows of a panorama show nearly the same thing at the same place. Views of a mesh 45 degrees apart do not: the
same pixel shows another part of the surface, or the backdrop beside it. Shared by place, a neighbour's score for
its backdrop (white turning night blue) landed on a view's walls, and the edited views carried light ghosts of
their neighbours' outlines into the texture. `correspondence` finds, for each pixel of each view, the pixel of
every other view that shows the same surface point (each pixel's point on its triangle, projected into the other
camera, kept only where that camera sees that point and not something in front of it); the backdrop, which has
no geometry, still corresponds place by place.

Cells near a view's silhouette share with no other view. An edit that reads a neighbourhood (a watercolour's blur,
a VAE's receptive field) makes a backdrop cell beside the mesh take some of the mesh's colour, and a surface cell
beside the backdrop some of the backdrop's. Shared by place, such a cell of view j drew j's outline into view i's
even backdrop; shared by surface point, into i's walls: a textured cube edited to watercolour showed its neighbours'
outlines as ghost lines. Those cells keep their own score (the kernel's whole weight), as the per-view baseline's.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from .form import Mesh
from .raster import Camera, Raster, grown, project

SILHOUETTE_MARGIN_PX = 2  # pixels either side of a silhouette whose cells share with no other view: the reach of
# the edits prior's widest edit (watercolour's 5x5 blur); a VAE's latent cell spans 8 pixels, so there one cell
SILHOUETTE_MARGIN = SILHOUETTE_MARGIN_PX  # in cells, for latents that are pixels


def silhouette_margin(latent_scale: int) -> int:
    """The cells either side of a silhouette that share with no other view, for latents of `latent_scale` pixels
    a cell: SILHOUETTE_MARGIN_PX in cells, at least one."""
    return max(1, math.ceil(SILHOUETTE_MARGIN_PX / latent_scale))


MATCH_TOLERANCE = 1.5  # pixel footprints two views' points may be apart and still be "the same" (measured on the
# example house: 1.5 matches 99 % of the pixels 2 does between neighbouring views, 0.75 only 84 %)


def surface_points(mesh: Mesh, camera: Camera, face: np.ndarray) -> np.ndarray:
    """(H, W, 3) float64 world points each pixel shows: its centre's ray met with the plane of the triangle `face`
    ((H, W) int, -1 where none: NaN there) records."""
    h, w = face.shape
    basis = camera.basis()
    focal = (h / 2.0) / math.tan(math.radians(camera.fov) / 2.0)
    ys, xs = np.mgrid[0:h, 0:w] + 0.5
    rays = np.stack([(xs - w / 2.0) / focal, (h / 2.0 - ys) / focal, np.ones_like(xs)], axis=-1) @ basis
    tri = mesh.vertices[mesh.faces[np.maximum(face, 0)]].astype(np.float64)  # (H, W, 3, 3)
    normal = np.cross(tri[..., 1, :] - tri[..., 0, :], tri[..., 2, :] - tri[..., 0, :])
    along = (normal * rays).sum(-1)
    t = (normal * (tri[..., 0, :] - camera.eye)).sum(-1) / np.where(np.abs(along) < 1e-12, 1e-12, along)
    points = camera.eye + t[..., None] * rays
    return np.where((face >= 0)[..., None], points, np.nan)


def view_points(mesh: Mesh, cameras: Sequence[Camera], raster: Raster) -> np.ndarray:
    """(N, H*W, 3) the world point each pixel of each view shows (`surface_points`), NaN where none."""
    face = raster.face.cpu().numpy()
    return np.stack([surface_points(mesh, cam, f).reshape(-1, 3) for cam, f in zip(cameras, face)])


def matches(points: np.ndarray, cameras: Sequence[Camera], raster: Raster, a: int, b: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Pixels of views a and b that show the same surface point: (flat indices into view a's H*W, into view b's),
    for every covered pixel of b whose point a sees too (its point projected into a lands on a covered pixel whose
    own point is within MATCH_TOLERANCE pixel footprints of it). points: `view_points` of the views."""
    h, w = raster.size
    seen_b = np.nonzero(~np.isnan(points[b, :, 0]))[0]
    pix, depth = project(cameras[a], points[b, seen_b], h, w)
    col, row = np.floor(pix[:, 0]).astype(np.int64), np.floor(pix[:, 1]).astype(np.int64)
    inside = (depth > 0) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
    at_a = np.where(inside, row * w + col, 0)
    footprint = depth * 2.0 * math.tan(math.radians(cameras[a].fov) / 2.0) / h
    with np.errstate(invalid="ignore"):  # NaN where a sees nothing there: never the same point
        same = inside & (np.linalg.norm(points[a, at_a] - points[b, seen_b], axis=-1) <= MATCH_TOLERANCE * footprint)
    return at_a[same], seen_b[same]


def near_silhouette(mask: torch.Tensor, margin: int = SILHOUETTE_MARGIN) -> torch.Tensor:
    """(N, H, W) bool covered -> (N, H*W) bool: the pixels with both covered and backdrop pixels within `margin`
    pixels (a square neighbourhood), on either side of a silhouette. margin 0: none."""
    n = mask.shape[0]
    if margin <= 0:
        return torch.zeros(n, mask[0].numel(), dtype=torch.bool)
    covered = mask.cpu()
    return (grown(covered, margin) & grown(~covered, margin)).reshape(n, -1)


def correspondence(mesh: Mesh, cameras: Sequence[Camera], raster: Raster, margin: int = SILHOUETTE_MARGIN
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Where each view's pixels are in every other view, for CSD's shared scores (`engine.csd_grad`): (index,
    valid), (N, N, H*W) int64 and bool, index[j, i, p] the pixel of view j that shows what pixel p of view i
    shows, valid where there is one: the same surface point (`matches`), or for a pixel of the backdrop, the same
    pixel of view j when that too is backdrop (the backdrop has no geometry; it is what the views share by place).
    A pixel within `margin` of its view's silhouette (`near_silhouette`) corresponds to none of another view's,
    nor any other view's to it. index[i, i] is every pixel itself."""
    n = len(cameras)
    hw = raster.size[0] * raster.size[1]
    points = view_points(mesh, cameras, raster)
    backdrop = ~raster.mask.reshape(n, hw).cpu()
    edge = near_silhouette(raster.mask, margin)
    index = torch.arange(hw).repeat(n, n, 1)
    shared = backdrop & ~edge
    valid = shared[:, None, :] & shared[None, :, :]  # valid[j, i]: backdrop in both, away from both silhouettes
    for i in range(n):
        valid[i, i] = True
        for j in range(n):
            if j != i:
                at_j, at_i = (torch.from_numpy(k) for k in matches(points, cameras, raster, j, i))
                keep = ~edge[i, at_i] & ~edge[j, at_j]
                index[j, i, at_i[keep]] = at_j[keep]
                valid[j, i, at_i[keep]] = True
    return index, valid

