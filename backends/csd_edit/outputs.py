"""What an edit run writes and reports: working sizes, before/after figures, mp4 / GIF / zip files, the metrics."""
from __future__ import annotations

import errno
import io
import itertools
import os
import zipfile
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from ..core.errors import RunError
from ..core.files import atomic_path, write_error
from ..core.types import Progress
from . import metrics
from .csd import EditSettings

# ------------------------------------------------------------------------------------------------ sizes

def resize_warning(input_size: Sequence[int], work_size: Sequence[int], what: str = "image",
                   upsample_method: str = "resize") -> list[str]:
    """The sentence result.json's `warnings` carries when the work ran at another size than the input's: how the
    edit came back to the input's size (upsample_method "guided": a colour model applied to every pixel; "resize":
    the named fallback)."""
    (w0, h0), (w, h) = input_size, work_size
    if (w0, h0) == (w, h):
        return []
    be = "were" if what.endswith("s") else "was"
    if upsample_method == "guided":
        return [f"The {what} {be} edited at {w}x{h} (the short_side setting); the edit was applied at {w0}x{h0}, "
                "to every pixel, by a local colour model (upsample=guided)."]
    return [f"The {what} ({w0}x{h0}) {be} edited at {w}x{h} (the short_side setting) and resized back "
            "(upsample=resize)."]


def to_batch(images: Sequence[Image.Image | np.ndarray], size: tuple[int, int], device) -> torch.Tensor:
    """Images (PIL or (H, W, 3) uint8) resized to size=(W, H) -> (B, 3, H, W) float32 in [0, 1] on device."""
    out = []
    for im in images:
        im = im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im))
        im = im.convert("RGB")
        if im.size != tuple(size):
            im = im.resize(tuple(size), Image.LANCZOS)
        out.append(torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1))
    return torch.stack(out).float().div(255.0).to(device)


# ------------------------------------------------------------------------------------------------ figures and files

LABEL_SHARE = 1 / 48  # a label's height as a share of its figure's width: about 15 px on a 760 px wide result


def labelled_rows(rows: Sequence[tuple[str, np.ndarray]], gap: int = 4) -> np.ndarray:
    """Stack (label, (H, W, 3) uint8) rows vertically with a label strip above each: a before/after figure. The
    labels grow with the figure, which the page shows scaled to its column: a fixed 11 px font on a 2048 px
    panorama read as 4 px at 800 px."""
    width = max(r.shape[1] for _, r in rows)
    size = max(11, round(width * LABEL_SHARE))
    font = ImageFont.load_default(size=size)
    parts = []
    for label, row in rows:
        bar = Image.new("RGB", (width, round(size * 1.35)), (255, 255, 255))
        ImageDraw.Draw(bar).text((size // 3, size // 10), label, fill=(0, 0, 0), font=font)
        padded = np.full((row.shape[0], width, 3), 255, np.uint8)
        padded[:, : row.shape[1]] = row
        parts += [np.asarray(bar), padded, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1])


def strip(images: np.ndarray, max_items: int = 8, height: int = 128, gap: int = 2) -> np.ndarray:
    """Up to max_items images of (N, H, W, 3) uint8, evenly picked, side by side at `height` pixels."""
    pick = np.unique(np.round(np.linspace(0, len(images) - 1, min(max_items, len(images)))).astype(int))
    tiles = [np.asarray(Image.fromarray(images[i]).resize(
        (max(1, round(images[i].shape[1] * height / images[i].shape[0])), height), Image.LANCZOS)) for i in pick]
    out = []
    for tile in tiles:
        out += [tile, np.full((height, gap, 3), 255, np.uint8)]
    return np.concatenate(out[:-1], axis=1)


def detail_crops(source: np.ndarray, edited: np.ndarray, side: int = 256, gap: int = 4) -> np.ndarray:
    """Source and edited (H, W, 3) uint8 of one size -> their centre crops of at most side x side pixels, side by
    side at 1:1: the figure's row that shows the detail the visitor receives (the strips above are scaled down)."""
    h, w = source.shape[:2]
    ch, cw = min(side, h), min(side, w)
    y, x = (h - ch) // 2, (w - cw) // 2
    return np.concatenate([source[y:y + ch, x:x + cw], np.full((ch, gap, 3), 255, np.uint8),
                           edited[y:y + ch, x:x + cw]], 1)


def fit_width(image: np.ndarray, max_width: int = 1024) -> np.ndarray:
    """Downscale an (H, W, 3) uint8 image to at most max_width pixels wide (for previews)."""
    if image.shape[1] <= max_width:
        return image
    h = max(1, round(image.shape[0] * max_width / image.shape[1]))
    return np.asarray(Image.fromarray(image).resize((max_width, h), Image.LANCZOS))


def write_mp4(frames: Iterable[np.ndarray], fps: float, path: Path) -> str:
    """(T, H, W, 3) uint8, or any iterable of (H, W, 3) uint8 frames of one size (a clip streamed frame by frame)
    -> H.264 mp4 (yuv420p, so odd sides are cropped by one pixel) at `fps`."""
    import imageio.v2 as iio

    frames = iter(frames)
    first = next(frames)
    h, w = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    with atomic_path(path) as tmp, iio.get_writer(tmp, format="FFMPEG", mode="I", fps=float(fps), codec="libx264",
                                                  pixelformat="yuv420p", macro_block_size=1, quality=8,
                                                  ffmpeg_log_level="error") as writer:
        for frame in itertools.chain([first], frames):
            writer.append_data(np.ascontiguousarray(frame[:h, :w]))
        writer.close()
        _check_whole_mp4(tmp, path)
    return str(path)


def _mp4_boxes_add_up(data: bytes) -> bool:
    """True when the file's top-level boxes fill it exactly and include the index ('moov')."""
    at, seen = 0, set()
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at:at + 4], "big"), data[at + 4:at + 8]
        if size == 1 and at + 16 <= len(data):
            size = int.from_bytes(data[at + 8:at + 16], "big")
        elif size == 0:
            size = len(data) - at
        if size < 8:
            return False
        seen.add(kind)
        at += size
    return at == len(data) and b"moov" in seen


def _check_whole_mp4(tmp: Path, path: Path) -> None:
    """ffmpeg writes the mp4's index last, and imageio does not read its exit code: a file cut short by a full
    disk or a file size limit (ulimit -f) would be renamed into place as finished. Refuse it in one sentence."""
    data = Path(tmp).read_bytes()
    if _mp4_boxes_add_up(data):
        return
    try:
        import resource  # POSIX only
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
        over = limit != resource.RLIM_INFINITY and len(data) >= limit
    except (ImportError, OSError):
        over = False
    code = errno.EFBIG if over else None
    err = OSError(code, os.strerror(code) if code else "ffmpeg stopped before the end of the file")
    raise write_error(path, err) or RunError(
        f"Could not write {path}: ffmpeg stopped before the end of the file; check the disk and run again.")


def write_gif(frames: np.ndarray, fps: float, path: Path) -> str:
    """(T, H, W, 3) uint8 -> looping GIF; frame delays in whole milliseconds (GIF stores 10 ms units).

    One palette for the whole animation, from up to 8 frames spread over it: Pillow's own per-frame palette search
    took 40 ms a frame (5 s for a 120-frame clip at 320x180), one shared palette 4 ms, and the colours of a frame do
    not jump between palettes."""
    pick = np.unique(np.round(np.linspace(0, len(frames) - 1, min(8, len(frames)))).astype(int))
    palette = Image.fromarray(np.concatenate([frames[i] for i in pick])).quantize(256, method=Image.Quantize.FASTOCTREE)
    images = [Image.fromarray(f).quantize(palette=palette) for f in frames]
    with atomic_path(path) as tmp:
        images[0].save(tmp, save_all=True, append_images=images[1:], duration=max(20, round(1000.0 / fps)), loop=0)
    return str(path)


def write_zip(images: np.ndarray, path: Path, stem: str = "view") -> str:
    """(N, H, W, 3) uint8 -> a zip of PNGs named stem_000.png, stem_001.png, ..."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for k, im in enumerate(images):
            buf = io.BytesIO()
            Image.fromarray(im).save(buf, format="PNG")
            zf.writestr(f"{stem}_{k:03d}.png", buf.getvalue())
    return str(path)


def result_metrics(s: EditSettings, prior, edited: torch.Tensor, source: torch.Tensor,
                   pairs: Sequence[tuple[int, int]], progress: Progress | None) -> tuple[dict, list[str]]:
    """The figures every result carries: the consistency figure (metrics.residual_consistency over the neighbour
    pairs), the CLIP directional similarity when s.clip_model is set and loadable, and the last step's figures.

    edited, source: (N, 3, H, W) in [0, 1]; `source` is the decoded *source latents*, so the VAE's own
    reconstruction error is not counted as part of the edit. Returns (metrics, notes).
    """
    out = {f"final_{k}": v for k, v in (progress.metrics if progress else {}).items()}
    out.update(metrics.residual_consistency(edited, source, pairs))
    notes = []
    if s.clip_model:
        try:
            from ..measures.clip import directional_similarity, get_clip

            scorer = get_clip(s.clip_model, prior.device)
            out["clip_directional"] = float(directional_similarity(source, edited, s.source_prompt, s.prompt,
                                                                   model=scorer).mean())
        except Exception as err:  # a metric must never fail the edit it measures
            notes.append(f"CLIP directional similarity skipped: {err}")
    return out, notes
