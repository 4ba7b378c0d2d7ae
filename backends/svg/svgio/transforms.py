"""SVG transforms as affine tuples (a, b, c, d, e, f): the matrix [[a, c, e], [b, d, f], [0, 0, 1]]."""
from __future__ import annotations

import math
import re

from ...core.errors import InputError
from .lengths import parse_numbers

IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


def multiply(m, n):
    """Affine (a, b, c, d, e, f) product m * n (apply n first)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2, a * e2 + c * f2 + e,
            b * e2 + d * f2 + f)


# one transform of a list: "\s*,?\s*" split a run of spaces two ways at every length (quadratic on 100 KB)
_TRANSFORM = re.compile(r"\s*(?:,\s*)?(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)\s*,?")


def parse_transform(text: str):
    """SVG transform list -> affine (a, b, c, d, e, f); InputError when malformed."""
    m = IDENTITY
    if not text or not text.strip():
        return m
    pos = 0
    while pos < len(text):
        if not text[pos:].strip():
            break
        mt = _TRANSFORM.match(text, pos)
        if not mt:
            raise InputError(f"The SVG has a malformed transform {text.strip()[:60]!r}.")
        pos = mt.end()
        name, args = mt.group(1), parse_numbers(mt.group(2))
        n = len(args)
        if name == "matrix" and n == 6:
            t = tuple(args)
        elif name == "translate" and n in (1, 2):
            t = (1.0, 0.0, 0.0, 1.0, args[0], args[1] if n == 2 else 0.0)
        elif name == "scale" and n in (1, 2):
            t = (args[0], 0.0, 0.0, args[1] if n == 2 else args[0], 0.0, 0.0)
        elif name == "rotate" and n in (1, 3):
            r = math.radians(args[0])
            cs, sn = math.cos(r), math.sin(r)
            t = (cs, sn, -sn, cs, 0.0, 0.0)
            if n == 3:
                cx, cy = args[1], args[2]
                t = multiply(multiply((1.0, 0.0, 0.0, 1.0, cx, cy), t), (1.0, 0.0, 0.0, 1.0, -cx, -cy))
        elif name == "skewX" and n == 1:
            t = (1.0, 0.0, math.tan(math.radians(args[0])), 1.0, 0.0, 0.0)
        elif name == "skewY" and n == 1:
            t = (1.0, math.tan(math.radians(args[0])), 0.0, 1.0, 0.0, 0.0)
        else:
            raise InputError(f"The SVG has a malformed transform {name}({mt.group(2).strip()[:40]}).")
        m = multiply(m, t)
    return m


def stretch(m) -> tuple[float, float]:
    """Smallest and largest singular value of the linear part of affine m (inf when it overflows)."""
    a, b, c, d = m[:4]
    f = a * a + b * b + c * c + d * d
    det = abs(a * d - b * c)
    if not (math.isfinite(f) and math.isfinite(det)):
        return 0.0, math.inf
    smax = math.sqrt((f + math.sqrt(max(f * f - 4 * det * det, 0.0))) / 2)
    return (det / smax if smax > 0 else 0.0), smax


def apply(m, p):
    """The point p (x, y) moved by the affine m."""
    a, b, c, d, e, f = m
    x, y = p
    return (a * x + c * y + e, b * x + d * y + f)
