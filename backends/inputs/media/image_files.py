"""One image, bounded: a file path, its bytes, a binary file object, a PIL image or an array, as a new RGB image.

The file's size is checked by `stat` before it is read, its pixel count and sides from the header before it is
decoded (Pillow's decompression-bomb guard set to the limit meanwhile), and a JPEG's scans are counted first.
Defaults: 30 MB file, 4096x4096 pixels, sides >= 8 px, PNG/JPEG/WEBP/BMP/GIF (the first frame of animations).
"""
from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ...core.errors import InputError
from ..validate import MB, PathLike, fail, or_list, read_bounded
from .shared import EXT_FORMAT, MIN_SIDE, pillow_pixel_limit, to_rgb

log = logging.getLogger(__name__)

ImageSource = Union[PathLike, bytes, bytearray, memoryview, Image.Image, np.ndarray, BinaryIO]

IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_IMAGE_BYTES = 30 * MB
MAX_JPEG_SCANS = 100  # progressive JPEGs use ~10; each scan is a full pass over the image (a known DoS)

# Magic numbers of formats people upload by mistake, only to name them in the message.
_KNOWN_OTHER = (
    (b"II*\x00", "a TIFF image"), (b"MM\x00*", "a TIFF image"), (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive"), (b"8BPS", "a Photoshop file"), (b"\x00\x00\x01\x00", "an icon file"),
)


class Limits:
    """What one image may be: at most `max_pixels` pixels and `max_bytes` bytes, sides of at least `min_side`, one
    of the Pillow `formats`. A view set checks each of its images against one of these."""

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


def decode_bytes(data: bytes, limits: Limits, shown: str, ext: str | None, reserve=None) -> Image.Image:
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
            out = to_rgb(im)
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
    claimed = EXT_FORMAT.get(ext or "")
    if ext and claimed != fmt:
        notice = f"The file {shown} is named {ext} but contains a {fmt} image; it was read as {fmt}."
        out.info["notice"] = notice
        log.warning(notice)
    return out


def _from_pil(im: Image.Image, limits: Limits, shown: str, reserve=None) -> Image.Image:
    limits.check_size(im.width, im.height, shown, reserve)
    with pillow_pixel_limit(limits.max_pixels):
        try:
            if getattr(im, "is_animated", False):
                im.seek(0)
            im.load()
            out = to_rgb(im)
        except InputError:
            raise
        except Exception:
            raise fail(f"The image {shown} could not be decoded; use {limits.listing}.") from None
    out.info["format"] = getattr(im, "format", None) or "PIL"
    return out


def _from_array(arr: np.ndarray, limits: Limits, shown: str, reserve=None) -> Image.Image:
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


def read_image(source: Any, limits: Limits, shown: str | None = None, reserve=None) -> Image.Image:
    """`image` with its limits made: any source it takes, labelled `shown` in messages (else by its file name).
    reserve(width, height, shown), when given, is called with the header's size before decoding (a view set
    counts its pixels there) and raises to refuse."""
    if isinstance(source, Image.Image):
        return _from_pil(source, limits, shown or "", reserve)
    if isinstance(source, np.ndarray):
        return _from_array(source, limits, shown or "", reserve)
    if source is None:
        raise fail("No image was given; upload a " + limits.listing + " file.")
    data, ext, label = read_bounded(source, limits.max_bytes, "image")
    return decode_bytes(data, limits, shown or label, ext, reserve)


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
    return read_image(source, Limits(max_pixels, max_bytes, min_side, formats))


