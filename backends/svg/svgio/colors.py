"""CSS colours of SVG paint: hex, rgb()/rgba(), hsl()/hsla(), the named colours, currentColor, transparent."""
from __future__ import annotations

import math
import re

# The CSS named colours, as #rrggbb without the '#'.
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
