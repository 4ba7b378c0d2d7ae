"""`panorama/csd-edit` and `panorama/per-patch`: edit a wide (or tall) image through overlapping windows.

The image is resized so its short side is `short_side` pixels (512 for InstructPix2Pix) and its long side a
multiple of the stride. The one panorama latent is the parameter; the particles are its windows of `window`
pixels (64 x 64 latent cells for Stable Diffusion) every `stride` pixels (16 cells), a last window flush with the
far edge so every cell is covered. Each step takes a random batch of `particles` windows, computes their CSD-Edit
(or, for panorama/per-patch, independent SDS-edit) gradients in one UNet call, and averages the gradients of
overlapping windows into the panorama latent (count-normalized). Decoding runs in blended tiles, so any width
works. Defaults follow the authors' image script (200 steps, lr 2.0, 16 windows, image guidance 5).

Outputs: edited.png at the input's size and comparison.png (source above edited).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional
from functools import partial

import torch
import torch.nn.functional as F

from ..core import budget
from .. import engine
from ..inputs import media
from ..core.errors import InputError
from ..core.pixels import save_png, to_tensor, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from . import csd, metrics, outputs, upsample, windows


@dataclass
class PanoramaSettings(csd.EditSettings):
    image_guidance: Optional[float] = option(None, "image guidance scale: higher keeps more of the source (authors' panorama "
                                   "examples: 5; paper: 1.5-5)", lo=0.0, hi=20.0, full=5.0,
                                             quick=5.0)
    particles: Optional[int] = option(None, "windows per step: a random batch of the overlapping windows", lo=1,
                                      hi=64, full=16, quick=8)
    window: Optional[int] = option(None, "window side in pixels (512 is InstructPix2Pix's own size); at most the short side",
                         lo=8, hi=2048, advanced=True, full=512, quick=512)
    stride: Optional[int] = option(None, "pixels between neighbouring windows (128 px = 16 latent cells for Stable Diffusion); "
                         "shrinks in proportion when the window is clipped to a smaller short side",
                         lo=1, hi=2048, advanced=True, full=128, quick=128)


@dataclass
class PanoramaCSDSettings(PanoramaSettings):
    repulsion: float = csd.repulsion_option()
    kernel_width: float = csd.kernel_width_option(4.0)
    settle_scale: float = csd.settle_scale_option()


def make_step(edit: csd.CSDEdit, pano, boxes, particles: int):
    """One step: a random batch of windows, their gradients, averaged back into the panorama latent."""

    def step(i: int) -> engine.Step:
        chosen = windows.random_windows(boxes, particles, edit.host_gen)
        cut = partial(windows.take_windows, boxes=chosen)
        grad, stats = edit.gradient(cut(pano.detach()), take=cut, step=i)
        return engine.Step(engine.grad_to_loss(pano, windows.fold_windows(grad, chosen, pano.shape)), stats)

    return step


class _PanoramaEdit(csd.EditBackend):
    inputs = "image"

    @classmethod
    def estimate(cls, s: PanoramaSettings, inputs, facts):
        """The work budget's estimate from the image's header (see `backends.core.budget`): aspect, then the working
        image's pixel-space arrays, and the particles: `particles` windows a step, each window (clipped to the short
        side) through the prior like a video frame (EDIT_BYTES_PER_PIXEL). The particles are counted because the image
        alone is 5-10x below the measured peak: 14 MB against 91 MB at short_side=128 (benchmarks/estimates.py)."""

        size = budget.image_size(inputs[0])
        budget.check_aspect(size, "panorama image")
        short = s.short_side or 512
        work = budget.edit_work([size], short, facts, "image", budget.PANORAMA_BYTES_PER_PIXEL)
        side = min(s.window or 512, max(facts.size_multiple, short // facts.size_multiple * facts.size_multiple))
        windows_ = (s.particles or 8) * side * side * budget.EDIT_BYTES_PER_PIXEL
        full = size[0] * size[1] * upsample.BYTES_PER_PIXEL  # the edit brought back to every input pixel
        return replace(work, bytes=work.bytes + windows_ + full, effort=work.bytes + windows_,
                       lower="short_side (or particles, window)")

    def load(self, s: PanoramaSettings, prior, inputs):
        image = media.image(inputs[0])
        w0, h0 = image.size
        budget.check_aspect((w0, h0), "panorama image")
        scale, multiple = prior.latent_scale, prior.size_multiple
        if s.stride % scale or s.window % multiple:
            raise InputError(f"With this prior the stride must be a multiple of {scale} px and the window of "
                             f"{multiple} px (got stride {s.stride}, window {s.window}).")
        # A window larger than the short side is clipped to it, and the stride shrinks in proportion, so small
        # working sizes (tiny priors on a CPU) keep the default geometry: windows overlapping by three quarters.
        window_px = min(s.window, max(multiple, s.short_side // multiple * multiple))
        stride_px = max(scale, round(s.stride * window_px / s.window / scale) * scale)
        size = budget.working_size((w0, h0), s.short_side, multiple, long_multiple=stride_px)
        h, w = size[1] // scale, size[0] // scale  # the panorama latent's cells
        window = min(window_px // scale, h, w)
        boxes, _ = windows.window_boxes(h, w, window, stride_px // scale)
        return csd.Sources(outputs.to_batch([image], size, prior.device),
                           dict(input_size=(w0, h0), size=size, window=window, stride=stride_px // scale,
                                boxes=boxes, image=image))

    def step(self, s, edit, z, src):
        return make_step(edit, z, src.facts["boxes"], s.particles)

    def decode(self, prior, latents, src):
        return windows.decode_tiled(prior, latents, src.facts["window"])

    def preview(self, prior, z, source, src):
        return outputs.fit_width(to_uint8(self.decode(prior, z, src)[0]))

    def outputs(self, s, prior, edit, edited, source, src, last, out_dir):
        size, (w0, h0), window = src.facts["size"], src.facts["input_size"], src.facts["window"]
        scale = prior.latent_scale
        # the visitor's own pixels, edited: the colour model fitted between the decoded source and the edit at the
        # working size, applied to the full-size input (upsample.py)
        full_in = to_tensor(src.facts["image"])[None]
        full = upsample.upsample(source[:1].cpu(), edited[:1].cpu(), full_in, s.upsample)
        out = to_uint8(full)[0]
        # the figure shows the user's own input beside what they receive
        figure = outputs.labelled_rows([("source", outputs.fit_width(to_uint8(full_in)[0], 2048)),
                                        (self.key, outputs.fit_width(out, 2048)),
                                        ("source | edited, centre at full resolution",
                                         outputs.detail_crops(to_uint8(full_in)[0], out))])
        files = {"png": save_png(out, out_dir / "edited.png"),
                 "comparison": save_png(figure, out_dir / "comparison.png")}
        # consistency over half-overlapping windows of the result (the windows that share most with their neighbours)
        _, _, h, w = edit.source_latents.shape
        tiles, grid = windows.window_boxes(h, w, window, max(window // 2, 1))
        pixel_tiles = [tuple(v * scale for v in box) for box in tiles]
        edited_tiles, source_tiles = windows.take_windows(edited, pixel_tiles), windows.take_windows(source, pixel_tiles)
        pairs = metrics.grid_pairs(*grid)
        found, notes = outputs.result_metrics(s, prior, edited_tiles, source_tiles, pairs, last)
        # per-pixel residuals of neighbouring windows differ by the content under them; their colour maps do not
        found.update(metrics.colour_map_variation(edited_tiles, source_tiles, pairs))
        found.update(delivered_metrics(full, full_in, tiles, grid, (size[0] // scale, size[1] // scale)))
        meta = {"metrics": found, "method": self.method, "input_size": [w0, h0], "work_size": list(size),
                "windows": len(src.facts["boxes"]), "window_cells": window, "stride_cells": src.facts["stride"],
                "unet_chunk": edit.chunk, "notes": notes, "upsample": s.upsample,
                "warnings": outputs.resize_warning((w0, h0), size, "panorama", s.upsample)}
        return Result(files=files, preview=outputs.fit_width(figure), metadata=meta)


# The side of the delivered panorama's windows where their colour maps are compared: a colour figure needs no
# detail, and a 4096 px panorama's full-size windows (four to a pixel) would hold about 1 GB of the fit's products.
COLOUR_TILE = 256


def delivered_metrics(full: torch.Tensor, full_in: torch.Tensor, tiles, grid, cells: tuple[int, int]) -> dict:
    """The figures on what the visitor receives: full (1, 3, H, W) the delivered panorama, full_in the input, both in
    [0, 1]; tiles (y, x, h, w) in latent cells of the working panorama `cells` = (w, h), grid their (rows, cols).
    The tiles are scaled to the full size and resampled to one shape, at most COLOUR_TILE px a side, then compared
    as at the working size (`metrics.colour_map_variation`, edit strength), with the detail kept
    (`metrics.detail_correlation`, on every pixel)."""
    _, _, height, width = full.shape
    sy, sx = height / cells[1], width / cells[0]
    boxes = [(round(y * sy), round(x * sx), max(1, round(h * sy)), max(1, round(w * sx))) for y, x, h, w in tiles]
    fit = min(1.0, COLOUR_TILE / max(boxes[0][2], boxes[0][3]))
    shape = (max(1, round(boxes[0][2] * fit)), max(1, round(boxes[0][3] * fit)))

    def cut(img):
        return torch.cat([F.interpolate(img[..., y:y + h, x:x + w], size=shape, mode="area") for y, x, h, w in boxes])

    pairs = metrics.grid_pairs(*grid)
    colour = metrics.colour_map_variation(cut(full), cut(full_in), pairs)
    return {"delivered_edit_strength": float(metrics.colour_change(full - full_in).mean()),
            "delivered_colour_map_variation": colour["colour_map_variation"],
            "detail_correlation": metrics.detail_correlation(full, full_in)}


@register("panorama", "csd-edit")
class PanoramaCSDEdit(_PanoramaEdit):
    Settings = PanoramaCSDSettings
    description = "CSD-Edit a wide image: overlapping windows are SVGD particles that take one edit"
    method = "csd"


@register("panorama", csd.per_item_name("patch"))
class PanoramaPerItem(_PanoramaEdit):
    Settings = PanoramaSettings
    description = "Baseline: SDS-edit of each window on its own (CSD-Edit without the kernel, same budget)"
    method = csd.PER_ITEM
