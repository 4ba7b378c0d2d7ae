"""Media decoding, bounded: images, view sets (several images or one zip) and videos, as the backends take them.

Every check is bounded *before* the expensive part: file sizes from `stat`, image sizes from the header (Pillow's
decompression-bomb guard set to the caller's limit while we decode), zip sizes and member counts from the central
directory, video length and resolution from an ffmpeg probe (or a GIF block scan) before frames are decoded, and
ffmpeg itself is told to stop after the frame and time limits and killed at a deadline. So hostile input is refused
in well under 2 s, and no check holds more than the frames it returns plus ~250 MB (one 4096x4096 RGBA image being
flattened). Files are opened through `backends.validate`'s readers (regular files only, byte limits).

Default limits (each one a keyword argument):
    images: 30 MB file, 4096x4096 pixels, sides >= 8 px, PNG/JPEG/WEBP/BMP/GIF (first frame of animations)
    view sets: 32 images, 32 Mpx in total; zip: 100 MB, 256 entries, 256 MB uncompressed, stored/deflate only
    videos: 200 MB file, 20 s, 240 decoded frames, sides <= 4096 px, 512 Mpx decoded in all (all 240 frames of
        1080p; 64 frames of 4K), 256 MB of kept frames, MP4/MOV/WEBM/MKV/GIF
"""
from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import re
import select
import stat
import struct
import subprocess
import threading
import time
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InputError
from .validate import (MB, PathLike, fail, file_label, given_name, human_number, human_size, number, open_regular,
                       or_list, quote, read_bounded)

log = logging.getLogger(__name__)

# Pillow warns on stderr about a damaged EXIF block ("Corrupt EXIF data", "Possibly corrupt EXIF data", "Truncated
# File Read", "Metadata Warning, tag 274 had too many entries" from its TIFF reader of the block), which phones and
# editors often write; the pixels are read all the same (the orientation is none, or the tag's first value), so a
# successful run stays quiet. A filter for the process rather than catch_warnings around the decode: that swaps the
# process's filter list and is not safe with the app's threads.
warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", message="Truncated File Read", category=UserWarning, module=r"PIL\.TiffImagePlugin")
warnings.filterwarnings("ignore", message=r"Metadata Warning, tag \d+ had too many entries", category=UserWarning,
                        module=r"PIL\.TiffImagePlugin")  # an EXIF tag such as Orientation given twice

ImageSource = Union[PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, BinaryIO]

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 30 * MB
MIN_SIDE = 8
MAX_JPEG_SCANS = 100  # progressive JPEGs use ~10; each scan is a full pass over the image (a known DoS)

MAX_VIEWS = 32
MAX_VIEWS_PIXELS = 32 * 1024 * 1024  # e.g. 32 views of 1024x1024, about 100 MB as RGB
MAX_ZIP_BYTES = 100 * MB
MAX_ZIP_ENTRIES = 256
MAX_ZIP_UNCOMPRESSED = 256 * MB

MAX_VIDEO_BYTES = 200 * MB
MAX_VIDEO_SECONDS = 20.0
MAX_VIDEO_FRAMES = 240
MAX_VIDEO_SIDE = 4096
MAX_VIDEO_KEPT_BYTES = 256 * MB  # decoded frames held at once (240 frames of 640x480 is 221 MB)
MAX_VIDEO_DECODE_PIXELS = 512 * 1024 * 1024  # frames decoded x pixels per frame: ~2 s of work on 2 CPU cores
MAX_VIDEO_DECODE_SECONDS = 60.0

# The one SVG byte and element limit: backends/svg/svgio.py imports these and calls `svg_bytes` as its only
# pre-check, so the UI, the API and `python -m backends.svg` refuse the same files with the same sentence.

_EXT_FORMAT = {
    ".png": "PNG", ".apng": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".webp": "WEBP", ".bmp": "BMP", ".dib": "BMP", ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF",
}
# Magic numbers of formats people upload by mistake, only to name them in the message.
_KNOWN_OTHER = (
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"), (b"8BPS", "a Photoshop file"), (b"\x00\x00\x01\x00", "an icon file"),
)


# ----------------------------------------------------------------------------------------------- images

_PILLOW_LOCK = threading.RLock()


@contextlib.contextmanager
def pillow_pixel_limit(max_pixels: int | None):
    """Pillow's decompression-bomb guard set to `max_pixels` while we open and decode.

    Pillow only has a process-wide limit; the lock keeps concurrent validations from restoring each other's
    value. Pillow raises at twice the limit, so header sizes between 1x and 2x are caught by our own check.
    """
    with _PILLOW_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None if max_pixels is None else int(max_pixels)
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


class _Limits:
    def __init__(self, max_pixels: int, max_bytes: int, min_side: int, formats: Iterable[str]):
        self.max_pixels = int(max_pixels)
        self.max_bytes = int(max_bytes)
        self.min_side = int(min_side)
        self.formats = tuple(f.upper() for f in formats)
        if not self.formats:
            raise ValueError("formats must name at least one Pillow format")

    def check_size(self, width: int, height: int, shown: str, reserve=None) -> None:
        """Refuse too many pixels or a side under min_side, from the header, before any decoding."""
        if width * height > self.max_pixels:
            side = int(math.isqrt(self.max_pixels))
            raise fail(
                f"The image {shown} is {width}x{height} pixels; at most {self.max_pixels:,} pixels "
                f"(for example {side}x{side}) are allowed."
            )
        if min(width, height) < self.min_side:
            raise fail(
                f"The image {shown} is {width}x{height} pixels; each side must be at least {self.min_side} pixels."
            )
        if reserve is not None:
            reserve(width, height, shown)

    @property
    def listing(self) -> str:
        return or_list(list(self.formats))


def _to_rgb(im: Image.Image) -> Image.Image:
    """Any Pillow mode as a new RGB image; transparency is composited over white, 16-bit gray scaled to 8 bits."""
    if im.mode.startswith("I;16") or im.mode == "I":
        arr = np.asarray(im).astype(np.int64)
        im = Image.fromarray((np.clip(arr, 0, 65535) >> 8).astype(np.uint8), "L")
    elif im.mode == "F":
        im = Image.fromarray(np.clip(np.nan_to_num(np.asarray(im)), 0, 255).astype(np.uint8), "L")
    has_alpha = im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info
    if has_alpha:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _sniff_other(data: bytes) -> str | None:
    for magic, what in _KNOWN_OTHER:
        if data.startswith(magic):
            return what
    head = data[:512].lstrip().lower()
    if head.startswith(b"<?xml") or head.startswith(b"<svg") or b"<svg" in head:
        return "an SVG or XML file"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC/AVIF image"
    if data[4:8] == b"ftyp":
        return "a video"
    return None


def _decode_bytes(data: bytes, limits: _Limits, shown: str, ext: str | None, reserve=None) -> Image.Image:
    """Bytes of an image file -> RGB image (first frame), refusing disallowed formats and sizes before decoding."""
    with pillow_pixel_limit(limits.max_pixels):
        try:
            im = Image.open(io.BytesIO(data), formats=list(limits.formats))
        except Image.DecompressionBombError as err:
            found = re.search(r"\((\d+) pixels\)", str(err))
            count = f"{int(found.group(1)):,} pixels" if found else "too many pixels"
            side = int(math.isqrt(limits.max_pixels))
            raise fail(
                f"The image {shown} has {count}; at most {limits.max_pixels:,} pixels "
                f"(for example {side}x{side}) are allowed."
            ) from None
        except UnidentifiedImageError:
            other = _sniff_other(data)
            what = f" (it looks like {other})" if other else ""
            raise fail(f"The file {shown} is not an image in an allowed format{what}; use {limits.listing}.") from None
        except Exception:
            raise fail(
                f"The image {shown} is damaged and could not be read; re-export it as {limits.listing}."
            ) from None
        try:
            fmt = "JPEG" if im.format == "MPO" else (im.format or "?")
            limits.check_size(im.width, im.height, shown, reserve)
            if fmt == "JPEG" and jpeg_scans(data) > MAX_JPEG_SCANS:
                raise fail(
                    f"The image {shown} is a JPEG with more than {MAX_JPEG_SCANS} scans, far more than cameras or "
                    "editors write; re-save it as a normal JPEG or PNG."
                )
            try:
                im.seek(0)  # animations: the first frame only
            except EOFError:
                pass
            im.load()
            try:
                im = ImageOps.exif_transpose(im) or im  # what the person saw in their viewer
            except Exception:
                log.info("ignoring unreadable EXIF orientation in %s", shown)
            limits.check_size(im.width, im.height, shown)
            out = _to_rgb(im)
        except InputError:
            raise
        except Exception:
            raise fail(
                f"The image {shown} is damaged or truncated and could not be decoded; "
                f"re-export it as {limits.listing}."
            ) from None
        finally:
            im.close()
    out.info["format"] = fmt
    claimed = _EXT_FORMAT.get(ext or "")
    if ext and claimed != fmt:
        notice = f"The file {shown} is named {ext} but contains a {fmt} image; it was read as {fmt}."
        out.info["notice"] = notice
        log.warning(notice)
    return out


def _from_pil(im: Image.Image, limits: _Limits, shown: str, reserve=None) -> Image.Image:
    limits.check_size(im.width, im.height, shown, reserve)
    with pillow_pixel_limit(limits.max_pixels):
        try:
            if getattr(im, "is_animated", False):
                im.seek(0)
            im.load()
            out = _to_rgb(im)
        except InputError:
            raise
        except Exception:
            raise fail(f"The image {shown} could not be decoded; use {limits.listing}.") from None
    out.info["format"] = getattr(im, "format", None) or "PIL"
    return out


def _from_array(arr: np.ndarray, limits: _Limits, shown: str, reserve=None) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise fail(f"The image array has shape {tuple(arr.shape)}; use (H, W), (H, W, 3) or (H, W, 4).")
    height, width = int(arr.shape[0]), int(arr.shape[1])
    limits.check_size(width, height, shown, reserve)
    kind = arr.dtype.kind
    if arr.dtype == np.uint8:
        u8 = arr
    elif kind == "b":
        u8 = arr.astype(np.uint8) * 255
    elif kind == "f":
        if not np.isfinite(arr).all():
            raise fail("The image array contains NaN or infinite values; use finite values from 0 to 1.")
        if arr.min() < -1e-3 or arr.max() > 1 + 1e-3:
            raise fail(
                f"The float image array has values from {float(arr.min()):g} to {float(arr.max()):g}; "
                "float images must lie in 0..1."
            )
        u8 = np.round(np.clip(arr, 0, 1) * 255).astype(np.uint8)
    elif arr.dtype == np.uint16:
        u8 = (arr >> 8).astype(np.uint8)
    elif kind in "iu":
        if arr.min() < 0 or arr.max() > 255:
            raise fail("The integer image array has values outside 0..255; use uint8 values from 0 to 255.")
        u8 = arr.astype(np.uint8)
    else:
        raise fail(f"The image array has dtype {arr.dtype}; use uint8 (0..255) or float (0..1).")
    if u8.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(u8), "L").convert("RGB")
    if u8.shape[2] == 4:
        alpha = u8[:, :, 3:4].astype(np.float32) / 255.0
        rgb = u8[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        u8 = np.round(rgb).astype(np.uint8)
    return Image.fromarray(np.ascontiguousarray(u8[:, :, :3]), "RGB")


def _image(source: Any, limits: _Limits, shown: str | None = None, reserve=None) -> Image.Image:
    if isinstance(source, Image.Image):
        return _from_pil(source, limits, shown or "", reserve)
    if isinstance(source, np.ndarray):
        return _from_array(source, limits, shown or "", reserve)
    if source is None:
        raise fail("No image was given; upload a " + limits.listing + " file.")
    data, ext, label = read_bounded(source, limits.max_bytes, "image")
    return _decode_bytes(data, limits, shown or label, ext, reserve)


def jpeg_scans(data: bytes) -> int:
    """An upper bound on a JPEG's scans, cheap to take before decoding: the start-of-scan markers (0xFFDA) from the
    first scan on. 0xFFDA cannot occur inside entropy-coded data; before the first scan the segments are walked by
    their lengths, so the bytes of an ICC profile or an APP13 block are not counted (they once refused good
    photos as having "more than 100 scans")."""
    i = 2  # after SOI
    while i + 4 <= len(data) and data[i] == 0xFF:
        marker = data[i + 1]
        if marker == 0xDA:
            return data.count(b"\xff\xda", i)
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker in (0x01, 0xD8) or 0xD0 <= marker <= 0xD7:  # no length
            i += 2
        else:
            i += 2 + int.from_bytes(data[i + 2:i + 4], "big")
    return 0


def image(
    source: ImageSource,
    *,
    max_pixels: int = MAX_IMAGE_PIXELS,
    max_bytes: int = MAX_IMAGE_BYTES,
    min_side: int = MIN_SIDE,
    formats: Sequence[str] = IMAGE_FORMATS,
) -> Image.Image:
    """One image as a new RGB PIL image.

    source: a file path, the file's bytes, a binary file object, a PIL image, or an array (H, W[, 1|3|4]) of
    uint8 0..255 / float 0..1. Files are identified by content, never by name; when the name's extension
    disagrees, the image is still read and `out.info["notice"]` holds one sentence about it (also logged).
    `out.info["format"]` is the detected format. Animations give their first frame; transparency is
    composited over white; EXIF orientation is applied. Sizes are checked from the header before decoding.
    """
    return _image(source, _Limits(max_pixels, max_bytes, min_side, formats))


# ----------------------------------------------------------------------------------------------- view sets

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
            fh, _real, human_size = open_regular(path, "image")
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


def _zip_members(
    source: Any,
    limits: _Limits,
    *,
    max_zip_bytes: int,
    max_entries: int,
    max_uncompressed: int,
    max_count: int,
) -> Iterable[tuple[bytes, str, str]]:
    """Yield (bytes, extension, label) of each image member of a zip, all checked before any is decompressed."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_zip_bytes:
            raise fail(f"The uploaded zip is {human_size(len(source))}; "
                       f"at most {human_size(max_zip_bytes)} is allowed.")
        fh: BinaryIO = io.BytesIO(bytes(source))
        shown, zip_name = "", "the zip"
    else:
        fh, _real, size = open_regular(source, "zip")
        given = given_name(source)
        shown, zip_name = file_label(given), os.path.basename(given)
        if size > max_zip_bytes:
            fh.close()
            raise fail(f"The zip {shown} is {human_size(size)}; at most {human_size(max_zip_bytes)} is allowed.")
        if size == 0:
            fh.close()
            raise fail(f"The zip {shown} is empty (0 bytes).")
    with fh:
        count, cd_size = central_directory(fh, shown)
        # zipfile walks the directory by its byte size, not its declared count, so bound both.
        if count > max_entries or cd_size > max_entries * 1024:
            raise fail(
                f"The zip {shown} has {count:,} entries; at most {max_entries} are allowed "
                f"(and at most {max_count} images)."
            )
        try:
            zf = zipfile.ZipFile(fh)
        except Exception:  # BadZipFile, struct.error, UnicodeDecodeError of a name flagged UTF-8, ...
            raise fail(f"The file {shown} is not a valid zip archive; upload a .zip of images.") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > max_entries:
                raise fail(f"The zip {shown} has {len(infos):,} entries; at most {max_entries} are allowed.")
            members = []
            total = 0
            allowed_ext = sorted(e for e, f in _EXT_FORMAT.items() if f in limits.formats)
            for info in infos:
                name = info.filename
                norm = name.replace("\\", "/")
                parts = [p for p in norm.split("/") if p]
                if (norm.startswith("/") or re.match(r"[A-Za-z]:", norm) or ".." in parts
                        or any(ord(c) < 32 for c in name)):
                    raise fail(
                        f"The zip {shown} contains the unsafe path {quote(name)}; "
                        "only plain relative file names are allowed."
                    )
                if info.is_dir() or not parts:
                    continue
                base = parts[-1]
                if is_archiver_junk(name):
                    continue
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise fail(f"The zip {shown} contains the link {quote(name)}; only image files are allowed.")
                ext = os.path.splitext(base)[1].lower()
                if ext not in allowed_ext:
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
            members.sort(key=lambda i: _natural_key(i.filename))
            for info in members:
                label = quote(f"{os.path.basename(info.filename)} in {zip_name}")
                try:
                    with zf.open(info) as member:
                        data = member.read(limits.max_bytes + 1)
                except Exception:  # BadZipFile (CRC), zlib.error, EOFError, overlapping entries, ...
                    raise fail(f"The file {label} is damaged in the archive (bad data or checksum).") from None
                if len(data) > limits.max_bytes:  # the declared size lied
                    raise fail(
                        f"The file {label} is too large; at most {human_size(limits.max_bytes)} per image is allowed."
                    )
                yield data, os.path.splitext(info.filename)[1].lower(), label


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
    limits = _Limits(max_pixels, max_bytes, min_side, formats)
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
                out.append(_decode_bytes(data, limits, label, ext, reserve))
        else:
            room()
            out.append(_image(item, limits, reserve=reserve))
    if len(out) < min_count:
        given = f"Only {len(out)}" if out else "No"
        raise fail(f"{given} images were given; upload between {min_count} and {max_count}.")
    return out


# ----------------------------------------------------------------------------------------------- video

_VIDEO_KINDS = "MP4, MOV, WEBM, MKV or GIF"


def _video_demuxer(head: bytes) -> str | None:
    """The one ffmpeg demuxer we allow for this content, chosen by magic number so ffmpeg never guesses
    (guessing would let a file be read as a playlist that names other files)."""
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip") and head[4:12] not in (
        b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif",
    ):
        return "mov"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    return None


class _Frames:
    """Where decoded frames go: one preallocated (capacity, H, W, 3) uint8 array, so the memory is the kept frames
    and nothing more (no allocation per frame, no stacking copy at the end).

    want=None keeps every frame, up to `capacity` (on_full() raises beyond it). With `want` and a known frame
    count `expected`, the kept indices are planned up front (evenly spread, first and last included) and only
    those are stored; with `want` but no count, every frame is stored and `want` are picked at the end.
    """

    def __init__(self, shape: tuple[int, int], want: int | None, expected: int | None, capacity: int, on_full):
        self.want, self.on_full = want, on_full
        self.plan: dict[int, int] | None = None
        if want is not None and expected:
            picks = np.unique(np.round(np.linspace(0, expected - 1, min(want, expected))).astype(int))
            self.plan = {int(i): k for k, i in enumerate(picks)}
            capacity = len(picks)
        self.buffer = np.empty((max(1, capacity), shape[0], shape[1], 3), np.uint8)
        self.capacity = capacity
        self.scratch: np.ndarray | None = None
        self.count = 0
        self.seen = 0

    def wanted(self, index: int) -> bool:
        return index in self.plan if self.plan is not None else self.count < self.capacity

    def slot(self, index: int) -> np.ndarray:
        """The (H, W, 3) array that frame `index` should be written into."""
        if self.plan is not None and index in self.plan:
            return self.buffer[self.plan[index]]
        if self.plan is None and self.count < self.capacity:
            return self.buffer[self.count]
        if self.scratch is None:
            self.scratch = np.empty(self.buffer.shape[1:], np.uint8)
        return self.scratch

    def commit(self, index: int) -> None:
        """Frame `index` has been written into slot(index)."""
        self.seen = index + 1
        if self.plan is not None:
            self.count += index in self.plan
        elif self.count < self.capacity:
            self.count += 1
        else:
            self.on_full()

    def put(self, index: int, frame: np.ndarray) -> None:
        if self.wanted(index):
            self.slot(index)[...] = frame
        self.commit(index)

    def result(self) -> np.ndarray:
        n = self.count
        if self.plan is None and self.want is not None and n > self.want:
            # Unknown length: pick `want` evenly, moving them forward in place (pick[j] >= j, so no overwrites).
            for j, i in enumerate(np.round(np.linspace(0, n - 1, self.want)).astype(int)):
                if i != j:
                    self.buffer[j] = self.buffer[i]
            n = self.want
        return self.buffer[:n]


def _too_much_work(shown: str, width: int, height: int, work: int) -> InputError:
    return fail(
        f"The video {shown} is {width}x{height} pixels, so at most {max(1, work // (width * height))} of its frames "
        "can be decoded; trim it or lower its resolution."
    )


def _gif_scan(data: bytes, stop_after: int, max_blocks: int = 1_000_000) -> tuple[int, int, int, int]:
    """(frames, total delay in ms, canvas width, canvas height) from a GIF's block structure, decoding no pixels.

    Delays of 0-10 ms count as 100 ms, as browsers play them. The canvas grows to cover every frame (as Pillow
    does). Stops after `stop_after` + 1 frames; raises ValueError when the structure is broken or has more than
    `max_blocks` data sub-blocks (a normal GIF has one per 255 bytes, so that is about 250 MB).
    """
    n = len(data)
    if n < 13:
        raise ValueError("too short")
    width, height = struct.unpack("<HH", data[6:10])
    pos = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    frames = total_ms = delay = blocks = 0
    while pos < n:
        kind = data[pos]
        pos += 1
        if kind == 0x3B:  # trailer
            break
        if kind == 0x21:  # extension: label, then sub-blocks
            if pos >= n:
                raise ValueError("truncated extension")
            if data[pos] == 0xF9 and pos + 5 <= n and data[pos + 1] >= 4:
                delay = 10 * struct.unpack("<H", data[pos + 3 : pos + 5])[0]
            pos += 1
        elif kind == 0x2C:  # image: descriptor, optional palette, LZW code size, sub-blocks
            if pos + 10 > n:
                raise ValueError("truncated image descriptor")
            x0, y0, w, h = struct.unpack("<4H", data[pos : pos + 8])
            flags = data[pos + 8]
            width, height = max(width, x0 + w), max(height, y0 + h)
            pos += 9 + (3 << ((flags & 7) + 1) if flags & 0x80 else 0) + 1
            frames += 1
            total_ms += 100 if delay <= 10 else delay
            delay = 0
        else:
            break  # not a GIF block: the animation ends here
        while True:  # skip the sub-blocks
            if pos >= n:
                raise ValueError("truncated data")
            size = data[pos]
            pos += 1 + size
            blocks += 1
            if size == 0:
                break
            if blocks > max_blocks:
                raise ValueError("too many blocks")
        if frames > stop_after:
            break
    return frames, total_ms, width, height


def _gif_video(data: bytes, shown: str, *, max_seconds, max_frames, max_side, min_side, want, budget, work,
               deadline):
    damaged = f"The animation {shown} is damaged and could not be decoded; re-export it as GIF or MP4."
    try:
        count, total_ms, width, height = _gif_scan(data, max_frames)
    except ValueError:
        raise fail(damaged) from None
    if count == 0:
        raise fail(f"The animation {shown} has no frames.")
    if max(width, height) > max_side or min(width, height) < min_side:
        raise fail(
            f"The animation {shown} is {width}x{height} pixels; each side must be from {min_side} to {max_side} pixels."
        )
    if count > max_frames:
        raise fail(f"The animation {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
    if total_ms > max_seconds * 1000:
        raise fail(
            f"The animation {shown} is {total_ms / 1000:.1f} s long; at most {human_number(max_seconds)} s is allowed."
        )
    if count * width * height > work:
        raise _too_much_work(shown, width, height, work)
    frame_bytes = width * height * 3
    keep = want or count
    if min(keep, count) * frame_bytes > budget:
        raise fail(
            f"Keeping {min(keep, count)} frames of {width}x{height} needs "
            f"{human_size(min(keep, count) * frame_bytes)}; "
            f"at most {human_size(budget)} is allowed, so use at most {max(1, budget // frame_bytes)} frames or a "
            "smaller animation."
        )

    def full() -> None:  # more frames than the scan counted: Pillow and the scan disagree
        raise fail(damaged)

    store = _Frames((height, width), want, count, count, full)
    decoded_pixels = 0
    index = 0
    with pillow_pixel_limit(max_side * max_side):
        try:
            im = Image.open(io.BytesIO(data), formats=["GIF"])
        except Exception:
            raise fail(damaged) from None
        with im:
            try:
                while True:
                    if index:
                        try:
                            im.seek(index)
                        except EOFError:
                            break
                    # The scan bounds these already; checked again in case Pillow reads the file differently.
                    if index >= max_frames or max(im.size) > max_side:
                        raise fail(damaged)
                    decoded_pixels += im.width * im.height
                    if decoded_pixels > work:
                        raise _too_much_work(shown, im.width, im.height, work)
                    if time.monotonic() > deadline:
                        raise fail(f"The animation {shown} took too long to decode; use a shorter or smaller one.")
                    im.load()
                    frame = _to_rgb(im)
                    if frame.size != (width, height):  # Pillow grew the canvas for a later, larger frame
                        if frame.width > width or frame.height > height:
                            raise fail(damaged)
                        canvas = Image.new("RGB", (width, height), (255, 255, 255))
                        canvas.paste(frame, (0, 0))
                        frame = canvas
                    store.put(index, np.asarray(frame))
                    index += 1
            except InputError:
                raise
            except Exception:
                raise fail(damaged) from None
    if not store.count:
        raise fail(f"The animation {shown} has no frames that could be decoded.")
    frames = store.result()
    fps = count / (total_ms / 1000.0)
    return frames, float(fps * len(frames) / index)


def video(
    path: PathLike,
    *,
    max_seconds: float = MAX_VIDEO_SECONDS,
    max_frames: int = MAX_VIDEO_FRAMES,
    max_side: int = MAX_VIDEO_SIDE,
    sample: int | None = None,
    min_side: int = MIN_SIDE,
    max_bytes: int = MAX_VIDEO_BYTES,
    max_kept_bytes: int = MAX_VIDEO_KEPT_BYTES,
    max_decode_pixels: int = MAX_VIDEO_DECODE_PIXELS,
    max_decode_seconds: float = MAX_VIDEO_DECODE_SECONDS,
) -> tuple[np.ndarray, float]:
    """A short clip as frames (T, H, W, 3) uint8 and its frame rate in frames per second.

    MP4/MOV (demuxed as mov) and WEBM/MKV (matroska) through imageio-ffmpeg's ffmpeg, GIF through Pillow. The
    container's duration, frame rate and frame size are probed before any frame is decoded; ffmpeg is told to
    stop after max_seconds + 1 s and the frame caps, and is killed at the deadline, so a container that lies is
    still bounded. Rotation metadata (multiples of 90 degrees) is applied, as players do.
    sample: keep this many frames spread evenly over the clip (fps is scaled so the duration stays the same);
    None keeps every frame, which must be at most max_frames and fit in max_kept_bytes.
    max_decode_pixels bounds the decoding work (frames decoded x width x height) whichever frames are kept;
    max_decode_seconds is a last-resort wall-clock stop.
    """
    want = None if sample is None else int(number("number of frames", sample, lo=1, hi=max_frames, integer=True))
    if not isinstance(path, (str, os.PathLike)):
        raise fail(f"The video must be given as a file path, not {type(path).__name__}; save the upload first.")
    fh, real, size = open_regular(path, "video")
    shown = file_label(given_name(path))
    with fh:
        if size == 0:
            raise fail(f"The video {shown} is empty (0 bytes).")
        if size > max_bytes:
            raise fail(f"The video {shown} is {human_size(size)}; at most {human_size(max_bytes)} is allowed.")
        head = fh.read(64)
        demuxer = _video_demuxer(head)
        if demuxer is None:
            raise fail(f"The file {shown} is not a video in an allowed format; use {_VIDEO_KINDS}.")
        data = head + fh.read(max_bytes) if demuxer == "gif" else b""
    deadline = time.monotonic() + max_decode_seconds
    if demuxer == "gif":
        return _gif_video(
            data, shown, max_seconds=max_seconds, max_frames=max_frames, max_side=max_side, min_side=min_side,
            want=want, budget=max_kept_bytes, work=max_decode_pixels, deadline=deadline,
        )
    return _ffmpeg_video(
        real, demuxer, shown, max_seconds=max_seconds, max_frames=max_frames, max_side=max_side,
        min_side=min_side, want=want, budget=max_kept_bytes, work=max_decode_pixels, deadline=deadline,
    )


# Anchored on ffmpeg's exact two-space indent: metadata lines (which a file controls) are indented by 4 or more.
_PROBE_DURATION = re.compile(r"^  Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)", re.M)
_PROBE_VIDEO = re.compile(r"^  Stream #0:\d+\S*: Video: (.*)$", re.M)
_PROBE_SIZE = re.compile(r", (\d{1,6})x(\d{1,6})(?=[ ,\[]|$)")
_PROBE_FPS = re.compile(r", (\d+(?:\.\d+)?) fps")
_PROBE_TBR = re.compile(r", (\d+(?:\.\d+)?) tbr")
_PROBE_ROTATION = re.compile(r"^[ \t]*Display Matrix: rotation of (-?\d+(?:\.\d+)?) degrees", re.M)


def video_frame_size(path: str) -> tuple[int, int] | None:
    """(width, height) of a clip's frames from its header, by the decoder's own probe: the demuxer chosen by magic
    number (never guessed: a playlist naming another server-local file is never opened) and the Video stream line
    anchored as ffmpeg writes it (a metadata title cannot pose as one). None when the header does not say."""
    fh, real, _ = open_regular(path, "video")
    with fh:
        head = fh.read(64)
    demuxer = _video_demuxer(head)
    if demuxer is None or demuxer == "gif":  # not a video we read; GIFs are sized by Pillow (`budget.video_size`)
        return None
    stream = _PROBE_VIDEO.search(_ffmpeg_probe(real, demuxer, timeout=10.0))
    size = _PROBE_SIZE.search(stream.group(1)) if stream else None
    return (int(size.group(1)), int(size.group(2))) if size else None


_PROBE_AUDIO = re.compile(r"^  Stream #0:\d+\S*: Audio: ", re.M)


def add_audio(video: PathLike, source: PathLike, out: PathLike, timeout: float = 60.0) -> bool:
    """Write `out`: the pictures of `video` (an mp4 this program wrote, copied as they are) with the first sound
    track of `source` (the visitor's clip, opened as `video()` opens it: its demuxer chosen by magic number, the
    file protocol only), re-encoded as AAC and cut to the pictures' length. False, and nothing written, when the
    source has no sound, is a GIF, or ffmpeg fails or takes longer than `timeout` seconds: the edit stays silent."""
    fh, real, _ = open_regular(source, "video")
    with fh:
        demuxer = _video_demuxer(fh.read(64))
    if demuxer in (None, "gif") or not _PROBE_AUDIO.search(_ffmpeg_probe(real, demuxer, timeout=10.0)):
        return False
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-protocol_whitelist", "file",
           "-f", "mp4", "-i", str(video), "-f", demuxer, "-i", real, "-map", "0:v:0", "-map", "1:a:0",
           "-c:v", "copy", "-c:a", "aac", "-shortest", "-f", "mp4", str(out)]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        done = None
    if done is None or done.returncode != 0:
        with contextlib.suppress(OSError):
            os.unlink(out)
        return False
    return True


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg  # the ffmpeg binary imageio uses; loaded only when a video arrives

    return imageio_ffmpeg.get_ffmpeg_exe()


def _ffmpeg_probe(real: str, demuxer: str, timeout: float) -> str:
    """ffmpeg's description of the input (no output, nothing decoded), or '' when it could not say in time."""
    cmd = [_ffmpeg_exe(), "-hide_banner", "-nostdin", "-protocol_whitelist", "file", "-f", demuxer, "-i", real]
    try:
        done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return ""
    return done.stderr[: 1 << 20].decode("utf-8", "replace")


def _read_frame(pipe, frame: np.ndarray, deadline: float, stall_s: float) -> bool:
    """Fill `frame` from the raw pipe; False at a clean end of stream. Never blocks past the deadline."""
    view = memoryview(frame).cast("B")
    got = 0
    while got < len(view):
        if os.name == "posix":
            wait = min(deadline - time.monotonic(), stall_s)
            if wait <= 0 or not select.select([pipe], [], [], wait)[0]:
                raise TimeoutError
        n = pipe.readinto(view[got:])
        if not n:
            return False  # end of stream (a partial last frame is dropped)
        got += n
    return True


def _ffmpeg_video(real, demuxer, shown, *, max_seconds, max_frames, max_side, min_side, want, budget, work,
                  deadline):
    """Decode with imageio-ffmpeg's ffmpeg binary in our own subprocess.

    imageio's reader waits up to 10 s for a log line it can parse, and a damaged file can print a warning that
    hides that line (found by fuzzing), so we probe the container ourselves (2 s limit, nothing decoded), then
    read raw RGB frames of the probed size from a pipe with a wall-clock deadline, and kill ffmpeg when done.
    ffmpeg is given the demuxer (no format guessing), only the file protocol, no autorotation (we rotate by
    the probed display matrix, in multiples of 90 degrees), and the time and frame caps.
    """
    damaged = f"The video {shown} is damaged or uses an unsupported codec; re-encode it as MP4 (H.264)."
    info = _ffmpeg_probe(real, demuxer, timeout=2.0)
    stream = _PROBE_VIDEO.search(info)
    size = _PROBE_SIZE.search(stream.group(1)) if stream else None
    if info and "Input #0" in info and stream is None and re.search(r"^  Stream #0:\d+\S*: Audio: ", info, re.M):
        raise fail(f"The file {shown} holds only sound, no pictures; give a video clip.")  # not "damaged"
    if not info or "Input #0" not in info or size is None:
        raise fail(damaged)
    width, height = int(size.group(1)), int(size.group(2))
    found = _PROBE_FPS.search(stream.group(1)) or _PROBE_TBR.search(stream.group(1))
    fps = float(found.group(1)) if found else 0.0
    if not 0 < fps <= 1000:
        fps = 0.0
    found = _PROBE_DURATION.search(info)
    duration = 3600 * int(found.group(1)) + 60 * int(found.group(2)) + float(found.group(3)) if found else 0.0
    found = _PROBE_ROTATION.search(info)
    turns = 0
    if found:  # counter-clockwise degrees to display correctly; ffmpeg itself ignores odd angles too
        angle = float(found.group(1)) % 360
        if min(abs(angle - q) for q in (0, 90, 180, 270, 360)) < 1:
            turns = int(round(angle / 90)) % 4

    if max(width, height) > max_side or min(width, height) < min_side:
        raise fail(
            f"The video {shown} is {width}x{height} pixels; each side must be from {min_side} to {max_side} pixels."
        )
    if duration > max_seconds:
        raise fail(f"The video {shown} is {duration:.1f} s long; at most {human_number(max_seconds)} s is allowed.")
    expected = int(math.ceil(duration * fps - 1e-6)) if duration and fps else None
    if expected and expected > max_frames:
        raise fail(
            f"The video {shown} has about {expected} frames; at most {max_frames} are allowed, "
            "so trim it or lower its frame rate."
        )
    if expected and expected * width * height > work:
        raise _too_much_work(shown, width, height, work)
    frame_bytes = width * height * 3
    keep = want if want is not None else expected
    if keep and keep * frame_bytes > budget:
        fits = max(1, budget // frame_bytes)
        seconds = f" ({fits / fps:.1f} s at its {fps:g} fps)" if fps else ""
        raise fail(
            f"Keeping {keep} frames of {width}x{height} needs {human_size(keep * frame_bytes)}; at most "
            f"{human_size(budget)} is allowed, so use a clip of at most {fits} frames{seconds} or a smaller video."
        )

    cap = min(max_frames, work // (width * height))
    shape = (width, height) if turns % 2 else (height, width)

    def full() -> None:
        if cap * frame_bytes > budget:
            raise fail(
                f"The video {shown} needs more than {human_size(budget)} once decoded; use at most "
                f"{max(1, budget // frame_bytes)} frames or a smaller video."
            )
        if cap == max_frames:
            raise fail(f"The video {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
        raise _too_much_work(shown, width, height, work)

    store = _Frames(shape, want, expected, min(cap, budget // frame_bytes), full)
    cmd = [
        _ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "quiet", "-protocol_whitelist", "file",
        "-noautorotate", "-f", demuxer, "-t", f"{max_seconds + 1:g}", "-i", real,
        "-map", "0:v:0", "-an", "-sn", "-dn", "-frames:v", str(cap + 1),
        "-vf", f"scale={width}:{height}", "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            bufsize=0)
    raw = np.empty((height, width, 3), np.uint8) if turns else None
    try:
        index = 0
        while True:
            target = raw if turns else store.slot(index)
            try:
                if not _read_frame(proc.stdout, target, deadline, stall_s=5.0):
                    break
            except TimeoutError:
                raise fail(f"The video {shown} took too long to decode; use a shorter or smaller clip.") from None
            if index >= max_frames:
                raise fail(f"The video {shown} has more than {max_frames} frames; at most {max_frames} are allowed.")
            if index >= cap:
                raise _too_much_work(shown, width, height, work)
            if turns:
                store.put(index, np.rot90(raw, turns))
            else:
                store.commit(index)
            index += 1
    except InputError:
        raise
    except Exception:
        raise fail(damaged) from None
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.wait()
    decoded = store.seen
    if decoded == 0:
        raise fail(f"The video {shown} has no frames that could be decoded; re-encode it as MP4 (H.264).")
    if fps == 0.0:
        fps = decoded / duration if duration > 0 else 30.0
        log.warning("frame rate of %s unknown; using %.3g fps", shown, fps)
    if decoded / fps > max_seconds + 0.5:  # the container under-reported its length
        limit = human_number(max_seconds)
        raise fail(f"The video {shown} is longer than {limit} s; at most {limit} s is allowed.")
    frames = store.result()
    return frames, float(fps * len(frames) / decoded)
