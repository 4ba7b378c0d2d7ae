"""`video/csd-edit` and `video/per-frame`: edit a short clip, its frames being the particles.

The clip is sampled evenly down to `particles` frames (all of them when it has fewer), each resized so its short
side is `short_side` pixels. Every step updates every frame: one UNet call over all frames and both prompts
(`chunk` splits it). CSD-Edit mixes the frames' edit scores through the kernel, so the edit is the same from frame
to frame; video/per-frame is the same loop without the kernel (InstructPix2Pix SDS-edit on each frame alone),
same budget, same seed. Defaults follow the authors' video recipe (100 steps, lr 0.5, image guidance 1.5).

Outputs: edited.mp4 (H.264) and edited.gif at the input's frame size, with the frame count and frame rate of the
frames used (the clip's own when it was not sampled; metadata says which), and comparison.png (source row over
edited row).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from PIL import Image

from .. import budget, media
from ..imaging import save_png, to_uint8
from ..registry import register
from ..settings import option
from ..types import Result
from . import csd, metrics, outputs


@dataclass
class VideoSettings(csd.EditSettings):
    steps: Optional[int] = option(None, "optimization steps (the authors' video recipe: 100)", lo=1, hi=5000,
                                  full=100, quick=30)
    particles: Optional[int] = option(None, "frames edited together: a longer clip is sampled evenly down to this many, keeping "
                            "its duration", lo=1, hi=64, full=24, quick=8)
    lr: Optional[float] = option(None, "SGD learning rate on the latents (the authors' video recipe: 0.5)", lo=1e-4,
                                 hi=100.0, advanced=True, full=0.5, quick=0.5)


@dataclass
class VideoCSDSettings(VideoSettings):
    repulsion: float = csd.repulsion_option()
    kernel_width: float = csd.kernel_width_option(4.0)


class _VideoEdit(csd.EditBackend):
    inputs = "video"

    @classmethod
    def estimate(cls, s: VideoSettings, inputs, facts):
        """The work budget's estimate from the container's header (see `backends.budget`): the frame's aspect,
        then `particles` frames (the most that are kept) at the working size."""

        size = budget.video_size(inputs[0])
        budget.check_aspect(size, "video frame")
        return budget.edit_work([size] * (s.particles or 8), s.short_side or 512, facts, "frame")

    def load(self, s: VideoSettings, prior, inputs):
        frames, fps = media.video(inputs[0], sample=s.particles)
        count, h0, w0 = frames.shape[:3]
        size = budget.working_size((w0, h0), s.short_side, prior.size_multiple)
        shown = np.unique(np.round(np.linspace(0, count - 1, min(8, count))).astype(int))
        return csd.Sources(outputs.to_batch(frames, size, prior.device),
                           dict(frames=frames, fps=fps, input_size=(w0, h0), size=size, shown=shown,
                                path=inputs[0]))

    def preview(self, prior, z, source, src):
        shown = src.facts["shown"]
        edited = csd.decode_preview(prior, z[shown])
        return outputs.labelled_rows([("source", outputs.strip(to_uint8(source[shown]))),
                                      (f"{self.key} step", outputs.strip(to_uint8(edited)))])

    def outputs(self, s, prior, edit, edited, source, src, last, out_dir):
        frames, fps, size, (w0, h0) = src.facts["frames"], src.facts["fps"], src.facts["size"], src.facts["input_size"]
        count = len(frames)
        out = outputs.resize_uint8(to_uint8(edited), (w0, h0))
        figure = outputs.labelled_rows([("source", outputs.strip(frames)), (self.key, outputs.strip(out))])
        files = {
            "mp4": outputs.write_mp4(out, fps, out_dir / "edited.mp4"),
            "gif": outputs.write_gif(out, fps, out_dir / "edited.gif"),
            "comparison": save_png(figure, out_dir / "comparison.png"),
        }
        found, notes = outputs.result_metrics(s, prior, edited, source, metrics.sequence_pairs(count), last)
        in_clip = _source_frames(src.facts["path"], count, fps)
        if in_clip is None:
            frames_note = f"{count} frames (at most {s.particles}, spread evenly over the clip)"
        elif in_clip > count:
            frames_note = (f"{count} of the clip's {in_clip} frames, spread evenly; the frame rate is scaled so the "
                           "duration is kept")
        else:
            frames_note = "every frame of the clip, at its frame rate"
        meta = {
            "metrics": found,
            "method": self.method,
            "frames": count,
            "fps": fps,
            "source_frames": in_clip,
            "sampled": bool(in_clip is not None and in_clip > count),
            "frames_note": frames_note,
            "work_size": list(size),
            "gif_size": [w0, h0],
            "mp4_size": [w0 // 2 * 2, h0 // 2 * 2],  # H.264 in yuv420p needs even sides
            "unet_chunk": edit.chunk,
            "notes": notes,
            "warnings": ([f"Kept {frames_note}."] if in_clip is None or in_clip > count else [])
            + outputs.resize_warning((w0, h0), size, "clip"),
        }
        return Result(files=files, preview=outputs.fit_width(figure), metadata=meta)


def _source_frames(path: str, kept: int, fps_kept: float) -> int | None:
    """How many frames the clip had (validate keeps `kept` of them and scales the fps by kept / decoded), from the
    container's own frame rate; None when it cannot be read."""
    try:
        with open(path, "rb") as fh:
            gif = fh.read(6) in (b"GIF87a", b"GIF89a")
        if gif:
            with Image.open(path) as im:
                return int(im.n_frames)
        import imageio.v2 as iio

        reader = iio.get_reader(path, format="FFMPEG", input_params=["-protocol_whitelist", "file"])
        try:
            fps = float(reader.get_meta_data().get("fps") or 0.0)
        finally:
            reader.close()
        return int(round(fps * kept / fps_kept)) if fps > 0 else None
    except Exception:
        return None


@register("video", "csd-edit")
class VideoCSDEdit(_VideoEdit):
    Settings = VideoCSDSettings
    description = "CSD-Edit a short clip: frames are SVGD particles that take one edit"
    method = "csd"


@register("video", "per-frame")
class VideoPerFrame(_VideoEdit):
    Settings = VideoSettings
    description = "Baseline: SDS-edit of each frame on its own (CSD-Edit without the kernel, same budget)"
    method = "per-item"
