"""Textured meshes in and out, bounded: `load_mesh` (.glb, .gltf with embedded data, or a .zip of .obj + .mtl +
texture) and `save_glb`.

Every bound is checked before trimesh parses anything heavy, on what trimesh will make of the file (`_checked`,
one place for every kind): the file's bytes here, then the reader of its kind: `gltf.checked_gltf` (a GLB's header
and JSON chunk before its binary chunk; the triangles and vertices of every primitive, strips and fans, times the
node paths that place each mesh; what trimesh copies and allocates for buffer views and accessors) or
`objzip.checked_zip` (member names: no '..', no absolute paths, no links; the files its .obj and .mtl name, read as
trimesh reads them; an OBJ's face lines after joining the lines trimesh joins, and its line count; sizes). Both
judge each texture's size and all textures' pixels together for every file Pillow opens, whatever its name, from
its header (`bounds`), never decoded first. trimesh then reads a zip through a resolver of its members only,
Pillow refuses any image over the limit while it does, and the triangles are counted again on what it parsed
before any copy is made. A refusal is an InputError of one sentence naming the file. `load_geometry` reads the
triangles alone (trimesh told to skip materials), with the texture's size from the headers: a run's work is
estimated, and refused, before any texture is decoded.

Every mesh leaves here in one form (`form.Mesh`): per-vertex UVs in [0, 1] and one RGB texture (at most 4096 px a
side). Several parts are joined, their textures packed into one atlas (by trimesh, each base colour factor
multiplied in first). A mesh without UVs gets an atlas (`atlas.bake_atlas`: xatlas in a child process, as it can
crash) with its vertex or face colours (or its material's base colour) baked in; a texture that repeats across
the surface (UVs beyond one tile) is drawn once into a new atlas the same way.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..core.errors import InputError
from ..core.files import atomic_path
from ..inputs.media import central_directory
from ..inputs.validate import fail, file_label, human_size
from .atlas import ATLAS_TIMEOUT_S, bake_atlas, parametrize
from .form import MAX_COORDINATE, Mesh, base_factor, base_image, check_geometry, corner_colors, factor_into_texture
from .gltf import MAX_ACCESSOR_BYTES, MAX_GLTF_ITEMS, MAX_VERTICES, checked_gltf
from .bounds import (BAKE_SIZE, FORMATS, HEADER_BYTES, MAX_BAKE_SIZE, MAX_MESH_BYTES, MAX_TEXTURE_PIXELS,
                     MAX_TEXTURE_SIDE, MAX_TEXTURES_PIXELS, MAX_TRIANGLES, PROGRAM_FORMATS, Checked, check_triangles,
                     texture_guard)
from .objzip import MAX_OBJ_LINES, MAX_ZIP_ENTRIES, MAX_ZIP_UNCOMPRESSED, TEXTURE_EXT, checked_zip

# what callers import from here: the entry points, and the bounds and helpers of the modules beside this one
__all__ = [
    "ATLAS_TIMEOUT_S", "BAKE_SIZE", "FORMATS", "HEADER_BYTES", "MAX_ACCESSOR_BYTES", "MAX_BAKE_SIZE", "MAX_COORDINATE",
    "MAX_GLTF_ITEMS", "MAX_MESH_BYTES", "MAX_OBJ_LINES", "MAX_TEXTURES_PIXELS", "MAX_TEXTURE_PIXELS",
    "MAX_TEXTURE_SIDE", "MAX_TRIANGLES", "MAX_VERTICES", "MAX_ZIP_ENTRIES", "MAX_ZIP_UNCOMPRESSED",
    "PROGRAM_FORMATS", "TEXTURE_EXT", "Geometry", "Mesh", "bake_atlas", "is_mesh_file", "load_geometry",
    "load_mesh", "mesh_texels", "parametrize", "save_glb",
]


def load_mesh(path: str | os.PathLike) -> Mesh:
    """Read a textured mesh from `path` (see the module docstring), bounded."""
    checked = _checked(os.fspath(path))
    return _finish(_trimesh_load(checked.source, checked.file_type, checked.shown, resolver=checked.resolver),
                   checked.shown)


def mesh_texels(path: str | os.PathLike) -> int:
    """The texels of the texture `load_mesh(path)` will give, from the headers (every check load_mesh makes
    before trimesh runs is made, and nothing is decoded): its textures' pixels together, at most one texture of
    MAX_TEXTURE_SIDE a side (an atlas of several is scaled to that), at least BAKE_SIZE a side (the atlas a mesh
    without a texture gets)."""
    return _checked(os.fspath(path)).texels


@dataclass
class Geometry:
    """A mesh's triangles, read without its textures (none is decoded): what cameras are placed around and a
    run's work is estimated from before the texture costs any memory.

    vertices: (V, 3) float32 and faces: (F, 3) int64 as `load_mesh` gives their positions (an atlas it makes
    splits vertices, never moves them); texels: `mesh_texels`; texture_size: (width, height) from the header when
    the file holds one texture, else None; name: the file, for messages."""

    vertices: np.ndarray
    faces: np.ndarray
    texels: int
    texture_size: tuple[int, int] | None
    name: str = ""


def load_geometry(path: str | os.PathLike) -> Geometry:
    """The triangles of `path` (every bound `load_mesh` checks from headers, the geometry checked as it checks
    it), with its texture's size from the headers: trimesh reads no material, so no texture is decoded."""
    checked = _checked(os.fspath(path))
    tm = _trimesh_load(checked.source, checked.file_type, checked.shown, resolver=checked.resolver,
                       skip_materials=True)
    vertices = np.asarray(tm.vertices, np.float32)
    faces = check_geometry(vertices, np.asarray(tm.faces, np.int64), checked.shown)
    size = checked.sizes[0] if len(checked.sizes) == 1 else None
    return Geometry(vertices, faces, checked.texels, size, checked.shown)


def is_mesh_file(path: str | os.PathLike) -> bool:
    """Whether `path` looks like a mesh this module reads (a .glb or .gltf by name or content, a zip holding an
    .obj), so that a method taking images can name the one that takes a mesh. Nothing beyond a zip's names is
    read."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as fh:
            if fh.read(4) == b"glTF" or os.path.splitext(path)[1].lower() in (".glb", ".gltf"):
                return True
            count, _cd_size = central_directory(fh, file_label(path))
            if count > MAX_ZIP_ENTRIES:
                return False
            with zipfile.ZipFile(fh) as zf:
                return any(name.lower().endswith(".obj") for name in zf.namelist())
    except (OSError, InputError, zipfile.BadZipFile, ValueError):
        return False


def _checked(path: str) -> Checked:
    shown = file_label(path)
    try:
        st = os.stat(path)
    except OSError:
        raise fail(f"The mesh file {shown} cannot be read.") from None
    if not stat.S_ISREG(st.st_mode):
        raise fail(f"The mesh file {shown} is not a regular file.")
    if st.st_size > MAX_MESH_BYTES:
        raise fail(f"The mesh file {shown} is {human_size(st.st_size)}; "
                   f"at most {human_size(MAX_MESH_BYTES)} is allowed.")
    if st.st_size == 0:
        raise fail(f"The mesh file {shown} is empty (0 bytes).")
    ext = os.path.splitext(path)[1].lower()
    with open(path, "rb") as fh:
        head = fh.read(4)
    if ext == ".zip" or head == b"PK\x03\x04":
        return checked_zip(path, shown)
    if ext not in (".glb", ".gltf"):
        raise fail(f"The file {shown} is not a mesh this app reads; upload {FORMATS}.")
    return checked_gltf(path, st.st_size, shown, glb=head == b"glTF" or ext == ".glb")


def save_glb(mesh: Mesh, texture: torch.Tensor, path: str | os.PathLike) -> tuple[str, str]:
    """Write `mesh`'s geometry with `texture` ((H, W, 3) float in [0, 1]) as a GLB at `path`, and the texture
    as a PNG beside it (same name, .png). Returns (glb path, png path)."""
    import trimesh

    path = os.fspath(path)
    image = Image.fromarray(_to_uint8(texture))
    # white base factor: trimesh's default material would multiply the texture by its grey diffuse colour
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=image, baseColorFactor=[255, 255, 255, 255],
                                                   metallicFactor=0.0, roughnessFactor=1.0)
    visual = trimesh.visual.TextureVisuals(uv=mesh.uv, material=material)
    tm = trimesh.Trimesh(vertices=mesh.vertices, faces=mesh.faces, visual=visual, process=False)
    png = os.path.splitext(path)[0] + ".png"
    with atomic_path(path) as tmp:  # an interrupted run leaves no file that looks finished
        tm.export(tmp, file_type="glb")
    with atomic_path(png) as tmp:
        image.save(tmp)
    return path, png


UINT8_BAND = 256  # rows of a texture made 8-bit at a time


def _to_uint8(texture: torch.Tensor) -> np.ndarray:
    # a band of rows at a time, scaled in place on clamp's copy of it: a float copy of a whole 4096x4096 texture
    # is 200 MB, a band of 256 rows 12 MB
    texture = texture.detach()
    out = torch.empty(tuple(texture.shape), dtype=torch.uint8)
    for start in range(0, texture.shape[0], UINT8_BAND):
        band = texture[start : start + UINT8_BAND].float().clamp(0, 1).mul_(255.0).add_(0.5)
        out[start : start + UINT8_BAND] = band.to(torch.uint8).cpu()
    return out.numpy()


# --- into one form ------------------------------------------------------------------------------------------


def _trimesh_load(source, file_type: str, shown: str, resolver=None, skip_materials: bool = False):
    import trimesh

    try:
        with texture_guard():
            loaded = trimesh.load(source, file_type=file_type, force="scene", process=False, resolver=resolver,
                                  skip_materials=skip_materials)
            # what trimesh made, counted before `dump` copies each mesh once per node that places it
            check_triangles(_placed_triangles(loaded), shown)
            parts = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
            for part in parts:
                factor_into_texture(part.visual)
            loaded = parts[0] if len(parts) == 1 else trimesh.util.concatenate(parts) if parts else None
    except InputError:
        raise
    except Exception:
        raise fail(f"The file {shown} could not be read as a mesh; upload {FORMATS}.") from None
    if not isinstance(loaded, trimesh.Trimesh) or len(loaded.faces) == 0:
        raise fail(f"The file {shown} holds no triangles; upload {FORMATS}.")
    return loaded


def _placed_triangles(scene) -> int:
    """The triangles of a trimesh Scene, each mesh counted once per node that places it (what `dump` makes)."""
    total = 0
    for node in scene.graph.nodes_geometry:
        _transform, name = scene.graph[node]
        faces = getattr(scene.geometry.get(name), "faces", None)
        total += 0 if faces is None else len(faces)
    return total


def _finish(tm, shown: str) -> Mesh:
    """trimesh's mesh as a `Mesh`: its UVs and texture when it has both, else an atlas with its colours baked."""
    vertices = np.asarray(tm.vertices, np.float32)
    faces = check_geometry(vertices, np.asarray(tm.faces, np.int64), shown)
    visual = tm.visual
    uv = getattr(visual, "uv", None)
    image = base_image(visual)
    if uv is not None and len(uv) == len(vertices) and image is not None:
        # one float copy, scaled in place: a 4096x4096 texture is 200 MB as float32
        texture = torch.from_numpy(np.array(image.convert("RGB"))).float().div_(255.0)
        factor = base_factor(visual)
        if factor is not None and not (factor == 1.0).all():
            texture.mul_(torch.from_numpy(factor))
        if max(texture.shape[:2]) > MAX_TEXTURE_SIDE:  # several textures packed into one atlas
            scale = MAX_TEXTURE_SIDE / max(texture.shape[:2])
            size = [max(1, round(n * scale)) for n in texture.shape[:2]]
            texture = torch.nn.functional.interpolate(texture.permute(2, 0, 1)[None], size=size, mode="area")
            texture = texture[0].permute(1, 2, 0).contiguous()
        uv = np.asarray(uv, np.float32)
        tile = np.floor(uv.min(axis=0))
        if (np.floor(uv.max(axis=0) - 1e-6) == tile).all():  # all in one tile (not always [0, 1]): moved there
            return Mesh(vertices, faces, np.clip(uv - tile, 0.0, 1.0).astype(np.float32), texture, name=shown)
        # a texture repeated across the surface (glTF's default wrap) or a chart across a tile's edge: drawn once
        # into a new atlas, as one lookup per texel cannot repeat a texture
        side = min(MAX_BAKE_SIZE, max(BAKE_SIZE, *texture.shape[:2]))
        return bake_atlas(vertices, faces, corner_uv=uv[faces], texture=texture.numpy(), size=side, name=shown)
    return bake_atlas(vertices, faces, corner_colors(tm, faces), name=shown)
