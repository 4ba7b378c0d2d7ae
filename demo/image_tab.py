"""The engine check tab: optimize pixels with SDS. With the analytic prior it must reconstruct the target image,
which makes it the quickest way to see the whole loop (previews, Stop, compare, downloads) working."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .examples import Example
from .tab import InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "image"


def examples() -> list[Example]:
    return [
        Example("Reconstruct shapes (analytic prior, 150 steps)", "sds", inputs={"image": str(EXAMPLES / "shapes.png")},
                settings={"steps": 150, "lr": 0.05}, shows="input"),
        Example("Gradient, compare two learning rates", "sds", inputs={"image": str(EXAMPLES / "gradient.png")},
                settings={"steps": 150, "lr": 0.05}, compare=True, compare_settings={"lr": 0.01},
                shows="input"),
    ]


SPEC = TabSpec(
    name="image",
    task="image",
    title="SDS check",
    intro=("**Score distillation on raw pixels** (DreamFusion's 2D check). With the *analytic* prior the exact "
           "noise prediction of a Gaussian around the target is known, so SDS must reconstruct the target image you "
           "give: PSNR climbs as it does. With a text prior the target is optional and it paints the prompt, slowly."),
    inputs=[InputSlot("image", "Target image", lambda: gr.Image(
        type="filepath", label="Target image",
        sources=["upload", "clipboard"], height=170, elem_id="image-input"))],
    method=("sds",),
    baseline=("sds",),
    default_prior="analytic",
    examples=examples,
)
