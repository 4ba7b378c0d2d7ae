"""SVG 1.1 export of scenes, and safe import of users' SVGs into scenes (everything becomes cubic Beziers).

Export (`scene_to_svg`): one element per shape in painter's order ("path" -> <path ... Z>, "stroke" -> open
<path fill="none">, "square" -> <rect>), colors as #rrggbb with fill-opacity / stroke-opacity, round caps and
joins (the renderer's), a `class="background"` rect first when the background is not transparent.
Import of an exported file gives back the same scene (up to the written precision), and exporting it again
gives the same text.

Import (`svg_to_scene`) understands path data (M L H V C S Q T A Z, absolute and relative), rect (rounded
too), circle, ellipse, line, polyline, polygon, nested <g>/<svg>/<a> with transforms, presentation
attributes and style="...", hex / rgb() / named colors, currentColor, opacity, fill-opacity,
stroke-opacity, stroke-width, fill-rule, display and visibility. Approximations, by design of the renderer:
strokes are drawn with round caps and joins whatever the file says; gradients and patterns become their
mean stop color; group opacity is folded into each child's opacity (exact where children do not overlap);
text, images, <use>, clipping, masks and filters are skipped.

What is approximated or skipped is not silent: each kind is counted once and written as one short sentence
into `Scene.warnings` ("2 gradients were drawn as their mean colour.").

Parsing is defensive, and the *work* an import can buy is bounded, each limit refused with one sentence that
names what to reduce:
- bytes and elements: `validate.svg_bytes` is the single pre-check (2 MB, 20,000 elements, no entities), then
  defusedxml parses (nothing is fetched);
- canvas: each side 1 to 4096 px and at most 32:1 (a 4096 x 4096 RGBA float canvas is 256 MB; one fill over
  all of it takes ~1.2 s and ~700 MB in the renderer on a 2-core CPU);
- numbers: every coordinate after all transforms must be finite and within 64 canvas sizes of the origin
  (|x|, |y| <= 64 * max(width, height)); every transform, composed with its parents, must scale by 1e-6 to
  1e6 (a zero scale, as in scale(0), hides the element as the SVG spec says, with a warning); stroke widths
  at most 64 canvas sizes;
- counts: 200,000 curve segments, 4096 subpaths per shape, 10,000 shapes, 256 stops per gradient and 4096 in
  all;
- work: `render_work` estimates the renderer's pixel operations (fill tiles, chord pieces, stroke pixel
  candidates); with one per canvas pixel, the sum must stay within `MAX_WORK` = 40 million (a 4096 x 4096
  canvas and one fill over all of it: about 3 s and 0.6 GB on an idle 2-core CPU).
"""
from __future__ import annotations

import math
import re
import threading
from pathlib import Path

import torch

from .. import validate
from ..errors import InputError
from .cost import MAX_WORK, check_work
from .scene import Scene, Shape

# One byte and element limit for SVG, owned by the validator (2 MB is ~50x a typical exported icon or logo
# and keeps the pure-Python path parser under a second); the importer takes the validator's, so the CLI, the API
# and the UI refuse the same files.
MAX_BYTES = validate.MAX_SVG_BYTES
MAX_ELEMENTS = validate.MAX_SVG_ELEMENTS
MAX_SEGMENTS = 200_000
MAX_SUBPATHS = 4096          # per shape: a paragraph of text converted to outlines stays under this
MAX_SHAPES = 10_000
MAX_DEPTH = 128
MAX_CANVAS = 4096            # px per side
MAX_ASPECT = 32.0            # longer side / shorter side
MAX_COORD_CANVASES = 64      # |coordinate| <= this * max(width, height), after all transforms
MAX_SCALE = 1e6              # singular values of any element's full transform lie in [1 / MAX_SCALE, MAX_SCALE]
MAX_STOPS = 256              # per gradient
MAX_STOPS_TOTAL = 4096       # in the whole document

SVG_NS = "http://www.w3.org/2000/svg"

# ------------------------------------------------------------------------------------------------ export


def _num(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(min(max(float(c), 0.0), 1.0) * 255)):02x}" for c in rgb)


def _opacity(a: float) -> str:
    return _num(min(max(float(a), 0.0), 1.0), 3)


def _path_d(pts: torch.Tensor, counts, closed: bool, decimals: int) -> str:
    p = [(_num(x, decimals), _num(y, decimals)) for x, y in pts.tolist()]
    parts, i = [], 0
    for s in counts:
        n = 3 * s if closed else 3 * s + 1
        sub = p[i:i + n] + ([p[i]] if closed else [])
        i += n
        cmds = [f"M{sub[0][0]} {sub[0][1]}"]
        for j in range(s):
            c1, c2, e = sub[3 * j + 1], sub[3 * j + 2], sub[3 * j + 3]
            cmds.append(f"C{c1[0]} {c1[1]} {c2[0]} {c2[1]} {e[0]} {e[1]}")
        parts.append(" ".join(cmds) + ("Z" if closed else ""))
    return " ".join(parts)


def _paint_attrs(prefix: str, rgba) -> list[str]:
    if float(rgba[3]) <= 0:
        return [f'{prefix}="none"']
    out = [f'{prefix}="{_hex(rgba[:3])}"']
    if float(rgba[3]) < 1:
        out.append(f'{prefix}-opacity="{_opacity(rgba[3])}"')
    return out


def scene_to_svg(scene: Scene, decimals: int = 2, size: tuple[int, int] | None = None) -> str:
    """Clean SVG 1.1 text for the scene: viewBox "0 0 width height", one element per shape in painter's order.
    size: the (width, height) in px the file declares, the size a browser or an editor shows it at (default the
    canvas's own); the viewBox keeps the canvas's coordinates either way."""
    W, H = scene.width, scene.height
    dw, dh = size or (W, H)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<svg xmlns="{SVG_NS}" version="1.1" width="{dw}" height="{dh}" viewBox="0 0 {W} {H}">']
    bg = scene.background.detach().cpu().float().tolist()
    if bg[3] > 0:
        lines.append(f'  <rect class="background" x="0" y="0" width="{W}" height="{H}" '
                     + " ".join(_paint_attrs("fill", bg)) + "/>")
    for s in scene.shapes:
        pts = s.points.detach().cpu().float()
        fill = s.fill.detach().cpu().float().tolist()
        stroke = s.stroke.detach().cpu().float().tolist()
        width = float(s.stroke_width.detach())
        if s.kind == "square":
            (x0, y0), (x1, y1) = pts.tolist()
            x0, x1 = min(x0, x1), max(x0, x1)
            y0, y1 = min(y0, y1), max(y0, y1)
            attrs = [f'x="{_num(x0, decimals)}"', f'y="{_num(y0, decimals)}"', f'width="{_num(x1 - x0, decimals)}"',
                     f'height="{_num(y1 - y0, decimals)}"'] + _paint_attrs("fill", fill)
            lines.append("  <rect " + " ".join(attrs) + "/>")
            continue
        attrs = [f'd="{_path_d(pts, s.segment_counts(), s.closed, decimals)}"']
        if s.kind == "path":
            attrs += _paint_attrs("fill", fill)
            if s.fill_rule == "evenodd":
                attrs.append('fill-rule="evenodd"')
        else:
            attrs.append('fill="none"')
        if (s.kind == "stroke" or (stroke[3] > 0 and width > 0)) and width > 0:
            attrs += _paint_attrs("stroke", stroke)
            attrs += [f'stroke-width="{_num(width, decimals)}"', 'stroke-linecap="round"', 'stroke-linejoin="round"']
        lines.append("  <path " + " ".join(attrs) + "/>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def save_svg(scene: Scene, path: str | Path, decimals: int = 2, size: tuple[int, int] | None = None) -> str:
    """Write the scene as an SVG file (see `scene_to_svg`), whole or not at all (a temporary name renamed into
    place)."""
    from ..files import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(scene_to_svg(scene, decimals, size), encoding="utf-8")
    return str(path)


# ------------------------------------------------------------------------------------------------ import

def load_svg(path: str | Path, **limits) -> Scene:
    """Read an SVG file into a Scene (see `svg_to_scene` for the limits).

    Only a regular file is read (never a FIFO, device or directory), and never more than max_bytes of it.
    """
    import os

    data = validate.svg_bytes(Path(os.fsdecode(os.fspath(path))), max_bytes=limits.get("max_bytes", MAX_BYTES),
                              max_elements=limits.get("max_elements", MAX_ELEMENTS))
    return svg_to_scene(data, **limits)


def svg_to_scene(svg: str | bytes, *, max_bytes: int = MAX_BYTES, max_elements: int = MAX_ELEMENTS,
                 max_segments: int = MAX_SEGMENTS, max_work: float = MAX_WORK, device="cpu") -> Scene:
    """Parse SVG text into a Scene in canvas pixels (the viewport: width x height, viewBox mapped onto it).

    What the renderer cannot draw exactly is listed in `scene.warnings`. Raises InputError (one sentence) for
    malformed, hostile or oversized input, and for input whose rendering at its own size would take more
    than max_work estimated pixel operations (`render_work`).
    """
    data = validate.svg_bytes(svg, max_bytes=max_bytes, max_elements=max_elements)
    root = _parse(data, max_elements)
    builder = _Builder(root, max_segments)
    scene = builder.build()
    check_work(scene, max_work=max_work, sources=builder.sources)
    if device != "cpu":
        scene = scene.to(device)
    return scene


def _parse(data: bytes, max_elements: int):
    import io
    import xml.etree.ElementTree as ET

    import defusedxml
    import defusedxml.ElementTree as DET

    root, count = None, 0
    try:
        for event, elem in DET.iterparse(io.BytesIO(data), events=("start",)):
            if root is None:
                root = elem
            count += 1
            if count > max_elements:
                raise InputError(f"The SVG has more than {max_elements} elements, too many to import.")
    except InputError:
        raise
    except defusedxml.DefusedXmlException:
        raise InputError("The SVG declares XML entities or external references, which are refused for safety.") \
            from None
    except ET.ParseError as err:
        line, col = getattr(err, "position", (0, 0))
        raise InputError(f"The SVG is not well-formed XML (line {line}, column {col}).") from None
    except (ValueError, RecursionError, MemoryError) as err:
        raise InputError(f"The SVG could not be parsed: {err}.") from None
    if root is None or _local(root.tag) != "svg":
        tag = _local(root.tag) if root is not None else "nothing"
        raise InputError(f"The file's root element is <{tag}>, not <svg>: it is not an SVG image.")
    return root


def _local(tag) -> str:
    if not isinstance(tag, str):
        return ""
    return tag.rsplit("}", 1)[-1] if tag.startswith("{") else tag


def _ns(tag) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


# -------------------------------------------------------------------------------------------- numbers

# Linear-time patterns (untrusted text): "\d+\.?\d*" could split a run of digits n ways and took 99 s on a
# 30,000-digit width; "\d+(?:\.\d*)?" has one way.
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_NUM = re.compile(_NUMBER)
_LENGTH = re.compile(r"(" + _NUMBER + r")\s*(%|[a-zA-Z]*)")  # matched on the stripped text: one run of spaces
_UNITS = {"": 1.0, "px": 1.0, "pt": 96 / 72, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0,
          "em": 16.0, "ex": 8.0}


def _finite(v: float, what: str) -> float:
    if not math.isfinite(v):
        raise InputError(f"The SVG has a non-finite number in {what}.")
    return v


# Lengths `_length` could not read (an unknown unit such as vw or rem, or no number), for the import's warnings:
# gathered per import by `_Builder.build` (one thread's import at a time).
_unread = threading.local()


def _length(text, ref: float = 0.0, default=None, attr: str | None = None, elem=None):
    """A length in px; percentages relative to ref; None or default when missing or unparsable (then noted in
    `_unread.lengths`, when an import gathers them, as "width '3furlongs' on <rect>: unknown unit 'furlongs'":
    attr and elem say where it was, so it can be found in a large file)."""
    if text is None:
        return default
    m = _LENGTH.fullmatch(str(text).strip())
    unit = m.group(2).lower() if m else None
    if unit is None or (unit != "%" and unit not in _UNITS):
        seen = getattr(_unread, "lengths", None)
        if seen is not None and str(text).strip():
            where = f"{attr} " if attr else ""
            where += f"{_short(str(text).strip(), 20)!r}" + (f" on {_what(elem)}" if elem is not None else "")
            why = "not a number" if m is None else f"unknown unit {_short(m.group(2), 12)!r}"
            seen.append(f"{where}: {why}")
        return default
    v = float(m.group(1))
    if unit == "%":
        v = v * ref / 100.0
    else:
        v *= _UNITS[unit]
    return _finite(v, "a length")


def _short(text: str, n: int) -> str:
    """text, printable, cut to n characters with "..." when longer."""
    text = "".join(ch if ch.isprintable() else "?" for ch in text)
    return text if len(text) <= n else text[:n - 3] + "..."


def _numbers(text: str) -> list[float]:
    return [_finite(float(x), "a number list") for x in _NUM.findall(text or "")]


# --------------------------------------------------------------------------------------------- colors

_NAMED = {
    "aliceblue": "f0f8ff", "antiquewhite": "faebd7", "aqua": "00ffff", "aquamarine": "7fffd4", "azure": "f0ffff",
    "beige": "f5f5dc", "bisque": "ffe4c4", "black": "000000", "blanchedalmond": "ffebcd", "blue": "0000ff",
    "blueviolet": "8a2be2", "brown": "a52a2a", "burlywood": "deb887", "cadetblue": "5f9ea0",
    "chartreuse": "7fff00", "chocolate": "d2691e", "coral": "ff7f50", "cornflowerblue": "6495ed",
    "cornsilk": "fff8dc", "crimson": "dc143c", "cyan": "00ffff", "darkblue": "00008b", "darkcyan": "008b8b",
    "darkgoldenrod": "b8860b", "darkgray": "a9a9a9", "darkgreen": "006400", "darkgrey": "a9a9a9",
    "darkkhaki": "bdb76b", "darkmagenta": "8b008b", "darkolivegreen": "556b2f", "darkorange": "ff8c00",
    "darkorchid": "9932cc", "darkred": "8b0000", "darksalmon": "e9967a", "darkseagreen": "8fbc8f",
    "darkslateblue": "483d8b", "darkslategray": "2f4f4f", "darkslategrey": "2f4f4f", "darkturquoise": "00ced1",
    "darkviolet": "9400d3", "deeppink": "ff1493", "deepskyblue": "00bfff", "dimgray": "696969",
    "dimgrey": "696969", "dodgerblue": "1e90ff", "firebrick": "b22222", "floralwhite": "fffaf0",
    "forestgreen": "228b22", "fuchsia": "ff00ff", "gainsboro": "dcdcdc", "ghostwhite": "f8f8ff", "gold": "ffd700",
    "goldenrod": "daa520", "gray": "808080", "grey": "808080", "green": "008000", "greenyellow": "adff2f",
    "honeydew": "f0fff0", "hotpink": "ff69b4", "indianred": "cd5c5c", "indigo": "4b0082", "ivory": "fffff0",
    "khaki": "f0e68c", "lavender": "e6e6fa", "lavenderblush": "fff0f5", "lawngreen": "7cfc00",
    "lemonchiffon": "fffacd", "lightblue": "add8e6", "lightcoral": "f08080", "lightcyan": "e0ffff",
    "lightgoldenrodyellow": "fafad2", "lightgray": "d3d3d3", "lightgreen": "90ee90", "lightgrey": "d3d3d3",
    "lightpink": "ffb6c1", "lightsalmon": "ffa07a", "lightseagreen": "20b2aa", "lightskyblue": "87cefa",
    "lightslategray": "778899", "lightslategrey": "778899", "lightsteelblue": "b0c4de", "lightyellow": "ffffe0",
    "lime": "00ff00", "limegreen": "32cd32", "linen": "faf0e6", "magenta": "ff00ff", "maroon": "800000",
    "mediumaquamarine": "66cdaa", "mediumblue": "0000cd", "mediumorchid": "ba55d3", "mediumpurple": "9370db",
    "mediumseagreen": "3cb371", "mediumslateblue": "7b68ee", "mediumspringgreen": "00fa9a",
    "mediumturquoise": "48d1cc", "mediumvioletred": "c71585", "midnightblue": "191970", "mintcream": "f5fffa",
    "mistyrose": "ffe4e1", "moccasin": "ffe4b5", "navajowhite": "ffdead", "navy": "000080", "oldlace": "fdf5e6",
    "olive": "808000", "olivedrab": "6b8e23", "orange": "ffa500", "orangered": "ff4500", "orchid": "da70d6",
    "palegoldenrod": "eee8aa", "palegreen": "98fb98", "paleturquoise": "afeeee", "palevioletred": "db7093",
    "papayawhip": "ffefd5", "peachpuff": "ffdab9", "peru": "cd853f", "pink": "ffc0cb", "plum": "dda0dd",
    "powderblue": "b0e0e6", "purple": "800080", "rebeccapurple": "663399", "red": "ff0000", "rosybrown": "bc8f8f",
    "royalblue": "4169e1", "saddlebrown": "8b4513", "salmon": "fa8072", "sandybrown": "f4a460",
    "seagreen": "2e8b57", "seashell": "fff5ee", "sienna": "a0522d", "silver": "c0c0c0", "skyblue": "87ceeb",
    "slateblue": "6a5acd", "slategray": "708090", "slategrey": "708090", "snow": "fffafa", "springgreen": "00ff7f",
    "steelblue": "4682b4", "tan": "d2b48c", "teal": "008080", "thistle": "d8bfd8", "tomato": "ff6347",
    "turquoise": "40e0d0", "violet": "ee82ee", "wheat": "f5deb3", "white": "ffffff", "whitesmoke": "f5f5f5",
    "yellow": "ffff00", "yellowgreen": "9acd32",
}


def parse_color(text: str, current=None):
    """A CSS color -> (r, g, b, a) floats in [0, 1], or None when unrecognized."""
    s = text.strip().lower()
    if s == "currentcolor":
        return current
    if s == "transparent":
        return (0.0, 0.0, 0.0, 0.0)
    if s in _NAMED:
        s = "#" + _NAMED[s]
    if s.startswith("#"):
        h = s[1:]
        if re.fullmatch(r"[0-9a-f]+", h) and len(h) in (3, 4, 6, 8):
            if len(h) in (3, 4):
                h = "".join(c * 2 for c in h)
            vals = [int(h[i:i + 2], 16) / 255.0 for i in range(0, len(h), 2)]
            return tuple(vals) if len(vals) == 4 else (*vals, 1.0)
        return None
    if s.startswith(("hsl(", "hsla(")) and s.endswith(")"):  # CSS3 colours that design tools export
        return _hsl(s[s.index("(") + 1:-1].replace(",", " ").replace("/", " ").split())
    if s.startswith(("rgb(", "rgba(")) and s.endswith(")"):  # sliced, not matched: "rgb(" + 8 KB of spaces hung
        parts = s[s.index("(") + 1:-1].replace(",", " ").replace("/", " ").split()
        if len(parts) not in (3, 4):
            return None
        try:
            rgb = [float(p[:-1]) / 100.0 if p.endswith("%") else float(p) / 255.0 for p in parts[:3]]
            a = 1.0
            if len(parts) == 4:
                a = float(parts[3][:-1]) / 100.0 if parts[3].endswith("%") else float(parts[3])
        except ValueError:
            return None
        vals = [min(max(v, 0.0), 1.0) for v in (*rgb, a)]
        if not all(math.isfinite(v) for v in vals):
            return None
        return tuple(vals)
    return None


def _hsl(parts: list[str]):
    """CSS hsl(h s% l% [/ a]) -> (r, g, b, a), or None. The hue in degrees (a "deg" suffix allowed)."""
    import colorsys

    if len(parts) not in (3, 4) or not parts[1].endswith("%") or not parts[2].endswith("%"):
        return None
    try:
        h = float(parts[0].removesuffix("deg")) / 360.0
        sat, light = float(parts[1][:-1]) / 100.0, float(parts[2][:-1]) / 100.0
        a = 1.0 if len(parts) == 3 else (float(parts[3][:-1]) / 100.0 if parts[3].endswith("%") else float(parts[3]))
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in (h, sat, light, a)):
        return None
    r, g, b = colorsys.hls_to_rgb(h % 1.0, min(max(light, 0.0), 1.0), min(max(sat, 0.0), 1.0))
    return (r, g, b, min(max(a, 0.0), 1.0))


# ----------------------------------------------------------------------------------------- transforms

def _mul(m, n):
    """Affine (a, b, c, d, e, f) product m * n (apply n first)."""
    a, b, c, d, e, f = m
    a2, b2, c2, d2, e2, f2 = n
    return (a * a2 + c * b2, b * a2 + d * b2, a * c2 + c * d2, b * c2 + d * d2, a * e2 + c * f2 + e,
            b * e2 + d * f2 + f)


_IDENTITY = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)


# one transform of a list: "\s*,?\s*" split a run of spaces two ways at every length (quadratic on 100 KB)
_TRANSFORM = re.compile(r"\s*(?:,\s*)?(matrix|translate|scale|rotate|skewX|skewY)\s*\(([^)]*)\)\s*,?")


def parse_transform(text: str):
    """SVG transform list -> affine (a, b, c, d, e, f); InputError when malformed."""
    m = _IDENTITY
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
        name, args = mt.group(1), _numbers(mt.group(2))
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
                t = _mul(_mul((1.0, 0.0, 0.0, 1.0, cx, cy), t), (1.0, 0.0, 0.0, 1.0, -cx, -cy))
        elif name == "skewX" and n == 1:
            t = (1.0, 0.0, math.tan(math.radians(args[0])), 1.0, 0.0, 0.0)
        elif name == "skewY" and n == 1:
            t = (1.0, math.tan(math.radians(args[0])), 0.0, 1.0, 0.0, 0.0)
        else:
            raise InputError(f"The SVG has a malformed transform {name}({mt.group(2).strip()[:40]}).")
        m = _mul(m, t)
    return m


# -------------------------------------------------------------------------------------------- path data

class _PathBuilder:
    """Collects subpaths as lists of cubic control points: [p0, c1, c2, p1, c1, c2, p2, ...]."""

    def __init__(self, budget):
        self.subpaths: list[tuple[list[tuple[float, float]], bool]] = []
        self.cur: list[tuple[float, float]] | None = None
        self.budget = budget

    def move(self, p):
        self._flush()
        self.cur = [p]

    def cubic(self, c1, c2, p):
        if self.cur is None:
            self.cur = [(0.0, 0.0)]
        self.budget.spend(1)
        self.cur += [c1, c2, p]

    def line(self, p):
        a = self.cur[-1] if self.cur else (0.0, 0.0)
        self.cubic((a[0] + (p[0] - a[0]) / 3.0, a[1] + (p[1] - a[1]) / 3.0),
                   (a[0] + (p[0] - a[0]) * 2.0 / 3.0, a[1] + (p[1] - a[1]) * 2.0 / 3.0), p)

    def close(self):
        if self.cur is None:
            return
        start = self.cur[0]
        if self.cur[-1] != start:
            self.line(start)
        if len(self.cur) > 1:
            self.subpaths.append((self.cur, True))
        self.cur = None

    def _flush(self):
        if self.cur is not None and len(self.cur) > 1:
            self.subpaths.append((self.cur, False))
        self.cur = None

    def finish(self):
        self._flush()
        return self.subpaths


class _Budget:
    def __init__(self, limit):
        self.left = limit
        self.limit = limit

    def spend(self, n):
        self.left -= n
        if self.left < 0:
            raise InputError(f"The SVG has more than {self.limit} curve segments, too many to import; simplify "
                             "its paths.")


_CMD_ARGS = {"m": 2, "l": 2, "h": 1, "v": 1, "c": 6, "s": 4, "q": 4, "t": 2, "a": 7, "z": 0}


def parse_path_data(d: str, budget: _Budget | None = None, errors: list | None = None):
    """SVG path data -> list of (points [(x, y), ...] as p0 c1 c2 p1 ..., closed). Errors: InputError.

    Per the SVG error-handling rules, data up to the first error is kept; the error's offset in `d` is appended
    to `errors` when given (the import warns of it).
    """
    pb = _PathBuilder(budget or _Budget(MAX_SEGMENTS))
    i, n = 0, len(d)
    cur = (0.0, 0.0)
    start = (0.0, 0.0)
    last_cmd = ""
    last_ctrl = None          # reflected control for S / T
    cmd = None

    def skip(i):
        while i < n and (d[i].isspace() or d[i] == ","):
            i += 1
        return i

    def number(i):
        m = _NUM.match(d, i)
        if not m:
            return None, i
        return _finite(float(m.group(0)), "path data"), m.end()

    def flag(i):
        if i < n and d[i] in "01":
            return float(d[i]), i + 1
        return None, i

    stopped = None
    while True:
        i = skip(i)
        if i >= n:
            break
        ch = d[i]
        if ch.isalpha():
            if ch.lower() not in _CMD_ARGS:
                stopped = i                                      # error: keep what we have
                break
            cmd = ch
            i += 1
            if cmd in "zZ":
                pb.close()
                cur = start
                last_cmd, last_ctrl = "z", None
                continue
        elif cmd is None or cmd in "zZ":
            stopped = i
            break
        lo = cmd.lower()
        args = []
        ok = True
        for k in range(_CMD_ARGS[lo]):
            i = skip(i)
            if lo == "a" and k in (3, 4):
                v, i = flag(i)
            else:
                v, i = number(i)
            if v is None:
                ok = False
                break
            args.append(v)
        if not ok:
            stopped = i
            break
        rel = cmd.islower()
        ox, oy = cur if rel else (0.0, 0.0)
        if lo == "m":
            cur = (args[0] + ox, args[1] + oy)
            start = cur
            pb.move(cur)
            cmd = "l" if rel else "L"                            # further pairs are line-tos
            last_ctrl = None
        elif lo in "lhv":
            if lo == "l":
                p = (args[0] + ox, args[1] + oy)
            elif lo == "h":
                p = (args[0] + ox, cur[1])
            else:
                p = (cur[0], args[0] + oy)
            _ensure(pb, cur)
            pb.line(p)
            cur, last_ctrl = p, None
        elif lo in "cs":
            if lo == "c":
                c1 = (args[0] + ox, args[1] + oy)
                c2, p = (args[2] + ox, args[3] + oy), (args[4] + ox, args[5] + oy)
            else:
                c1 = (2 * cur[0] - last_ctrl[0], 2 * cur[1] - last_ctrl[1]) if last_cmd in "cs" and last_ctrl else cur
                c2, p = (args[0] + ox, args[1] + oy), (args[2] + ox, args[3] + oy)
            _ensure(pb, cur)
            pb.cubic(c1, c2, p)
            cur, last_ctrl = p, c2
        elif lo in "qt":
            if lo == "q":
                q, p = (args[0] + ox, args[1] + oy), (args[2] + ox, args[3] + oy)
            else:
                q = (2 * cur[0] - last_ctrl[0], 2 * cur[1] - last_ctrl[1]) if last_cmd in "qt" and last_ctrl else cur
                p = (args[0] + ox, args[1] + oy)
            _ensure(pb, cur)
            pb.cubic((cur[0] + 2 / 3 * (q[0] - cur[0]), cur[1] + 2 / 3 * (q[1] - cur[1])),
                     (p[0] + 2 / 3 * (q[0] - p[0]), p[1] + 2 / 3 * (q[1] - p[1])), p)
            cur, last_ctrl = p, q
        else:
            p = (args[5] + ox, args[6] + oy)
            _ensure(pb, cur)
            for c1, c2, e in _arc(cur, args[0], args[1], args[2], bool(args[3]), bool(args[4]), p):
                pb.cubic(c1, c2, e)
            cur, last_ctrl = p, None
        last_cmd = lo
    if stopped is not None and errors is not None:
        errors.append(stopped)
    return pb.finish()


def _ensure(pb: _PathBuilder, cur):
    """A drawing command after Z (or at the very start) starts a new subpath at the current point."""
    if pb.cur is None:
        pb.cur = [cur]


def _arc(p0, rx, ry, phi_deg, large, sweep, p1):
    """Elliptical arc (SVG endpoint parameterization, implementation notes F.6) -> cubics, <= 90 deg each.

    Out-of-range radii follow F.6.6: a zero radius gives a straight line, radii too small to reach p1 are
    scaled up until they do. Radii so large that the arc cannot be told from its chord (more than 1e6 times
    the half-chord) give the chord for a small arc, since the centre would be too far away to compute it in
    float64; a large arc around such an ellipse would leave any canvas and is refused.
    """
    if p0 == p1:
        return []
    rx, ry = abs(rx), abs(ry)

    def chord():
        a = p0
        return [((a[0] + (p1[0] - a[0]) / 3, a[1] + (p1[1] - a[1]) / 3),
                 (a[0] + (p1[0] - a[0]) * 2 / 3, a[1] + (p1[1] - a[1]) * 2 / 3), p1)]

    if rx == 0 or ry == 0:
        return chord()
    phi = math.radians(phi_deg % 360.0)
    cs, sn = math.cos(phi), math.sin(phi)
    dx, dy = (p0[0] - p1[0]) / 2, (p0[1] - p1[1]) / 2
    x1p, y1p = cs * dx + sn * dy, -sn * dx + cs * dy
    # Everything below is written in the radius-normalized coordinates (x1p / rx, y1p / ry): squaring the
    # radii themselves overflows for 1e200 and underflows for 1e-200 (both valid path data).
    ux, uy = x1p / rx, y1p / ry
    lam_root = math.hypot(ux, uy)                     # sqrt(Lambda) of F.6.6.2
    if not math.isfinite(lam_root):
        return chord()                                # radii ~1e-308: the arc is its own scaled-up half circle
    if lam_root > 1:
        rx, ry = rx * lam_root, ry * lam_root
        ux, uy = x1p / rx, y1p / ry
        lam_root = 1.0
    if lam_root < 1e-6:
        if large:
            raise InputError("The SVG has a large-arc in its path data whose ellipse is more than a million times "
                             "its chord, far outside any canvas; reduce its radii.")
        return chord()
    lam = lam_root * lam_root
    coef = math.sqrt(max((1.0 - lam) / lam, 0.0)) if lam > 0 else 0.0
    if large == sweep:
        coef = -coef
    cxp, cyp = coef * rx * uy, -coef * ry * ux
    cx = cs * cxp - sn * cyp + (p0[0] + p1[0]) / 2
    cy = sn * cxp + cs * cyp + (p0[1] + p1[1]) / 2
    if not (math.isfinite(cx) and math.isfinite(cy)):
        raise InputError("The SVG has an arc in its path data whose ellipse is too large to draw.")

    def angle(ux, uy, vx, vy):
        a = math.atan2(ux * vy - uy * vx, ux * vx + uy * vy)
        return a

    vx, vy = ux - coef * uy, uy + coef * ux          # ((x1p - cxp) / rx, (y1p - cyp) / ry)
    th1 = angle(1, 0, vx, vy)
    dth = angle(vx, vy, -ux - coef * uy, -uy + coef * ux)
    if not sweep and dth > 0:
        dth -= 2 * math.pi
    elif sweep and dth < 0:
        dth += 2 * math.pi
    nseg = max(1, math.ceil(abs(dth) / (math.pi / 2) - 1e-9))
    step = dth / nseg
    k = 4.0 / 3.0 * math.tan(step / 4.0)
    out = []

    def pt(t):
        x, y = rx * math.cos(t), ry * math.sin(t)
        return (cs * x - sn * y + cx, sn * x + cs * y + cy)

    def deriv(t):
        x, y = -rx * math.sin(t), ry * math.cos(t)
        return (cs * x - sn * y, sn * x + cs * y)

    t = th1
    a = p0
    for j in range(nseg):
        t2 = t + step
        b = p1 if j == nseg - 1 else pt(t2)
        da, db = deriv(t), deriv(t2)
        out.append(((a[0] + k * da[0], a[1] + k * da[1]), (b[0] - k * db[0], b[1] - k * db[1]), b))
        a, t = b, t2
    return out


# ------------------------------------------------------------------------------------------ shapes

_KAPPA = 0.5522847498307936      # 4/3 (sqrt(2) - 1): quarter circle as one cubic


def _ellipse(cx, cy, rx, ry):
    k = _KAPPA
    pts = [(cx + rx, cy), (cx + rx, cy + k * ry), (cx + k * rx, cy + ry), (cx, cy + ry),
           (cx - k * rx, cy + ry), (cx - rx, cy + k * ry), (cx - rx, cy),
           (cx - rx, cy - k * ry), (cx - k * rx, cy - ry), (cx, cy - ry),
           (cx + k * rx, cy - ry), (cx + rx, cy - k * ry), (cx + rx, cy)]
    return [(pts, True)]


def _polyline(coords, closed):
    pb = _PathBuilder(_Budget(len(coords)))
    pts = list(zip(coords[0::2], coords[1::2]))
    if len(pts) < 2:
        return []
    pb.move(pts[0])
    for p in pts[1:]:
        pb.line(p)
    if closed:
        pb.close()
    return pb.finish()


def _rect(x, y, w, h, rx, ry):
    if rx <= 0 or ry <= 0:
        return _polyline([x, y, x + w, y, x + w, y + h, x, y + h], True)
    k = _KAPPA
    pb = _PathBuilder(_Budget(8))
    pb.move((x + rx, y))
    pb.line((x + w - rx, y))
    pb.cubic((x + w - rx + k * rx, y), (x + w, y + ry - k * ry), (x + w, y + ry))
    pb.line((x + w, y + h - ry))
    pb.cubic((x + w, y + h - ry + k * ry), (x + w - rx + k * rx, y + h), (x + w - rx, y + h))
    pb.line((x + rx, y + h))
    pb.cubic((x + rx - k * rx, y + h), (x, y + h - ry + k * ry), (x, y + h - ry))
    pb.line((x, y + ry))
    pb.cubic((x, y + ry - k * ry), (x + rx - k * rx, y), (x + rx, y))
    pb.close()
    return pb.finish()


# ------------------------------------------------------------------------------------------- builder

_INHERITED = ("fill", "fill-opacity", "fill-rule", "stroke", "stroke-opacity", "stroke-width", "color", "visibility",
              "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "marker-start", "marker-mid", "marker-end")
_PROPS = _INHERITED + ("opacity", "display", "stop-color", "stop-opacity", "clip-path", "mask", "filter", "marker")
_CONTAINERS = ("g", "a", "switch", "svg")
_SHAPES = ("path", "rect", "circle", "ellipse", "line", "polyline", "polygon")
# Definitions and metadata: drawing nothing is what the spec asks of them (their *use* is warned about).
_SILENT = frozenset(("defs", "title", "desc", "metadata", "linearGradient", "radialGradient", "pattern", "clipPath",
                     "mask", "filter", "marker", "symbol", "cursor", "view", "font", "font-face", "glyph",
                     "missing-glyph", "color-profile", "hkern", "vkern"))
_ANIMATION = frozenset(("animate", "animateTransform", "animateMotion", "animateColor", "set"))


def _style(elem) -> dict[str, str]:
    """Presentation attributes overridden by the style attribute (CSS declarations)."""
    props = {}
    for k in _PROPS:
        v = elem.get(k)
        if v is not None:
            props[k] = v.strip()
    style = elem.get("style")
    if style:
        for decl in style.split(";"):
            k, sep, v = decl.partition(":")
            k = k.strip().lower()
            if sep and k in _PROPS:
                props[k] = v.replace("!important", "").strip()
    return props


def _float(text, default):
    if text is None:
        return default
    try:
        v = float(str(text).strip().rstrip("%")) / (100.0 if str(text).strip().endswith("%") else 1.0)
    except ValueError:
        return default
    return min(max(v, 0.0), 1.0) if math.isfinite(v) else default


def _what(elem) -> str:
    """'<path>' or '<path id="logo">' for messages: printable, short."""
    tag = "".join(ch if ch.isprintable() else "?" for ch in _local(elem.tag)[:30]) or "element"
    ident = elem.get("id")
    if ident:
        ident = "".join(ch if ch.isprintable() and ch not in "\"<>" else "?" for ch in ident[:40])
        return f'<{tag} id="{ident}">'
    return f"<{tag}>"


def _stretch(m) -> tuple[float, float]:
    """Smallest and largest singular value of the linear part of affine m (inf when it overflows)."""
    a, b, c, d = m[:4]
    f = a * a + b * b + c * c + d * d
    det = abs(a * d - b * c)
    if not (math.isfinite(f) and math.isfinite(det)):
        return 0.0, math.inf
    smax = math.sqrt((f + math.sqrt(max(f * f - 4 * det * det, 0.0))) / 2)
    return (det / smax if smax > 0 else 0.0), smax


def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


_NOTES = {
    # key -> sentence for a count n; one sentence per kind, in the order first met
    "gradient": lambda n: f"{_plural(n, 'gradient was', 'gradients were')} drawn as {'its' if n == 1 else 'their'} "
                          "mean colour.",
    "pattern": lambda n: f"{_plural(n, 'pattern fill was', 'pattern fills were')} drawn with the fallback colour or "
                         "left empty.",
    "missing-paint": lambda n: f"{_plural(n, 'paint refers', 'paints refer')} to a missing gradient or pattern and "
                               f"{'was' if n == 1 else 'were'} drawn with the fallback colour or left empty.",
    "clip-path": lambda n: f"{_plural(n, 'element with a clip path was', 'elements with a clip path were')} drawn "
                           "unclipped.",
    "mask": lambda n: f"{_plural(n, 'element with a mask was', 'elements with a mask were')} drawn unmasked.",
    "filter": lambda n: f"{_plural(n, 'element with a filter was', 'elements with a filter were')} drawn without it.",
    "marker": lambda n: f"{_plural(n, 'shape with markers was', 'shapes with markers were')} drawn without them.",
    "dash": lambda n: f"{_plural(n, 'dashed stroke was', 'dashed strokes were')} drawn solid.",
    "caps": lambda n: f"{_plural(n, 'stroke', 'strokes')} with butt or square caps or miter or bevel joins "
                      f"{'was' if n == 1 else 'were'} drawn with round ones.",
    "zero-scale": lambda n: f"{_plural(n, 'element', 'elements')} with a zero-scale transform "
                            f"{'was' if n == 1 else 'were'} not drawn, as the SVG spec says.",
    "nested-svg": lambda n: f"{_plural(n, 'nested <svg> was', 'nested <svg> elements were')} drawn without clipping "
                            "to its viewport.",
    "style": lambda n: f"{_plural(n, '<style> sheet was', '<style> sheets were')} ignored (only attributes and "
                       'style="..." are read).',
    "script": lambda n: f"{_plural(n, '<script> element was', '<script> elements were')} ignored (never run).",
    "animation": lambda n: f"{_plural(n, 'animation element was', 'animation elements were')} ignored; the static "
                           "picture is drawn.",
}


class _Builder:
    def __init__(self, root, max_segments):
        self.root = root
        self.budget = _Budget(max_segments)
        self.shapes: list[Shape] = []
        self.sources: list[str] = []              # the element each shape came from, for messages
        self.background = None
        self.gradients = {}
        self.view = (300.0, 150.0)
        self.canvas = (300, 150)
        self.notes: dict[str, int] = {}            # warning kind -> count, insertion-ordered
        self.lengths: list[str] = []               # lengths that could not be read, where and why
        self._means: dict[str, tuple | None] = {}
        self._gradients_used: set[str] = set()
        total = 0
        for el in root.iter():
            tag = _local(el.tag)
            if tag in ("linearGradient", "radialGradient", "pattern"):
                stops = sum(1 for c in el if _local(c.tag) == "stop")
                if stops > MAX_STOPS:
                    raise InputError(f"The SVG's {_what(el)} has {stops} stops; at most {MAX_STOPS} per gradient "
                                     "are allowed, so remove stops.")
                total += stops
                if total > MAX_STOPS_TOTAL:
                    raise InputError(f"The SVG's gradients have more than {MAX_STOPS_TOTAL} stops in all; use fewer "
                                     "or simpler gradients.")
                if el.get("id"):
                    self.gradients[el.get("id")] = el

    def _note(self, key: str, n: int = 1):
        self.notes[key] = self.notes.get(key, 0) + n

    def warnings(self) -> list[str]:
        out = []
        for key, n in self.notes.items():
            if key == "gradient-uses":                       # distinct gradients, not uses
                out.append(_NOTES["gradient"](len(self._gradients_used)))
            elif key.startswith("skip:"):
                tag = key[5:]
                out.append(f"{_plural(n, f'<{tag}> element was', f'<{tag}> elements were')} skipped.")
            elif key == "path-data":
                out.append(f"{_plural(n, 'path has', 'paths have')} malformed data (d) and "
                           f"{'was' if n == 1 else 'were'} drawn up to the first error (the first after "
                           f"{self.path_error_at!r}), as the SVG spec says.")
            elif key in _NOTES:
                out.append(_NOTES[key](n))
        if self.lengths:
            distinct = list(dict.fromkeys(self.lengths))
            out.append(f"{_plural(len(self.lengths), 'length', 'lengths')} could not be read ("
                       f"{'; '.join(distinct[:5])}{'; ...' if len(distinct) > 5 else ''}) and the default was used "
                       "(the units read are px, pt, pc, mm, cm, in, em, ex and %).")
        return out

    def _check_transform(self, m, elem) -> bool:
        """False when the transform is singular (the element is not drawn); InputError when it is absurd."""
        if not all(math.isfinite(v) for v in m):
            raise InputError(f"The SVG's {_what(elem)} has a transform with a non-finite or overflowing number; "
                             "remove it.")
        smin, smax = _stretch(m)
        if smin == 0.0 and smax < math.inf:
            self._note("zero-scale")
            return False
        if smax > MAX_SCALE:
            raise InputError(f"The SVG's {_what(elem)} has a transform that stretches by {smax:.3g} (with its "
                             f"parents'); at most {MAX_SCALE:g} is allowed, so reduce its scale or skew.")
        if smin < 1 / MAX_SCALE:
            raise InputError(f"The SVG's {_what(elem)} has a transform that shrinks by {smin:.3g} (with its "
                             f"parents'); at least {1 / MAX_SCALE:g} is allowed, so reduce its scale or skew.")
        return True

    # -- viewport
    def _viewport(self, elem, W, H):
        """Transform from the element's viewBox to a W x H viewport (preserveAspectRatio honoured)."""
        vb = elem.get("viewBox")
        if not vb:
            return _IDENTITY
        nums = _numbers(vb)
        if len(nums) != 4 or nums[2] <= 0 or nums[3] <= 0:
            raise InputError(f"The SVG has a malformed viewBox {vb.strip()[:60]!r}.")
        mx, my, vw, vh = nums
        par = (elem.get("preserveAspectRatio") or "xMidYMid meet").split()
        align = par[0] if par else "xMidYMid"
        if align == "defer" and len(par) > 1:
            par = par[1:]
            align = par[0]
        sx, sy = W / vw, H / vh
        if align != "none":
            s = max(sx, sy) if (len(par) > 1 and par[1] == "slice") else min(sx, sy)
            sx = sy = s
            ax = {"xMin": 0.0, "xMid": 0.5, "xMax": 1.0}.get(align[:4], 0.5)
            ay = {"YMin": 0.0, "YMid": 0.5, "YMax": 1.0}.get(align[4:], 0.5)
            tx, ty = (W - vw * s) * ax, (H - vh * s) * ay
        else:
            tx = ty = 0.0
        return (sx, 0.0, 0.0, sy, tx - mx * sx, ty - my * sy)

    def build(self) -> Scene:
        _unread.lengths = self.lengths
        try:
            return self._build()
        finally:
            _unread.lengths = None

    def _build(self) -> Scene:
        root = self.root
        nums = _numbers(root.get("viewBox") or "")
        vbw, vbh = (nums[2], nums[3]) if len(nums) == 4 else (None, None)
        W = _length(root.get("width"), vbw or 300.0, None, "width", root)
        H = _length(root.get("height"), vbh or 150.0, None, "height", root)
        if W is None and H is None:
            W, H = vbw or 300.0, vbh or 150.0
        elif W is None:
            W = H * (vbw / vbh) if vbw and vbh else 300.0
        elif H is None:
            H = W * (vbh / vbw) if vbw and vbh else 150.0
        if not (0 < W <= MAX_CANVAS + 0.5 and 0 < H <= MAX_CANVAS + 0.5):  # NaN, inf (1e-320 viewBox)
            raise InputError(f"The SVG canvas is {W:g} x {H:g} pixels; each side must be 1 to {MAX_CANVAS} px, so "
                             "set a smaller width and height (a viewBox keeps the drawing).")
        Wi, Hi = max(1, round(W)), max(1, round(H))
        if max(Wi, Hi) > MAX_ASPECT * min(Wi, Hi):
            raise InputError(f"The SVG canvas is {Wi} x {Hi} pixels, {max(Wi, Hi) / min(Wi, Hi):.0f}:1; at most "
                             f"{MAX_ASPECT:.0f}:1 is supported, so make it less elongated.")
        self.view = (vbw or float(Wi), vbh or float(Hi))
        self.canvas = (Wi, Hi)
        m = self._viewport(root, Wi, Hi)
        state = {"fill": "black", "stroke": "none", "stroke-width": "1", "fill-rule": "nonzero",
                 "fill-opacity": "1", "stroke-opacity": "1", "color": "black", "visibility": "visible"}
        if self._check_transform(m, root):
            self._walk(root, m, state, 1.0, 0, is_root=True)
        bg = self.background if self.background is not None else (1.0, 1.0, 1.0, 0.0)
        return Scene(Wi, Hi, self.shapes, torch.tensor(bg, dtype=torch.float32), self.warnings())

    def _walk(self, elem, m, state, opacity, depth, is_root=False):
        if depth > MAX_DEPTH:
            raise InputError(f"The SVG nests elements more than {MAX_DEPTH} levels deep.")
        props = _style(elem)
        if props.get("display") == "none":
            return
        state = dict(state)
        for k in _INHERITED:
            if k in props and props[k] != "inherit":
                state[k] = props[k]
        opacity *= _float(props.get("opacity"), 1.0)
        tag = _local(elem.tag)
        inner = None                                             # a nested <svg>'s viewport, for percentages
        if not is_root:
            if _ns(elem.tag) not in ("", SVG_NS):
                return
            m = _mul(m, parse_transform(elem.get("transform", "")))
            if tag == "svg":
                # its x, y, width, height: percentages of the viewport around it (100% when not given); inside it,
                # percentages refer to its own viewBox, or to its size without one (SVG 1.1, 7.10)
                pw, ph = self.view
                x, y = _length(elem.get("x"), pw, 0.0, "x", elem), _length(elem.get("y"), ph, 0.0, "y", elem)
                w = _length(elem.get("width"), pw, pw, "width", elem)
                h = _length(elem.get("height"), ph, ph, "height", elem)
                nums = _numbers(elem.get("viewBox") or "")
                m = _mul(_mul(m, (1.0, 0.0, 0.0, 1.0, x, y)), self._viewport(elem, w, h))
                self._note("nested-svg")
                inner = (nums[2], nums[3]) if len(nums) == 4 and min(nums[2:]) > 0 else (w, h)
            if tag in _CONTAINERS or tag in _SHAPES:
                if not self._check_transform(m, elem):
                    return
        if tag in _CONTAINERS or tag in _SHAPES:
            for key in ("clip-path", "mask", "filter"):
                if props.get(key, "none") not in ("none", ""):
                    self._note(key)
        if tag in _CONTAINERS:
            outer, self.view = self.view, inner or self.view
            try:
                self._walk_children(elem, tag, m, state, opacity, depth, is_root)
            finally:
                self.view = outer
            return
        if tag in _SHAPES:
            if state.get("visibility") not in ("hidden", "collapse"):
                self._shape(elem, tag, m, state, opacity)
        elif tag in _ANIMATION:
            self._note("animation")
        elif tag in ("style", "script"):
            self._note(tag)
        elif tag not in _SILENT and tag:
            self._note("skip:" + "".join(ch if ch.isprintable() and ch not in "<>" else "?" for ch in tag[:30]))

    def _walk_children(self, elem, tag, m, state, opacity, depth, is_root):
        first = True
        children = list(elem)
        if tag == "switch":                                  # the first child wins; no conditions tested
            children = [c for c in children if _ns(c.tag) in ("", SVG_NS)][:1]
        for child in children:
            classes = (child.get("class") or "").split()
            if is_root and first and _local(child.tag) == "rect" and "background" in classes:
                first = False
                self._background(child, state)
                continue
            first = False
            self._walk(child, m, state, opacity, depth + 1)

    def _background(self, elem, state):
        props = _style(elem)
        st = dict(state)
        st.update({k: v for k, v in props.items() if k in _INHERITED})
        fill = self._paint(st.get("fill"), st)
        if fill is None:
            return
        a = fill[3] * _float(st.get("fill-opacity"), 1.0) * _float(props.get("opacity"), 1.0)
        self.background = (fill[0], fill[1], fill[2], a)

    def _paint(self, text, state):
        if text is None:
            return None
        text = text.strip()
        if text in ("none", ""):
            return None
        while text.startswith("url("):  # a chain of fallbacks, url(#a) url(#b) ... red, in a loop, not recursion
            ref, _, fallback = text.partition(")")
            ref = ref[4:].strip().strip("'\"").lstrip("#")
            mean = self._gradient_mean(ref)
            if mean is not None:
                self._gradients_used.add(ref)
                self.notes.setdefault("gradient-uses", 0)
                return mean
            el = self.gradients.get(ref)
            self._note("pattern" if el is not None and _local(el.tag) == "pattern" else "missing-paint")
            text = fallback.strip()
            if text in ("none", ""):
                return None
        current = parse_color(state.get("color", "black")) or (0.0, 0.0, 0.0, 1.0)
        c = parse_color(text, current)
        return c

    def _gradient_mean(self, ref, depth=0):
        """Mean stop colour of gradient `ref` (following href chains), computed once per gradient."""
        if ref in self._means:
            return self._means[ref]
        el = self.gradients.get(ref)
        if el is None or depth > 8:
            return None
        self._means[ref] = None                              # a cycle of hrefs ends here
        stops = [s for s in el if _local(s.tag) == "stop"]
        if not stops:
            href = el.get("href") or el.get("{http://www.w3.org/1999/xlink}href") or ""
            mean = self._gradient_mean(href.lstrip("#"), depth + 1) if href.startswith("#") else None
        else:
            acc = [0.0, 0.0, 0.0, 0.0]
            for s in stops:
                p = _style(s)
                c = parse_color(p.get("stop-color", "black")) or (0.0, 0.0, 0.0, 1.0)
                a = c[3] * _float(p.get("stop-opacity"), 1.0)
                for i in range(3):
                    acc[i] += c[i]
                acc[3] += a
            n = len(stops)
            mean = tuple(v / n for v in acc)
        self._means[ref] = mean
        return mean

    def _geometry(self, elem, tag):
        g = elem.get
        vw, vh = self.view                          # percentages refer to the viewBox (SVG 1.1, 7.10)

        def length(attr, ref, default):
            return _length(g(attr), ref, default, attr, elem)

        diag = math.sqrt((vw * vw + vh * vh) / 2)
        if tag == "path":
            errors = []
            subpaths = parse_path_data(g("d") or "", self.budget, errors)
            if errors:
                if "path-data" not in self.notes:           # where the first one broke, so it can be found
                    head = " ".join((g("d") or "")[:errors[0]].split())
                    self.path_error_at = head if len(head) <= 40 else "..." + head[-37:]
                self._note("path-data")
            return subpaths
        if tag == "rect":
            x, y = length("x", vw, 0.0), length("y", vh, 0.0)
            w, h = length("width", vw, 0.0), length("height", vh, 0.0)
            if w <= 0 or h <= 0:
                return []
            rx, ry = length("rx", vw, None), length("ry", vh, None)
            if rx is None and ry is None:
                rx = ry = 0.0
            elif rx is None:
                rx = ry
            elif ry is None:
                ry = rx
            rx, ry = min(max(rx, 0.0), w / 2), min(max(ry, 0.0), h / 2)
            return _rect(x, y, w, h, rx, ry)
        if tag in ("circle", "ellipse"):
            cx, cy = length("cx", vw, 0.0), length("cy", vh, 0.0)
            if tag == "circle":
                rx = ry = length("r", diag, 0.0)
            else:
                rx, ry = length("rx", vw, None), length("ry", vh, None)
                rx = ry if rx is None else rx
                ry = rx if ry is None else ry
                rx, ry = rx or 0.0, ry or 0.0
            if rx <= 0 or ry <= 0:
                return []
            return _ellipse(cx, cy, rx, ry)
        if tag == "line":
            return _polyline([length(k, ref, 0.0) for k, ref in (("x1", vw), ("y1", vh), ("x2", vw), ("y2", vh))],
                             False)
        coords = _numbers(g("points") or "")
        if len(coords) % 2:
            coords = coords[:-1]
        return _polyline(coords, tag == "polygon")

    def _shape(self, elem, tag, m, state, opacity):
        subpaths = self._geometry(elem, tag)
        if not subpaths:
            return
        self.budget.spend(0)
        what = _what(elem)
        if len(subpaths) > MAX_SUBPATHS:
            raise InputError(f"The SVG's {what} has {len(subpaths)} subpaths; at most {MAX_SUBPATHS} per shape are "
                             "allowed, so split it into several shapes or simplify it.")
        fill = None if tag == "line" else self._paint(state.get("fill"), state)
        stroke = self._paint(state.get("stroke"), state)
        width = _length(state.get("stroke-width"), math.sqrt(sum(v * v for v in self.view) / 2), 1.0,
                        "stroke-width", elem) or 0.0
        scale = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        width *= scale
        if fill is not None:
            fill = (*fill[:3], fill[3] * _float(state.get("fill-opacity"), 1.0) * opacity)
            if fill[3] <= 0:
                fill = None
        if stroke is not None:
            stroke = (*stroke[:3], stroke[3] * _float(state.get("stroke-opacity"), 1.0) * opacity)
            if stroke[3] <= 0 or width <= 0:
                stroke = None
        if fill is None and stroke is None:
            return
        W, H = self.canvas
        lim = MAX_COORD_CANVASES * max(W, H)
        if stroke is not None and not width <= lim:
            raise InputError(f"The SVG's {what} has a stroke {width:.3g} px wide, far wider than its {W}x{H} "
                             f"canvas; stroke widths are limited to {lim:g} px ({MAX_COORD_CANVASES} canvas sizes).")
        subpaths = [([_apply(m, p) for p in pts], closed) for pts, closed in subpaths]
        # One bound for all coordinates, after all transforms: the float32 renderer keeps sub-pixel precision
        # out to 64 canvas sizes (ulp <= 1/32 px at 4096 * 64), and no drawing needs geometry farther away.
        bad = [v for pts, _ in subpaths for p in pts for v in p if not abs(v) <= lim]
        if bad:
            bad = next((v for v in bad if not math.isfinite(v)), None) or max(bad, key=abs)
            if not math.isfinite(bad):
                raise InputError(f"The SVG's {what} has a coordinate that overflows ({bad}); use numbers within "
                                 f"its {W}x{H} canvas.")
            raise InputError(f"The SVG's {what} has a coordinate of {bad:.3g}, far outside its {W}x{H} canvas; "
                             f"coordinates must stay between -{lim:g} and {lim:g} px "
                             f"({MAX_COORD_CANVASES} canvas sizes).")
        if len(self.shapes) + 2 > MAX_SHAPES:
            raise InputError(f"The SVG has more than {MAX_SHAPES} shapes to draw; at most {MAX_SHAPES} are allowed, "
                             "so merge or remove shapes.")
        if stroke is not None:
            if state.get("stroke-dasharray", "none").strip() not in ("none", "", "0"):
                self._note("dash")
            open_ = any(not c for _, c in subpaths)
            cap = state.get("stroke-linecap", "butt").strip()
            join = state.get("stroke-linejoin", "miter").strip()
            if (open_ and cap != "round") or (join != "round" and tag not in ("circle", "ellipse")):
                self._note("caps")
        if any(state.get(k, "none").strip() not in ("none", "") for k in ("marker-start", "marker-mid", "marker-end")) \
                or _style(elem).get("marker", "none").strip() not in ("none", ""):
            self._note("marker")
        rule = "evenodd" if state.get("fill-rule", "nonzero").strip() == "evenodd" else "nonzero"
        all_closed = all(c for _, c in subpaths)
        is_rect = tag == "rect" and len(subpaths[0][0]) == 13 and abs(m[1]) < 1e-12 and abs(m[2]) < 1e-12
        if is_rect and stroke is None and fill is not None:
            xs = [p[0] for p in subpaths[0][0]]
            ys = [p[1] for p in subpaths[0][0]]
            corners = torch.tensor([[min(xs), min(ys)], [max(xs), max(ys)]], dtype=torch.float32)
            self._add(Shape("square", corners, fill=torch.tensor(fill, dtype=torch.float32)), what)
            return
        if all_closed:
            pts, counts = _closed_points(subpaths)
            self._add(Shape("path", pts, fill=torch.tensor(fill or (0.0, 0.0, 0.0, 0.0)),
                            stroke=torch.tensor(stroke or (0.0, 0.0, 0.0, 0.0)),
                            stroke_width=width if stroke else 0.0, fill_rule=rule,
                            subpaths=counts if len(counts) > 1 else None), what)
            return
        if fill is not None:
            pts, counts = _closed_points(subpaths)
            if counts:
                self._add(Shape("path", pts, fill=torch.tensor(fill), fill_rule=rule,
                                subpaths=counts if len(counts) > 1 else None), what)
        if stroke is not None:
            flat, counts = [], []
            for p, _ in subpaths:
                flat += p
                counts.append((len(p) - 1) // 3)
            self._add(Shape("stroke", torch.tensor(flat, dtype=torch.float32), stroke=torch.tensor(stroke),
                            stroke_width=width, subpaths=tuple(counts) if len(counts) > 1 else None), what)

    def _add(self, shape: Shape, what: str):
        self.shapes.append(shape)
        self.sources.append(what)


def _apply(m, p):
    a, b, c, d, e, f = m
    x, y = p
    return (a * x + c * y + e, b * x + d * y + f)


def _closed_points(subpaths):
    """Subpaths (p0 c c p1 ... pn) -> closed point lists (implicitly closed with a line), concatenated."""
    flat, counts = [], []
    for pts, _ in subpaths:
        pts = list(pts)
        if pts[-1] != pts[0]:
            a, b = pts[-1], pts[0]
            pts += [(a[0] + (b[0] - a[0]) / 3, a[1] + (b[1] - a[1]) / 3),
                    (a[0] + (b[0] - a[0]) * 2 / 3, a[1] + (b[1] - a[1]) * 2 / 3), b]
        flat += pts[:-1]
        counts.append((len(pts) - 1) // 3)
    return torch.tensor(flat, dtype=torch.float32), tuple(counts)
