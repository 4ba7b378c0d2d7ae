"""Text to SVG: VectorFusion (SDS through the differentiable vector renderer) beside the raster-then-vectorize
baseline. Shows the SVG itself (drawn by the browser) and offers .svg and .png."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .examples import Example
from .tab import InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "svg"


def examples() -> list[Example]:
    # Sized for a CPU and the offline icons prior (the browser test runs each one); with a GPU and real weights,
    # leave steps empty for the paper's defaults.
    quick_baseline = {"k": 2, "sample_steps": 10}
    out = [
        Example("Icon: a red fox (30 steps)", "vectorfusion", prompt="a red fox",
                settings={"steps": 30, "style": "iconography"}, shows="fox"),
        Example("Pixel art: a mushroom", "vectorfusion", prompt="a red mushroom",
                settings={"steps": 40, "style": "pixelart"}, shows="mushroom"),
        Example("Fox: VectorFusion vs. raster then vectorize", "vectorfusion", prompt="a red fox",
                settings={"steps": 30}, compare=True, compare_settings=quick_baseline, shows="fox"),
        Example("Two diverse candidates (CSD)", "csd", prompt="a cat", settings={"steps": 10, "k": 2}, shows="cat"),
    ]
    for path in sorted(EXAMPLES.glob("*.png"))[:2]:
        out.append(Example(f"Vectorize {path.name}", "vectorize", inputs={"image": str(path)},
                           settings={"iters": 20, "paths": 8, "size": 128}, shows="input"))
    return out


SPEC = TabSpec(
    name="svg",
    task="svg",
    title="Text to SVG",
    intro=("**Text to SVG.** VectorFusion samples a picture from a text-to-image prior, traces it into paths, then "
           "refines the paths by score distillation until the prior's score agrees with their rendering; the "
           "baseline samples and traces without refining. The result is an editable .svg (and a .png)."),
    inputs=[InputSlot("image", "Raster image", lambda: gr.Image(
        type="filepath", label="Raster image to vectorize", sources=["upload"],
        height=160, elem_id="svg-input"))],
    method=("vectorfusion",),
    baseline=("raster-then-vectorize",),
    media=("svg",),
    prompt_label="Prompt (what the SVG should show)",
    examples=examples,
)
