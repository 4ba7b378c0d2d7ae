"""SVG import: a user's file or text into a Scene, every bound of the package docstring checked."""
from __future__ import annotations

from pathlib import Path

from ...inputs import validate
from ..cost import MAX_WORK, check_work
from ..scene import Scene
from .builder import SceneBuilder
from .document import parse_document
from .limits import MAX_BYTES, MAX_ELEMENTS, MAX_SEGMENTS


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
    root = parse_document(data, max_elements)
    builder = SceneBuilder(root, max_segments)
    scene = builder.build()
    check_work(scene, max_work=max_work, sources=builder.sources)
    if device != "cpu":
        scene = scene.to(device)
    return scene
