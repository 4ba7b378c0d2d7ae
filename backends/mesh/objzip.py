"""A .zip holding one .obj with its .mtl and textures, judged before trimesh reads it (`checked_zip`): its member
names (no '..', no absolute paths, no links), sizes and entries; the files its .obj and .mtl name, read as trimesh
reads them; an .obj's lines and triangles; every member Pillow opens checked as a texture from its first bytes,
before it is unpacked whole. trimesh then reads the .obj through a resolver of the zip's members only."""
from __future__ import annotations

import io
import os
import stat
import zipfile

from ..core.errors import InputError
from ..inputs.media import central_directory, is_archiver_junk
from ..inputs.validate import MB, fail, human_size, quote
from .bounds import (FORMATS, HEADER_BYTES, MAX_TRIANGLES, Checked, check_texture_total, check_triangles,
                     texture_size)

MAX_ZIP_ENTRIES = 64
# an .obj's lines: its vertices, UVs and normals (at most 3 a triangle each) and faces; more is text trimesh would
# parse for minutes (20 million 'v' lines, 233 KB zipped: 46 s and 3.1 GB before this bound)
MAX_OBJ_LINES = 10 * MAX_TRIANGLES
MAX_ZIP_UNCOMPRESSED = 200 * MB
TEXTURE_EXT = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def checked_zip(path: str, shown: str) -> Checked:
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
            members = _members(zf, shown)
            objs = [rel for _i, rel in members if rel.lower().endswith(".obj")]
            if len(objs) != 1:
                raise fail(f"The zip {shown} holds {len(objs)} .obj files; it must hold exactly one, with its "
                           ".mtl and texture.")
            names = {rel for _i, rel in members}
            sizes: list[tuple[int, int]] = []
            files = {rel: _read_member(zf, info, rel, names, sizes, shown) for info, rel in members}
    obj = objs[0]
    return Checked(io.BytesIO(files[obj]), "obj", shown, sizes, _members_resolver(files, os.path.dirname(obj)))


def _members(zf: zipfile.ZipFile, shown: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """The zip's files as (info, path inside the zip), from its directory: no unsafe path, link or encryption, and
    at most MAX_ZIP_UNCOMPRESSED together; folders and archivers' junk left out."""
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
    return members


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, rel: str, names: set[str],
                 sizes: list[tuple[int, int]], shown: str) -> bytes:
    """The member `rel`'s bytes, checked: an .obj or .mtl for its lines, the files it names (among `names`) and an
    .obj's triangles; any other member as a texture, from its header before it is unpacked whole (its size added to
    `sizes`, all of them bounded together)."""
    texture = not rel.lower().endswith((".obj", ".mtl"))
    name, required = quote(os.path.basename(rel)), rel.lower().endswith(TEXTURE_EXT)
    size = (0, 0)
    try:
        if texture:  # its header judged before the member is unpacked whole
            with zf.open(info) as member:
                head = member.read(HEADER_BYTES)
            size = texture_size(head, name, shown)
            if size != (0, 0):
                sizes.append(size)
                check_texture_total(sizes, shown)
        data = zf.read(info)
    except InputError:
        raise
    except Exception:
        raise fail(f"The file {quote(rel)} in {shown} is damaged in the archive.") from None
    if not texture:
        lines = data.count(b"\n") + 1
        if lines > MAX_OBJ_LINES:  # before any line is read in Python, or by trimesh
            raise fail(f"The file {name} in {shown} has {lines:,} lines; at most {MAX_OBJ_LINES:,} are allowed "
                       f"(a mesh of {MAX_TRIANGLES:,} triangles needs fewer).")
        _check_references(data, rel, names, shown)
        if rel.lower().endswith(".obj"):
            check_triangles(_obj_triangles(data), shown)
    elif size == (0, 0):
        # any file Pillow opens may be a texture, whatever its name (trimesh opens it by content): one whose first
        # bytes did not hold its header (a TIFF's directory after its pixels) is judged whole
        size = texture_size(data, name, shown, required=required)
        if size != (0, 0):
            sizes.append(size)
            check_texture_total(sizes, shown)
    return data


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
