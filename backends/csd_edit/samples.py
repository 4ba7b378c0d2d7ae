"""Procedurally generated inputs for CSD-Edit: a wide landscape, a short clip, a turntable of views.

They are the repository's examples (examples/panorama, examples/video, examples/views3d, made by
`python -m backends.csd_edit.samples examples`) and, at tiny sizes, the tests' inputs. Everything is drawn from
formulas and a seed with NumPy: no photographs, no third-party material (CC0, see examples/LICENSE-examples.md).

`photo_strip` and `panned_clip` are the exception, for the fidelity checks (benchmarks/edit_fidelity.py, the
browser tests): real photographs, from scikit-image's bundled data (a requirement), CC0 or public domain by their
docstrings: "coffee" (CC0, Rachel Michetti) and "rocket" (SpaceX, public domain). Nothing is downloaded.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image


def _smooth_noise(n: int, rng: np.random.Generator, octaves: int = 5) -> np.ndarray:
    """1-D fractal noise of length n in about [-1, 1] (sums of interpolated random values)."""
    out = np.zeros(n)
    for o in range(octaves):
        knots = 2 ** (o + 2) + 1
        vals = rng.uniform(-1, 1, knots)
        out += np.interp(np.linspace(0, knots - 1, n), np.arange(knots), vals) / 2**o
    return out / 1.9


def landscape(width: int = 1536, height: int = 384, seed: int = 0) -> np.ndarray:
    """A wide landscape (H, W, 3) uint8: graded sky with a sun, three mountain ranges, a lake and a meadow."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, height)[:, None]
    x = np.linspace(0, 1, width)[None, :]
    sky_top, sky_low = np.array([70, 120, 200]), np.array([200, 215, 235])
    img = sky_top + (sky_low - sky_top) * (y[..., None] ** 0.8)
    img = np.broadcast_to(img, (height, width, 3)).copy()
    sun = np.exp(-(((x - 0.72) * width / height) ** 2 + (y - 0.22) ** 2) / 0.004)
    img += sun[..., None] * np.array([55, 40, 0])
    ranges = [(0.45, 0.22, (120, 130, 160)), (0.58, 0.14, (80, 110, 100)), (0.68, 0.08, (55, 90, 60))]
    for base, amp, colour in ranges:
        ridge = base - amp * (0.5 + 0.8 * _smooth_noise(width, rng))
        mask = y >= ridge[None, :]
        shade = 1.0 - 0.25 * np.clip((y - ridge[None, :]) / 0.3, 0, 1)
        img = np.where(mask[..., None], np.array(colour) * shade[..., None], img)
    lake = (y > 0.74) & (y < 0.84) & (np.abs(x - 0.35) < 0.22 - 0.3 * (y - 0.74))
    img = np.where(lake[..., None], np.array([90, 140, 190]) + 20 * np.sin(60 * y)[..., None], img)
    meadow = y >= 0.84
    grass = np.array([90, 150, 60]) * (1.0 - 0.3 * (y - 0.84) / 0.16)[..., None]
    img = np.where(meadow[..., None], grass + 12 * np.sin(40 * x + 7 * y)[..., None], img)
    return np.clip(img, 0, 255).astype(np.uint8)


def clip(frames: int = 36, width: int = 256, height: int = 192, seed: int = 0) -> np.ndarray:
    """A short clip (T, H, W, 3) uint8: a red ball rolls across a meadow under a slowly panning sky."""
    rng = np.random.default_rng(seed)
    hills = _smooth_noise(width * 3, rng)
    y = np.linspace(0, 1, height)[:, None]
    xs = np.arange(width)
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        p = f / max(frames - 1, 1)
        img = np.array([90, 140, 210]) + (np.array([210, 225, 240]) - np.array([90, 140, 210])) * y[..., None]
        img = np.broadcast_to(img, (height, width, 3)).copy()
        ridge = 0.55 - 0.08 * hills[xs + int(p * width)]
        ground = y >= ridge[None, :]
        img = np.where(ground[..., None], np.array([80, 150, 70]) * (1.1 - 0.4 * y[..., None]), img)
        cx, cy, r = (0.15 + 0.7 * p) * width, 0.72 * height, 0.12 * height
        yy, xx = np.mgrid[0:height, 0:width]
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / r**2
        light = np.clip(1.0 - 0.6 * (((xx - cx + 0.4 * r) ** 2 + (yy - cy + 0.4 * r) ** 2) / r**2), 0.35, 1.0)
        img = np.where((d2 <= 1.0)[..., None], np.array([210, 50, 40]) * light[..., None], img)
        out[f] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def turntable(views: int = 8, size: int = 256) -> np.ndarray:
    """Views (N, S, S, 3) uint8 of a lit, patterned sphere on a plinth, the camera orbiting it in equal steps."""
    yy, xx = np.mgrid[0:size, 0:size]
    u, v = (xx + 0.5) / size * 2 - 1, (yy + 0.5) / size * 2 - 1
    r = 0.62
    out = np.empty((views, size, size, 3), np.uint8)
    for k in range(views):
        yaw = 2 * np.pi * k / views
        img = np.empty((size, size, 3))
        img[:] = (np.array([235, 232, 225]) - 40 * (v[..., None] + 1) / 2)
        plinth = (np.abs(u) < 0.55) & (v > 0.55) & (v < 0.8)
        img[plinth] = np.array([120, 110, 100])
        sx, sy = u / r, (v + 0.08) / r
        inside = sx**2 + sy**2 <= 1.0
        sz = np.sqrt(np.clip(1.0 - sx**2 - sy**2, 0, 1))
        # rotate the surface point into the sphere's frame: the texture turns with the yaw
        px, pz = sx * np.cos(yaw) + sz * np.sin(yaw), -sx * np.sin(yaw) + sz * np.cos(yaw)
        lon, lat = np.arctan2(px, pz), np.arcsin(np.clip(-sy, -1, 1))
        check = (np.floor(lon / (2 * np.pi / 5)) + np.floor(lat / (np.pi / 6))) % 2  # 5 cells: no symmetry
        band = np.abs(lat) < 0.2
        spot = (np.angle(np.exp(1j * (lon - 0.8))) ** 2 + (lat - 0.55) ** 2) < 0.12  # one green patch marks the front
        albedo = np.where(check[..., None] > 0, np.array([60, 110, 200]), np.array([240, 200, 70]))
        albedo = np.where(band[..., None], np.array([200, 60, 60]), albedo)
        albedo = np.where(spot[..., None], np.array([60, 170, 80]), albedo)
        light = np.clip(0.25 + 0.75 * (-0.4 * sx - 0.5 * sy + 0.77 * sz), 0.15, 1.0)
        img = np.where(inside[..., None], albedo * light[..., None], img)
        out[k] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def photo_strip(width: int = 1482, height: int = 500) -> np.ndarray:
    """A real photo as a wide strip, (H, W, 3) uint8: the middle band of scikit-image's "coffee" (600x400, CC0),
    cropped to the aspect W:H and resized to W x H (Lanczos; a crop of 600x200 enlarged 2.5x at the default)."""
    from skimage import data

    photo = Image.fromarray(data.coffee())
    band = min(photo.height, round(photo.width * height / width))
    top = (photo.height - band) // 2
    return np.asarray(photo.resize((width, height), Image.LANCZOS, box=(0, top, photo.width, top + band)))


def panned_clip(frames: int = 120, width: int = 640, height: int = 360) -> np.ndarray:
    """A real clip, (T, H, W, 3) uint8: a camera panning across scikit-image's "rocket" photo (640x427, SpaceX,
    public domain), right and up, through a window of 7/8 the photo's width with the clip's aspect, resized to
    W x H per frame (Lanczos, sub-pixel positions: the motion is smooth)."""
    from skimage import data

    photo = Image.fromarray(data.rocket())
    cw = photo.width * 7 / 8
    ch = min(photo.height, cw * height / width)
    out = np.empty((frames, height, width, 3), np.uint8)
    for f in range(frames):
        t = f / max(frames - 1, 1)
        x, y = t * (photo.width - cw), (1 - t) * (photo.height - ch)
        out[f] = np.asarray(photo.resize((width, height), Image.LANCZOS, box=(x, y, x + cw, y + ch)))
    return out


def write_examples(root: Path) -> dict[str, list[str]]:
    """Write examples/panorama/landscape.png, examples/video/rolling_ball.mp4 and examples/views3d/view_*.png."""
    from .outputs import write_mp4

    root = Path(root)
    for sub in ("panorama", "video", "views3d"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    made = {"panorama": [], "video": [], "views3d": []}
    pano = root / "panorama" / "landscape.png"
    Image.fromarray(landscape()).save(pano, optimize=True)
    made["panorama"].append(str(pano))
    video = root / "video" / "rolling_ball.mp4"
    write_mp4(clip(), 12.0, video)
    made["video"].append(str(video))
    for k, view in enumerate(turntable()):
        path = root / "views3d" / f"view_{k:02d}.png"
        Image.fromarray(view).save(path, optimize=True)
        made["views3d"].append(str(path))
    return made


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description="write the procedurally generated CSD-Edit examples")
    p.add_argument("root", nargs="?", default="examples", help="folder that gets panorama/, video/, views3d/")
    args = p.parse_args(argv)
    for task, paths in write_examples(Path(args.root)).items():
        for path in paths:
            print(f"{task}: {path} ({Path(path).stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
