"""3D-view editing: CSD-Edit treats several views of one object as particles (a perceptual distance in the
kernel), so the edited views stay consistent; the baseline edits view by view. Gallery + zip + turntable."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .tab import Example, InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "views3d"


def examples() -> list[Example]:
    views = sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg")) if EXAMPLES.is_dir() else []
    zips = sorted(EXAMPLES.glob("*.zip")) if EXAMPLES.is_dir() else []
    out = []
    if len(views) >= 2:
        views = views[:8]
        out.append(Example(f"{len(views)} views: old sepia photo", "csd-edit", prompt="make it an old sepia photo",
                           inputs={"images": [str(p) for p in views]}, shows="sepia"))
        out.append(Example(f"{len(views)} views: night, vs. per-view", "csd-edit", prompt="make it night",
                           inputs={"images": [str(p) for p in views]}, compare=True,
                           shows="night"))
    for z in zips:
        out.append(Example(f"{z.stem}: watercolour", "csd-edit", prompt="turn it into a watercolour painting",
                           inputs={"images": [str(z)]}, shows="watercolour"))
    return out


SPEC = TabSpec(
    name="views3d",
    task="views3d",
    title="3D-view edit",
    intro=("**3D-view editing.** Give several views of one object or scene (images, or one zip) and an "
           "instruction. CSD-Edit edits the views together as one set of particles, so they take one edit; the "
           "baseline edits each view on its own with the same prior. Each result measures how much the edit "
           "differs from view to view (*edit inconsistency*)."),
    inputs=[InputSlot("images", "Views", lambda: gr.File(
        label="Views: several images or one .zip", file_count="multiple",
        file_types=["image", ".zip"], height=160, elem_id="views3d-input"))],
    method=("csd-edit",),
    baseline=("per-view",),
    media=("gallery", "video"),
    media_labels={"gallery": "edited views", "video": "turntable"},
    prompt_label="Instruction (e.g. 'turn it into a bronze statue')",
    examples=examples,
)
