"""Video editing: CSD-Edit treats the frames as particles (temporally consistent edit); the baseline edits frame
by frame with InstructPix2Pix. Shows both clips and offers mp4 / gif."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from .examples import Example
from .tab import InputSlot, TabSpec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "video"
VIDEO_TYPES = (".mp4", ".mov", ".webm", ".mkv", ".gif")  # what backends.inputs.media reads


def examples() -> list[Example]:
    out = []
    for path in sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in VIDEO_TYPES):
        name = path.stem.replace("_", " ")
        out.append(Example(f"{name}: watercolour", "csd-edit", prompt="make it a watercolour painting",
                           inputs={"video": str(path)}, shows="watercolour"))
        out.append(Example(f"{name}: winter, vs. per-frame", "csd-edit", prompt="make it winter",
                           inputs={"video": str(path)}, compare=True,
                           shows="winter"))
    return out


SPEC = TabSpec(
    name="video",
    task="video",
    title="Video edit",
    intro=("**Video editing.** Give a short clip and an instruction. CSD-Edit edits keyframes together as one "
           "set of particles, so they take one edit; the baseline edits each keyframe on its own with the same prior. "
           "Both carry the keyframes' edit to every frame, at the clip's size and frame rate. "
           "Each result measures how much the edit differs from frame to frame (*edit inconsistency*)."),
    # a file box, not gr.Video: the browser's video picker hides GIFs, which the CLI and the reader take
    inputs=[InputSlot("video", "Clip", lambda: gr.File(
        label="Short clip, a few seconds (mp4, mov, webm, mkv or gif)", file_types=list(VIDEO_TYPES),
        height=120, elem_id="video-input"))],
    method=("csd-edit",),
    baseline=("per-frame",),
    media=("video",),
    media_labels={"video": "edited clip"},
    prompt_label="Instruction (e.g. 'make it a watercolour painting')",
    examples=examples,
)
