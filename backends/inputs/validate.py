"""The gate every value passes through: prompts, numbers, options, files (regular, bounded), SVG bytes. Media
decoding (images, view sets, videos) is `backends/inputs/media/`, which reads its files through the readers here.

The UI, the CLI and the Python API all call these functions, so a hostile upload is refused the same way
everywhere. Each function returns a clean value or raises `InputError` whose message is one sentence for the
person who sent the input: what is wrong and what is allowed. Nothing here writes files.

Every check is bounded *before* the expensive part: file sizes from `stat`, image sizes from the header
(Pillow's decompression-bomb guard set to the caller's limit while we decode), zip sizes and member counts from
the central directory, video length and resolution from an ffmpeg probe (or a GIF block scan) before frames
are decoded, and ffmpeg itself is told to stop after the frame and time limits and killed at a deadline. So
hostile input is refused in well under 2 s, and no check holds more than the frames it returns plus ~250 MB
(one 4096x4096 RGBA image being flattened).

Default limits (each one a keyword argument):
    images: 30 MB file, 4096x4096 pixels, sides >= 8 px, PNG/JPEG/WEBP/BMP/GIF (first frame of animations)
    view sets: 32 images, 32 Mpx in total; zip: 100 MB, 256 entries, 256 MB uncompressed, stored/deflate only
    videos: 200 MB file, 20 s, 300 decoded frames, sides <= 4096 px, 640 Mpx decoded a pass (all 300 frames of
        1080p; 80 frames of 4K UHD), 256 MB of kept frames, MP4/MOV/WEBM/MKV/GIF (`media`'s video readers)
    SVG: 2 MB, 20,000 elements, UTF-8/UTF-16 text, no XML entity declarations
    prompts: 1000 characters after NFC normalization, no control characters except newline and tab
"""
from __future__ import annotations

import logging
import math
import numbers
import os
import re
import stat
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any, BinaryIO, Union

import numpy as np

from backends.core.errors import InputError

log = logging.getLogger(__name__)

MB = 1024 * 1024

MAX_SVG_BYTES = 2 * MB
MAX_SVG_ELEMENTS = 20_000

PathLike = Union[str, "os.PathLike[str]"]

def fail(message: str) -> InputError:
    """An InputError whose text is one line (user-supplied parts are already passed through `quote`)."""
    return InputError(" ".join(message.split()))


def quote(text: object, limit: int = 60) -> str:
    """A user-supplied value made safe to show inside a one-line message: printable, short, quoted."""
    text = str(text)
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in text[: limit + 1])
    if len(text) > limit:
        cleaned = cleaned[: limit - 3] + "..."
    return f"'{cleaned}'"


def human_size(n: float) -> str:
    """Bytes as '2 MB' / '30.5 MB' / '512 KB' for messages."""
    if n >= MB:
        return f"{n / MB:.1f}".rstrip("0").rstrip(".") + " MB"
    if n >= 1024:
        return f"{n / 1024:.0f} KB"
    return f"{int(n)} bytes"


def human_number(x: float) -> str:
    """A limit as people write it: 1000, 0.5, 1e-06."""
    x = float(x)
    if x.is_integer() and abs(x) < 1e15:
        return str(int(x))
    return f"{x:g}"


def or_list(items: Sequence[str]) -> str:
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " or " + items[-1]


# ----------------------------------------------------------------------------------------------- text

_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def prompt(text: Any, *, name: str = "prompt", required: bool = True, max_chars: int = 1000) -> str:
    """A prompt-like text field, NFC-normalized and stripped; '' only when `required` is False.

    Line endings become '\\n'. Rejected: non-text, empty (when required), longer than `max_chars` characters
    after normalization, control characters other than newline and tab, unpaired surrogates.
    """
    if text is None:
        text = ""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise fail(f"The {name} is not valid UTF-8 text; send plain text.") from None
    if not isinstance(text, str):
        raise fail(f"The {name} must be text, not {type(text).__name__}.")
    # NFC can grow a string at most 3x; refuse absurd lengths before doing any per-character work.
    if len(text) > 4 * max_chars + 64:
        raise fail(f"The {name} is {len(text):,} characters long; at most {max_chars:,} are allowed.")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    bad = _CONTROL.search(text)
    if bad is None:
        text = unicodedata.normalize("NFC", text).strip()
        bad = _CONTROL.search(text)
    else:
        text = text.strip()
        bad = _CONTROL.search(text)
    if bad is not None:
        what = "an unpaired surrogate" if 0xD800 <= ord(bad.group()) <= 0xDFFF else "a control character"
        raise fail(
            f"The {name} contains {what} (U+{ord(bad.group()):04X}); "
            "only printable text, spaces, tabs and newlines are allowed."
        )
    if not text and required:
        raise fail(f"The {name} is empty; enter between 1 and {max_chars:,} characters.")
    if len(text) > max_chars:
        raise fail(f"The {name} is {len(text):,} characters long; at most {max_chars:,} are allowed.")
    return text


_INT_TEXT = re.compile(r"[+-]?\d[\d_]*")


def number(name: str, value: Any, *, lo: float, hi: float, integer: bool = False) -> float | int:
    """A finite number in [lo, hi] from a number or a string (CLI); an int when `integer` is True, else a float.

    bool, NaN, inf, non-whole values (when `integer`) and text that is not a plain number are rejected.
    """
    kind = "whole number" if integer else "number"
    shown = quote(value.strip() if isinstance(value, str) else value) if isinstance(value, (str, numbers.Number)) \
        else f"a {type(value).__name__}"

    def bad() -> InputError:
        return fail(f"The {name} must be a {kind} from {human_number(lo)} to {human_number(hi)}; got {shown}.")

    parsed: Any
    if isinstance(value, (bool, np.bool_)) or value is None:
        raise bad()
    if isinstance(value, str):
        text = value.strip()
        if not text or len(text) > 64:
            raise bad()
        try:
            parsed = int(text) if _INT_TEXT.fullmatch(text) else float(text)
        except ValueError:
            raise bad() from None
    elif isinstance(value, numbers.Real):
        parsed = value
    else:
        raise bad()
    try:
        if isinstance(parsed, numbers.Integral):
            parsed = int(parsed)
        else:
            parsed = float(parsed)
            if not math.isfinite(parsed):
                raise bad()
            if integer:
                if not parsed.is_integer():
                    raise bad()
                parsed = int(parsed)
        if not lo <= parsed <= hi:
            raise bad()
        return int(parsed) if integer else float(parsed)
    except (OverflowError, ValueError, TypeError) as err:
        if isinstance(err, InputError):
            raise
        raise bad() from None


def choice(name: str, value: Any, options: Iterable[Any]) -> Any:
    """One of `options`, returned as the option itself; text matches ignoring case and surrounding spaces."""
    opts = list(options)
    for option in opts:
        try:
            if type(option) is type(value) and bool(option == value):
                return option
        except Exception:  # a value whose == is not a plain bool (arrays, odd objects): not a match
            continue
    if isinstance(value, str):
        key = value.strip().casefold()
        for option in opts:
            if isinstance(option, str) and option.casefold() == key:
                return option
    shown = [str(o) for o in opts[:12]] + ([f"... ({len(opts)} in all)"] if len(opts) > 12 else [])
    got = quote(value) if isinstance(value, (str, numbers.Number)) else f"a {type(value).__name__}"
    raise fail(f"The {name} must be one of {', '.join(shown)}; got {got}.")


# ----------------------------------------------------------------------------------------------- files

def quote_path(path: object, limit: int = 80) -> str:
    """A path for a one-line message, printable and quoted. A long one keeps its end, where the file's own name is,
    and drops the start: cut at the end, '/tmp/.../none.toml' read 'none.to' and named another file."""
    text = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    if len(text) > limit:
        text = "..." + text[-(limit - 3):]
    return quote(text, limit)  # within the limit now: quote only makes it printable


def file_label(path: PathLike) -> str:
    """The base name of a path, for messages (never the server's folders)."""
    return quote(os.path.basename(os.fspath(path)) or os.fspath(path))


def open_regular(path: Any, noun: str) -> tuple[BinaryIO, str, int]:
    """Open `path` for reading if it is a regular file: (file, absolute real path, size in bytes).

    O_NONBLOCK plus fstat on the open descriptor, so a FIFO or device swapped in cannot make us block.
    """
    try:
        raw = os.fspath(path)
    except TypeError:
        raise fail(f"The {noun} must be given as a file path, not {type(path).__name__}.") from None
    if isinstance(raw, bytes):
        raw = os.fsdecode(raw)
    if not raw or "\x00" in raw:
        raise fail(f"The {noun} path is empty or contains a NUL character; give the path of a file.")
    shown = file_label(raw)
    try:
        fd = os.open(raw, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise fail(f"The {noun} file {shown} does not exist.") from None
    except OSError:
        raise fail(f"The {noun} file {shown} could not be opened; check that it is a readable file.") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            article = "an" if noun[0] in "aeiou" else "a"
            raise fail(f"The path {shown} is not a regular file; upload {article} {noun} file.")
        fh = os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise
    return fh, os.path.realpath(raw), st.st_size


def open_bounded(path: Any, noun: str, max_bytes: int) -> tuple[BinaryIO, str, int, str]:
    """`open_regular`, refusing an empty file and one over `max_bytes` by its size before a byte is read:
    (file, absolute real path, size in bytes, the file's label for messages). The one rule that bounds a file's
    read: the decoders in `backends.inputs.media` and the budget's header reads all open files here, so each refuses
    the same file with the same sentence."""
    fh, real, size = open_regular(path, noun)
    shown = file_label(given_name(path))
    if size == 0 or size > max_bytes:
        fh.close()
        if size == 0:
            raise fail(f"The {noun} {shown} is empty (0 bytes).")
        raise fail(f"The {noun} {shown} is {human_size(size)}; at most {human_size(max_bytes)} is allowed.")
    return fh, real, size, shown


def given_name(path: Any) -> str:
    """The path as the caller named it (not resolved), for messages and the extension check."""
    raw = os.fspath(path)
    return os.fsdecode(raw) if isinstance(raw, bytes) else raw


def read_bounded(source: Any, max_bytes: int, noun: str) -> tuple[bytes, str | None, str]:
    """The bytes of a path, bytes-like or binary file object, refusing more than `max_bytes`.

    Returns (data, file extension or None, label for messages).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) > max_bytes:
            raise fail(f"The {noun} is {human_size(len(source))}; at most {human_size(max_bytes)} is allowed.")
        data = bytes(source)
        ext, shown = None, ""  # messages then read "The image is ..."
    elif hasattr(source, "read") and not isinstance(source, (str, os.PathLike)):
        try:
            data = source.read(max_bytes + 1)
        except Exception:
            raise fail(f"The uploaded {noun} could not be read.") from None
        if not isinstance(data, (bytes, bytearray)):
            raise fail(f"The uploaded {noun} must be opened in binary mode.")
        name = getattr(source, "name", None)
        ext = os.path.splitext(name)[1].lower() if isinstance(name, str) else None
        shown = file_label(name) if isinstance(name, str) else ""
    else:
        fh, _real, _size, shown = open_bounded(source, noun, max_bytes)
        ext = os.path.splitext(given_name(source))[1].lower()
        with fh:
            data = fh.read(max_bytes + 1)
    if not data:
        raise fail(f"The {noun} {shown} is empty (0 bytes).")
    if len(data) > max_bytes:
        raise fail(f"The {noun} {shown} is too large; at most {human_size(max_bytes)} is allowed.")
    return bytes(data), ext, shown


# ----------------------------------------------------------------------------------------------- SVG

_START_TAG = re.compile(r"<[A-Za-z_]")
_SVG_ROOT = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?svg[\s>/]")
_XML_ENCODING = re.compile(r"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_OK_ENCODINGS = {"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1", "latin1", "windows-1252", "cp1252",
                 "utf-16", "utf16"}


def svg_bytes(data: Any, *, max_bytes: int = MAX_SVG_BYTES, max_elements: int = MAX_SVG_ELEMENTS) -> bytes:
    """Size, emptiness and encoding pre-check of an uploaded SVG; returns its bytes unchanged for the parser.

    data: bytes, str (SVG text) or a path-like object (os.PathLike, not str). Refuses empty or whitespace-only
    data, more than max_bytes, text that is not UTF-8/UTF-16 (or the 8-bit encoding its XML declaration names),
    NUL characters, no <svg> element, XML entity declarations (billion laughs, external entities) and more than
    max_elements start tags. Parsing is the job of backends/svg/svgio/.
    """
    if isinstance(data, str):
        if len(data) > max_bytes:
            raise fail(f"The SVG is too large; at most {human_size(max_bytes)} is allowed.")
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise fail("The SVG contains characters that are not valid Unicode; save it as UTF-8.") from None
        shown = "SVG"
    elif isinstance(data, (bytes, bytearray, memoryview)):
        shown = "SVG"
    elif isinstance(data, os.PathLike):
        data, _ext, label = read_bounded(data, max_bytes, "SVG")
        shown = f"SVG {label}"
    else:
        raise fail(f"The SVG must be given as text, bytes or a file path, not {type(data).__name__}.")
    data = bytes(data[: max_bytes + 1])
    if len(data) > max_bytes:
        raise fail(f"The {shown} is too large; at most {human_size(max_bytes)} is allowed.")
    if not data.strip():
        raise fail(f"The {shown} is empty; upload an SVG file.")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        encoding = "utf-16"
    elif data.startswith(b"\xef\xbb\xbf"):
        encoding = "utf-8-sig"
    else:
        declared = _XML_ENCODING.match(data[:200].decode("ascii", "replace"))
        encoding = declared.group(1).lower() if declared else "utf-8"
        if encoding not in _OK_ENCODINGS:
            raise fail(f"The {shown} declares the encoding {quote(encoding)}; save it as UTF-8.")
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        shown_encoding = encoding.upper().replace("-SIG", "")
        raise fail(f"The {shown} is not valid {shown_encoding} text; save it as UTF-8.") from None
    if "\x00" in text:
        raise fail(f"The {shown} contains NUL characters, so it is not a text SVG; upload an SVG file.")
    if _SVG_ROOT.search(text) is None:
        raise fail(f"The {shown} has no <svg> element; upload an SVG file.")
    if "<!ENTITY" in text:
        raise fail(
            f"The {shown} declares XML entities, which are not allowed; export it without a DOCTYPE or entities."
        )
    elements = 0
    for _ in _START_TAG.finditer(text):
        elements += 1
        if elements > max_elements:
            raise fail(f"The {shown} has more than {max_elements:,} elements; at most {max_elements:,} are allowed.")
    return data
