"""Build examples/views3d/house.glb: a small painted house (walls with a door and windows, a tiled gable roof),
generated from formulas with no third-party material, so it is CC0 like the other generated examples.

    .venv/bin/python scripts/build_mesh_example.py [out.glb]

Each flat side of the house (a quad or a gable triangle) gets its own 128-px tile of a 512x512 atlas; its UVs
are its own planar coordinates stretched to fill the tile, and the tile is painted by what that side is.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from backends.mesh import Mesh, save_glb  # noqa: E402

ATLAS, TILE = 512, 128
W, D, H, RIDGE = 1.0, 0.8, 0.6, 1.0  # body width (x), depth (z), wall height, ridge height

PLASTER = np.array([0.93, 0.86, 0.70])
BRICK = np.array([0.72, 0.33, 0.22])
WOOD = np.array([0.42, 0.26, 0.14])
GLASS = np.array([0.55, 0.75, 0.90])
ROOF = np.array([0.62, 0.16, 0.12])
GROUND = np.array([0.45, 0.45, 0.45])


def sides():
    """(name, corners (k, 3)) for each flat side, corners counter-clockwise seen from outside."""
    x, z = W / 2, D / 2
    return [
        ("front", [(-x, 0, z), (x, 0, z), (x, H, z), (-x, H, z)]),
        ("back", [(x, 0, -z), (-x, 0, -z), (-x, H, -z), (x, H, -z)]),
        ("right", [(x, 0, z), (x, 0, -z), (x, H, -z), (x, H, z)]),
        ("left", [(-x, 0, -z), (-x, 0, z), (-x, H, z), (-x, H, -z)]),
        ("gable", [(x, H, z), (x, H, -z), (x, RIDGE, 0)]),
        ("gable", [(-x, H, -z), (-x, H, z), (-x, RIDGE, 0)]),
        ("roof", [(-x - 0.08, H - 0.05, z + 0.08), (x + 0.08, H - 0.05, z + 0.08), (x + 0.08, RIDGE, 0),
                  (-x - 0.08, RIDGE, 0)]),
        ("roof", [(x + 0.08, H - 0.05, -z - 0.08), (-x - 0.08, H - 0.05, -z - 0.08), (-x - 0.08, RIDGE, 0),
                  (x + 0.08, RIDGE, 0)]),
        ("floor", [(-x, 0, -z), (x, 0, -z), (x, 0, z), (-x, 0, z)]),
    ]


def paint(kind: str, size: int) -> np.ndarray:
    """A (size, size, 3) tile for a side, row 0 at the top of the side."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    tile = np.broadcast_to(PLASTER, (size, size, 3)).copy()
    if kind == "roof":
        rows = (yy * 10) % 1.0
        shift = (np.floor(yy * 10) % 2) * 0.5
        cols = (xx * 8 + shift) % 1.0
        tile[:] = ROOF * (0.8 + 0.2 * rows[..., None])
        tile[(rows < 0.08) | (cols < 0.05)] = ROOF * 0.55
        return tile
    if kind == "floor":
        tile[:] = GROUND
        return tile
    brick = (yy > 0.82) & ((((yy * 30) % 1.0) < 0.8) & ((xx * 12 + 0.5 * (np.floor(yy * 30) % 2)) % 1.0 < 0.9))
    tile[brick] = BRICK
    windows = []
    if kind == "front":
        tile[(xx > 0.42) & (xx < 0.58) & (yy > 0.45)] = WOOD  # door
        windows = [(0.12, 0.3), (0.7, 0.3)]
    elif kind in ("back", "right", "left"):
        windows = [(0.2, 0.3), (0.6, 0.3)]
    elif kind == "gable":
        windows = [(0.4, 0.55)]
    for wx, wy in windows:
        frame = (xx > wx - 0.02) & (xx < wx + 0.2) & (yy > wy - 0.02) & (yy < wy + 0.22)
        pane = (xx > wx) & (xx < wx + 0.18) & (yy > wy) & (yy < wy + 0.2)
        tile[frame] = WOOD
        tile[pane] = GLASS * (0.85 + 0.15 * (yy[pane] - wy) / 0.2)[..., None]
        cross = pane & ((np.abs(xx - wx - 0.09) < 0.008) | (np.abs(yy - wy - 0.1) < 0.008))
        tile[cross] = WOOD
    return tile


def build() -> Mesh:
    texture = np.zeros((ATLAS, ATLAS, 3))
    vertices, faces, uvs = [], [], []
    per_row = ATLAS // TILE
    for index, (kind, corners) in enumerate(sides()):
        corners = np.array(corners, float)
        # planar coordinates: a along the first edge, b up the side (perpendicular, in its plane)
        a = corners[1] - corners[0]
        a /= np.linalg.norm(a)
        normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
        b = np.cross(normal / np.linalg.norm(normal), a)
        flat = np.stack([(corners - corners[0]) @ a, (corners - corners[0]) @ b], 1)
        flat -= flat.min(0)
        flat /= flat.max(0)  # each side fills its tile (texel density differs a little between sides)
        col, row = index % per_row, index // per_row
        margin = 4 / ATLAS
        u = (col * TILE) / ATLAS + margin + flat[:, 0] * (TILE / ATLAS - 2 * margin)
        v = 1.0 - ((row + 1) * TILE) / ATLAS + margin + flat[:, 1] * (TILE / ATLAS - 2 * margin)
        base = len(vertices)
        vertices += corners.tolist()
        uvs += np.stack([u, v], 1).tolist()
        faces += [(base, base + k, base + k + 1) for k in range(1, len(corners) - 1)]
        texture[row * TILE:(row + 1) * TILE, col * TILE:(col + 1) * TILE] = paint(kind, TILE)
    return Mesh(np.array(vertices, np.float32), np.array(faces, np.int64), np.array(uvs, np.float32),
                torch.from_numpy(texture.astype(np.float32)), name="house.glb")


def main(out: str) -> None:
    mesh = build()
    with tempfile.TemporaryDirectory() as tmp:
        glb, _png = save_glb(mesh, mesh.texture, os.path.join(tmp, "house.glb"))
        shutil.copyfile(glb, out)
    print(f"{out}: {len(mesh.faces)} triangles, {os.path.getsize(out) / 1024:.0f} KB")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join("examples", "views3d", "house.glb"))
