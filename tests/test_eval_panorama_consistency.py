"""The panorama's colour-consistency measure (`metrics.residual_colour_variation`) sees what the per-pixel residual
variation cannot: neighbouring windows that received different colour changes."""
import pytest
import torch

from backends.csd_edit import metrics, windows


def _windows(image: torch.Tensor, side: int):
    boxes, grid = windows.window_boxes(image.shape[-2], image.shape[-1], side, side // 2)
    return windows.take_windows(image, boxes), metrics.grid_pairs(*grid)


def _panoramas():
    """A textured source, one edit that shifts every pixel toward one colour (plus the edit's own texture), and a
    patchy edit of the same texture and strength whose colour alternates teal / pink in window-sized blocks."""
    g = torch.Generator().manual_seed(0)
    h, w, side = 32, 128, 32
    source = torch.rand(1, 3, h, w, generator=g) * 0.5 + 0.25
    texture = (torch.rand(1, 3, h, w, generator=g) - 0.5) * 0.3
    one = torch.tensor([0.1, 0.1, 0.1]).reshape(1, 3, 1, 1)
    teal, pink = torch.tensor([-0.1, 0.1, 0.1]), torch.tensor([0.1, -0.1, 0.1])
    blocks = torch.stack([teal if (x // side) % 2 == 0 else pink for x in range(w)], dim=-1)  # (3, w)
    uniform = (source + one + texture).clamp(0, 1)
    patchy = (source + blocks.reshape(1, 3, 1, w) + texture).clamp(0, 1)
    return source, uniform, patchy, side


def test_colour_variation_separates_patchy_from_uniform_edits_where_pixel_variation_barely_does():
    source, uniform, patchy, side = _panoramas()
    src, pairs = _windows(source, side)
    uni, _ = _windows(uniform, side)
    pat, _ = _windows(patchy, side)
    pixel_uni = metrics.residual_consistency(uni, src, pairs)["residual_variation"]
    pixel_pat = metrics.residual_consistency(pat, src, pairs)["residual_variation"]
    colour_uni = metrics.residual_colour_variation(uni, src, pairs)["residual_colour_variation"]
    colour_pat = metrics.residual_colour_variation(pat, src, pairs)["residual_colour_variation"]
    assert pixel_pat < 2 * pixel_uni  # the per-pixel figure is dominated by the texture: under a factor 2
    assert colour_uni < 0.01 and colour_pat > 0.05  # about 0 against 0.08 (half a teal-pink gap: centres straddle blocks)
    assert colour_pat > 10 * colour_uni


def test_colour_variation_is_zero_for_one_colour_change_and_for_no_edit():
    source, _, _, side = _panoramas()
    src, pairs = _windows(source, side)
    shifted = src + torch.tensor([0.05, -0.02, 0.0]).reshape(1, 3, 1, 1)
    assert metrics.residual_colour_variation(shifted, src, pairs)["residual_colour_variation"] == pytest.approx(0, abs=1e-6)
    none = metrics.residual_colour_variation(src, src, pairs)
    assert none == {"residual_colour_variation": 0.0, "residual_colour_variation_rel": 0.0}


def test_colour_variation_rejects_an_empty_centre():
    x = torch.zeros(2, 3, 8, 8)
    with pytest.raises(ValueError, match="centre"):
        metrics.residual_colour_variation(x, x, [(0, 1)], centre=0.0)
