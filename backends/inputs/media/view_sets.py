"""A set of views, bounded: several images, or a zip of them, as RGB images in order.

A zip is checked from its central directory before anything is decompressed: its size, its entry count, each
member's name, kind, encryption, compression and declared size, and the total it unpacks to; then each image
member is read (at most its limit of bytes, whatever the directory declared) and decoded as `image` decodes.
Defaults: 32 images, 32 Mpx in all; a zip of 100 MB, 256 entries, 256 MB uncompressed, stored or deflate only.
`is_archiver_junk` is the one rule of which members a person did not put there (the budget's header read uses it).
"""
from __future__ import annotations

import io
import math
import os
import re
import stat
import struct
import zipfile
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, BinaryIO

import numpy as np
from PIL import Image

from ...core.errors import InputError
from ..validate import MB, fail, given_name, human_size, open_bounded, open_regular, quote
from .image_files import IMAGE_FORMATS, MAX_IMAGE_BYTES, MAX_IMAGE_PIXELS, Limits, decode_bytes, read_image
from .shared import EXT_FORMAT, MIN_SIDE

MAX_VIEWS = 32
MAX_VIEWS_PIXELS = 32 * 1024 * 1024  # e.g. 32 views of 1024x1024, about 100 MB as RGB
MAX_ZIP_BYTES = 100 * MB
MAX_ZIP_ENTRIES = 256
MAX_ZIP_UNCOMPRESSED = 256 * MB


_JUNK_NAMES = {".ds_store", "thumbs.db", "desktop.ini"}


def is_archiver_junk(name: str) -> bool:
    """Whether a zip member of this name was written by the archiver or the file browser, not by the person:
    anything under __MACOSX/, macOS's AppleDouble "._x" files, and .DS_Store, Thumbs.db and desktop.ini. Every other
    member counts, dotfiles included: a view named ".front.png" is an image like any other. The one rule of the
    view-set validator and the budget's header read, so the two count the same members."""
    parts = [p for p in name.replace("\\", "/").split("/") if p]
    return bool(parts) and (parts[0] == "__MACOSX" or parts[-1].startswith("._") or parts[-1].casefold() in _JUNK_NAMES)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name)]


def _looks_like_zip(source: Any) -> bool:
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source[:4]) in (b"PK\x03\x04", b"PK\x05\x06")
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if isinstance(path, str) and path.lower().endswith(".zip"):
            return True
        try:
            fh, _real, _size = open_regular(path, "image")
        except InputError:
            return False  # `image` will say what is wrong with it
        with fh:
            return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    return False


def central_directory(fh: BinaryIO, shown: str) -> tuple[int, int]:
    """(entry count, central directory size in bytes) from the end records, before zipfile parses anything."""
    fh.seek(0, os.SEEK_END)
    size = fh.tell()
    tail_len = min(size, 22 + 65535)
    fh.seek(size - tail_len)
    tail = fh.read(tail_len)
    pos = tail.rfind(b"PK\x05\x06")
    if pos < 0 or len(tail) - pos < 22:
        raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.")
    _sig, _d, _dcd, _nd, count, cd_size, cd_offset, _cl = struct.unpack("<4s4H2LH", tail[pos : pos + 22])
    if count == 0xFFFF or cd_size == 0xFFFFFFFF or cd_offset == 0xFFFFFFFF:
        loc = tail[pos - 20 : pos] if pos >= 20 else b""
        if len(loc) != 20 or loc[:4] != b"PK\x06\x07":
            raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.")
        record_at = struct.unpack("<4sLQL", loc)[2]
        if record_at + 56 > size:
            raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.")
        fh.seek(record_at)
        record = fh.read(56)
        if record[:4] != b"PK\x06\x06":
            raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.")
        count, cd_size = struct.unpack("<QQ", record[32:48])
    return count, cd_size



def _open_zip(source: Any, max_zip_bytes: int) -> tuple[BinaryIO, str, str]:
    """(file, label for messages, the zip's own name) of a zip given as bytes or a path, refused by its size
    (empty, or over `max_zip_bytes`) before a byte of it is parsed."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_zip_bytes:
            raise fail(f"The uploaded zip is {human_size(len(source))}; "
                       f"at most {human_size(max_zip_bytes)} is allowed.")
        return io.BytesIO(bytes(source)), "", "the zip"
    fh, _real, _size, shown = open_bounded(source, "zip", max_zip_bytes)
    return fh, shown, os.path.basename(given_name(source))


def _open_directory(fh: BinaryIO, shown: str, max_entries: int, max_count: int) -> zipfile.ZipFile:
    """The zip's directory, its entries counted from the end records before zipfile reads them (zipfile walks the
    directory by its byte size, not its declared count, so both are bounded) and again once read."""
    count, cd_size = central_directory(fh, shown)
    if count > max_entries or cd_size > max_entries * 1024:
        raise fail(
            f"The zip {shown} has {count:,} entries; at most {max_entries} are allowed "
            f"(and at most {max_count} images)."
        )
    try:
        zf = zipfile.ZipFile(fh)
    except Exception:  # BadZipFile, struct.error, UnicodeDecodeError of a name flagged UTF-8, ...
        raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.") from None
    if len(zf.infolist()) > max_entries:
        zf.close()
        raise fail(f"The zip {shown} has {len(zf.infolist()):,} entries; at most {max_entries} are allowed.")
    return zf


def _is_image_member(info: zipfile.ZipInfo, shown: str, limits: Limits) -> bool:
    """Whether a zip entry is one of the set's images (False for a folder or archiver junk), refusing the whole
    zip for an unsafe path, a link, a member that is not an image, encryption, an unusual compression or a member
    declared larger than one image may be."""
    name = info.filename
    norm = name.replace("\\", "/")
    parts = [p for p in norm.split("/") if p]
    if norm.startswith("/") or re.match(r"[A-Za-z]:", norm) or ".." in parts or any(ord(c) < 32 for c in name):
        raise fail(
            f"The zip {shown} contains the unsafe path {quote(name)}; only plain relative file names are allowed."
        )
    if info.is_dir() or not parts or is_archiver_junk(name):
        return False
    if stat.S_ISLNK(info.external_attr >> 16):
        raise fail(f"The zip {shown} contains the link {quote(name)}; only image files are allowed.")
    if os.path.splitext(parts[-1])[1].lower() not in [e for e, f in EXT_FORMAT.items() if f in limits.formats]:
        raise fail(
            f"The zip {shown} contains {quote(name)}, which is not an image; "
            f"only {limits.listing} files are allowed in it."
        )
    if info.flag_bits & 0x1:
        raise fail(f"The zip {shown} is password-protected; upload an unencrypted zip.")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise fail(
            f"The zip {shown} uses a compression method other than deflate for {quote(name)}; "
            "re-create it with a standard zip tool."
        )
    if info.file_size > limits.max_bytes:
        raise fail(
            f"The file {quote(name)} in {shown} is {human_size(info.file_size)}; "
            f"at most {human_size(limits.max_bytes)} per image is allowed."
        )
    return True


def _image_members(zf: zipfile.ZipFile, shown: str, limits: Limits, max_uncompressed: int,
                   max_count: int) -> list[zipfile.ZipInfo]:
    """The zip's image members in natural name order (view2 before view10), their count and their declared total
    checked; nothing is decompressed."""
    members = []
    total = 0
    for info in zf.infolist():
        if not _is_image_member(info, shown, limits):
            continue
        total += info.file_size
        if total > max_uncompressed:
            raise fail(
                f"The zip {shown} unpacks to more than {human_size(max_uncompressed)}; "
                f"at most {human_size(max_uncompressed)} in all is allowed."
            )
        members.append(info)
    if len(members) > max_count:
        raise fail(f"The zip {shown} holds {len(members)} images; at most {max_count} are allowed.")
    if not members:
        raise fail(f"The zip {shown} holds no images; put {limits.listing} files in it.")
    return sorted(members, key=lambda i: _natural_key(i.filename))


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, zip_name: str, limits: Limits) -> tuple[bytes, str, str]:
    """(bytes, extension, label) of one member, read to at most one image's bytes whatever its header declared."""
    label = quote(f"{os.path.basename(info.filename)} in {zip_name}")
    try:
        with zf.open(info) as member:
            data = member.read(limits.max_bytes + 1)
    except Exception:  # BadZipFile (CRC), zlib.error, EOFError, overlapping entries, ...
        raise fail(f"The file {label} is damaged in the archive (bad data or checksum).") from None
    if len(data) > limits.max_bytes:  # the declared size lied
        raise fail(f"The file {label} is too large; at most {human_size(limits.max_bytes)} per image is allowed.")
    return data, os.path.splitext(info.filename)[1].lower(), label


def _zip_members(source: Any, limits: Limits, *, max_zip_bytes: int, max_entries: int, max_uncompressed: int,
                 max_count: int) -> Iterator[tuple[bytes, str, str]]:
    """Yield (bytes, extension, label) of each image member of a zip, all checked before any is decompressed."""
    fh, shown, zip_name = _open_zip(source, max_zip_bytes)
    with fh:
        with _open_directory(fh, shown, max_entries, max_count) as zf:
            for info in _image_members(zf, shown, limits, max_uncompressed, max_count):
                yield _read_member(zf, info, zip_name, limits)


def images(
    sources: Any,
    *,
    max_count: int = MAX_VIEWS,
    min_count: int = 1,
    max_total_pixels: int = MAX_VIEWS_PIXELS,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = MAX_IMAGE_BYTES,
    min_side: int = MIN_SIDE,
    formats: Sequence[str] = IMAGE_FORMATS,
    max_zip_bytes: int = MAX_ZIP_BYTES,
    max_zip_entries: int = MAX_ZIP_ENTRIES,
    max_zip_uncompressed: int = MAX_ZIP_UNCOMPRESSED,
) -> list[Image.Image]:
    """A set of images (e.g. views of one object) as RGB PIL images, in order.

    sources: one item or a list of items, each anything `image` accepts or a .zip of images (path or bytes).
    A zip's image members come in natural name order (view2 before view10); folders and archiver junk
    (__MACOSX, .DS_Store) are skipped; any other member, a path that climbs out (../, /abs), a link, an
    encrypted member or a compression other than deflate refuses the whole zip. Counts and sizes are checked
    from the zip's directory before anything is decompressed, and image sizes from headers before decoding.
    """
    limits = Limits(max_pixels, max_bytes, min_side, formats)
    if isinstance(sources, (str, os.PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray)):
        sources = [sources]
    elif sources is None:
        sources = []
    elif not isinstance(sources, Iterable):
        raise fail(f"The images must be a list of files, not {type(sources).__name__}.")
    used = 0

    def reserve(width: int, height: int, shown: str) -> None:
        nonlocal used
        used += width * height
        if used > max_total_pixels:
            raise fail(
                f"The images add up to more than {max_total_pixels:,} pixels; use fewer or smaller images "
                f"(for example {max_count} of {int(math.isqrt(max_total_pixels // max_count))} pixels square)."
            )

    out: list[Image.Image] = []

    def room() -> None:
        if len(out) >= max_count:
            raise fail(f"More than {max_count} images were given; at most {max_count} are allowed.")

    for item in sources:
        if _looks_like_zip(item):
            for data, ext, label in _zip_members(
                item, limits, max_zip_bytes=max_zip_bytes, max_entries=max_zip_entries,
                max_uncompressed=max_zip_uncompressed, max_count=max_count,
            ):
                room()
                out.append(decode_bytes(data, limits, label, ext, reserve))
        else:
            room()
            out.append(read_image(item, limits, reserve=reserve))
    if len(out) < min_count:
        given = f"Only {len(out)}" if out else "No"
        raise fail(f"{given} images were given; upload between {min_count} and {max_count}.")
    return out

