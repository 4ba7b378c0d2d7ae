"""Numbers and lengths of untrusted SVG text: finite or refused, units to px, unreadable lengths noted.

`parse_length` notes each length it cannot read while an import gathers them (`noting_unread_lengths`), so the
import can warn of them in one sentence with where they were.
"""
from __future__ import annotations

import math
import re
import threading
from contextlib import contextmanager

from ...core.errors import InputError
from .document import describe

# Linear-time patterns (untrusted text): "\d+\.?\d*" could split a run of digits n ways and took 99 s on a
# 30,000-digit width; "\d+(?:\.\d*)?" has one way.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
NUMBER_RE = re.compile(_NUMBER)
_LENGTH = re.compile(r"(" + _NUMBER + r")\s*(%|[a-zA-Z]*)")  # matched on the stripped text: one run of spaces
_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0,
          "em": 16.0, "ex": 8.0}


def finite(v: float, what: str) -> float:
    """v, or InputError naming `what` held a non-finite number."""
    if not math.isfinite(v):
        raise InputError(f"The SVG has a non-finite number in {what}.")
    return v


# Lengths `parse_length` could not read (an unknown unit such as vw or rem, or no number), for the import's
# warnings: gathered per import by `noting_unread_lengths` (one thread's import at a time).
_unread = threading.local()


def parse_length(text, ref: float = 0.0, default=None, attr: str | None = None, elem=None):
    """A length in px; percentages relative to ref; None or default when missing or unparsable (then noted, when
    an import gathers them (`noting_unread_lengths`), as "width '3furlongs' on <rect>: unknown unit 'furlongs'":
    attr and elem say where it was, so it can be found in a large file)."""
    if text is None:
        return default
    m = _LENGTH.fullmatch(str(text).strip())
    unit = m.group(2).lower() if m else None
    if unit is None or (unit != "%" and unit not in _UNITS):
        seen = getattr(_unread, "lengths", None)
        if seen is not None and str(text).strip():
            where = f"{attr} " if attr else ""
            where += f"{_short(str(text).strip(), 20)!r}" + (f" on {describe(elem)}" if elem is not None else "")
            why = "not a number" if m is None else f"unknown unit {_short(m.group(2), 12)!r}"
            seen.append(f"{where}: {why}")
        return default
    v = float(m.group(1))
    if unit == "%":
        v = v * ref / 100.0
    else:
        v *= _UNITS[unit]
    return finite(v, "a length")


def _short(text: str, n: int) -> str:
    """text, printable, cut to n characters with "..." when longer."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= n else text[:n - 3] + "..."


def parse_numbers(text: str) -> list[float]:
    """Every number in text (commas or spaces between), each finite."""
    return [finite(float(x), "a number list") for x in NUMBER_RE.findall(text or "")]


@contextmanager
def noting_unread_lengths(into: list[str]):
    """While inside, every length `parse_length` cannot read in this thread is appended to `into` as where and
    why ("width '3furlongs' on <rect>: unknown unit 'furlongs'")."""
    _unread.lengths = into
    try:
        yield into
    finally:
        _unread.lengths = None
