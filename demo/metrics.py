"""What every number a result shows means, in words: a human name, one line on what it measures, and which way is
better. Plus what a run changed or dropped (`result.json`'s `warnings`, frames kept, resizing), in sentences.
No gradio here: the report table and its tests use these.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    name: str  # what a person calls it
    caption: str  # one line: what it measures
    better: str  # "higher", "lower" or "" (neither: a count or a setting's trace)
    needs_clip: bool = False  # meaningless when the run's CLIP has random weights (`clip_random_weights`)


GLOSSARY: dict[str, Metric] = {
    "psnr": Metric("PSNR (dB)", "how close the result is to the target image, pixel by pixel", "higher"),
    "mse": Metric("MSE", "mean squared pixel difference from the target image", "lower"),
    "loss": Metric("loss", "the distillation loss averaged over the last steps (its size depends on the prior)",
                   "lower"),
    "clip_score": Metric("CLIP score", "how well the picture matches the prompt, by CLIP (cosine similarity)",
                         "higher", needs_clip=True),
    "clip_score_raster": Metric("CLIP score of the raster", "the same score for the sampled raster, before vectorizing",
                                "higher", needs_clip=True),
    "clip_score_mean": Metric("mean CLIP score", "the CLIP score averaged over every candidate", "higher",
                              needs_clip=True),
    "clip_directional": Metric("CLIP directional similarity",
                               "whether the change in the picture follows the change the instruction asks for",
                               "higher", needs_clip=True),
    "diversity": Metric("diversity", "how different the candidates are from each other", "higher"),
    "shapes": Metric("shapes", "number of shapes in the SVG", ""),
    "paths": Metric("paths", "number of paths in the SVG", ""),
    "reinitialized": Metric("paths re-seeded", "faded or tiny paths put back on the canvas during the run", ""),
    "residual_variation": Metric("edit inconsistency", "how much the edit itself differs between neighbouring "
                                 "windows / frames / views", "lower"),
    "residual_variation_rel": Metric("relative edit inconsistency", "edit inconsistency divided by edit strength: "
                                     "0 means the same edit everywhere", "lower"),
    "colour_map_variation": Metric("edit colour inconsistency", "how differently neighbouring windows change the "
                                   "same colour (0: one look everywhere)", "lower"),
    "colour_map_variation_rel": Metric("relative edit colour inconsistency", "edit colour inconsistency divided by "
                                       "edit strength", "lower"),
    "fit_residual": Metric("texture fit residual", "how far the edited mesh's renders are from the edited views "
                           "(RMS over covered pixels)", "lower"),
    "held_out_residual": Metric("view disagreement", "how far a texture fitted to half the edited views is from "
                                "the other half (RMS): views that agree on one edit fit one texture", "lower"),
    "edit_strength": Metric("edit strength", "how much the picture changed from the input (each pixel's colour "
                             "change, averaged)", ""),
    "detail_correlation": Metric("detail kept", "how much of the input's fine detail the delivered result keeps "
                                 "(correlation of their high-pass brightness; 1 = all of it)", "higher"),
    "delivered_edit_strength": Metric("edit strength, delivered", "edit strength of what you download: full size, "
                                      "every frame", ""),
    "delivered_residual_variation": Metric("edit inconsistency, delivered", "edit inconsistency of what you "
                                           "download: full size, every frame", "lower"),
    "delivered_residual_variation_rel": Metric("relative edit inconsistency, delivered", "the same divided by the "
                                               "delivered edit strength", "lower"),
    "delivered_colour_map_variation": Metric("edit colour inconsistency, delivered", "edit colour inconsistency "
                                             "of the full-size result", "lower"),
    "frame_change_ratio": Metric("flicker", "the clip's mean change from frame to frame over the source's "
                                 "(1: the edit adds no flicker)", "lower"),
    "grad_norm": Metric("gradient norm", "size of the last step's update direction", ""),
    "xing": Metric("self-crossing penalty", "how much the paths cross themselves (the penalty's value)", "lower"),
    "saturation": Metric("saturation penalty", "how far colours are pushed past their range", "lower"),
    "t": Metric("noise level t", "the diffusion time of the last step (a trace of the schedule, not a score)", ""),
    "score": Metric("score difference", "mean size of the edit's score (target minus source noise prediction)", ""),
    "bad_steps": Metric("skipped steps", "steps whose update was not finite and was skipped", "lower"),
}
FINAL = "final_"  # CSD-Edit reports the last step's figures as final_<name>


def describe(key: str) -> Metric:
    """The Metric for a result key; `final_x` is x at the last step; an unknown key still gets a caption."""
    if key in GLOSSARY:
        return GLOSSARY[key]
    if key.startswith(FINAL) and key[len(FINAL):] in GLOSSARY:
        m = GLOSSARY[key[len(FINAL):]]
        return Metric(f"{m.name}, last step", m.caption, m.better, m.needs_clip)
    return Metric(key.replace("_", " "), "a figure this backend reports (no description registered for it)", "")


def caption(m: Metric) -> str:
    """'how close ... (higher is better)'."""
    return m.caption + (f" ({m.better} is better)" if m.better else "")


def clip_is_random(meta: dict) -> bool:
    """True when the run's CLIP scores come from random weights (see backends/measures/clip.py `label`)."""
    return bool(meta.get("clip_random_weights"))


def notices(meta: dict) -> list[str]:
    """Everything the run changed or dropped, as sentences: `warnings` (the runner always writes the list; backends
    add to it), then older single notes (`frames_note`, `notes`, `clip_note`) not already in it."""
    out: list[str] = []
    for w in meta.get("warnings") or []:
        if isinstance(w, str) and w not in out:
            out.append(w)
    for key in ("frames_note", "resize_note"):
        if key == "frames_note" and meta.get("sampled") is False:
            continue  # every frame kept: nothing to say
        if isinstance(meta.get(key), str) and not any(meta[key] in line for line in out):
            out.append(meta[key])  # unless a warning already says it ("Kept <frames_note>.")
    for note in meta.get("notes") or []:
        if isinstance(note, str) and note not in out:
            out.append(note)
    size_in, size_work = meta.get("input_size"), meta.get("work_size")
    if meta.get("upsample") != "guided" and (isinstance(size_in, list) and isinstance(size_work, list) and len(size_in) == 2 and len(size_work) == 2
            and list(size_in) != list(size_work)):
        line = f"Resized from {size_in[0]}x{size_in[1]} to {size_work[0]}x{size_work[1]} px for the run."
        if not any("esiz" in s for s in out):
            out.append(line)
    return out
