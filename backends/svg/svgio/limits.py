"""The bounds of an SVG import (the package docstring says what each one buys), and the SVG namespace."""
from __future__ import annotations

from ...inputs import validate

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
