"""Text to SVG: VectorFusion (SDS through the differentiable vector renderer) beside the raster-then-vectorize
baseline. Shows the SVG itself (drawn by the browser) and offers .svg and .png."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .common import Example, InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "svg"


def examples() -> list[Example]:
    return [
        Example("Icon: a red fox (tiny, 40 steps)", "vectorfusion", prompt="a red fox, minimal flat icon",
                settings={"steps": 40}),
    ]


SPEC = TabSpec(
    name="svg",
    task="svg",
    title="Text to SVG",
    intro=("**Text to SVG.** VectorFusion optimizes the paths of an SVG so that Stable Diffusion's score agrees "
           "with its rendering; the baseline samples a raster image and vectorizes it. The result is an "
           "editable .svg (and a .png)."),
    inputs=[InputSlot("image", "Raster image", lambda: gr.Image(
        type="filepath", label="Raster image (only for backends that vectorize an image)", sources=["upload"],
        height=160, elem_id="svg-input"))],
    method=("vectorfusion",),
    baseline=("raster-then-vectorize",),
    media=("svg",),
    prompt_label="Prompt (what the SVG should show)",
    examples=examples,
)
