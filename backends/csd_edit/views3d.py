"""`views3d/csd-edit` and `views3d/per-view`: edit several views of one object or scene so they stay consistent.

Views come as image files, one zip of images, or one orbit video (sampled evenly down to `particles` frames).
They are worked on at the first view's shape with the short side `short_side` pixels. A view of another shape is
never squashed: one whose aspect ratio is within 4:3 of the first view's (a phone photo beside a square crop, or
two cameras) is cropped at its centre to the first view's shape, and result.json's warnings name every view so
cropped; one further off (a portrait beside a landscape) is refused, naming every such view (`fit_views`). Each view is a
particle; every step updates all of them in one UNet call. The CSD kernel compares views by the L2 distance of
their noisy latents (default) or, as the paper's 3D edits do, by LPIPS between their decoded images
(`kernel_distance=lpips`, when the lpips package and its weights are installed; an error otherwise, never a
stand-in). views3d/per-view is the same loop without the kernel. This edits the views themselves; fitting a 3D
representation to them (the paper's NeRF step) is left to a 3D tool.

Outputs: views.zip (the edited views as PNGs at the first view's size), turntable.gif / turntable.mp4, and
comparison.png (source views above edited views).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace

import numpy as np
import torch
from PIL import Image

from ..core import budget
from ..inputs import media
from ..core.errors import InputError
from ..core.pixels import save_png, to_tensor, to_uint8
from ..mesh import is_mesh_file
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from . import csd, metrics, outputs, upsample

TURNTABLE_FPS = 6.0
SAME_SHAPE = 1.01      # aspect ratios this close, or a pixel apart, are one shape (a resize rounds a side)
MAX_CROP = 4 / 3       # a view whose aspect differs more than this from the first view's is refused, not cropped


@dataclass
class ViewsSettings(csd.EditSettings):
    particles: int = option(16, "views edited together: at most this many views may be given; an orbit video is "
                            "sampled evenly down to this many frames", lo=2, hi=media.MAX_VIEWS)


@dataclass
class ViewsCSDSettings(ViewsSettings):
    repulsion: float = csd.repulsion_option()
    kernel_width: float = csd.kernel_width_option(4.0)
    settle_scale: float = csd.settle_scale_option(0.5)
    kernel_distance: str = option("latent", "distance inside the kernel: 'latent' (L2 of the noisy latents) or 'lpips' "
                                  "(perceptual, as the paper's 3D edits; needs the lpips package and its weights, and "
                                  "costs N(N-1) decoder passes a step)", choices=("latent", "lpips"), advanced=True)


def load_views(inputs: list[str], particles: int):
    """The views as a list of (H, W, 3) uint8 arrays, and where they came from."""
    if len(inputs) == 1 and not _is_zip(inputs[0]):
        try:
            frames, _ = media.video(inputs[0], sample=particles)
        except InputError as err:
            raise not_an_orbit(err) from None
        return list(frames), "orbit video"
    views = media.images(inputs, max_count=media.MAX_VIEWS)
    if len(views) > particles:
        raise too_many_views(len(views), particles)
    return [np.asarray(v) for v in views], "zip" if len(inputs) == 1 else "images"


def _listed(views: list[tuple[int, int, int]]) -> str:
    """[(number, W, H), ...] -> "view 3 (640x480)" or "views 3 (640x480), 4 (...) and 5 (800x600)"."""
    items = [f"{k} ({w}x{h})" for k, w, h in views]
    return ("view " if len(items) == 1 else "views ") + (items[0] if len(items) == 1 else
                                                         ", ".join(items[:-1]) + " and " + items[-1])


def fit_views(views: list[np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    """Views (H, W, 3) uint8 of one shape, the first view's, and the warnings naming every view that was changed.

    A view whose aspect ratio differs from the first view's by at most MAX_CROP (a factor, either way) is cropped
    at its centre to that aspect; the object of an orbit is near the centre, and a crop keeps its proportions where
    a resize would squash it. Further off, InputError naming every such view, numbered from 1 in input order.
    """
    h0, w0 = views[0].shape[:2]
    a0 = w0 / h0
    out, cropped, refused = [views[0]], [], []
    for k, view in enumerate(views[1:], 2):
        h, w = view.shape[:2]
        change = max(w / h, a0) / min(w / h, a0)
        if change > MAX_CROP:
            refused.append((k, w, h))
        else:
            cw, ch = (max(1, round(h * a0)), h) if w / h > a0 else (w, max(1, round(w / a0)))
            if change > SAME_SHAPE and (w - cw) + (h - ch) > 1:  # not a pixel of rounding
                cropped.append((k, w, h))
                view = view[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
        out.append(view)
    if refused:
        raise InputError(f"The {_listed(refused)} {'has' if len(refused) == 1 else 'have'} another shape than view 1 "
                         f"({w0}x{h0}), more than a 4:3 crop would make up; give views of one shape.")
    if not cropped:
        return out, []
    return out, [f"The {_listed(cropped)} {'was' if len(cropped) == 1 else 'were'} cropped at the centre to the "
                 f"shape of view 1 ({w0}x{h0}), as views of one object are edited at one shape."]


def not_an_orbit(err: InputError) -> InputError:
    """The refusal of one input that is neither a zip nor a video."""
    return InputError(f"views3d needs several views (two or more images, one zip of images, or one orbit video), "
                      f"and the single input is not a video: {err}")


def too_many_views(count: int, particles: int, counted_all: bool = True) -> InputError:
    """The refusal of more views than particles. counted_all False: a zip's views were read only up to
    MAX_VIEWS + 1, so the count is a lower bound and the refusal says "more than MAX_VIEWS"."""
    given = str(count) if counted_all or count <= media.MAX_VIEWS else f"more than {media.MAX_VIEWS}"
    return InputError(f"{given} views were given; at most {particles} are edited together (the particles setting, "
                      f"up to {media.MAX_VIEWS}).")


def _is_zip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) in (b"PK\x03\x04", b"PK\x05\x06")


class _ViewsEdit(csd.EditBackend):
    inputs = "images"

    @classmethod
    def estimate(cls, s: ViewsSettings, inputs, facts):
        """The work budget's estimate from the views' headers (see `backends.core.budget`): every view's aspect, the
        count, then the views at the first view's working size."""

        if len(inputs) > media.MAX_VIEWS:
            raise too_many_views(len(inputs), s.particles)
        if len(inputs) == 1 and is_mesh_file(inputs[0]):
            raise InputError(f"The file {os.path.basename(inputs[0])[:60]!r} is a textured mesh; {cls.key} edits "
                             f"views (images or an orbit video), {cls.key}-mesh edits a mesh.")
        if len(inputs) == 1 and _is_zip(inputs[0]):
            sizes = budget.zip_sizes(inputs[0], limit=media.MAX_VIEWS + 1)
        elif len(inputs) == 1:
            try:
                sizes = [budget.video_size(inputs[0])] * s.particles
            except InputError as err:
                raise not_an_orbit(err) from None
        else:
            sizes = [budget.image_size(p) for p in inputs]
        if len(sizes) > s.particles:
            raise too_many_views(len(sizes), s.particles, counted_all=not (len(inputs) == 1 and _is_zip(inputs[0])))
        for size in sizes:
            budget.check_aspect(size, "view")
        if not sizes:  # an unreadable zip: the full validation in run() says what is wrong with it
            return budget.Work(0, "no views", "particles")
        work = budget.edit_work(sizes, s.short_side or 512, facts, "view")
        full = sum(w * h for w, h in sizes) * upsample.BYTES_PER_PIXEL  # every view brought back to its pixels
        return replace(work, bytes=work.bytes + full, effort=work.units)

    def load(self, s: ViewsSettings, prior, inputs):
        views, origin = load_views(inputs, s.particles)
        if len(views) < 2:
            raise InputError(f"views3d needs at least 2 views of the object, got {len(views)}.")
        views, cropped = fit_views(views)
        h0, w0 = views[0].shape[:2]
        size = budget.working_size((w0, h0), s.short_side, prior.size_multiple)
        return csd.Sources(outputs.to_batch(views, size, prior.device),
                           dict(count=len(views), origin=origin, input_size=(w0, h0), size=size, cropped=cropped,
                                views=[v if v.shape[:2] == (h0, w0) else  # one shape, another resolution
                                       np.asarray(Image.fromarray(v).resize((w0, h0), Image.LANCZOS)) for v in views]))

    def preview(self, prior, z, source, src):
        return outputs.labelled_rows([("source", outputs.strip(to_uint8(source), max_items=16)),
                                      (f"{self.key} step", outputs.strip(to_uint8(csd.decode_preview(prior, z)),
                                                                         max_items=16))])

    def outputs(self, s, prior, edit, edited, source, src, last, out_dir):
        size, (w0, h0) = src.facts["size"], src.facts["input_size"]
        # each view's edit applied to its own full-size pixels (upsample.py), as the panorama and the clip
        detail, full = metrics.DetailCorrelation(), []
        for k, view in enumerate(src.facts["views"]):
            view_in = to_tensor(view)[None]
            view_out = upsample.upsample(source[k:k + 1].cpu(), edited[k:k + 1].cpu(), view_in, s.upsample)
            detail.add(view_out, view_in)
            full.append(to_uint8(view_out)[0])
        out = np.stack(full)
        figure = outputs.labelled_rows([("source", outputs.strip(to_uint8(src.images), max_items=16)),
                                        (self.key, outputs.strip(out, max_items=16)),
                                        ("view 1: source | edited, centre at full resolution",
                                         outputs.detail_crops(src.facts["views"][0], out[0]))])
        files = {
            "zip": outputs.write_zip(out, out_dir / "views.zip"),
            "gif": outputs.write_gif(out, TURNTABLE_FPS, out_dir / "turntable.gif"),
            "mp4": outputs.write_mp4(out, TURNTABLE_FPS, out_dir / "turntable.mp4"),
            "comparison": save_png(figure, out_dir / "comparison.png"),
        }
        count = src.facts["count"]
        found, notes = outputs.result_metrics(s, prior, edited, source, metrics.sequence_pairs(count), last)
        delivered = metrics.residual_consistency(torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255,
                                                 torch.from_numpy(np.stack(src.facts["views"])).permute(0, 3, 1, 2).float() / 255,
                                                 metrics.sequence_pairs(count))
        found.update({f"delivered_{k}": v for k, v in delivered.items()})
        found["detail_correlation"] = detail.value()
        meta = {"metrics": found, "method": self.method, "views": count, "from": src.facts["origin"],
                "kernel_distance": self.kernel(s) if self.method == "csd" else None, "work_size": list(size),
                "output_size": [w0, h0], "input_size": [w0, h0], "upsample": s.upsample, "unet_chunk": edit.chunk,
                "notes": notes, "warnings": src.facts["cropped"] + outputs.resize_warning((w0, h0), size, "views",
                                                                                           s.upsample)}
        return Result(files=files, preview=outputs.fit_width(figure), metadata=meta)


@register("views3d", "csd-edit")
class ViewsCSDEdit(_ViewsEdit):
    Settings = ViewsCSDSettings
    description = "CSD-Edit several views of one object: views are SVGD particles that take one edit"
    method = "csd"

    def kernel(self, s: ViewsCSDSettings) -> str:
        return s.kernel_distance


@register("views3d", csd.per_item_name("view"))
class ViewsPerItem(_ViewsEdit):
    Settings = ViewsSettings
    description = "Baseline: SDS-edit of each view on its own (CSD-Edit without the kernel, same budget)"
    method = csd.PER_ITEM
