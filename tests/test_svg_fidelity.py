"""Fidelity against independent SVG renderers: what the renderer draws is what resvg / cairosvg draw."""
from __future__ import annotations

import io

import numpy as np
import pytest
import resvg_py
import torch
from PIL import Image

from backends.svg import diffvg_adapter
from backends.svg.render import render
from backends.svg.painting import random_paths, stroke_shapes
from backends.svg.scene import Scene
from backends.svg.svgio import scene_to_svg, svg_to_scene
from tests.svg_corpus import CORPUS


def _png_to_tensor(png: bytes) -> torch.Tensor:
    return torch.from_numpy(np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(np.float32) / 255.0)


def _resvg(svg: str) -> torch.Tensor:
    return _png_to_tensor(bytes(resvg_py.svg_to_bytes(svg_string=svg, background="#ffffff")))


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(10 * torch.log10(1.0 / (a - b).pow(2).mean().clamp_min(1e-10)))


def _ours(svg: str) -> torch.Tensor:
    with torch.no_grad():
        return render(svg_to_scene(svg))


def test_corpus_matches_resvg_to_at_least_32_db_on_average():
    scores = {name: _psnr(_ours(svg), _resvg(svg)) for name, svg in CORPUS}
    mean = sum(scores.values()) / len(scores)
    print(f"\nmean PSNR vs resvg over {len(scores)} SVGs at 256x256: {mean:.2f} dB; worst "
          f"{min(scores, key=scores.get)} {min(scores.values()):.2f} dB")
    assert mean >= 32.0, scores
    assert min(scores.values()) >= 28.0, scores


def test_corpus_matches_cairosvg_too():
    cairosvg = _cairo()
    if cairosvg is None:
        pytest.skip("cairosvg cannot load libcairo here")
    scores = {}
    for name, svg in CORPUS:
        if name == "named_hex_short":     # cairosvg does not read 8-digit #rrggbbaa (CSS Color 4)
            continue
        ref = _png_to_tensor(cairosvg.svg2png(bytestring=svg.encode(), background_color="white"))
        scores[name] = _psnr(_ours(svg), ref)
    mean = sum(scores.values()) / len(scores)
    print(f"\nmean PSNR vs cairosvg: {mean:.2f} dB")
    assert mean >= 32.0, scores


def _cairo():
    try:
        import cairosvg
        cairosvg.svg2png(bytestring=b'<svg xmlns="http://www.w3.org/2000/svg" width="2" height="2"/>')
    except Exception:                 # libcairo missing
        return None
    return cairosvg


def test_the_downloaded_svg_looks_like_the_optimized_raster():
    g = torch.Generator().manual_seed(7)
    shapes = random_paths(40, 4, 256, 256, generator=g) + stroke_shapes(10, 3, 3.0, 256, 256, generator=g)
    shapes[3].fill_rule = "evenodd"
    scene = Scene(256, 256, shapes, background=torch.tensor([0.9, 0.95, 1.0]))
    with torch.no_grad():
        ours = render(scene)
    svg = scene_to_svg(scene)
    psnr = _psnr(ours, _resvg(svg))
    print(f"\noptimized raster vs resvg(exported SVG): {psnr:.2f} dB")
    # resvg anti-aliases strokes a little differently from exact area coverage: it and cairo differ by
    # ~37.6 dB on this scene, and this renderer is closer to cairo than resvg is.
    assert psnr >= 34.0
    cairosvg = _cairo()
    if cairosvg is not None:
        psnr_cairo = _psnr(ours, _png_to_tensor(cairosvg.svg2png(bytestring=svg.encode())))
        print(f"optimized raster vs cairosvg(exported SVG): {psnr_cairo:.2f} dB")
        assert psnr_cairo >= 38.0


@pytest.mark.skipif(not diffvg_adapter.available(), reason="pydiffvg is not installed (optional)")
def test_diffvg_renders_the_same_scene():
    g = torch.Generator().manual_seed(8)
    scene = Scene(128, 128, random_paths(16, 4, 128, 128, generator=g))
    assert _psnr(render(scene), diffvg_adapter.render_diffvg(scene, samples=4)) >= 30.0


@pytest.mark.skipif(diffvg_adapter.available(), reason="pydiffvg is installed")
def test_diffvg_adapter_says_clearly_when_pydiffvg_is_missing():
    with pytest.raises(RuntimeError, match="pydiffvg is not installed"):
        diffvg_adapter.render_diffvg(Scene(8, 8, []))
