"""Vector graphics: the scene model, a differentiable PyTorch rasterizer, SVG import and export.

    from backends.svg import Scene, Shape, render, svg_to_scene, scene_to_svg
    scene = svg_to_scene(open("logo.svg").read())
    image = render(scene, size=256)            # (256, 256, 3) float in [0, 1], differentiable
"""
from .render import render, render_batch
from .painting import Painting, circle_shapes, pixel_shapes, random_paths, stroke_shapes
from .scene import Scene, Shape
from .svgio import load_svg, save_svg, scene_to_svg, svg_to_scene

__all__ = ["Painting", "Scene", "Shape", "render", "render_batch", "circle_shapes", "random_paths", "stroke_shapes",
           "pixel_shapes", "svg_to_scene", "scene_to_svg", "load_svg", "save_svg"]
