"""`video/csd-edit` and `video/per-frame`: edit a clip, every frame of it, at its own size and frame rate.

`particles` keyframes, spread evenly over the clip (all frames when it has fewer), are the particles: each resized
so its short side is `short_side` pixels, every step updates all of them in one UNet call over both prompts
(`chunk` splits it). CSD-Edit mixes the keyframes' edit scores through the kernel, so the edit is the same from
keyframe to keyframe; video/per-frame is the same loop without the kernel (InstructPix2Pix SDS-edit on each keyframe
alone), same budget, same seed. Defaults follow the authors' video recipe (100 steps, lr 0.5, image guidance 1.5).

Then every frame of the clip receives the edit (`CarriedClip`): each keyframe's edit is a local colour model fitted
at the working size (`upsample.fit`), a frame between two keyframes takes their models interpolated in time, applied
to its own full-size pixels. Both methods share that step. Frames stream: the clip is read twice, once for the
keyframes (`media.video_keyframes`, the only frames decoded into memory) and once, frame by frame, for the carry
(`media.video_frames`); at most two float frames and the figure's frames are held, whatever the clip's length.

Outputs: edited.mp4 (H.264) with the clip's frame count, frame rate and size, edited.gif (the same frames, at most
320 px wide), comparison.png (source row over edited row).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import Iterable, Optional

import numpy as np
import torch
from PIL import Image

from ..core import budget, timing
from ..core.errors import InputError
from ..inputs import media
from ..core.files import atomic_path
from ..core.pixels import save_png, to_tensor, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from . import csd, metrics, outputs, upsample


@dataclass
class VideoSettings(csd.EditSettings):
    steps: Optional[int] = option(None, "optimization steps (the authors' video recipe: 100)", lo=1, hi=5000,
                                  full=100, quick=30)
    particles: Optional[int] = option(None, "keyframes edited together, spread evenly over the clip; every other frame takes "
                            "the edit of its two nearest keyframes", lo=1, hi=64, full=24, quick=8)
    lr: Optional[float] = option(None, "SGD learning rate on the latents (the authors' video recipe: 0.5)", lo=1e-4,
                                 hi=100.0, advanced=True, full=0.5, quick=0.5)


@dataclass
class VideoCSDSettings(VideoSettings):
    repulsion: float = csd.repulsion_option()
    kernel_width: float = csd.kernel_width_option(4.0)
    settle_scale: float = csd.settle_scale_option()


class _VideoEdit(csd.EditBackend):
    inputs = "video"

    @classmethod
    def estimate(cls, s: VideoSettings, inputs, facts):
        """The work budget's estimate from the container's header (see `backends.core.budget`): the frame's aspect,
        then `particles` keyframes at the working size, and what the carry holds (the full-size keyframes while
        they are read, the figure's frames, two float frames, the GIF's small frames) but not the clip, which it
        streams. Its time apart (`Work.seconds`: CARRY_PIXEL_S for each pixel of each frame, which the keyframes'
        work does not scale); a clip whose carry alone is over the time budget is refused saying how many of its
        frames fit."""
        size = budget.video_size(inputs[0])
        budget.check_aspect(size, "video frame")
        particles = s.particles or 8
        work = budget.edit_work([size] * particles, s.short_side or 512, facts, "frame")
        pixels = size[0] * size[1]
        frames, fps = media.video_length(inputs[0])
        count = frames or media.MAX_VIDEO_FRAMES  # a header that does not say: the most a clip may have
        gif_w, gif_h = gif_frame_size(size)
        held = ((particles + 2 * FIGURE_FRAMES) * pixels * 3 + pixels * upsample.BYTES_PER_PIXEL
                + count * gif_w * gif_h * 4)  # the GIF's frames: RGB, then Pillow's palette copy
        carry_s, limit = count * pixels * CARRY_PIXEL_S, budget.time_budget_s()
        if frames and carry_s > limit:
            fits = int(limit / (pixels * CARRY_PIXEL_S))
            seconds = f" ({fits / fps:.1f} s at its {fps:g} fps)" if fps else ""
            raise InputError(f"Carrying the edit to all {frames} frames of {size[0]}x{size[1]} would take about "
                             f"{timing.duration(carry_s)} on a 2-core CPU, more than DISTILL_TIME_BUDGET "
                             f"({limit:.0f} s); use a clip of at most {fits} frames{seconds} or a smaller one.")
        return replace(work, bytes=work.bytes + held, effort=work.units, seconds=carry_s)

    def load(self, s: VideoSettings, prior, inputs):
        # only the keyframes are decoded into memory, and only their working-size tensors are kept; the carry
        # reads the clip again, frame by frame (`outputs`)
        clip = media.video_keyframes(inputs[0], s.particles)
        h0, w0 = clip.frames.shape[1:3]
        size = budget.working_size((w0, h0), s.short_side, prior.size_multiple)
        shown = keyframes(len(clip.indices), FIGURE_FRAMES)
        return csd.Sources(outputs.to_batch(clip.frames, size, prior.device),
                           dict(keys=clip.indices, count=clip.count, fps=clip.fps, input_size=(w0, h0), size=size,
                                shown=shown, path=inputs[0]))

    def preview(self, prior, z, source, src):
        shown = src.facts["shown"]
        edited = csd.decode_preview(prior, z[shown])
        return outputs.labelled_rows([("source", outputs.strip(to_uint8(source[shown]))),
                                      (f"{self.key} step", outputs.strip(to_uint8(edited)))])

    def outputs(self, s, prior, edit, edited, source, src, last, out_dir):
        keys, count, fps = src.facts["keys"], src.facts["count"], src.facts["fps"]
        size, (w0, h0) = src.facts["size"], src.facts["input_size"]
        models = keyframe_models(source.cpu(), edited.cpu(), s.upsample)
        picked = set(keyframes(count, FIGURE_FRAMES).tolist())
        shown_in, shown_out = {}, {}
        gif_size = gif_frame_size((w0, h0))
        # one array for the GIF's small frames: kept one by one between the carry's large transient ones, they
        # fragmented the heap (RSS grew 5 MB a frame of 1280x720; 0.1 MB with this array)
        gif_frames = np.empty((count, gif_size[1], gif_size[0], 3), np.uint8)

        def read():  # the clip's second pass; the figure's source frames are taken from it
            for f, frame in enumerate(media.video_frames(src.facts["path"])):
                if f in picked:
                    shown_in[f] = frame
                yield frame

        carried = CarriedClip(read(), count, keys, models)

        def delivered():
            for f, out in enumerate(carried):
                if f in picked:
                    shown_out[f] = out
                gif_frames[f] = np.asarray(Image.fromarray(out).resize(gif_size, Image.LANCZOS))
                yield out

        files = {"mp4": outputs.write_mp4(delivered(), fps, out_dir / "edited.mp4")}
        sound = with_sound(files["mp4"], src.facts["path"])
        files["gif"] = outputs.write_gif(gif_frames, fps, out_dir / "edited.gif")
        order = sorted(shown_out)
        middle = order[len(order) // 2]
        figure = outputs.labelled_rows([("source", outputs.strip(np.stack([shown_in[f] for f in order]))),
                                        (self.key, outputs.strip(np.stack([shown_out[f] for f in order]))),
                                        (f"frame {middle + 1}: source | edited, centre at full resolution",
                                         outputs.detail_crops(shown_in[middle], shown_out[middle]))])
        files["comparison"] = save_png(figure, out_dir / "comparison.png")
        found, notes = outputs.result_metrics(s, prior, edited, source, metrics.sequence_pairs(len(keys)), last)
        found.update(carried.metrics())
        note = carry_note(size, len(keys), count, (w0, h0), s.upsample)
        meta = {
            "metrics": found,
            "method": self.method,
            "frames": count,
            "fps": fps,
            "duration_s": count / fps,
            "audio": sound,  # the clip's sound track, copied into edited.mp4 (the GIF has none)
            "source_frames": count,
            "keyframes": [int(k) for k in keys],
            "carry": CARRY if s.upsample == "guided" else "resize and cross-fade",
            "upsample": s.upsample,
            "sampled": False,
            "frames_note": "every frame of the clip, at its frame rate",
            "work_size": list(size),
            "input_size": [w0, h0],
            "gif_size": list(gif_size),
            "mp4_size": [w0 // 2 * 2, h0 // 2 * 2],  # H.264 in yuv420p needs even sides
            "unet_chunk": edit.chunk,
            "notes": notes,
            "warnings": [note] if (len(keys) < count or (w0, h0) != tuple(size)) else [],
        }
        return Result(files=files, preview=outputs.fit_width(figure), metadata=meta)


def with_sound(mp4: str, source: str) -> bool:
    """Give the written mp4 the source clip's sound track, when it has one (`media.add_audio`); the silent file
    stays when it has none or it cannot be copied. True when the sound is in."""
    with atomic_path(mp4) as tmp:
        if not media.add_audio(mp4, source, tmp):
            os.replace(mp4, tmp)  # the silent file goes back into place as it was
            return False
    return True


GIF_MAX_WIDTH = 320  # the GIF is the page's quick look; the mp4 carries the full size
FIGURE_FRAMES = 8  # frames the comparison figure shows, spread over the clip (source and edited, full size)
# Seconds each pixel of each frame costs the carry on a 2-core CPU (the frame decoded again, its colour models applied,
# the figures, its GIF resize and its mp4 encode), added to the expectation (`Work.seconds`): the finish of
# video/csd-edit on a pan (edits prior, 4 keyframes) grew 1.5e-7 s a pixel from 60 to 240 frames of 640x360, 1.8e-7
# from 30 to 120, 1.5e-7 from 12 to 36 frames of 1920x1080 (machine shared). 300 frames of 1080p: about 2 min.
CARRY_PIXEL_S = 2e-7


def gif_frame_size(size: tuple[int, int]) -> tuple[int, int]:
    """(W, H) of the GIF's frames: the clip's, or at most GIF_MAX_WIDTH wide (aspect kept)."""
    w, h = size
    if w <= GIF_MAX_WIDTH:
        return w, h
    return GIF_MAX_WIDTH, max(1, round(h * GIF_MAX_WIDTH / w))


def keyframes(count: int, particles: int) -> np.ndarray:
    """The frames CSD-Edit edits as particles: `particles` of `count`, spread evenly, first and last included
    (`media.spread_frames`, the frames `media.video_keyframes` reads)."""
    return media.spread_frames(count, particles)


def keyframe_models(source: torch.Tensor, edited: torch.Tensor, method: str) -> upsample.ColourModel:
    """One colour model per keyframe, source and edited (K, 3, h, w) at the working size. method "resize": a
    model with no colour terms whose residual is the edit itself, so carrying it is a resize and cross-fade."""
    if method == "resize":
        k, _, h, w = edited.shape
        return upsample.ColourModel(edited.new_zeros(k, 3, 3, h, w), edited.new_zeros(k, 3, h, w), edited.float())
    return upsample.fit(source, edited, upsample.radius_for((source.shape[-1], source.shape[-2])))


class CarriedClip:
    """Every frame of the clip with the keyframes' edit, one (H, W, 3) uint8 frame at a time, and the figures on
    what it delivers. A frame between keyframes k0 < f < k1 takes their colour models blended with t = (f - k0) /
    (k1 - k0), applied to its own pixels: the edit's colours move smoothly in time and the frame keeps its own
    detail and motion. frames: the clip's `count` frames in order, any iterable (`media.video_frames` streams
    them); only two float frames are held at a time (this one and the last). A stream of another length than
    `count` (the clip read differently the second time) is refused, as its keyframes would not be the clip's."""

    def __init__(self, frames: Iterable[np.ndarray], count: int, keys: np.ndarray, models: upsample.ColourModel):
        self.frames, self.count, self.keys, self.models = frames, count, [int(k) for k in keys], models
        self.detail = metrics.DetailCorrelation()
        # the detail figure on 16 frames spread over the clip: its high-pass filter costs as much as the edit itself
        self.detail_frames = set(keyframes(count, 16).tolist())
        self.sums = dict(strength=0.0, variation=0.0, change=0.0, source_change=0.0)

    def model(self, f: int) -> upsample.ColourModel:
        j = int(np.searchsorted(self.keys, f, side="right")) - 1
        if j >= len(self.keys) - 1 or self.keys[j] == f:
            return self.models.take(min(max(j, 0), len(self.keys) - 1))
        k0, k1 = self.keys[j], self.keys[j + 1]
        return upsample.ColourModel.blend(self.models.take(j), self.models.take(j + 1), (f - k0) / (k1 - k0))

    def __iter__(self):
        last_in = last_out = None
        f = -1
        for f, frame in enumerate(self.frames):
            if f >= self.count:
                break
            src = to_tensor(frame)[None]
            out = upsample.apply(self.model(f), src)
            out = out.mul(255).round().div(255)  # what the file holds: the metrics measure the uint8 frames
            if f in self.detail_frames:
                self.detail.add(out, src)
            self.sums["strength"] += float(metrics.colour_change(out - src).mean())
            if last_in is not None:
                self.sums["variation"] += float(metrics.colour_change((out - src) - (last_out - last_in)).mean())
                self.sums["change"] += float(metrics.colour_change(out - last_out).mean())
                self.sums["source_change"] += float(metrics.colour_change(src - last_in).mean())
            last_in, last_out = src, out
            yield to_uint8(out)[0]
        if f + 1 != self.count:
            got = f"more than {self.count}" if f == self.count else f + 1
            raise InputError(f"The clip gave {got} frames when read again for the edit, {self.count} the first "
                             "time; re-encode it as MP4 (H.264).")

    def metrics(self) -> dict:
        """After the iteration, each change measured by `metrics.colour_change`: delivered_edit_strength (the mean
        change out - in over every frame at full size), delivered_residual_variation (the mean change r_f - r_f-1 over
        consecutive frames), frame_change_ratio (the clip's mean frame-to-frame change over the source's: 1 adds no
        flicker), detail_correlation (`metrics.DetailCorrelation`, over 16 frames spread evenly)."""
        n = self.count
        pairs = max(n - 1, 1)
        strength = self.sums["strength"] / n
        variation = self.sums["variation"] / pairs
        return {"delivered_edit_strength": strength, "delivered_residual_variation": variation,
                "delivered_residual_variation_rel": variation / max(strength, 1e-8),
                "frame_change_ratio": self.sums["change"] / max(self.sums["source_change"], 1e-8),
                "detail_correlation": self.detail.value()}


@register("video", "csd-edit")
class VideoCSDEdit(_VideoEdit):
    Settings = VideoCSDSettings
    description = "CSD-Edit a short clip: frames are SVGD particles that take one edit"
    method = "csd"


@register("video", csd.per_item_name("frame"))
class VideoPerItem(_VideoEdit):
    Settings = VideoSettings
    description = "Baseline: SDS-edit of each frame on its own (CSD-Edit without the kernel, same budget)"
    method = csd.PER_ITEM


CARRY = "colour models of the two nearest keyframes, interpolated in time"  # how the edit reaches every frame


def carry_note(size: tuple[int, int], keyframes: int, frames: int, full: tuple[int, int], upsample: str) -> str:
    """The notice of how a clip's edit came back: "Edited at 171x96 on 16 keyframes; carried to all 120 frames at
    640x360 (...)"."""
    keys = f"{keyframes} keyframe{'s' if keyframes != 1 else ''}"
    every = f"all {frames} frames" if frames != 1 else "its 1 frame"
    if upsample == "guided":
        how = CARRY if keyframes > 1 else "the keyframe's colour model"
        return f"Edited at {size[0]}x{size[1]} on {keys}; carried to {every} at {full[0]}x{full[1]} ({how})."
    return (f"Edited at {size[0]}x{size[1]} on {keys}; the edited keyframe{'s were' if keyframes != 1 else ' was'} "
            f"resized back and cross-faded to {every} at {full[0]}x{full[1]} (upsample=resize).")
