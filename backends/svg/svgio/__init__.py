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

The modules, in the order an import uses them:
    limits      the bounds above, and the SVG namespace
    document    the XML parsed safely; element names for messages
    lengths     numbers and lengths (units, percentages), finite or refused
    colors      CSS colours
    transforms  transform lists as affine tuples
    pathdata    path data into cubics (arcs included)
    shapes      rect, circle, ellipse, line, polyline, polygon into cubics
    paint       styles, inheritance, paint (gradients as their mean colour)
    notes       the warnings, one sentence per kind
    builder     the walk of the document into a Scene
    importer    `svg_to_scene`, `load_svg`: the whole import with its work bound
    export      `scene_to_svg`, `save_svg`
"""
from __future__ import annotations

from ..cost import MAX_WORK, check_work
from .colors import parse_color
from .export import save_svg, scene_to_svg
from .importer import load_svg, svg_to_scene
from .lengths import parse_length, parse_numbers
from .limits import (MAX_ASPECT, MAX_BYTES, MAX_CANVAS, MAX_COORD_CANVASES, MAX_DEPTH, MAX_ELEMENTS, MAX_SCALE,
                     MAX_SEGMENTS, MAX_SHAPES, MAX_STOPS, MAX_STOPS_TOTAL, MAX_SUBPATHS, SVG_NS)
from .pathdata import parse_path_data
from .transforms import parse_transform

__all__ = ["MAX_ASPECT", "MAX_BYTES", "MAX_CANVAS", "MAX_COORD_CANVASES", "MAX_DEPTH", "MAX_ELEMENTS", "MAX_SCALE",
           "MAX_SEGMENTS", "MAX_SHAPES", "MAX_STOPS", "MAX_STOPS_TOTAL", "MAX_SUBPATHS", "MAX_WORK", "SVG_NS",
           "check_work", "load_svg", "parse_color", "parse_length", "parse_numbers", "parse_path_data",
           "parse_transform", "save_svg", "scene_to_svg", "svg_to_scene"]
