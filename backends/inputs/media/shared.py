"""What images, view sets and videos share: Pillow's pixel guard, the conversion to RGB, the extensions of the
image formats, the smallest side, and the one bounded read of a file's header (`read_head`, which the budget's
size estimates use, so the estimate and the decoder refuse an empty or oversized file with the same sentence).
"""
from __future__ import annotations

import contextlib
import io
import threading
import warnings

import numpy as np
from PIL import Image

from ..validate import PathLike, open_bounded

# Pillow warns on stderr about a damaged EXIF block ("Corrupt EXIF data", "Possibly corrupt EXIF data", "Truncated
# File Read", "Metadata Warning, tag 274 had too many entries" from its TIFF reader of the block), which phones and
# editors often write; the pixels are read all the same (the orientation is none, or the tag's first value), so a
# successful run stays quiet. A filter for the process rather than catch_warnings around the decode: that swaps the
# process's filter list and is not safe with the app's threads.
warnings.filterwarnings("ignore", message=r"(Possibly )?[Cc]orrupt EXIF", category=UserWarning, module=r"PIL\.")
warnings.filterwarnings("ignore", message="Truncated File Read", category=UserWarning, module=r"PIL\.TiffImagePlugin")
warnings.filterwarnings("ignore", message=r"Metadata Warning, tag \d+ had too many entries", category=UserWarning,
                        module=r"PIL\.TiffImagePlugin")  # an EXIF tag such as Orientation given twice

MIN_SIDE = 8
HEADER_BYTES = 256 * 1024  # enough for any image header (JPEG SOF after a large EXIF block included)

# The format each image extension claims: a file is read by its content, and a name that disagrees gets a notice;
# a view set's zip admits members by these extensions.
EXT_FORMAT = {
    ".png": "PNG", ".apng": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".jpe": "JPEG", ".jfif": "JPEG",
    ".webp": "WEBP", ".bmp": "BMP", ".dib": "BMP", ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF",
}

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


def to_rgb(im: Image.Image) -> Image.Image:
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


def read_head(path: PathLike, noun: str, max_bytes: int, count: int = HEADER_BYTES) -> bytes:
    """The first `count` bytes of a regular file that is not empty and holds at most `max_bytes` (the decoders'
    rule, `validate.open_bounded`: a FIFO or a device is refused, never read; one sentence naming the file)."""
    fh, _real, _size, _shown = open_bounded(path, noun, max_bytes)
    with fh:
        return fh.read(count)


def header_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first bytes of an image file, nothing decoded; None when Pillow cannot tell from
    these bytes (the full decoder then gives the precise sentence)."""
    try:
        with Image.open(io.BytesIO(head)) as im:
            return tuple(im.size)
    except Exception:  # any failure: the decoder says what is wrong with the file
        return None
