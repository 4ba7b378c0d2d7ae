"""The walk of an SVG document into a Scene: the canvas and its viewBox, nested groups and <svg>s with their
transforms, inherited styles and opacity, and each shape's geometry and paint, bounded as the package docstring
says."""
from __future__ import annotations

import math

import torch

from ...core.errors import InputError
from ..scene import Scene, Shape
from .document import describe, local_name, namespace
from .lengths import noting_unread_lengths, parse_length, parse_numbers
from .limits import (MAX_ASPECT, MAX_CANVAS, MAX_COORD_CANVASES, MAX_DEPTH, MAX_SCALE, MAX_SHAPES, MAX_SUBPATHS,
                     SVG_NS)
from .notes import Notes
from .paint import INHERITED, Paints, fraction, presentation
from .pathdata import SegmentBudget, parse_path_data
from .shapes import closed_points, ellipse, polyline, rect
from .transforms import IDENTITY, apply, multiply, parse_transform, stretch

_CONTAINERS = ("g", "a", "switch", "svg")
_SHAPES = ("path", "rect", "circle", "ellipse", "line", "polyline", "polygon")
# Definitions and metadata: drawing nothing is what the spec asks of them (their *use* is warned about).
_SILENT = frozenset(("defs", "title", "desc", "metadata", "linearGradient", "radialGradient", "pattern", "clipPath",
                     "mask", "filter", "marker", "symbol", "cursor", "view", "font", "font-face", "glyph",
                     "missing-glyph", "color-profile", "hkern", "vkern"))
_ANIMATION = frozenset(("animate", "animateTransform", "animateMotion", "animateColor", "set"))


class SceneBuilder:
    """One import: `SceneBuilder(root, max_segments).build()` is the Scene; `sources` names the element each
    shape came from (for the work bound's message)."""

    def __init__(self, root, max_segments):
        self.root = root
        self.budget = SegmentBudget(max_segments)
        self.shapes: list[Shape] = []
        self.sources: list[str] = []              # the element each shape came from, for messages
        self.background = None
        self.view = (300.0, 150.0)
        self.canvas = (300, 150)
        self.notes = Notes()
        self.paints = Paints(root, self.notes)

    def build(self) -> Scene:
        with noting_unread_lengths(self.notes.lengths):
            return self._build()

    def _build(self) -> Scene:
        root = self.root
        Wi, Hi, vbw, vbh = self._canvas(root)
        self.view = (vbw or float(Wi), vbh or float(Hi))
        self.canvas = (Wi, Hi)
        m = self._viewport(root, Wi, Hi)
        state = {"fill": "black", "stroke": "none", "stroke-width": "1", "fill-rule": "nonzero",
                 "fill-opacity": "1", "stroke-opacity": "1", "color": "black", "visibility": "visible"}
        if self._check_transform(m, root):
            self._walk(root, m, state, 1.0, 0, is_root=True)
        bg = self.background if self.background is not None else (1.0, 1.0, 1.0, 0.0)
        return Scene(Wi, Hi, self.shapes, torch.tensor(bg, dtype=torch.float32), self.notes.sentences())

    def _canvas(self, root) -> tuple[int, int, float | None, float | None]:
        """The canvas in whole pixels (width, height, from the root's width and height, or its viewBox, or
        300 x 150), bounded in size and aspect, and the viewBox's width and height (None without one)."""
        nums = parse_numbers(root.get("viewBox") or "")
        vbw, vbh = (nums[2], nums[3]) if len(nums) == 4 else (None, None)
        W = parse_length(root.get("width"), vbw or 300.0, None, "width", root)
        H = parse_length(root.get("height"), vbh or 150.0, None, "height", root)
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
        return Wi, Hi, vbw, vbh

    def _check_transform(self, m, elem) -> bool:
        """False when the transform is singular (the element is not drawn); InputError when it is absurd."""
        if not all(math.isfinite(v) for v in m):
            raise InputError(f"The SVG's {describe(elem)} has a transform with a non-finite or overflowing number; "
                             "remove it.")
        smin, smax = stretch(m)
        if smin == 0.0 and smax < math.inf:
            self.notes.note("zero-scale")
            return False
        if smax > MAX_SCALE:
            raise InputError(f"The SVG's {describe(elem)} has a transform that stretches by {smax:.3g} (with its "
                             f"parents'); at most {MAX_SCALE:g} is allowed, so reduce its scale or skew.")
        if smin < 1 / MAX_SCALE:
            raise InputError(f"The SVG's {describe(elem)} has a transform that shrinks by {smin:.3g} (with its "
                             f"parents'); at least {1 / MAX_SCALE:g} is allowed, so reduce its scale or skew.")
        return True

    def _viewport(self, elem, W, H):
        """Transform from the element's viewBox to a W x H viewport (preserveAspectRatio honoured)."""
        vb = elem.get("viewBox")
        if not vb:
            return IDENTITY
        nums = parse_numbers(vb)
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

    def _walk(self, elem, m, state, opacity, depth, is_root=False):
        if depth > MAX_DEPTH:
            raise InputError(f"The SVG nests elements more than {MAX_DEPTH} levels deep.")
        props = presentation(elem)
        if props.get("display") == "none":
            return
        state = dict(state)
        for k in INHERITED:
            if k in props and props[k] != "inherit":
                state[k] = props[k]
        opacity *= fraction(props.get("opacity"), 1.0)
        tag = local_name(elem.tag)
        inner = None                                             # a nested <svg>'s viewport, for percentages
        if not is_root:
            if namespace(elem.tag) not in ("", SVG_NS):
                return
            m = multiply(m, parse_transform(elem.get("transform", "")))
            if tag == "svg":
                # its x, y, width, height: percentages of the viewport around it (100% when not given); inside it,
                # percentages refer to its own viewBox, or to its size without one (SVG 1.1, 7.10)
                pw, ph = self.view
                x = parse_length(elem.get("x"), pw, 0.0, "x", elem)
                y = parse_length(elem.get("y"), ph, 0.0, "y", elem)
                w = parse_length(elem.get("width"), pw, pw, "width", elem)
                h = parse_length(elem.get("height"), ph, ph, "height", elem)
                nums = parse_numbers(elem.get("viewBox") or "")
                m = multiply(multiply(m, (1.0, 0.0, 0.0, 1.0, x, y)), self._viewport(elem, w, h))
                self.notes.note("nested-svg")
                inner = (nums[2], nums[3]) if len(nums) == 4 and min(nums[2:]) > 0 else (w, h)
            if tag in _CONTAINERS or tag in _SHAPES:
                if not self._check_transform(m, elem):
                    return
        if tag in _CONTAINERS or tag in _SHAPES:
            for key in ("clip-path", "mask", "filter"):
                if props.get(key, "none") not in ("none", ""):
                    self.notes.note(key)
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
            self.notes.note("animation")
        elif tag in ("style", "script"):
            self.notes.note(tag)
        elif tag not in _SILENT and tag:
            self.notes.note("skip:" + "".join(ch if ch.isprintable() and ch not in "<>" else "?" for ch in tag[:30]))

    def _walk_children(self, elem, tag, m, state, opacity, depth, is_root):
        first = True
        children = list(elem)
        if tag == "switch":                                  # the first child wins; no conditions tested
            children = [c for c in children if namespace(c.tag) in ("", SVG_NS)][:1]
        for child in children:
            classes = (child.get("class") or "").split()
            if is_root and first and local_name(child.tag) == "rect" and "background" in classes:
                first = False
                self._background(child, state)
                continue
            first = False
            self._walk(child, m, state, opacity, depth + 1)

    def _background(self, elem, state):
        props = presentation(elem)
        st = dict(state)
        st.update({k: v for k, v in props.items() if k in INHERITED})
        fill = self.paints.paint(st.get("fill"), st)
        if fill is None:
            return
        a = fill[3] * fraction(st.get("fill-opacity"), 1.0) * fraction(props.get("opacity"), 1.0)
        self.background = (fill[0], fill[1], fill[2], a)

    def _geometry(self, elem, tag):
        g = elem.get
        vw, vh = self.view                          # percentages refer to the viewBox (SVG 1.1, 7.10)

        def length(attr, ref, default):
            return parse_length(g(attr), ref, default, attr, elem)

        diag = math.sqrt((vw * vw + vh * vh) / 2)
        if tag == "path":
            errors = []
            subpaths = parse_path_data(g("d") or "", self.budget, errors)
            if errors:
                self.notes.malformed_path(g("d") or "", errors[0])
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
            return rect(x, y, w, h, rx, ry)
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
            return ellipse(cx, cy, rx, ry)
        if tag == "line":
            return polyline([length(k, ref, 0.0) for k, ref in (("x1", vw), ("y1", vh), ("x2", vw), ("y2", vh))],
                             False)
        coords = parse_numbers(g("points") or "")
        if len(coords) % 2:
            coords = coords[:-1]
        return polyline(coords, tag == "polygon")


    def _shape(self, elem, tag, m, state, opacity):
        subpaths = self._geometry(elem, tag)
        if not subpaths:
            return
        self.budget.spend(0)
        what = describe(elem)
        if len(subpaths) > MAX_SUBPATHS:
            raise InputError(f"The SVG's {what} has {len(subpaths)} subpaths; at most {MAX_SUBPATHS} per shape are "
                             "allowed, so split it into several shapes or simplify it.")
        fill, stroke, width = self._shape_paint(elem, tag, m, state, opacity)
        if fill is None and stroke is None:
            return
        subpaths = self._placed(subpaths, m, what, width if stroke is not None else None)
        if len(self.shapes) + 2 > MAX_SHAPES:
            raise InputError(f"The SVG has more than {MAX_SHAPES} shapes to draw; at most {MAX_SHAPES} are allowed, "
                             "so merge or remove shapes.")
        self._note_stroke_style(elem, tag, state, subpaths, stroke is not None)
        self._emit(tag, m, subpaths, fill, stroke, width, state, what)

    def _shape_paint(self, elem, tag, m, state, opacity):
        """(fill, stroke, width): RGBA with the element's opacities folded in, None where nothing is drawn, and the
        stroke width in canvas pixels (scaled by the transform's area factor)."""
        fill = None if tag == "line" else self.paints.paint(state.get("fill"), state)
        stroke = self.paints.paint(state.get("stroke"), state)
        width = parse_length(state.get("stroke-width"), math.sqrt(sum(v * v for v in self.view) / 2), 1.0,
                             "stroke-width", elem) or 0.0
        scale = math.sqrt(abs(m[0] * m[3] - m[1] * m[2]))
        width *= scale
        if fill is not None:
            fill = (*fill[:3], fill[3] * fraction(state.get("fill-opacity"), 1.0) * opacity)
            if fill[3] <= 0:
                fill = None
        if stroke is not None:
            stroke = (*stroke[:3], stroke[3] * fraction(state.get("stroke-opacity"), 1.0) * opacity)
            if stroke[3] <= 0 or width <= 0:
                stroke = None
        return fill, stroke, width

    def _placed(self, subpaths, m, what: str, stroke_width: float | None):
        """The subpaths moved by transform m onto the canvas; InputError when a coordinate or the stroke width
        (None: no stroke) lies beyond MAX_COORD_CANVASES canvas sizes."""
        W, H = self.canvas
        lim = MAX_COORD_CANVASES * max(W, H)
        if stroke_width is not None and not stroke_width <= lim:
            raise InputError(f"The SVG's {what} has a stroke {stroke_width:.3g} px wide, far wider than its {W}x{H} "
                             f"canvas; stroke widths are limited to {lim:g} px ({MAX_COORD_CANVASES} canvas sizes).")
        subpaths = [([apply(m, p) for p in pts], closed) for pts, closed in subpaths]
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
        return subpaths

    def _note_stroke_style(self, elem, tag, state, subpaths, stroked: bool):
        """Count what the renderer draws otherwise than the file says: dashes, caps and joins, markers."""
        if stroked:
            if state.get("stroke-dasharray", "none").strip() not in ("none", "", "0"):
                self.notes.note("dash")
            open_ = any(not c for _, c in subpaths)
            cap = state.get("stroke-linecap", "butt").strip()
            join = state.get("stroke-linejoin", "miter").strip()
            if (open_ and cap != "round") or (join != "round" and tag not in ("circle", "ellipse")):
                self.notes.note("caps")
        if any(state.get(k, "none").strip() not in ("none", "") for k in ("marker-start", "marker-mid", "marker-end")) \
                or presentation(elem).get("marker", "none").strip() not in ("none", ""):
            self.notes.note("marker")

    def _emit(self, tag, m, subpaths, fill, stroke, width, state, what):
        """The shapes of one element: an axis-aligned unstroked rect as a "square"; closed subpaths as one "path"
        (fill and stroke); open ones as a filled "path" (closed implicitly) under a "stroke"."""
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
            pts, counts = closed_points(subpaths)
            self._add(Shape("path", pts, fill=torch.tensor(fill or (0.0, 0.0, 0.0, 0.0)),
                            stroke=torch.tensor(stroke or (0.0, 0.0, 0.0, 0.0)),
                            stroke_width=width if stroke else 0.0, fill_rule=rule,
                            subpaths=counts if len(counts) > 1 else None), what)
            return
        if fill is not None:
            pts, counts = closed_points(subpaths)
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
