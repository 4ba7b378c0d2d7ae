"""Video editing: CSD-Edit treats the frames as particles (temporally consistent edit); the baseline edits frame
by frame with InstructPix2Pix. Shows both clips and offers mp4 / gif."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .tab import Example, InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "video"


# Small enough for a CPU and the tiny prior (CI runs these); with a GPU, raise steps and short_side.
QUICK = {"steps": 20, "short_side": 64, "particles": 4}


def examples() -> list[Example]:
    out = []
    for path in sorted(EXAMPLES.glob("*.mp4")) + sorted(EXAMPLES.glob("*.gif")) + sorted(EXAMPLES.glob("*.webm")):
        name = path.stem.replace("_", " ")
        out.append(Example(f"{name}: Van Gogh", "csd-edit", prompt="make it a Van Gogh painting",
                           inputs={"video": str(path)}, settings=dict(QUICK)))
        out.append(Example(f"{name}: winter, vs. per-frame", "csd-edit", prompt="make it winter",
                           inputs={"video": str(path)}, settings=dict(QUICK), compare=True))
    return out


SPEC = TabSpec(
    name="video",
    task="video",
    title="Video edit",
    intro=("**Video editing.** Give a short clip and an instruction. CSD-Edit edits all frames together, so "
           "the edit does not flicker; the baseline edits each frame on its own."),
    inputs=[InputSlot("video", "Clip", lambda: gr.Video(
        label="Short clip (a few seconds)", sources=["upload"], height=170, elem_id="video-input"))],
    method=("csd-edit",),
    baseline=("per-frame",),
    media=("video",),
    media_labels={"video": "edited clip"},
    prompt_label="Instruction (e.g. 'make it a Van Gogh painting')",
    examples=examples,
)
