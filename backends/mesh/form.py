"""The one form every mesh leaves `load_mesh` in (`Mesh`: per-vertex UVs in [0, 1] and one RGB texture), and the
helpers that bring trimesh's materials and colours to it: a base colour factor multiplied into its texture, the
colours at each triangle corner for a mesh without a texture, and the geometry checked drawable."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..inputs.validate import fail

MAX_COORDINATE = 1e12  # model units; squared in float32 distances, 1e38 overflows


@dataclass
class Mesh:
    """A triangle mesh with one texture.

    vertices: (V, 3) float32, model units; faces: (F, 3) int64 into vertices; uv: (V, 2) float32 in [0, 1], v up
    (OpenGL/glTF-as-trimesh convention: v=0 is the texture's bottom row); texture: (H, W, 3) float32 in [0, 1],
    row 0 at the top (None where a run holds it apart, as csd_edit's mesh backends do). name: the file it came
    from, for messages."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: torch.Tensor
    name: str = ""


def factor_into_texture(visual) -> None:
    """A PBR material's base colour factor multiplied into its texture, and the factor dropped: trimesh's packing
    of several textured parts into one atlas (trimesh 5.2, `material.pack`) multiplies by the factor as stored,
    uint8 [255, 255, 255, 255], and wraps around (255 * 255 % 256 = 1: every texture near black)."""
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    factor = base_factor(visual)
    if image is None or factor is None:
        return
    material.baseColorFactor = None
    if (factor == 1.0).all():  # white: nothing to multiply (a 4096x4096 float copy is 200 MB)
        return
    rgb = np.asarray(image.convert("RGB"), np.float32) * factor
    material.baseColorTexture = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))



def check_geometry(vertices: np.ndarray, faces: np.ndarray, shown: str) -> np.ndarray:
    """`faces` without its triangles of no area (a corner repeated, as OBJ's 'f 0 0 0' makes, or three points on one
    line: nothing to draw, and a division by zero in the atlas and the rasterizer), or an InputError of one sentence
    for geometry nothing can be drawn of: vertices not finite or beyond MAX_COORDINATE (float32 sums overflow),
    all at one point (no size to frame), an index past the vertices, no triangle with an area."""
    if not np.isfinite(vertices).all():
        raise fail(f"The mesh {shown} has vertices that are not finite numbers.")
    if len(vertices) == 0 or np.abs(vertices).max() > MAX_COORDINATE:
        raise fail(f"The mesh {shown} has vertices beyond {MAX_COORDINATE:,.0f} units from its origin; scale it "
                   "down.")
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.min(initial=0) < 0 or faces.max(initial=0) >= len(vertices):
        raise fail(f"The mesh {shown} has a triangle naming a vertex it does not have "
                   f"(it has {len(vertices):,} vertices).")
    points = vertices.astype(np.float64)
    if not (points.max(axis=0) - points.min(axis=0)).any():
        raise fail(f"The mesh {shown} has all its vertices at one point; there is nothing to draw.")
    corners = points[faces]
    area = np.linalg.norm(np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]), axis=1)
    kept = faces[area > 0]
    if len(kept) == 0:
        raise fail(f"The mesh {shown} has no triangle with an area (each has its corners on one line or at one "
                   "point); there is nothing to draw.")
    return kept


def base_image(visual):
    material = getattr(visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "baseColorTexture", None)
    if image is None:
        image = getattr(material, "image", None)
    return image


def base_factor(visual):
    factor = getattr(getattr(visual, "material", None), "baseColorFactor", None)
    if factor is None:
        return None
    factor = np.asarray(factor)[:3]
    if factor.dtype.kind in "ui":  # trimesh keeps colours as uint8
        return factor.astype(np.float32) / 255.0
    return factor.astype(np.float32)


def corner_colors(tm, faces: np.ndarray) -> np.ndarray:
    """(F, 3, 3) RGB in [0, 1] at each triangle corner: vertex colours, face colours, or the base colour."""
    visual = tm.visual
    kind = getattr(visual, "kind", None)
    if kind == "vertex":
        rgb = np.asarray(visual.vertex_colors, np.float32)[:, :3] / 255.0
        return rgb[faces]
    if kind == "face":
        rgb = np.asarray(visual.face_colors, np.float32)[:, :3] / 255.0
        return np.repeat(rgb[:, None, :], 3, axis=1)
    base = np.full(3, 0.8, np.float32)
    material = getattr(visual, "material", None)
    factor = base_factor(visual)
    if factor is not None:
        base = factor
    elif material is not None and getattr(material, "diffuse", None) is not None:
        base = np.asarray(material.diffuse, np.float32)[:3] / 255.0
    return np.broadcast_to(base, (len(faces), 3, 3)).copy()

