"""Styles and paint: an element's presentation attributes and style="...", and a paint (a colour, none, or a
gradient or pattern reference with fallbacks) as one RGBA colour; a gradient is drawn as its mean stop colour."""
from __future__ import annotations

import math

from ...core.errors import InputError
from .colors import parse_color
from .document import describe, local_name
from .limits import MAX_STOPS, MAX_STOPS_TOTAL
from .notes import Notes

# The properties children inherit, and every property read (inherited or not).
INHERITED = ("fill", "fill-opacity", "fill-rule", "stroke", "stroke-opacity", "stroke-width", "color", "visibility",
             "stroke-linecap", "stroke-linejoin", "stroke-dasharray", "marker-start", "marker-mid", "marker-end")
PROPS = INHERITED + ("opacity", "display", "stop-color", "stop-opacity", "clip-path", "mask", "filter", "marker")


def presentation(elem) -> dict[str, str]:
    """Presentation attributes overridden by the style attribute (CSS declarations)."""
    props = {}
    for k in PROPS:
        v = elem.get(k)
        if v is not None:
            props[k] = v.strip()
    style = elem.get("style")
    if style:
        for decl in style.split(";"):
            k, sep, v = decl.partition(":")
            k = k.strip().lower()
            if sep and k in PROPS:
                props[k] = v.replace("!important", "").strip()
    return props


def fraction(text, default):
    """An opacity: a number or a percentage, clamped to [0, 1]; default when missing or unreadable."""
    if text is None:
        return default
    try:
        v = float(str(text).strip().rstrip("%")) / (100.0 if str(text).strip().endswith("%") else 1.0)
    except ValueError:
        return default
    return min(max(v, 0.0), 1.0) if math.isfinite(v) else default


class Paints:
    """The paint servers of one document (gradients and patterns by id, their stops bounded) and the paints
    resolved against them; what is drawn approximately is counted in `notes`."""

    def __init__(self, root, notes: Notes):
        self.notes = notes
        self.servers = {}
        self._means: dict[str, tuple | None] = {}
        total = 0
        for el in root.iter():
            tag = local_name(el.tag)
            if tag in ("linearGradient", "radialGradient", "pattern"):
                stops = sum(1 for c in el if local_name(c.tag) == "stop")
                if stops > MAX_STOPS:
                    raise InputError(f"The SVG's {describe(el)} has {stops} stops; at most {MAX_STOPS} per gradient "
                                     "are allowed, so remove stops.")
                total += stops
                if total > MAX_STOPS_TOTAL:
                    raise InputError(f"The SVG's gradients have more than {MAX_STOPS_TOTAL} stops in all; use fewer "
                                     "or simpler gradients.")
                if el.get("id"):
                    self.servers[el.get("id")] = el

    def paint(self, text, state):
        """The RGBA colour of paint `text` (fill or stroke) in `state` (for currentColor), or None for none."""
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
                self.notes.gradient_used(ref)
                return mean
            el = self.servers.get(ref)
            self.notes.note("pattern" if el is not None and local_name(el.tag) == "pattern" else "missing-paint")
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
        el = self.servers.get(ref)
        if el is None or depth > 8:
            return None
        self._means[ref] = None                              # a cycle of hrefs ends here
        stops = [s for s in el if local_name(s.tag) == "stop"]
        if not stops:
            href = el.get("href") or el.get("{http://www.w3.org/1999/xlink}href") or ""
            mean = self._gradient_mean(href.lstrip("#"), depth + 1) if href.startswith("#") else None
        else:
            acc = [0.0, 0.0, 0.0, 0.0]
            for s in stops:
                p = presentation(s)
                c = parse_color(p.get("stop-color", "black")) or (0.0, 0.0, 0.0, 1.0)
                a = c[3] * fraction(p.get("stop-opacity"), 1.0)
                for i in range(3):
                    acc[i] += c[i]
                acc[3] += a
            n = len(stops)
            mean = tuple(v / n for v in acc)
        self._means[ref] = mean
        return mean
