"""Vector graphics: the scene model, a differentiable PyTorch rasterizer, SVG import and export.

    from backends.svg import Scene, Shape, render, svg_to_scene, scene_to_svg
    scene = svg_to_scene(open("logo.svg").read())
    image = render(scene, size=256)            # (256, 256, 3) float in [0, 1], differentiable
"""
from .render import render, render_batch
from .scene import Scene, Shape, pixel_grid, random_circle_paths, random_paths, random_strokes
from .svgio import load_svg, save_svg, scene_to_svg, svg_to_scene

__all__ = ["Scene", "Shape", "render", "render_batch", "random_circle_paths", "random_paths", "random_strokes",
           "pixel_grid", "svg_to_scene", "scene_to_svg", "load_svg", "save_svg"]
