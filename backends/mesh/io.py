"""Textured meshes in and out, bounded: `load_mesh` (.glb, .gltf with embedded data, or a .zip of .obj + .mtl +
texture) and `save_glb`.

Every bound is checked from headers before trimesh parses anything heavy, on what trimesh will make of the file
(`_checked`, one place for every kind): the file's bytes; the triangles (a glTF's accessor counts of triangles,
strips and fans, times the node paths that place each mesh; an OBJ's face lines after joining the lines trimesh
joins, and its line count); each texture's size and all textures' pixels together, for every file Pillow opens
whatever its name (from the headers, never decoded first; a zip member's from its first bytes, before it is
unpacked whole); and, for a zip, its member names (no '..', no absolute
paths, no links), the files its .obj and .mtl name (read as trimesh reads them), and sizes. trimesh then reads a
zip through a resolver of its members only, Pillow refuses any image over the limit while it does, and the
triangles are counted again on what it parsed before any copy is made. A refusal is an InputError of one
sentence naming the file. `load_geometry` reads the triangles alone (trimesh told to skip materials), with the
texture's size from the headers: a run's work is estimated, and refused, before any texture is decoded.

Every mesh leaves here in one form: per-vertex UVs in [0, 1] and one RGB texture (at most 4096 px a side).
Several parts are joined, their textures packed into one atlas (by trimesh, each base colour factor multiplied
in first). A mesh without UVs gets an atlas from xatlas (run in a child process: it can crash) with its vertex
or face colours (or its material's base colour) baked in; a texture that repeats across the surface (UVs beyond
one tile) is drawn once into a new atlas the same way.
"""
from __future__ import annotations

import base64
import binascii
import contextlib
import io
import json
import os
import stat
import struct
import tempfile
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import InputError
from ..files import atomic_path
from ..media import central_directory, is_archiver_junk, pillow_pixel_limit
from ..validate import MB, fail, file_label, human_size, quote

MAX_MESH_BYTES = 50 * MB
MAX_TRIANGLES = 200_000
MAX_TEXTURE_SIDE = 4096
MAX_TEXTURE_PIXELS = MAX_TEXTURE_SIDE * MAX_TEXTURE_SIDE
# all of a mesh's textures together: trimesh decodes every one and packs them into one atlas (which is then
# scaled to MAX_TEXTURE_SIDE); 4 textures of 4096x4096, about 270 MB decoded
MAX_TEXTURES_PIXELS = 4 * MAX_TEXTURE_PIXELS
MAX_COORDINATE = 1e12  # model units; squared in float32 distances, 1e38 overflows
MAX_ZIP_ENTRIES = 64
# an .obj's lines: its vertices, UVs and normals (at most 3 a triangle each) and faces; more is text trimesh would
# parse for minutes (20 million 'v' lines, 233 KB zipped: 46 s and 3.1 GB before this bound)
MAX_OBJ_LINES = 10 * MAX_TRIANGLES
MAX_ZIP_UNCOMPRESSED = 200 * MB
# a glTF's vertices as trimesh keeps them (each primitive's POSITION accessor whole, once per node placing it):
# a mesh of MAX_TRIANGLES triangles needs at most 3 each, and primitives may share one accessor
MAX_VERTICES = 10 * MAX_TRIANGLES
# the arrays trimesh makes of a glTF's accessors together: a file of MAX_MESH_BYTES holds at most that much, and
# morph targets without a view (zeros) may add as much again
MAX_ACCESSOR_BYTES = 2 * MAX_MESH_BYTES
MAX_GLTF_ITEMS = 1_000_000  # objects, arrays and values in a glTF's JSON; its geometry is in buffers
MAX_GLB_CHUNKS = 8  # a GLB has its JSON and a binary chunk; trimesh reads every chunk after them
_GLB_JSON, _GLB_BIN = 0x4E4F534A, 0x004E4942
_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}  # glTF componentType: bytes
_ACCESSOR_VALUES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}
BAKE_SIZE = 512  # texture side for meshes that came without one
MAX_BAKE_SIZE = 2048  # and at most, for a repeating texture drawn once into a new atlas
PROGRAM_FORMATS = ("EPS", "WMF")  # Pillow decodes these through Ghostscript or the system: never for an upload
TEXTURE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
HEADER_BYTES = 256 * 1024  # enough for any image header Pillow reads (a JPEG's frame after a large EXIF block)
FORMATS = "a .glb, a .gltf with embedded data, or a .zip holding one .obj with its .mtl and texture"


@dataclass
class Mesh:
    """A triangle mesh with one texture.

    vertices: (V, 3) float32, model units; faces: (F, 3) int64 into vertices; uv: (V, 2) float32 in [0, 1], v up
    (OpenGL/glTF-as-trimesh convention: v=0 is the texture's bottom row); texture: (H, W, 3) float32 in [0, 1],
    row 0 at the top. name: the file it came from, for messages."""

    vertices: np.ndarray
    faces: np.ndarray
    uv: np.ndarray
    texture: torch.Tensor
    name: str = ""


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
    faces = _check_geometry(vertices, np.asarray(tm.faces, np.int64), checked.shown)
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


@dataclass
class _Checked:
    """A mesh file past every check from its headers: what trimesh reads (bytes, their type, a resolver of a zip's
    members), the name for messages, and its textures' sizes, (width, height) each."""

    source: io.BytesIO
    file_type: str
    shown: str
    sizes: list[tuple[int, int]]
    resolver: object = None

    @property
    def texels(self) -> int:
        """See `mesh_texels`."""
        pixels = sum(w * h for w, h in self.sizes)
        return min(max(pixels, BAKE_SIZE * BAKE_SIZE), MAX_TEXTURE_PIXELS)


def _checked(path: str) -> _Checked:
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
        return _checked_zip(path, shown)
    if ext not in (".glb", ".gltf"):
        raise fail(f"The file {shown} is not a mesh this app reads; upload {FORMATS}.")
    with open(path, "rb") as fh:
        if head == b"glTF" or ext == ".glb":
            # the header and the JSON chunk judged first; the binary chunk is read only for what they allow
            gltf, binary = _glb_layout(fh, st.st_size, shown)
        else:
            data = fh.read()  # a .gltf is its JSON, at most MAX_MESH_BYTES
            gltf, binary = _json(data, shown), _Bytes()
        sizes = _check_gltf(gltf, binary, shown)
        if head == b"glTF" or ext == ".glb":
            fh.seek(0)
            data = fh.read(st.st_size)
    return _Checked(io.BytesIO(data), "glb" if head == b"glTF" else "gltf", shown, sizes)


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


def _to_uint8(texture: torch.Tensor) -> np.ndarray:
    arr = texture.detach().float().clamp(0, 1).cpu().numpy()
    return (arr * 255.0 + 0.5).astype(np.uint8)


# --- bounds, from headers -----------------------------------------------------------------------------------


class _Chunk:
    """A GLB's binary chunk, read from the file a range at a time: its bytes are never held whole for a check."""

    def __init__(self, fh, start: int, length: int):
        self.fh, self.start, self.length = fh, start, length

    def read(self, offset: int, length: int) -> bytes:
        if offset >= self.length:
            return b""
        self.fh.seek(self.start + offset)
        return self.fh.read(min(length, self.length - offset))


class _Bytes:
    """Bytes held already (a buffer decoded from a data URI; a .gltf's missing binary chunk), read as a `_Chunk`."""

    def __init__(self, data: bytes = b""):
        self.data, self.length = data, len(data)

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


def _glb_layout(fh, size: int, shown: str) -> tuple[dict, _Chunk]:
    """A GLB's JSON and its binary chunk (as a `_Chunk`), from the 12-byte header and each chunk's 8-byte header:
    the length the header declares is the file's, the JSON chunk and every chunk after it lie within it (at most
    MAX_GLB_CHUNKS, as trimesh reads each one), and only the JSON chunk is read."""
    bad = fail(f"The file {shown} is not a valid glTF binary; upload {FORMATS}.")
    head = fh.read(20)
    if len(head) < 20 or head[:4] != b"glTF":
        raise bad
    _magic, version, length = struct.unpack("<4sLL", head[:12])
    if version != 2:
        raise bad
    if length != size:
        raise fail(f"The file {shown} declares {length:,} bytes in its glTF header but has {size:,}; upload the "
                   ".glb as it was exported.")
    json_len, json_type = struct.unpack("<LL", head[12:20])
    if json_type != _GLB_JSON or 20 + json_len > length:
        raise bad
    gltf = _json(fh.read(json_len), shown)
    binary, at = _Chunk(fh, 0, 0), 20 + json_len
    for _ in range(MAX_GLB_CHUNKS):
        if at + 8 > length:
            return gltf, binary
        fh.seek(at)
        chunk_len, chunk_type = struct.unpack("<LL", fh.read(8))
        if at + 8 + chunk_len > length:
            raise bad
        if chunk_type == _GLB_BIN and not binary.length:
            binary = _Chunk(fh, at + 8, chunk_len)
        at += 8 + chunk_len
    raise fail(f"The file {shown} has more than {MAX_GLB_CHUNKS} chunks; a glTF binary has two.")


def _json(data: bytes, shown: str) -> dict:
    """A glTF's JSON object, or InputError (json.loads recurses once per level: a 100,000-deep array is a
    RecursionError, which it raises cleanly before the stack runs out). Its objects, arrays and values are
    bounded from the text first: 50 MB of '{},' would be 16 million dicts, a GB in Python."""
    bad = fail(f"The file {shown} is not a valid glTF mesh; upload {FORMATS}.")
    items = data.count(b",") + data.count(b"{") + data.count(b"[")  # an upper bound: commas in strings counted
    if items > MAX_GLTF_ITEMS:
        raise fail(f"The glTF {shown} has {items:,} items in its JSON; at most {MAX_GLTF_ITEMS:,} are allowed "
                   "(a glTF keeps its geometry in buffers).")
    try:
        gltf = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # ValueError: also an integer of over 4300 digits
        raise bad from None
    if not isinstance(gltf, dict):
        raise bad
    return gltf


def _check_gltf(gltf: dict, binary, shown: str) -> list[tuple[int, int]]:
    """Everything the JSON declares, before trimesh runs or the binary chunk is read whole: no file outside this
    one; triangles and vertices as trimesh will make them (see `_gltf_placed`); the bytes trimesh copies for its
    buffer views and decodes for its accessors; each texture's size from its header (read from `binary`, a
    `_Chunk`, a range at a time). Returns its textures' sizes. Any part of the wrong JSON type is malformed."""
    try:
        for kind in ("buffers", "images"):
            for item in gltf.get(kind) or []:
                uri = item.get("uri")
                if uri is not None and not str(uri).startswith("data:"):
                    raise fail(f"The glTF {shown} refers to the outside file {quote(uri)}; upload it as one .glb "
                               "with everything inside.")
        if not gltf.get("meshes"):
            raise fail(f"The glTF {shown} holds no mesh; upload {FORMATS}.")
        triangles, vertices = _gltf_placed(gltf, shown)
        _check_triangles(triangles, shown)
        if vertices > MAX_VERTICES:
            raise fail(f"The mesh {shown} has {vertices:,} vertices; at most {MAX_VERTICES:,} are allowed.")
        _check_gltf_bytes(gltf, shown)
        return _gltf_texture_sizes(gltf, binary, shown)
    except InputError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, binascii.Error):
        raise fail(f"The glTF {shown} is malformed (an accessor, view or image it names is missing or not of its "
                   "type).") from None


def _check_gltf_bytes(gltf: dict, shown: str) -> None:
    """trimesh copies each buffer view out of its buffer, and makes an array of every accessor (zeros for one
    without a view, `count` rows for a strided one whatever its view holds): both totals bounded from the JSON."""
    views = sum(_index(view["byteLength"]) for view in gltf.get("bufferViews") or [])
    if views > MAX_MESH_BYTES:
        raise fail(f"The glTF {shown} declares buffer views of {human_size(views)} together; at most "
                   f"{human_size(MAX_MESH_BYTES)} is allowed.")
    arrays = 0
    for accessor in gltf.get("accessors") or []:
        shape = _ACCESSOR_VALUES[accessor["type"]]
        arrays += _index(accessor["count"]) * shape * _COMPONENT_BYTES[accessor["componentType"]]
    if arrays > MAX_ACCESSOR_BYTES:
        raise fail(f"The glTF {shown} declares accessors of {human_size(arrays)} together; at most "
                   f"{human_size(MAX_ACCESSOR_BYTES)} is allowed.")


def _gltf_texture_sizes(gltf: dict, binary, shown: str) -> list[tuple[int, int]]:
    """Each image's (width, height) from its first HEADER_BYTES (the whole image where they do not hold its
    header), its textures' pixels together bounded."""
    views = gltf.get("bufferViews", [])
    decoded: dict[int, bytes] = {}
    sizes: list[tuple[int, int]] = []
    for k, img in enumerate(gltf.get("images") or []):
        name = quote(img.get("name") or f"image {k}")
        if "bufferView" in img:
            view = views[_index(img["bufferView"])]
            index = _index(view.get("buffer", 0))
            uri = gltf["buffers"][index].get("uri")
            if uri and index not in decoded:
                decoded[index] = base64.b64decode(uri.split(",", 1)[1])
            start, length = _index(view.get("byteOffset", 0)), _index(view["byteLength"])
            source = _Bytes(decoded[index]) if uri else binary
            size = _texture_size(source.read(start, min(length, HEADER_BYTES)), name, shown)
            if size == (0, 0):
                size = _texture_size(source.read(start, length), name, shown, required=True)
        elif str(img.get("uri", "")).startswith("data:"):
            size = _texture_size(base64.b64decode(img["uri"].split(",", 1)[1]), name, shown, required=True)
        else:
            continue
        sizes.append(size)
        _check_texture_total(sizes, shown)
    return sizes


def _index(value) -> int:
    """A glTF index or byte count: a whole number >= 0 (TypeError otherwise, which the caller calls malformed)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise TypeError(value)
    return value


def _gltf_placed(gltf: dict, shown: str) -> tuple[int, int]:
    """The triangles and vertices trimesh makes of a glTF: each primitive's triangles (mode 4, triangles: count / 3;
    5 and 6, strips and fans: count - 2; points and lines none) and vertices (its POSITION accessor's count, which
    trimesh keeps whole), times the times its mesh is placed, since trimesh makes a copy for every node that places
    it (a node placed under a node placed N times is placed N times)."""
    accessors = gltf.get("accessors") or []
    per_mesh = []
    for mesh in gltf["meshes"]:
        triangles = vertices = 0
        for prim in mesh.get("primitives") or []:
            mode = prim.get("mode", 4)
            if mode not in (4, 5, 6):
                continue
            points = _index(accessors[_index(prim["attributes"]["POSITION"])]["count"])
            index = prim.get("indices")
            count = points if index is None else _index(accessors[_index(index)]["count"])
            triangles += count // 3 if mode == 4 else max(count - 2, 0)
            vertices += points
        per_mesh.append((triangles, vertices))
    nodes = gltf.get("nodes") or []
    children = [[_index(c) for c in (node.get("children") or [])] for node in nodes]
    parents = [0] * len(nodes)
    for kids in children:
        for c in kids:
            if c >= len(nodes):
                raise IndexError(c)
            parents[c] += 1
    # paths from the roots to each node, in topological order (Kahn); a node left unvisited is on a loop
    paths = [1 if p == 0 else 0 for p in parents]
    ready = [n for n, p in enumerate(parents) if p == 0]
    waiting, seen = list(parents), 0
    while ready:
        n = ready.pop()
        seen += 1
        for c in children[n]:
            paths[c] += paths[n]
            waiting[c] -= 1
            if waiting[c] == 0:
                ready.append(c)
    if seen != len(nodes):
        raise fail(f"The glTF {shown} is malformed (its nodes form a loop).")
    placed = [0] * len(per_mesh)
    for n, node in enumerate(nodes):
        if node.get("mesh") is not None:
            placed[_index(node["mesh"])] += paths[n]
    # a mesh no node places is still counted once: the count is a bound, never under what loads
    return (sum(t * max(1, k) for (t, _v), k in zip(per_mesh, placed)),
            sum(v * max(1, k) for (_t, v), k in zip(per_mesh, placed)))


def _check_triangles(triangles: int, shown: str) -> None:
    if triangles > MAX_TRIANGLES:
        raise fail(f"The mesh {shown} has {triangles:,} triangles; at most {MAX_TRIANGLES:,} are allowed.")


def _check_texture_total(sizes: list[tuple[int, int]], shown: str) -> None:
    pixels = sum(w * h for w, h in sizes)
    if pixels > MAX_TEXTURES_PIXELS:
        raise fail(f"The textures of {shown} hold {pixels:,} pixels together; at most {MAX_TEXTURES_PIXELS:,} "
                   f"(four of {MAX_TEXTURE_SIDE}x{MAX_TEXTURE_SIDE}) are allowed.")


def _texture_size(data: bytes, name: str, shown: str, required: bool = False) -> tuple[int, int]:
    """(width, height) of an image in any format Pillow opens, from its header (nothing is decoded), or InputError
    for one larger than MAX_TEXTURE_SIDE on a side. A file Pillow does not open is (0, 0) (trimesh, which decodes
    textures with Pillow, cannot use it either) or, required=True (a glTF's image), an InputError."""
    try:
        with pillow_pixel_limit(None):  # the size is judged here, with its own sentence
            with Image.open(io.BytesIO(data)) as im:
                width, height, fmt = *im.size, im.format
    except Exception:  # UnidentifiedImageError, SyntaxError of a broken header, ...
        if not required:
            return 0, 0
        raise fail(f"The texture {name} in {shown} is not an image this app reads (PNG, JPEG, WebP).") from None
    if fmt in PROGRAM_FORMATS:
        raise fail(f"The texture {name} in {shown} is a {fmt} file, which Pillow draws by running another program; "
                   "use a PNG or JPEG texture.")
    if width > MAX_TEXTURE_SIDE or height > MAX_TEXTURE_SIDE:
        raise fail(f"The texture {name} in {shown} is {width}x{height}; at most "
                   f"{MAX_TEXTURE_SIDE}x{MAX_TEXTURE_SIDE} is allowed.")
    return width, height


# Pillow's warning between its limit and twice that, which `_texture_guard` makes it give for textures within ours,
# silenced by one filter for the process, set here once: catch_warnings around the load would swap the process's
# filter list while other requests' threads decode (and could leave it swapped). Every image this app decodes has
# its size checked from its header first, so the warning says nothing a check has not.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning, module=r"PIL\.")


@contextlib.contextmanager
def _texture_guard():
    """Pillow refuses to decode any image over MAX_TEXTURE_PIXELS while trimesh loads: its own guard only warns
    between its limit and twice that, so the limit is set at half (the warning is filtered above). The headers were
    checked before; this holds if a file is read in a way they did not foresee."""
    with pillow_pixel_limit(MAX_TEXTURE_PIXELS // 2):
        yield


def _checked_zip(path: str, shown: str) -> _Checked:
    """A zip holding one .obj (+ .mtl + textures): names and sizes checked, every member Pillow can open checked
    as a texture from its header, then read from memory, trimesh seeing only the zip's members."""
    with open(path, "rb") as fh:
        try:
            count, cd_size = central_directory(fh, shown)
        except InputError:
            raise fail(f"The file {shown} is a broken zip archive; upload {FORMATS}.") from None
        if count > MAX_ZIP_ENTRIES or cd_size > MAX_ZIP_ENTRIES * 1024:
            raise fail(f"The zip {shown} has {count:,} entries; at most {MAX_ZIP_ENTRIES} are allowed.")
        try:
            zf = zipfile.ZipFile(fh)
        except Exception:
            raise fail(f"The file {shown} is a broken zip archive; upload {FORMATS}.") from None
        with zf:
            members, total = [], 0
            for info in zf.infolist():
                name = info.filename.replace("\\", "/")
                parts = [p for p in name.split("/") if p]
                if (name.startswith("/") or (len(name) > 1 and name[1] == ":") or ".." in parts
                        or any(ord(c) < 32 for c in name)):
                    raise fail(f"The zip {shown} contains the unsafe path {quote(info.filename)}; "
                               "only plain relative file names are allowed.")
                if info.is_dir() or not parts or is_archiver_junk(name):
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise fail(f"The zip {shown} contains the link {quote(info.filename)}; only files are allowed.")
                if info.flag_bits & 0x1:
                    raise fail(f"The zip {shown} is password-protected; upload an unencrypted zip.")
                total += info.file_size
                if total > MAX_ZIP_UNCOMPRESSED:
                    raise fail(f"The zip {shown} unpacks to more than {human_size(MAX_ZIP_UNCOMPRESSED)}; "
                               "at most that is allowed.")
                members.append((info, "/".join(parts)))
            objs = [rel for _i, rel in members if rel.lower().endswith(".obj")]
            if len(objs) != 1:
                raise fail(f"The zip {shown} holds {len(objs)} .obj files; it must hold exactly one, with its "
                           ".mtl and texture.")
            names = {rel for _i, rel in members}
            files: dict[str, bytes] = {}
            sizes: list[tuple[int, int]] = []
            for info, rel in members:
                texture = not rel.lower().endswith((".obj", ".mtl"))
                name, required = quote(os.path.basename(rel)), rel.lower().endswith(TEXTURE_EXT)
                try:
                    if texture:  # its header judged before the member is unpacked whole
                        with zf.open(info) as member:
                            head = member.read(HEADER_BYTES)
                        size = _texture_size(head, name, shown)
                        if size != (0, 0):
                            sizes.append(size)
                            _check_texture_total(sizes, shown)
                    data = zf.read(info)
                except InputError:
                    raise
                except Exception:
                    raise fail(f"The file {quote(rel)} in {shown} is damaged in the archive.") from None
                if not texture:
                    lines = data.count(b"\n") + 1
                    if lines > MAX_OBJ_LINES:  # before any line is read in Python, or by trimesh
                        raise fail(f"The file {quote(os.path.basename(rel))} in {shown} has {lines:,} lines; at "
                                   f"most {MAX_OBJ_LINES:,} are allowed (a mesh of {MAX_TRIANGLES:,} triangles "
                                    "needs fewer).")
                    _check_references(data, rel, names, shown)
                    if rel.lower().endswith(".obj"):
                        _check_triangles(_obj_triangles(data), shown)
                elif size == (0, 0):
                    # any file Pillow opens may be a texture, whatever its name (trimesh opens it by content): one
                    # whose first bytes did not hold its header (a TIFF's directory after its pixels) is judged whole
                    size = _texture_size(data, name, shown, required=required)
                    if size != (0, 0):
                        sizes.append(size)
                        _check_texture_total(sizes, shown)
                files[rel] = data
    obj = objs[0]
    return _Checked(io.BytesIO(files[obj]), "obj", shown, sizes, _members_resolver(files, os.path.dirname(obj)))


def _members_resolver(files: dict[str, bytes], folder: str):
    """A trimesh resolver that serves only the zip's members (by their path from `folder`, the .obj's): nothing
    outside the zip is read, whatever an .obj or .mtl names."""
    import trimesh

    class Members(trimesh.resolvers.Resolver):
        def __init__(self):
            pass

        def get(self, key):
            return files[_member_name(folder, str(key).strip())]

        def write(self, name, data):
            raise OSError("read only")

        def namespaced(self, namespace):
            return self

        def keys(self):
            return iter(files)

    return Members()


def _member_name(folder: str, name: str) -> str:
    """The zip member a reference from a file in `folder` names ('..' kept, so it matches no member)."""
    return os.path.normpath(os.path.join(folder, name.replace("\\", "/"))).replace(os.sep, "/")


def _obj_text(data: bytes) -> str:
    """An .obj or .mtl as trimesh reads it: lines ended by a backslash joined to the next, as trimesh joins them."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    return text.replace("\\\n", "")


def _check_references(data: bytes, rel: str, names: set[str], shown: str) -> None:
    """Every file an .obj or .mtl names must be a member of the zip, read as permissively as trimesh reads it: an
    'mtllib' anywhere (trimesh takes the rest of the line after the word's first appearance, comments included),
    keys in any case (trimesh lower-cases them: MAP_KD is map_Kd). A name is the rest of its line or, for a
    line of several names or options ('-s 1 1 1 wood.png'), each name or the last word."""
    folder = os.path.dirname(rel)
    text = _obj_text(data)
    found = [line.split("mtllib", 1)[1].strip() for line in text.split("\n") if "mtllib" in line]
    for line in text.split("\n"):
        words = line.split()
        if words and words[0].lower() in ("bump", "disp", "decal", "refl", "norm", "mtllib") \
                or words and words[0].lower().startswith("map_"):
            found.append(line.strip()[len(words[0]):].strip())
    for name in found:
        if not name:
            continue
        if _member_name(folder, name) in names:
            continue
        words = name.split()
        if all(_member_name(folder, w) in names for w in words) or _member_name(folder, words[-1]) in names:
            continue
        raise fail(f"The file {quote(os.path.basename(rel))} in {shown} refers to {quote(name)}, "
                   "which is not in the zip; put every file it names beside it.")


def _obj_triangles(data: bytes) -> int:
    """Triangles an OBJ's face lines make as trimesh reads them: continued lines joined, every line that starts
    with 'f' a face (trimesh splits faces at '^f', so 'f1 2 3' is one too), a face of n corners n-2 triangles.
    A face line's corners written in a way this count does not foresee are caught on what trimesh parsed
    (`_placed_triangles`), the file's lines being bounded first."""
    triangles = 0
    for line in _obj_text(data).split("\n"):
        line = line.lstrip()
        if line[:1] == "f":
            triangles += max(len(line[1:].split()) - 2, 0)
    return triangles


# --- into one form ------------------------------------------------------------------------------------------


def _trimesh_load(source, file_type: str, shown: str, resolver=None, skip_materials: bool = False):
    import trimesh

    try:
        with _texture_guard():
            loaded = trimesh.load(source, file_type=file_type, force="scene", process=False, resolver=resolver,
                                  skip_materials=skip_materials)
            # what trimesh made, counted before `dump` copies each mesh once per node that places it
            _check_triangles(_placed_triangles(loaded), shown)
            parts = [g for g in loaded.dump() if isinstance(g, trimesh.Trimesh) and len(g.faces)]
            for part in parts:
                _factor_into_texture(part.visual)
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


def _factor_into_texture(visual) -> None:
    """A PBR material's base colour factor multiplied into its texture, and the factor dropped: trimesh's packing
    of several textured parts into one atlas (trimesh 5.2, `material.pack`) multiplies by the factor as stored,
    uint8 [255, 255, 255, 255], and wraps around (255 * 255 % 256 = 1: every texture near black)."""
    material = getattr(visual, "material", None)
    image = getattr(material, "baseColorTexture", None)
    factor = _base_factor(visual)
    if image is None or factor is None:
        return
    material.baseColorFactor = None
    if (factor == 1.0).all():  # white: nothing to multiply (a 4096x4096 float copy is 200 MB)
        return
    rgb = np.asarray(image.convert("RGB"), np.float32) * factor
    material.baseColorTexture = Image.fromarray(np.clip(rgb + 0.5, 0, 255).astype(np.uint8))


def _finish(tm, shown: str) -> Mesh:
    """trimesh's mesh as a `Mesh`: its UVs and texture when it has both, else an atlas with its colours baked."""
    vertices = np.asarray(tm.vertices, np.float32)
    faces = _check_geometry(vertices, np.asarray(tm.faces, np.int64), shown)
    visual = tm.visual
    uv = getattr(visual, "uv", None)
    image = _base_image(visual)
    if uv is not None and len(uv) == len(vertices) and image is not None:
        # one float copy, scaled in place: a 4096x4096 texture is 200 MB as float32
        texture = torch.from_numpy(np.array(image.convert("RGB"))).float().div_(255.0)
        factor = _base_factor(visual)
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
    return bake_atlas(vertices, faces, _corner_colors(tm, faces), name=shown)


def _check_geometry(vertices: np.ndarray, faces: np.ndarray, shown: str) -> np.ndarray:
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


def _base_image(visual):
    material = getattr(visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "baseColorTexture", None)
    if image is None:
        image = getattr(material, "image", None)
    return image


def _base_factor(visual):
    factor = getattr(getattr(visual, "material", None), "baseColorFactor", None)
    if factor is None:
        return None
    factor = np.asarray(factor)[:3]
    if factor.dtype.kind in "ui":  # trimesh keeps colours as uint8
        return factor.astype(np.float32) / 255.0
    return factor.astype(np.float32)


def _corner_colors(tm, faces: np.ndarray) -> np.ndarray:
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
    factor = _base_factor(visual)
    if factor is not None:
        base = factor
    elif material is not None and getattr(material, "diffuse", None) is not None:
        base = np.asarray(material.diffuse, np.float32)[:3] / 255.0
    return np.broadcast_to(base, (len(faces), 3, 3)).copy()


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
