"""Panorama editing: CSD-Edit treats overlapping windows of a wide image as SVGD particles, so the edit agrees
across the seams; the baseline runs InstructPix2Pix on each window on its own."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .examples import Example
from .tab import InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "panorama"


def examples() -> list[Example]:
    out = []
    for path in sorted(EXAMPLES.glob("*.png")) + sorted(EXAMPLES.glob("*.jpg")):
        name = path.stem.replace("_", " ")
        out.append(Example(f"{name}: make it winter", "csd-edit", prompt="make it winter, snow on the ground",
                           inputs={"image": str(path)}, shows="winter"))
        out.append(Example(f"{name}: sunset, vs. per-patch", "csd-edit", prompt="make it a sunset",
                           inputs={"image": str(path)}, compare=True,
                           shows="sunset"))
    return out


SPEC = TabSpec(
    name="panorama",
    task="panorama",
    title="Panorama edit",
    intro=("**Panorama editing.** Give a wide image and an instruction. CSD-Edit edits overlapping windows "
           "together (as SVGD particles), so they take one edit across the whole width; the baseline edits each "
           "window on its own with the same prior. Each result measures how much the edit differs between "
           "neighbouring windows (*edit inconsistency*)."),
    inputs=[InputSlot("image", "Panorama", lambda: gr.Image(
        type="filepath", label="Wide image", sources=["upload"], height=170, elem_id="panorama-input"))],
    method=("csd-edit",),
    baseline=("per-patch",),
    prompt_label="Instruction (e.g. 'make it snowy')",
    examples=examples,
)
