"""`svg/vectorize`: image to SVG, offline, no diffusion model: LIVE-style layer-wise vectorization.

LIVE (Ma et al., CVPR 2022) adds closed Bezier paths a few at a time, each placed where the remaining error is
largest, and optimizes all of them against the image with a distance-weighted (UDF) loss that makes new paths
fit region outlines, plus the self-intersection (Xing) loss. What it optimizes is a `Painting` (painting.py).

Where this differs from LIVE, and why:
- a new path starts as the outline of the region it is placed on (the region's contour, resampled into
  3*S control points), not as a small circle at its center: it starts close to where it must end, so each
  stage needs far fewer steps;
- regions are connected components of (error above a threshold) x (one color of a median-cut palette of the
  target), ranked by their summed squared error (what PSNR counts), not by pixel count;
- the background color is a parameter (written as one <rect>), estimated from the image border.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..core import budget
from .. import engine
from . import cost
from ..core.errors import InputError
from ..core.pixels import load_image, psnr, save_png, to_uint8
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from .losses import udf_weights, xing_loss
from .painting import Painting, circle_control_points, export_rasters, export_svg



# ------------------------------------------------------------------------------------------ LIVE fitting

def stage_schedule(paths: int, schedule: str) -> list[int]:
    """How many paths each stage adds. "doubling": 1, 1, 2, 4, 8, ... (the last stage takes the rest);
    "N" (an integer): N per stage; "a,b,c": explicit counts (summing to at most `paths`)."""
    schedule = schedule.strip()
    if schedule == "doubling":
        out, n = [], 1
        while sum(out) < paths:
            out.append(min(n, paths - sum(out)))
            n = n if len(out) == 1 else n * 2
        return out
    try:
        nums = [int(x) for x in schedule.split(",") if x.strip()]
    except ValueError:
        raise InputError(f"schedule must be 'doubling', a number, or counts like '1,2,4', got {schedule!r}") from None
    if not nums or any(x < 1 for x in nums):
        raise InputError(f"schedule counts must be positive, got {schedule!r}")
    if len(nums) == 1:
        return [nums[0]] * (paths // nums[0]) + ([paths % nums[0]] if paths % nums[0] else [])
    if sum(nums) > paths:
        raise InputError(f"schedule {schedule!r} adds {sum(nums)} paths, more than paths={paths}")
    return nums


def live_steps(paths: int, iters: int, schedule: str = "doubling") -> int:
    """Steps `live_vectorize` takes at most: `iters` per stage, plus the last pass that refines everything."""
    return (len(stage_schedule(paths, schedule)) + 1) * iters


def _palette_labels(target: np.ndarray, colors: int = 24) -> np.ndarray:
    """(H, W) int labels: the index of each pixel's color in a median-cut palette of the image."""
    from PIL import Image

    img = Image.fromarray((np.clip(target, 0, 1) * 255 + 0.5).astype(np.uint8))
    return np.asarray(img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT), dtype=np.int64)


def error_regions(target: np.ndarray, current: np.ndarray, labels: np.ndarray, n: int,
                  threshold: float = 0.03, min_pixels: int = 4) -> list[np.ndarray]:
    """The n connected regions where adding a path would help most.

    target, current: (H, W, 3) in [0, 1]; labels: (H, W) palette indices of the target. A region is a
    4-connected component of pixels whose color error (L2 over RGB) exceeds `threshold` and whose target colors
    share one palette entry; regions are ranked by their summed squared error. Returns boolean (H, W) masks.
    """
    from scipy import ndimage

    err2 = ((current - target) ** 2).sum(-1)
    bad = err2 > threshold ** 2
    found = []  # (score, label id, color)
    comps = {}
    for c in np.unique(labels[bad]):
        lab, count = ndimage.label(bad & (labels == c))
        if count == 0:
            continue
        sizes = np.bincount(lab.ravel(), minlength=count + 1)
        scores = np.bincount(lab.ravel(), weights=err2.ravel(), minlength=count + 1)
        for j in range(1, count + 1):
            if sizes[j] >= min_pixels:
                found.append((scores[j], int(c), j))
        comps[int(c)] = lab
    found.sort(key=lambda f: -f[0])
    return [comps[c] == j for _, c, j in found[:n]]


def region_to_points(mask: np.ndarray, segments: int) -> torch.Tensor:
    """(3*segments, 2) control points of a closed path tracing the outer contour of a region (canvas px).

    The longest iso-contour of the mask is resampled at 3*segments points evenly spaced by arc length, all of
    them used as control points: the cubic through them follows the contour closely. Falls back to a circle of
    the region's area at its centroid for regions too small to have a contour.
    """
    from skimage import measure

    ys, xs = np.nonzero(mask)
    contours = measure.find_contours(np.pad(mask.astype(np.float32), 1), 0.5)
    contour = max(contours, key=len) if contours else None
    if contour is None or len(contour) < 4:
        r = max(math.sqrt(len(xs) / math.pi), 1.0)
        center = torch.tensor([xs.mean() + 0.5, ys.mean() + 0.5], dtype=torch.float32)
        return circle_control_points(center, r, segments)
    xy = np.stack([contour[:, 1] - 1 + 0.5, contour[:, 0] - 1 + 0.5], axis=1)  # (row, col) -> (x, y) px
    if np.allclose(xy[0], xy[-1]):
        xy = xy[:-1]
    closed = np.concatenate([xy, xy[:1]])
    seg_len = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg_len)])
    want = np.linspace(0.0, arc[-1], 3 * segments, endpoint=False)
    px = np.interp(want, arc, closed[:, 0])
    py = np.interp(want, arc, closed[:, 1])
    return torch.tensor(np.stack([px, py], axis=1), dtype=torch.float32)


def border_color(target: torch.Tensor) -> torch.Tensor:
    """(3, H, W) -> (3,) median color of the 1-pixel image border (the likely background)."""
    t = target
    border = torch.cat([t[:, 0], t[:, -1], t[:, :, 0], t[:, :, -1]], dim=1)
    return border.median(dim=1).values


def live_vectorize(target: torch.Tensor, *, paths: int, segments: int = 4, schedule: str = "doubling",
                   iters: int = 150, lr: float = 1.0, color_lr: float = 0.01, udf_keep: float = 0.1,
                   udf_tau: float = 10.0, xing_weight: float = 0.01, threshold: float = 0.03, every: int = 25,
                   palette: int = 24):
    """Fit up to `paths` closed paths of `segments` cubics to `target` (3, H, W) in [0, 1], LIVE style.

    A generator: yields Progress (global step count, preview of the current fit) and returns the fitted
    `Painting` (K = 1, canvas W x H = the target's size). Stages add paths by `stage_schedule(paths, schedule)`;
    each stage runs `iters` Adam steps on all paths so far, with the error weighted 1 at the new paths'
    outlines falling to `udf_keep` at `udf_tau` px (256 px scale) away (LIVE's UDF loss); a last pass of
    `iters` steps refines everything (and the background color) on the plain error. lr: points, in pixels per
    step at 256 px (scaled with the canvas); color_lr: colors; xing_weight: the self-intersection loss. Adds
    no more paths once no region with error above `threshold` is left.
    """
    device = target.device
    _, h, w = target.shape
    target_np = target.permute(1, 2, 0).cpu().numpy()
    labels = _palette_labels(target_np, palette)
    stages = stage_schedule(paths, schedule)
    total = (len(stages) + 1) * iters
    scale = max(h, w) / 256.0
    points = torch.zeros(0, 3 * segments, 2, device=device)
    colors = torch.zeros(0, 4, device=device)
    background = border_color(target).to(device)
    done = 0
    nothing_left = False
    for n_new in stages + [0]:  # the last pass adds nothing: it refines everything on the plain error
        if n_new and nothing_left:
            continue
        if n_new:
            added = _add_paths(target, target_np, labels, (points, colors, background), n_new, threshold=threshold,
                               segments=segments, udf_tau=udf_tau * scale, udf_keep=udf_keep)
            if added is None:  # nothing left worth a path: skip the remaining stages, refine
                total = done + iters
                nothing_left = True
                continue
            points, colors, weights = added
        else:
            if points.shape[0] == 0:
                break
            weights = torch.ones(h, w, device=device)
        points, colors, background = yield from _fit_stage(
            target, (points, colors, background), weights, refine=not n_new, steps=iters, lr=lr * scale,
            color_lr=color_lr, xing_weight=xing_weight, every=every, done=done, total=total)
        done += iters
    return _painting(w, h, points.detach(), colors.detach(), background.detach())


def _add_paths(target: torch.Tensor, target_np: np.ndarray, labels: np.ndarray, fit, n_new: int, *,
               threshold: float, segments: int, udf_tau: float, udf_keep: float):
    """A stage's new paths: the outlines of the `n_new` regions of largest error of the current `fit` (points,
    colors, background), in their regions' mean colours, appended to the fit's paths. Returns (points, colors,
    the stage's UDF weights (H, W)), or None when no region with error above `threshold` is left."""
    points, colors, background = fit
    device = target.device
    _, h, w = target.shape
    with torch.no_grad():
        current = _painting(w, h, points, colors, background).render()[0]
    regions = error_regions(target_np, current.permute(1, 2, 0).cpu().numpy(), labels, n_new, threshold)
    if not regions:
        return None
    new_pts = torch.stack([region_to_points(m, segments) for m in regions]).to(device)
    new_col = torch.stack([torch.cat([target[:, torch.from_numpy(m).to(device)].mean(dim=1),
                                      torch.ones(1, device=device)]) for m in regions])
    # LIVE's UDF weighting: the error counts mostly near the new paths' outlines, so a new path fits
    # its region's edge and keeps its region's color even where it covers pixels of another color
    # that a later path on top will take care of (a ring becomes a disk with a disk on top).
    weights = udf_weights(np.any(np.stack(regions), axis=0), udf_tau).to(device) + udf_keep
    return torch.cat([points.detach(), new_pts]), torch.cat([colors.detach(), new_col]), weights


def _fit_stage(target: torch.Tensor, fit, weights: torch.Tensor, *, refine: bool, steps: int, lr: float,
               color_lr: float, xing_weight: float, every: int, done: int, total: int):
    """`steps` Adam steps of the fit (points, colors, background) on the `weights`-weighted error plus the
    self-intersection loss; refine: the last pass, the only one that fits the background too. A generator:
    yields Progress numbered from `done` within `total`, returns the fitted (points, colors, background)."""
    _, h, w = target.shape
    weights = weights / weights.sum()
    points, colors, background = (t.detach() for t in fit)
    points.requires_grad_(True)
    colors.requires_grad_(True)
    # The background is only fitted in the last pass: while regions are still uncovered it would drift
    # towards their colors, and then the whole canvas would look like a region to cover.
    background.requires_grad_(refine)
    painting = _painting(w, h, points, colors, background)
    opt = torch.optim.Adam([{"params": [points], "lr": lr},
                            {"params": [colors] + ([background] if refine else []), "lr": color_lr}],
                           betas=(0.9, 0.9), eps=1e-6)

    def step(i: int) -> engine.Step:
        img = painting.render()[0]
        err = (img - target).pow(2).mean(dim=0)
        xing = xing_loss(painting.cubics()).mean()
        return engine.Step((err * weights).sum() + xing_weight * xing,
                           {"mse": err.mean().detach(), "xing": xing.detach()})

    def project(i: int) -> None:
        with torch.no_grad():
            colors.clamp_(0, 1)
            background.clamp_(0, 1)
            points[..., 0].clamp_(-0.1 * w, 1.1 * w)
            points[..., 1].clamp_(-0.1 * h, 1.1 * h)

    def preview():
        with torch.no_grad():
            return to_uint8(painting.render()[0])

    def lr_schedule(i: int) -> float:
        return engine.warmup_cosine(i, warmup=0, total=steps, start=1.0, peak=1.0, end=0.1)

    for p in engine.distill(step, opt, steps=steps, every=every, preview=preview, lr_schedule=lr_schedule,
                            after_step=project):
        p.step, p.total = done + p.step, total
        p.metrics["paths"] = float(points.shape[0])
        p.metrics["psnr"] = 10.0 * math.log10(1.0 / max(p.metrics["mse"], 1e-12))
        yield p
    return points, colors, background


def _painting(w: int, h: int, points: torch.Tensor, colors: torch.Tensor, background: torch.Tensor) -> Painting:
    n = points.shape[0]
    return Painting(w, h, "path", points[None], colors[None], background[None], torch.arange(n)[None])


# ------------------------------------------------------------------------------------------------ backend

@dataclass
class VectorizeSettings:
    paths: int = option(32, "path budget: at most this many filled Bezier paths (plus one background rectangle)",
                        lo=1, hi=512)
    segments: int = option(4, "cubic segments per path (LIVE uses 4; more follow complex outlines better)",
                           lo=1, hi=32)
    size: int | None = option(None, "working resolution: the image is resized so its longer side has this many "
                                    "pixels; the SVG canvas has the same size", lo=16, hi=1024, full=256, quick=128)
    iters: int | None = option(None, "optimization steps per stage (LIVE: 500 per path group)", lo=1, hi=5000,
                               full=150, quick=30)
    schedule: str = option("doubling", "paths added per stage: 'doubling' (1, 1, 2, 4, 8, ...), a number N "
                                       "(N each stage) or counts like '1,2,4,8'", advanced=True)
    lr: float = option(1.0, "point learning rate, pixels per step at 256 px", lo=1e-4, hi=100.0, advanced=True)
    color_lr: float = option(0.01, "color learning rate", lo=0.0, hi=1.0, advanced=True)
    udf_keep: float = option(0.1, "while paths are added, the error counts with weight 1 at the new paths' "
                                  "outlines (LIVE's UDF loss) and this much elsewhere", lo=0.0, hi=100.0,
                             advanced=True)
    xing_weight: float = option(0.01, "weight of the self-intersection (Xing) loss", lo=0.0, hi=100.0,
                                advanced=True)
    threshold: float = option(0.03, "a pixel counts as badly fit when its RGB error exceeds this", lo=0.0, hi=1.0,
                              advanced=True)
    seed: int = option(0, "random seed", lo=0, hi=2**31 - 1)
    every: int = option(25, "report progress every k steps", lo=1, hi=1000, advanced=True)


@register("svg", "vectorize")
class Vectorize:
    Settings = VectorizeSettings
    description = "Image to SVG without a diffusion model: LIVE-style layer-wise path fitting (upload a PNG, get an SVG)"
    prior = "none"
    inputs = "image"

    @classmethod
    def estimate(cls, s: VectorizeSettings, inputs, facts):
        """The work budget's estimate from the image's header (see `backends.core.budget`): the working canvas (long
        side `size`): `cost.fit_bytes`, plus the canvas's own ~400 B a pixel (the target, the render, their
        gradients)."""

        w0, h0 = budget.image_size(inputs[0])
        side = s.size or 256
        w, h = max(8, round(w0 * side / max(w0, h0))), max(8, round(h0 * side / max(w0, h0)))
        return budget.Work(cost.fit_bytes(s.paths, w, h) + 2 * cost.STEP_PIXEL_BYTES * w * h,
                           f"{s.paths} paths on a {w}x{h} canvas",
                           "paths or size")

    @classmethod
    def total_steps(cls, s: VectorizeSettings) -> int | None:
        """Every stage's iterations and the last pass (`live_steps`): the budget once counted 2000 for a run of
        325,000 (schedule=1, iters=5000); None while iters is left to the profile (the runner resolves it)."""
        return live_steps(s.paths, s.iters, s.schedule) if s.iters else None

    def run(self, s: VectorizeSettings, *, prior, inputs, out_dir):
        engine.seed_everything(s.seed)
        stage_schedule(s.paths, s.schedule)  # refuse a bad schedule before any work
        from ..inputs import media

        img = media.image(inputs[0])
        w0, h0 = img.size
        scale = s.size / max(w0, h0)
        w, h = max(8, round(w0 * scale)), max(8, round(h0 * scale))
        target = load_image(inputs[0], size=(w, h))
        painting = yield from live_vectorize(target, paths=s.paths, segments=s.segments, schedule=s.schedule,
                                             iters=s.iters, lr=s.lr, color_lr=s.color_lr, udf_keep=s.udf_keep,
                                             xing_weight=s.xing_weight, threshold=s.threshold, every=s.every)
        scene = painting.scene(0)
        raster = export_rasters([scene])[0]
        files = {"svg": export_svg(scene, out_dir / "result.svg"), "png": save_png(raster, out_dir / "result.png")}
        metrics = {"psnr": psnr(painting.render()[0].detach(), target), "paths": float(len(scene.shapes))}
        yield Result(files=files, preview=to_uint8(raster),
                     metadata={"metrics": metrics, "canvas": [w, h], "input_size": [w0, h0],
                               "warnings": [] if (w, h) == (w0, h0) else [
                                   f"The image ({w0}x{h0}) was vectorized at {w}x{h} (the size setting)."]})
