"""Edits at full fidelity, as a person meets them (issue 34): a fresh page in headless Chromium (Debian's), a real
photo and a real clip uploaded, Run with every default, the results downloaded as the browser offers them. They
must come back at the input's size (and the clip at its frame count and frame rate), keep the input's detail, and
show the edit.

The photo: scikit-image's "coffee" (CC0, Rachel Michetti), as a 900x300 strip (`samples.photo_strip`). The clip: a
pan over scikit-image's "rocket" (SpaceX, public domain), 48 frames at 24 fps, 320x180 (`samples.panned_clip`).
Both from the scikit-image package's own data (a requirement); nothing is downloaded. Screenshots and the first
frames go to tests/artifacts/edit-fidelity-*.png.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from app_server import ARTIFACTS, AppServer
from backends.csd_edit import metrics, outputs, samples
from browser_util import CHROMIUM, downloads, open_tab, shot, wait_status

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
RUN_BOUND_S = 600  # ends only a run that never finishes: the wait is for the outcome, whatever the load


@pytest.fixture(scope="module")
def server():
    with AppServer("edit-fidelity") as app:
        yield app


@pytest.fixture(scope="module")
def real_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    photo = d / "coffee_strip.png"
    Image.fromarray(samples.photo_strip(900, 300)).save(photo)
    clip = d / "rocket_pan.mp4"
    outputs.write_mp4(samples.panned_clip(48, 320, 180), 24.0, clip)
    return {"panorama": photo, "video": clip}


def _run(page, tab: str, title: str, words: str, path: Path) -> dict[str, bytes]:
    open_tab(page, title)
    page.locator(f"#{tab}-prompt textarea").fill(words)
    page.locator(f"#{tab}-input input[type=file]").first.set_input_files(str(path))
    page.wait_for_timeout(1500)  # the upload lands in the widget
    page.locator(f"#{tab}-run").click()
    text = wait_status(page, tab, ("Done", "failed", "problem", "Stopped"), RUN_BOUND_S)
    assert text.startswith("Done"), text
    return downloads(page, tab, "a")


def _tensor(images: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) or (H, W, 3) uint8 -> (N, 3, H, W) in [0, 1]."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float32) / 255)
    return (x[None] if x.dim() == 3 else x).permute(0, 3, 1, 2)


def test_a_real_photo_comes_back_at_its_size_with_its_detail_and_the_edit(page, real_files):
    with shot(page, ARTIFACTS / "edit-fidelity-panorama.png"):
        files = _run(page, "panorama", "Panorama edit", "make it black and white", real_files["panorama"])
    png = next(data for name, data in files.items() if name.endswith(".png") and "comparison" not in name)
    edited = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    source = np.asarray(Image.open(real_files["panorama"]).convert("RGB"))
    assert edited.shape == source.shape == (300, 900, 3)
    assert metrics.detail_correlation(_tensor(edited), _tensor(source)) >= 0.9
    chroma = lambda x: np.abs(x.astype(float) - x.mean(-1, keepdims=True)).mean()  # noqa: E731
    assert chroma(edited) < 0.35 * chroma(source)  # black and white: the colour is gone
    Image.fromarray(np.concatenate([source[100:300, 300:600], edited[100:300, 300:600]], 1)).save(
        ARTIFACTS / "edit-fidelity-panorama-crop.png")


def test_a_real_clip_comes_back_with_every_frame_at_its_rate_size_detail_and_the_edit(page, real_files, tmp_path):
    import imageio.v2 as iio

    with shot(page, ARTIFACTS / "edit-fidelity-video.png"):
        files = _run(page, "video", "Video edit", "make it a sunset", real_files["video"])
        # the player has the whole clip: its duration is the source's 2 s
        duration = page.locator("#tab-video video").first.evaluate(
            "v => new Promise(r => v.readyState >= 1 ? r(v.duration) : v.addEventListener('loadedmetadata', "
            "() => r(v.duration)))")
    assert duration == pytest.approx(2.0, abs=0.1)
    mp4 = tmp_path / "edited.mp4"
    mp4.write_bytes(next(data for name, data in files.items() if name.endswith(".mp4")))
    reader = iio.get_reader(mp4, format="FFMPEG")
    fps = reader.get_meta_data()["fps"]
    reader.close()
    edited = np.stack(iio.mimread(mp4, format="FFMPEG"))
    source = np.stack(iio.mimread(real_files["video"], format="FFMPEG"))
    assert edited.shape == source.shape == (48, 180, 320, 3) and fps == pytest.approx(24.0)
    assert metrics.detail_correlation(_tensor(edited), _tensor(source)) >= 0.9
    # a sunset warms every frame, the keyframes' neighbours too: red over blue up against the source's
    warmth = lambda x: float(x[..., 0].astype(float).mean() - x[..., 2].astype(float).mean())  # noqa: E731
    for f in (0, 5, 17, 30, 47):
        assert warmth(edited[f]) > warmth(source[f]) + 10, f
    Image.fromarray(np.concatenate([source[24], edited[24]], 1)).save(ARTIFACTS / "edit-fidelity-video-frame.png")
