"""The judges the example test trusts (`benchmarks.judges`) tell a shown promise from a missed one."""
from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from backends.priors.edits import EDITS
from backends.priors.icons import load_icon_data
from benchmarks.judges import LIKENESS, drawn_icon, likeness, shown_edit


def _icon(caption: str) -> Image.Image:
    data = load_icon_data()
    i = [str(c) for c in data["caption"]].index(caption)
    return Image.fromarray(data["images"][i]).resize((256, 256), Image.NEAREST)


def test_an_icon_is_judged_by_its_object_and_a_blank_is_not():
    assert drawn_icon(_icon("fox"), "fox").shows
    assert not drawn_icon(_icon("fox"), "mushroom").shows
    assert not drawn_icon(Image.new("RGB", (128, 128), "white"), "fox").shows


def _scene() -> Image.Image:
    y, x = np.mgrid[0:96, 0:128] / 96.0
    rgb = np.stack([0.3 + 0.4 * x / 1.34, 0.5 + 0.3 * y, 0.8 - 0.4 * y], -1)
    return Image.fromarray((rgb.clip(0, 1) * 255).astype(np.uint8))


def _edited(img: Image.Image, name: str, amount: float) -> Image.Image:
    x = torch.from_numpy(np.asarray(img, dtype=np.float32) / 255).permute(2, 0, 1)[None]
    variant = next(e for e in EDITS if e.name == name).variants(x)[0, 0]
    y = (x[0] + amount * (variant - x[0])).clamp(0, 1)
    return Image.fromarray((y.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))


def test_an_edit_is_shown_only_when_it_is_the_named_one_and_goes_far_enough():
    src = _scene()
    assert shown_edit(src, _edited(src, "sepia", 1.0)).shows("sepia")
    assert not shown_edit(src, _edited(src, "sepia", 1.0)).shows("night")
    assert not shown_edit(src, _edited(src, "sepia", 0.15)).shows("sepia")  # a faint tint is not the edit


def test_a_result_looks_like_its_input_only_when_it_is_close():
    src = _scene()
    assert likeness(src, src.resize((256, 192))) <= LIKENESS
    assert likeness(src, Image.new("RGB", src.size, "white")) > LIKENESS
