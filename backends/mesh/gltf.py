"""A .glb or a .gltf with embedded data, judged before trimesh reads it (`checked_gltf`): a GLB's 12-byte header
and its JSON chunk first (the length it declares is the file's, its chunks within it), then everything the JSON
declares: no file outside this one; triangles and vertices as trimesh will make them (strips, fans, every node
that places a mesh); the bytes trimesh copies for its buffer views and makes for its accessors; each texture's
size from its header, read a range at a time. Only then is the file read whole, for trimesh."""
from __future__ import annotations

import base64
import binascii
import io
import json
import os
import shutil
import struct

from ..core.errors import InputError
from ..core.files import atomic_path
from ..inputs.validate import fail, file_label, human_size, quote
from .bounds import (FORMATS, HEADER_BYTES, MAX_MESH_BYTES, MAX_TRIANGLES, Checked, check_texture_total,
                     check_triangles, texture_size)

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


def checked_gltf(path: str, size: int, shown: str, glb: bool) -> Checked:
    """The .glb (`glb`) or .gltf at `path` (`size` bytes, at most MAX_MESH_BYTES) past every check from its
    header and JSON, then read whole for trimesh."""
    with open(path, "rb") as fh:
        if glb:
            # the header and the JSON chunk judged first; the binary chunk is read only for what they allow
            gltf, binary = _glb_layout(fh, size, shown)
        else:
            data = fh.read()  # a .gltf is its JSON
            gltf, binary = _json(data, shown), _Bytes()
        sizes = _check_gltf(gltf, binary, shown)
        if glb:
            fh.seek(0)
            data = fh.read(size)
    return Checked(io.BytesIO(data), "glb" if glb else "gltf", shown, sizes)


def placed_copy(path: str, out: str, translation, scale: float) -> None:
    """Write to `out` a copy of the glTF at `path` (.glb, or .gltf with embedded data) whose default scene sits
    under one new root node that scales it by `scale`, then moves it by `translation` ((3,), world units).

    Only the JSON changes (its other scenes are dropped: the new node would be a child in them too). A GLB's
    chunks after its JSON are copied byte for byte, so no buffer or image is decoded or encoded again: framing a
    mesh with a 4096x4096 texture this way holds its JSON, where loading and exporting it held 160 MB. ValueError
    when the file has no JSON chunk or default scene to place, InputError when its JSON is not a glTF's; `path`
    is not otherwise checked here (`checked_gltf` judges a file)."""
    shown = file_label(path)
    with open(path, "rb") as fh:
        head = fh.read(20)
        glb = head[:4] == b"glTF"
        if glb:
            json_len, json_type = struct.unpack("<LL", head[12:20])
            if json_type != _GLB_JSON or 20 + json_len > os.fstat(fh.fileno()).st_size:
                raise ValueError(f"{shown} has no JSON chunk first")
            gltf = _json(fh.read(json_len), shown)
        else:
            gltf = _json(head + fh.read(), shown)
        scenes, index = gltf.get("scenes"), gltf.get("scene", 0)
        if not (isinstance(scenes, list) and isinstance(index, int) and 0 <= index < len(scenes)
                and isinstance(scenes[index], dict) and isinstance(gltf.get("nodes", []), list)):
            raise ValueError(f"{shown} has no default scene")
        nodes = gltf.setdefault("nodes", [])
        nodes.append({"name": "placed", "children": list(scenes[index].get("nodes") or []),
                      "translation": [float(v) for v in translation], "scale": [float(scale)] * 3})
        gltf["scenes"], gltf["scene"] = [{**scenes[index], "nodes": [len(nodes) - 1]}], 0
        text = json.dumps(gltf, separators=(",", ":")).encode("utf-8")
        with atomic_path(out) as tmp, open(tmp, "wb") as dst:
            if not glb:
                dst.write(text)
                return
            text += b" " * (-len(text) % 4)  # a GLB's chunks start 4-byte aligned; JSON is padded with spaces
            rest = os.fstat(fh.fileno()).st_size - 20 - json_len
            dst.write(struct.pack("<4sLL", b"glTF", 2, 20 + len(text) + rest))
            dst.write(struct.pack("<LL", len(text), _GLB_JSON) + text)
            shutil.copyfileobj(fh, dst)


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
        check_triangles(triangles, shown)
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
            size = texture_size(source.read(start, min(length, HEADER_BYTES)), name, shown)
            if size == (0, 0):
                size = texture_size(source.read(start, length), name, shown, required=True)
        elif str(img.get("uri", "")).startswith("data:"):
            size = texture_size(base64.b64decode(img["uri"].split(",", 1)[1]), name, shown, required=True)
        else:
            continue
        sizes.append(size)
        check_texture_total(sizes, shown)
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

