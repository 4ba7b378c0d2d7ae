"""The panorama's consistency figure (`metrics.colour_map_variation`) sees windows that took different looks of an
edit, and not the content under them: one look applied everywhere scores about nothing, whatever it does to each
colour, where the per-pixel residual variation and a window's mean change both depend on what the window shows."""
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from backends.csd_edit import metrics, windows
from backends.priors import edits

ROOT = Path(__file__).resolve().parents[1]


def _windows(image: torch.Tensor, side: int):
    boxes, grid = windows.window_boxes(image.shape[-2], image.shape[-1], side, side // 2)
    return windows.take_windows(image, boxes), metrics.grid_pairs(*grid)


def _landscape() -> torch.Tensor:
    """The panorama tab's example at the offline working size (128 px high), (1, 3, 128, W) in [0, 1]."""
    image = np.array(Image.open(ROOT / "examples" / "panorama" / "landscape.png").convert("RGB"))
    x = torch.from_numpy(image).permute(2, 0, 1).float()[None] / 255
    return F.interpolate(x, size=(128, 128 * x.shape[-1] // x.shape[-2]), mode="area")


def _variants(name: str, image: torch.Tensor) -> torch.Tensor:
    """The `edits` prior's K looks of one edit of image: (K, 3, H, W)."""
    return next(e for e in edits.EDITS if e.name == name).variants(image)[0]


def _figure(edited: torch.Tensor, source: torch.Tensor, side: int = 64) -> float:
    e, pairs = _windows(edited, side)
    s, _ = _windows(source, side)
    return metrics.colour_map_variation(e, s, pairs)["colour_map_variation"]


@pytest.mark.parametrize("edit", ["winter", "sunset", "night", "sepia"])
def test_one_look_everywhere_scores_far_below_looks_that_change_from_window_to_window(edit):
    source = _landscape()
    looks = _variants(edit, source)
    width = source.shape[-1]
    # windows of 64 px every 32: blocks of 32 columns change look from one window's centre to the next
    block = torch.arange(width) // 32 % looks.shape[0]
    patchy = looks[block, :, :, torch.arange(width)].permute(1, 2, 0)[None]  # (1, 3, H, W): column x, look block[x]
    uniform = [_figure(looks[k:k + 1], source) for k in range(looks.shape[0])]
    assert _figure(patchy, source) > 4 * max(uniform)
    # the window's mean change, the figure this one replaced, cannot tell them apart: it moves with the content
    e, pairs = _windows(looks[:1], 64)
    s, _ = _windows(source, 64)
    r = (e - s)[..., 16:48, 16:48].mean(dim=(-2, -1))
    a, b = zip(*pairs)
    assert float((r[list(a)] - r[list(b)]).pow(2).mean(-1).sqrt().mean()) > 2 * max(uniform)


def test_a_nonlinear_colour_function_applied_everywhere_is_one_look():
    source = _landscape()
    # gamma, a channel mix and a hue-dependent lift: no affine map of the colour, but one function of it
    mix = torch.tensor([[0.8, 0.3, -0.1], [0.1, 0.7, 0.2], [-0.1, 0.2, 0.9]])
    graded = torch.einsum("ij,bjhw->bihw", mix, source.pow(1.6)).clamp(0, 1)
    graded = graded + 0.2 * (source[:, :1] - source[:, 2:]).clamp_min(0)
    assert _figure(graded, source) < 0.002


def test_a_shift_of_one_window_is_seen_and_no_edit_is_zero():
    source = _landscape()
    shifted = source.clone()
    shifted[..., 96:160] += torch.tensor([-0.08, 0.04, 0.08]).reshape(1, 3, 1, 1)  # one window's worth turned teal
    assert _figure(shifted, source) > 0.005
    tiles, pairs = _windows(source, 64)
    none = metrics.colour_map_variation(tiles, tiles, pairs)
    assert none == {"colour_map_variation": 0.0, "colour_map_variation_rel": 0.0}


def test_windows_that_share_no_colour_are_not_compared():
    dark, light = torch.full((1, 3, 8, 8), 0.1), torch.full((1, 3, 8, 8), 0.9)
    source = torch.cat([dark, light])
    looks = torch.tensor([0.05, -0.05, 0.0]).reshape(1, 3, 1, 1) * torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1)
    assert metrics.colour_map_variation(source + looks, source, [(0, 1)])["colour_map_variation"] == 0.0
    # the same two looks on windows that share their colours: the gap is seen
    both = torch.cat([torch.cat([dark, light], -1)] * 2)
    found = metrics.colour_map_variation(both + looks, both, [(0, 1)], centre=1.0)["colour_map_variation"]
    assert found == pytest.approx(float(looks[0].pow(2).mean().sqrt() * 2), rel=1e-3)


def test_colour_variation_rejects_an_empty_centre():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="centre"):
        metrics.colour_map_variation(x, x, [(0, 1)], centre=0.0)
