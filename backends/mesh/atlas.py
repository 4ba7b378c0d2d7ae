"""A UV atlas for a mesh without a usable one (xatlas, run in a child process: it can crash) with its colours, or a
repeating texture, baked into one texture (`bake_atlas`)."""
from __future__ import annotations

import os
import tempfile

import numpy as np
import torch

from ..inputs.validate import fail
from .form import Mesh
from .bounds import BAKE_SIZE


def bake_atlas(vertices: np.ndarray, faces: np.ndarray, corner_colors: np.ndarray | None = None, *,
               corner_uv: np.ndarray | None = None, texture: np.ndarray | None = None, size: int = BAKE_SIZE,
               name: str = "") -> Mesh:
    """A UV atlas (xatlas) for a mesh without a usable one, and its colours baked into a (size, size) texture by
    rasterizing each triangle in UV space: `corner_colors` ((F, 3, 3) RGB in [0, 1]), or `texture` ((H, W, 3) in
    [0, 1]) looked up, repeating, at the old UVs `corner_uv` ((F, 3, 2), v up, any range). Texels between charts
    take the nearest chart colour (two dilation passes), so bilinear sampling at chart edges does not pull in
    black."""
    from .raster import rasterize_triangles

    vmapping, new_faces, uv = parametrize(vertices, faces, name)
    new_faces = new_faces.astype(np.int64)
    new_vertices = vertices[vmapping].astype(np.float32)
    uv = uv.astype(np.float32)
    # xatlas keeps the input's face order, so corner colours carry over face by face.
    pix = np.stack([uv[:, 0] * size, (1.0 - uv[:, 1]) * size], axis=1)[new_faces]  # (F, 3, 2) pixels, y down
    face, bary = rasterize_triangles(pix, np.ones((len(new_faces), 3), np.float32), size, size)
    baked = np.zeros((size, size, 3), np.float32)
    hit = face >= 0
    if corner_colors is not None:
        baked[hit] = np.einsum("pk,pkc->pc", bary[hit], corner_colors[face[hit]])
    else:
        baked[hit] = _sample_repeating(texture, np.einsum("pk,pkc->pc", bary[hit], corner_uv[face[hit]]))
    baked = _dilate(baked, hit, passes=2)
    return Mesh(new_vertices, new_faces, uv, torch.from_numpy(baked), name=name)


# xatlas runs in a child process: it crashed this one (a segmentation fault) on an 81,920-triangle icosphere,
# which would take the app and every run in it down; a child that dies is one sentence instead
_ATLAS_CHILD = """
import sys
import numpy as np
import xatlas
data = np.load(sys.argv[1])
vmapping, faces, uv = xatlas.parametrize(data["vertices"], data["faces"])
np.savez(sys.argv[2], vmapping=vmapping, faces=faces, uv=uv)
"""
ATLAS_TIMEOUT_S = 300.0  # xatlas on 2 CPU cores: 20,480 triangles 4 s, 81,920 in 16 separate spheres 14 s


def parametrize(vertices: np.ndarray, faces: np.ndarray, name: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xatlas.parametrize(vertices, faces) in a child process: (vmapping (V',) int, faces (F, 3) int64 into the
    new vertices, uv (V', 2) float32), or an InputError of one sentence when xatlas dies or takes too long."""
    import subprocess
    import sys

    named = name or "the mesh"
    with tempfile.TemporaryDirectory(prefix="distill-atlas-") as tmp:
        src, out = os.path.join(tmp, "in.npz"), os.path.join(tmp, "out.npz")
        np.savez(src, vertices=np.ascontiguousarray(vertices, np.float32),
                 faces=np.ascontiguousarray(faces, np.uint32))
        try:
            proc = subprocess.run([sys.executable, "-I", "-c", _ATLAS_CHILD, src, out], capture_output=True,
                                  timeout=ATLAS_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            raise fail(f"The mesh {named} has no UV map, and making one (xatlas) took over "
                       f"{ATLAS_TIMEOUT_S:g} s; upload it with a UV map.") from None
        if proc.returncode != 0 or not os.path.exists(out):
            how = f"signal {-proc.returncode}" if proc.returncode < 0 else f"exit status {proc.returncode}"
            raise fail(f"The mesh {named} has no UV map, and making one failed (xatlas ended with {how}); "
                       "upload it with a UV map.")
        with np.load(out) as data:
            return data["vmapping"].astype(np.int64), data["faces"].astype(np.int64), data["uv"].astype(np.float32)


def _sample_repeating(texture: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """Bilinear lookups of (H, W, 3) `texture` at (P, 2) UVs (v up), the texture repeating beyond [0, 1]."""
    height, width = texture.shape[:2]
    x = (uv[:, 0] % 1.0) * width - 0.5
    y = (1.0 - uv[:, 1] % 1.0) * height - 0.5
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0)[:, None], (y - y0)[:, None]
    at = lambda yy, xx: texture[yy % height, xx % width]  # noqa: E731
    return ((1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x0 + 1))
            + fy * ((1 - fx) * at(y0 + 1, x0) + fx * at(y0 + 1, x0 + 1))).astype(np.float32)


def _dilate(texture: np.ndarray, filled: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        grown = texture.copy()
        done = filled.copy()
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            src = np.roll(np.roll(texture, dy, 0), dx, 1)
            src_ok = np.roll(np.roll(filled, dy, 0), dx, 1)
            take = src_ok & ~done
            grown[take] = src[take]
            done |= take
        texture, filled = grown, done
    return texture
