"""Cameras around a mesh, rasterized once, and a texture rendered through them differentiably.

`rasterize` runs once per camera set and keeps, per pixel, the UV the nearest triangle puts there, whether any
triangle covers it, and a fixed Lambert shade; after that `render` is only a `grid_sample` of the texture, so
the texture fit (`fit_texture`) and an edit loop pay for geometry once, not every step.

The rasterizer: a z-buffer in numpy over each triangle's pixel bounding box. Every (triangle, pixel-in-its-box)
pair is laid out in one flat array, tested by edge functions, and the nearest hit per pixel chosen by one sort
on (pixel, depth). No compiler is needed (no nvdiffrast, no CUDA, no C extension to build), it runs on any CPU,
and the work is the sum of the triangles' box areas: a 20k-triangle mesh at 256 px is a few hundred thousand
pairs a view. Triangles are processed in chunks of at most MAX_PAIRS pairs so a mesh of huge triangles costs
time, not memory, and a call that would test more than MAX_TOTAL_PAIRS pairs is refused before any. UVs are
interpolated perspective-correctly (barycentrics divided by depth). Measured on 2 CPU cores (benchmarks/mesh_raster):
20,480 triangles, 8 views at 256 px in about 0.5 s. trimesh's ray casting was the other candidate without a
compiler; without embree it needs the rtree package (not a dependency here) and casts ray by ray.

`fit_texture` fits a change to the source texture as a pyramid (`fit_levels`) whose finest layer has about the
views' own resolution (the mipmap rule): views of 128 px look up only some texels of a 512 px texture, each view
its own, and a change fitted texel by texel left the texels between as they were (a speckled edit) and met views
that disagree each on texels of its own (a patchwork); the pyramid's coarse layers carry the change across
texels no pixel looks up.

The shade is Lambert from the face normal (flat, so shape reads) under a light fixed to the camera, above and
to the left of the viewer: every view lights what it sees, so no face is dark in every view.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from ..core.errors import InputError

if TYPE_CHECKING:  # io bakes atlases with this module's rasterizer, so the import runs one way only
    from .form import Mesh

MAX_PAIRS = 4_000_000  # (triangle, pixel) pairs held at once
MAX_TOTAL_PAIRS = 32_000_000  # pairs tested in one `rasterize` call: about 25 s on 2 CPU cores, the worst accepted
AMBIENT = 0.35
LIGHT = np.array([-0.4, 0.5, -1.0])  # toward the light, camera space (x right, y up, z forward): behind, above-left


@dataclass
class Camera:
    """A pinhole look-at camera. eye, target, up: (3,) world; fov: vertical field of view in degrees."""

    eye: np.ndarray
    target: np.ndarray
    up: np.ndarray
    fov: float = 40.0

    def basis(self) -> np.ndarray:
        """(3, 3) rows: right, up, forward, world directions."""
        forward = self.target - self.eye
        forward = forward / np.linalg.norm(forward)
        right = np.cross(forward, self.up)
        if np.linalg.norm(right) < 1e-8:  # looking along `up`: any right will do
            right = np.cross(forward, np.array([1.0, 0.0, 0.0]))
        right = right / np.linalg.norm(right)
        return np.stack([right, np.cross(right, forward), forward])


@dataclass
class Raster:
    """Per-view, per-pixel geometry. uv: (N, H, W, 2) float32 in [0, 1] (v up); mask: (N, H, W) bool, covered;
    shade: (N, H, W) float32 in [0, 1]; face: (N, H, W) int64, the triangle seen, -1 where none; atlas: (F, 3, 2)
    float32, each triangle's corner UVs (where `visible_texels` finds the texels of the triangles seen)."""

    uv: torch.Tensor
    mask: torch.Tensor
    shade: torch.Tensor
    face: torch.Tensor
    atlas: torch.Tensor | None = None

    @property
    def size(self) -> tuple[int, int]:
        return tuple(self.mask.shape[1:])

    def views(self, index) -> "Raster":
        """The raster of some of its views (an index, a slice or a list of view numbers)."""
        return Raster(self.uv[index], self.mask[index], self.shade[index], self.face[index], self.atlas)

    def to(self, device) -> "Raster":
        """This raster on `device` (render moves it per call otherwise: a copy every step of a fit)."""
        return Raster(*(None if t is None else t.to(device) for t in (self.uv, self.mask, self.shade, self.face,
                                                                        self.atlas)))


def orbit(mesh: Mesh, n: int, elevation: float = 20.0, fov: float = 40.0, start: float = 0.0, swing: float = 0.0
          ) -> list[Camera]:
    """`n` cameras evenly around the mesh's bounding box, `elevation` degrees above its centre, the first at
    azimuth `start` degrees (on +z, looking toward -z, at 0), far enough that the box's bounding sphere fits.
    swing: the cameras alternate `swing` degrees below and above `elevation` (the first below), so a few views
    see both the tops and the lower sides; elevations are kept within 85 degrees of the horizon."""
    lo, hi = mesh.vertices.min(axis=0), mesh.vertices.max(axis=0)
    centre = (lo + hi) / 2.0
    radius = max(float(np.linalg.norm(hi - lo)) / 2.0, 1e-6)
    distance = 1.1 * radius / math.sin(math.radians(fov) / 2.0)
    up = np.array([0.0, 1.0, 0.0])
    cameras = []
    for k in range(n):
        el = math.radians(min(85.0, max(-85.0, elevation + (swing if k % 2 else -swing))))
        az = math.radians(start + 360.0 * k / n)
        direction = np.array([math.sin(az) * math.cos(el), math.sin(el), math.cos(az) * math.cos(el)])
        cameras.append(Camera(centre + distance * direction, centre.astype(np.float64), up, fov))
    return cameras


def project(camera: Camera, points: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """World points (P, 3) to pixels (P, 2) (x right, y down, pixel centres at +0.5) and depth (P,) along the view."""
    cam = (points - camera.eye) @ camera.basis().T
    focal = (height / 2.0) / math.tan(math.radians(camera.fov) / 2.0)
    z = cam[:, 2]
    safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
    pix = np.stack([width / 2.0 + focal * cam[:, 0] / safe, height / 2.0 - focal * cam[:, 1] / safe], axis=1)
    return pix, z


def _boxes(pix: np.ndarray, height: int, width: int):
    """Each triangle's pixel box clipped to the image: x0, y0, box width, box height, signed area (pixels^2),
    and the pairs it costs (box pixels; 0 for a degenerate triangle)."""
    x0 = np.clip(np.floor(pix[..., 0].min(1) - 0.5), 0, width).astype(np.int64)
    x1 = np.clip(np.ceil(pix[..., 0].max(1) - 0.5), -1, width - 1).astype(np.int64)
    y0 = np.clip(np.floor(pix[..., 1].min(1) - 0.5), 0, height).astype(np.int64)
    y1 = np.clip(np.ceil(pix[..., 1].max(1) - 0.5), -1, height - 1).astype(np.int64)
    bw, bh = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    area = ((pix[:, 1, 0] - pix[:, 0, 0]) * (pix[:, 2, 1] - pix[:, 0, 1])
            - (pix[:, 2, 0] - pix[:, 0, 0]) * (pix[:, 1, 1] - pix[:, 0, 1]))
    return x0, y0, bw, bh, area, np.where(np.abs(area) > 1e-12, bw * bh, 0)


def rasterize_triangles(pix: np.ndarray, depth: np.ndarray, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """The nearest triangle per pixel. pix: (F, 3, 2) corner pixels; depth: (F, 3) > 0.

    Returns face (H, W) int64 (-1 where none) and bary (H, W, 3) float32, perspective-correct barycentrics."""
    face_out = np.full(height * width, -1, np.int64)
    bary_out = np.zeros((height * width, 3), np.float32)
    best = np.full(height * width, np.inf)
    if len(pix) == 0:
        return face_out.reshape(height, width), bary_out.reshape(height, width, 3)
    x0, y0, bw, bh, area, counts = _boxes(pix, height, width)
    order = np.nonzero(counts)[0]
    ends = np.cumsum(counts[order])
    start = 0
    while start < len(order):
        # a chunk of triangles whose pairs fit MAX_PAIRS (at least one triangle)
        base = ends[start - 1] if start else 0
        stop = max(int(np.searchsorted(ends, base + MAX_PAIRS, side="right")), start + 1)
        tris = order[start:stop]
        start = stop
        c = counts[tris]
        tri = np.repeat(tris, c)
        local = np.arange(int(c.sum())) - np.repeat(np.cumsum(c) - c, c)
        px = x0[tri] + local % bw[tri]
        py = y0[tri] + local // bw[tri]
        cx, cy = px + 0.5, py + 0.5
        p = pix[tri]
        # edge functions: w_k is the signed area opposite corner k, normalized by the triangle's area
        w0 = ((p[:, 1, 0] - cx) * (p[:, 2, 1] - cy) - (p[:, 2, 0] - cx) * (p[:, 1, 1] - cy)) / area[tri]
        w1 = ((p[:, 2, 0] - cx) * (p[:, 0, 1] - cy) - (p[:, 0, 0] - cx) * (p[:, 2, 1] - cy)) / area[tri]
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-7) & (w1 >= -1e-7) & (w2 >= -1e-7)
        if not inside.any():
            continue
        tri, pid = tri[inside], (py * width + px)[inside]
        b = np.stack([w0[inside], w1[inside], w2[inside]], axis=1)
        inv = b / depth[tri]  # perspective: 1/z is linear in screen space
        z = 1.0 / inv.sum(1)
        first = np.lexsort((z, pid))
        pid, z, tri, inv = pid[first], z[first], tri[first], inv[first]
        keep = np.ones(len(pid), bool)
        keep[1:] = pid[1:] != pid[:-1]
        pid, z, tri, inv = pid[keep], z[keep], tri[keep], inv[keep]
        nearer = z < best[pid]
        pid = pid[nearer]
        best[pid] = z[nearer]
        face_out[pid] = tri[nearer]
        bary_out[pid] = inv[nearer] * z[nearer, None]
    return face_out.reshape(height, width), bary_out.reshape(height, width, 3)


def _projected(mesh: Mesh, cameras: list[Camera], height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per camera: the triangles' corner pixels (F, 3, 2) and depths (F, 3)."""
    out = []
    for cam in cameras:
        pix, z = project(cam, mesh.vertices.astype(np.float64), height, width)
        out.append((pix[mesh.faces], z[mesh.faces]))
    return out


def check_drawable(mesh: Mesh, cameras: list[Camera], size: int | tuple[int, int], near: float = 1e-3,
                   projected=None) -> int:
    """The pixel tests `rasterize` would make (the triangles' pixel boxes over all views), or an InputError of one
    sentence when they are over MAX_TOTAL_PAIRS: measured first, so a mesh of many screen-filling triangles is
    refused at once instead of rasterizing for an hour. Cheap (no pixel is tested): backends call it before any
    model loads, for every camera set they will draw."""
    height, width = (size, size) if isinstance(size, int) else size
    projected = projected if projected is not None else _projected(mesh, cameras, height, width)
    pairs = sum(int(_boxes(p[(z > near).all(1)], height, width)[-1].sum()) for p, z in projected)
    if pairs > MAX_TOTAL_PAIRS:
        named = f" {mesh.name}" if mesh.name else ""
        raise InputError(f"The mesh{named} is too heavy to draw: its triangles cover {pairs:,} pixel tests over "
                         f"{len(cameras)} views at {width}x{height}; at most {MAX_TOTAL_PAIRS:,} are allowed "
                         "(use fewer views, a smaller size, or a mesh with fewer large overlapping triangles).")
    return pairs


def rasterize(mesh: Mesh, cameras: list[Camera], size: int | tuple[int, int] = 256, near: float = 1e-3) -> Raster:
    """Rasterize `mesh` once per camera at `size` (pixels, or (H, W)). Triangles with a corner closer than
    `near` (or behind the camera) are dropped, not clipped: orbit cameras never come that close."""
    height, width = (size, size) if isinstance(size, int) else size
    projected = _projected(mesh, cameras, height, width)
    check_drawable(mesh, cameras, (height, width), near, projected)
    tri_world = mesh.vertices[mesh.faces].astype(np.float64)  # (F, 3, 3)
    normals = np.cross(tri_world[:, 1] - tri_world[:, 0], tri_world[:, 2] - tri_world[:, 0])
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-20)
    uvs, masks, shades, faces = [], [], [], []
    for cam, (tri_pix, tri_z) in zip(cameras, projected):
        front = (tri_z > near).all(1)
        idx = np.nonzero(front)[0]
        face, bary = rasterize_triangles(tri_pix[idx], tri_z[idx], height, width)
        hit = face >= 0
        face = np.where(hit, idx[np.maximum(face, 0)], -1)
        uv = np.einsum("hwk,hwkc->hwc", bary, mesh.uv[mesh.faces[np.maximum(face, 0)]])
        basis = cam.basis()
        n_cam = normals @ basis.T  # face normals in camera space; flip to face the viewer (both windings drawn)
        n_cam *= np.where(n_cam[:, 2:3] > 0, -1.0, 1.0)
        light = LIGHT / np.linalg.norm(LIGHT)  # toward the light
        lambert = np.clip(n_cam @ light, 0.0, 1.0)
        shade = AMBIENT + (1.0 - AMBIENT) * lambert[np.maximum(face, 0)]
        uvs.append(np.where(hit[..., None], uv, 0.0).astype(np.float32))
        masks.append(hit)
        shades.append(np.where(hit, shade, 0.0).astype(np.float32))
        faces.append(face)
    return Raster(torch.from_numpy(np.stack(uvs)), torch.from_numpy(np.stack(masks)),
                  torch.from_numpy(np.stack(shades)), torch.from_numpy(np.stack(faces)),
                  torch.from_numpy(mesh.uv[mesh.faces].astype(np.float32)))


def render(texture: torch.Tensor, raster: Raster, background: float | torch.Tensor = 1.0) -> torch.Tensor:
    """(N, 3, H, W) views of `texture` ((Ht, Wt, 3) in [0, 1]) through `raster`: bilinear texture lookup at each
    pixel's UV, times the shade, over `background` (a number, (3,) colour or (N, 3, H, W) images) where nothing
    is covered. Differentiable in `texture` (and in `background`)."""
    n, h, w = raster.uv.shape[:3]
    tex = texture.permute(2, 0, 1).unsqueeze(0)
    uv = raster.uv.to(texture.device, texture.dtype).reshape(1, n * h, w, 2)
    grid = torch.stack([uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0], dim=-1)  # v up; image row 0 at top
    # the views stacked into one tall grid over one texture: the backward then fills and sums one texture-sized
    # gradient, not one per view (an expanded batch of N made render + backward 2-3x slower on a CPU)
    sampled = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    sampled = sampled.reshape(3, n, h, w).transpose(0, 1)
    lit = sampled * raster.shade.to(texture.device, texture.dtype).unsqueeze(1)
    mask = raster.mask.to(texture.device).unsqueeze(1)
    bg = torch.as_tensor(background, dtype=texture.dtype, device=texture.device)
    if bg.dim() == 1:
        bg = bg.view(1, 3, 1, 1)
    return torch.where(mask, lit, bg.expand_as(lit))


def seen_texels(raster: Raster, shape: tuple[int, int]) -> torch.Tensor:
    """(Ht, Wt) bool: texels some covered pixel's bilinear lookup touches, i.e. where `render` has a gradient.

    Found from the covered pixels' lookups as `render`'s grid_sample makes them (its coordinates, border padding,
    a corner touched where its bilinear weight is not zero), not by a backward pass: that fills a float gradient of
    the texture's size (4096x4096: over a second a fit)."""
    height, width = shape
    uv = raster.uv[raster.mask]  # (P, 2)
    seen = torch.zeros(height * width, dtype=torch.bool, device=raster.uv.device)
    grid = torch.stack([uv[:, 0] * 2.0 - 1.0, 1.0 - uv[:, 1] * 2.0], dim=-1)  # as render makes it
    x = (((grid[:, 0] + 1) * width - 1) / 2).clamp(0, width - 1)
    y = (((grid[:, 1] + 1) * height - 1) / 2).clamp(0, height - 1)
    x0, y0 = x.floor(), y.floor()
    fx, fy = x - x0, y - y0
    x0, y0 = x0.long(), y0.long()
    for dy, wy in ((0, 1.0 - fy), (1, fy)):
        for dx, wx in ((0, 1.0 - fx), (1, fx)):
            hit = (wy > 0) & (wx > 0)
            seen[((y0 + dy) * width + x0 + dx)[hit]] = True
    return seen.view(height, width)


def visible_texels(raster: Raster, shape: tuple[int, int]) -> torch.Tensor:
    """(Ht, Wt) bool: the texels of every triangle some view shows (one pixel of it is enough), and those the
    lookups touch, grown by one texel for bilinear lookups at chart edges: what `fit_texture` may change.
    Without an atlas in the raster, `seen_texels`."""
    seen = seen_texels(raster, shape)
    if raster.atlas is None:
        return seen
    height, width = shape
    shown = torch.unique(raster.face[raster.face >= 0]).cpu().numpy()
    tri = raster.atlas.cpu().numpy()[shown].astype(np.float64)
    # texel centres at whole numbers (Pillow's convention), v up, row 0 at the top
    pix = np.stack([tri[..., 0] * width - 0.5, (1.0 - tri[..., 1]) * height - 0.5], axis=-1)
    # only coverage is needed, not the nearest triangle: Pillow fills each triangle in C, where `rasterize_triangles`
    # tests every texel of each triangle's box in numpy (4096x4096: about 18 s a fit, most of a run's time)
    cover = Image.new("1", (width, height))
    draw = ImageDraw.Draw(cover)
    for corners in pix.tolist():
        draw.polygon([tuple(c) for c in corners], fill=1)
    inside = torch.from_numpy(np.array(cover)).to(seen.device)
    del draw, cover  # each texture-sized mask is 16 MB at 4096x4096
    inside |= seen  # a sliver may cover no texel centre
    del seen
    return grown(inside)


def grown(mask: torch.Tensor, reach: int = 1) -> torch.Tensor:
    """(..., H, W) bool `mask` grown by `reach` pixels each way, diagonals included (a square dilation of side
    2 * reach + 1 over the last two dimensions), by shifted ORs of bools, one pixel a pass: a max-pool of it as
    float holds 16 bytes a texel (its float input and output and int64 indices: over 300 MB at 4096x4096) where
    this holds 2."""
    out = mask
    for _ in range(reach):
        rows = out.clone()
        rows[..., :, 1:] |= out[..., :, :-1]
        rows[..., :, :-1] |= out[..., :, 1:]
        out = rows.clone()
        out[..., 1:, :] |= rows[..., :-1, :]
        out[..., :-1, :] |= rows[..., 1:, :]
    return out


def texels_per_pixel(raster: Raster, shape: tuple[int, int]) -> float:
    """How many texels of a (Ht, Wt) texture one pixel step crosses, the median over covered pixels: the mipmap
    rule's rho, max(|d(uv)/dx|, |d(uv)/dy|) in texels, from neighbouring pixels on one triangle (any neighbours
    when no triangle spans two pixels)."""
    uv = raster.uv * torch.tensor([shape[1], shape[0]], dtype=raster.uv.dtype, device=raster.uv.device)
    face = torch.where(raster.mask, raster.face, -1)
    dx = (uv[:, :-1, 1:] - uv[:, :-1, :-1]).norm(dim=-1)
    dy = (uv[:, 1:, :-1] - uv[:, :-1, :-1]).norm(dim=-1)
    here = face[:, :-1, :-1]
    same = (here >= 0) & (face[:, :-1, 1:] == here) & (face[:, 1:, :-1] == here)
    if not bool(same.any()):
        same = (here >= 0) & (face[:, :-1, 1:] >= 0) & (face[:, 1:, :-1] >= 0)
    if not bool(same.any()):
        return 1.0
    return float(torch.maximum(dx, dy)[same].median())


def fit_levels(raster: Raster, shape: tuple[int, int], smallest: int = 4) -> list[tuple[int, int]]:
    """The texture sizes `fit_texture` fits a change at, finest first: halvings of `shape` from the one at which
    a pixel step of the views crosses about one texel (`texels_per_pixel`, the mipmap rule), down to `smallest`
    texels a side.

    Why not the texture's own size: views of 128 px cross 4 texels of a 512 px texture a pixel, so each view looks
    up only some of its texels, and different views different ones. A fit there met each view on texels of its own:
    the texels between kept the source (a speckled edit), and views that disagree (one tinted violet, one teal)
    were all met, each on its own texels, a patchwork that looked right only from the cameras fitted. At the views'
    own resolution every texel a view shows is seen by its pixels, and views that see one texel must agree on it."""
    rho = texels_per_pixel(raster, shape)
    skip = max(0, round(math.log2(rho))) if rho > 1.0 else 0
    levels = []
    height, width = shape
    for k in range(64):
        if k >= skip or min(height, width) <= smallest:
            levels.append((height, width))
        if min(height, width) <= smallest:
            return levels
        height, width = max(1, (height + 1) // 2), max(1, (width + 1) // 2)
    return levels


def fit_texture(targets: torch.Tensor, raster: Raster, init: torch.Tensor, steps: int = 30,
                ) -> tuple[torch.Tensor, float]:
    """The texture whose renders through `raster` best match `targets` ((N, 3, H, W) in [0, 1]) in least squares
    over covered pixels, and the residual: the RMS over covered pixels and channels of its renders against
    `targets`.

    What is fitted is a change to `init` ((Ht, Wt, 3) in [0, 1]), as a pyramid: one layer per size of
    `fit_levels(raster, init's size)`, each upsampled bilinearly to the next and summed. The render over a black
    background is linear in the texture, so the fit is linear least squares in the layers, solved by `steps`
    iterations of conjugate gradients on the normal equations (CGLS: one render and one backward each). Started
    from zero, CGLS moves toward the least-norm solution in the layers, which puts a change shared by neighbouring
    texels on the coarse layers: they carry it across the texels no pixel looks up, the finest carries the detail
    the views resolve, and the source's finer detail stays. 30 iterations reach the residuals 60-100 Adam steps
    did on the example house (tests/test_mesh.py's cases), 5-30x faster. The result is clamped to [0, 1], and only
    `visible_texels` change: the texels of triangles no view shows keep their `init` values."""
    targets = targets.to(init.device, init.dtype)
    # a 0/1 weight, not boolean indexing: indexing costs a nonzero() and a scatter every step
    weight = raster.mask.to(init.device, init.dtype).unsqueeze(1)
    shape = tuple(init.shape[:2])
    if not bool(raster.mask.any()):
        # no view shows the mesh (a flat one seen edge-on), so nothing changes; the pyramid would be the texture's
        # own size (`fit_levels` has no pixel step to go by), six of it held by CGLS: 1.2 GB at 4096x4096
        result = init.detach().clone()
        return result, residual(result, raster, targets)
    levels = fit_levels(raster, shape)

    def layers_change(layers: list[torch.Tensor]) -> torch.Tensor:
        """The change at the finest layer's size, (Hl, Wl, 3): the layers summed coarse to fine."""
        change = layers[-1]
        for layer in reversed(layers[:-1]):
            change = layer + F.interpolate(change, size=layer.shape[2:], mode="bilinear", align_corners=False)
        return change[0].permute(1, 2, 0)

    # A: layers -> covered pixels of the renders. The views look the finest layer up directly, not the texture
    # upsampled from it (a bilinear lookup of a bilinear upsampling: the same surface to within the finest layer's
    # curvature), so an iteration costs the layers' texels and the views' pixels, not the texture's: upsampling a
    # 4096x4096 texture's change and back twice an iteration was most of a run's time (2048x2048: 33 of 52 s)
    def forward(layers: list[torch.Tensor]) -> torch.Tensor:
        return render(layers_change(layers), raster, 0.0) * weight

    def adjoint(pixels: torch.Tensor) -> list[torch.Tensor]:  # A^T, by autograd through the linear forward
        probe = [torch.zeros(1, 3, h, w, device=init.device, dtype=init.dtype, requires_grad=True)
                 for h, w in levels]
        with torch.enable_grad():  # also when called from a loop that runs under no_grad
            return list(torch.autograd.grad(forward(probe), probe, pixels))

    def dot(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
        return float(sum((x * y).sum() for x, y in zip(a, b)))

    with torch.no_grad():
        layers = [torch.zeros(1, 3, h, w, device=init.device, dtype=init.dtype) for h, w in levels]
        rest = (targets - render(init.detach(), raster, 0.0)) * weight  # what the change must still explain
        s = adjoint(rest)
        p, gamma = [x.clone() for x in s], dot(s, s)
        floor = gamma * 1e-12
        for _ in range(steps):
            if gamma <= floor or gamma == 0.0:  # converged (or nothing to fit)
                break
            q = forward(p)
            alpha = gamma / max(float((q * q).sum()), 1e-30)
            for layer, d in zip(layers, p):
                layer.add_(d, alpha=alpha)
            rest.sub_(q, alpha=alpha)
            s = adjoint(rest)
            gamma, previous = dot(s, s), gamma
            p = [x + (gamma / previous) * d for x, d in zip(s, p)]
        visible = visible_texels(raster, shape).to(init.device)
        # in place, channels first as the change is made: each texture-sized temporary is 200 MB at 4096x4096,
        # beside `init` and the caller's copies, and a `where` written into the (Ht, Wt, 3) view of channels-first
        # memory goes through a temporary of its own
        result = upsampled(layers_change(layers), shape)
        source = init.detach().permute(2, 0, 1)
        result.add_(source).clamp_(0.0, 1.0)
        torch.where(visible, result, source, out=result)
        result = result.permute(1, 2, 0)
    return result, residual(result, raster, targets)


def upsampled(change: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """(3, Ht, Wt): `change` ((Hl, Wl, 3)) upsampled bilinearly to `shape` (Ht, Wt) (align_corners=False, as
    F.interpolate), or its channels-first view when it has that size already.

    One channel at a time, into one tensor: torch (2.14, CPU) upsampling the three at once holds a buffer of the
    output's size of its own (192 MiB at 4096x4096) beside the output; one channel needs none. The two sum in
    another order: they differ by float rounding (at most 2e-7 on a change in [-1, 1])."""
    chw = change.permute(2, 0, 1)
    if tuple(chw.shape[1:]) == tuple(shape):
        return chw
    out = torch.empty((1, chw.shape[0], *shape), dtype=chw.dtype, device=chw.device)
    for c in range(chw.shape[0]):
        torch.ops.aten.upsample_bilinear2d.out(chw[None, c:c + 1], list(shape), False, out=out[:, c:c + 1])
    return out[0]


def residual(texture: torch.Tensor, raster: Raster, targets: torch.Tensor) -> float:
    """The RMS, over covered pixels and channels, of `texture`'s renders through `raster` against `targets`."""
    with torch.no_grad():
        weight = raster.mask.to(texture.device, texture.dtype).unsqueeze(1)
        diff = (render(texture, raster, 0.0) - targets.to(texture.device, texture.dtype)) * weight
        return float((diff.pow(2).sum() / max(float(weight.sum()) * targets.shape[1], 1.0)).sqrt())


def held_out_residual(targets: torch.Tensor, raster: Raster, init: torch.Tensor, steps: int = 30) -> float:
    """How well one texture fitted to half the views predicts the other half: two fits (on the even views, on the
    odd ones), each measured on the views it did not see; the RMS over those views' covered pixels and channels.

    Why not the fit's own residual: a texture has more texels than views have pixels, and views that disagree
    (one tinted blue, its neighbour violet) are each met on the texels only they look up; the fit's residual stays
    low while the texture is a patchwork. Texels the other half never shows keep `init`, so a view's own side
    (a face only it sees) counts as unedited: compare methods on the same cameras."""
    n = targets.shape[0]
    if n < 2:
        raise ValueError("held_out_residual needs at least 2 views")
    total, pixels = 0.0, 0.0
    for fit_on, test_on in ((slice(0, n, 2), slice(1, n, 2)), (slice(1, n, 2), slice(0, n, 2))):
        texture, _ = fit_texture(targets[fit_on], raster.views(fit_on), init, steps=steps)
        test = raster.views(test_on)
        covered = float(test.mask.sum()) * targets.shape[1]
        total += residual(texture, test, targets[test_on]) ** 2 * covered
        pixels += covered
        del texture  # not held through the next fit: 200 MB at 4096x4096
    return (total / max(pixels, 1.0)) ** 0.5
