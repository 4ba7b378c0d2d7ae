"""The batched renderer (the GPU method) against the reference, clipping of far-away geometry, the work estimate.

Tolerances: the two methods compute the same pieces and coverage and differ in the order of float sums and in
compositing: the batched compositor holds an opaque layer's 1 - alpha at 1e-6 in its log-transmittance, so
the gradients of what an opaque layer hides carry a 1e-6 factor (0 in the reference's loop). In float64,
images agree within 1e-9 (seen: 2e-12) and gradients within 1e-4 of their largest entry (seen: 2.2e-5, from
that factor; 1.5e-7 without opaque layers); in float32 images agree within 2e-6.
"""
from __future__ import annotations

import math
import time  # bounds below are process CPU seconds (work), not wall clock: a busy machine stretches only the latter

import pytest
import torch

from backends.svg.cost import estimate_work
from backends.svg.render import chord_counts, render, render_batch
from backends.svg.render import fill as render_fill
from backends.svg.render.batched import render_batched
from backends.svg.painting import circle_points, pixel_shapes, random_paths, stroke_shapes
from backends.svg.scene import Scene, Shape
from test_svg_render import mixed_shapes

IMG_TOL = 1e-9
GRAD_RTOL = 1e-4


def _poly(corners, dtype=torch.float64) -> torch.Tensor:
    c = torch.as_tensor(corners, dtype=dtype)
    b = torch.roll(c, -1, 0)
    return torch.stack([c, c + (b - c) / 3, c + (b - c) * 2 / 3], 1).reshape(-1, 2)


def _grad_scene(shapes: list[Shape], w: int, h: int, bg=(0.2, 0.9, 0.5)) -> tuple[Scene, list[torch.Tensor]]:
    """Make every parameter (and the background) a float64 leaf that requires grad."""
    params = []
    for s in shapes:
        for name in ("points", "fill", "stroke", "stroke_width"):
            setattr(s, name, getattr(s, name).detach().double().requires_grad_())
        params += [s.points, s.fill, s.stroke, s.stroke_width]
    background = torch.tensor(bg, dtype=torch.float64, requires_grad=True)
    params.append(background)
    return Scene(w, h, shapes, background=background), params


def _assert_methods_agree(scenes: list[Scene], params: list[torch.Tensor], **kw):
    g = torch.Generator().manual_seed(9)
    results = []
    for method in ("reference", "batched"):
        img = render_batch(scenes, method=method, **kw)
        weight = torch.rand(img.shape, generator=g.manual_seed(9), dtype=img.dtype)
        grads = torch.autograd.grad((img * weight).sum(), params, allow_unused=True)
        results.append((img, grads))
    (a, ga), (b, gb) = results
    assert a.shape == b.shape
    assert (a - b).abs().max() < IMG_TOL, (a - b).abs().max()
    for p, x, y in zip(params, ga, gb):
        if x is None or y is None:      # a parameter neither method differentiates (e.g. an unused stroke)
            assert x is None or x.abs().max() == 0
            assert y is None or y.abs().max() == 0
            continue
        assert (x - y).abs().max() <= GRAD_RTOL * (1 + x.abs().max()), (p.shape, (x - y).abs().max())
    return results


def test_batched_equals_reference_for_fills_strokes_squares_and_both_fill_rules():
    g = torch.Generator().manual_seed(4)
    shapes = mixed_shapes(6, g)
    donut = Shape("path", torch.cat([circle_points((20, 20), 12, 4), circle_points((22, 19), 5, 4).flip(0)]),
                  subpaths=(4, 4), fill=torch.tensor([0.8, 0.1, 0.5, 0.9]))
    star = [(24 + 14 * math.sin(4 * math.pi * i / 5), 20 - 14 * math.cos(4 * math.pi * i / 5)) for i in range(5)]
    stroked = Shape("path", _poly(star), fill=torch.tensor([0.1, 0.2, 0.9, 0.6]), fill_rule="evenodd",
                    stroke=torch.tensor([0.9, 0.9, 0.1, 1.0]), stroke_width=2.5)
    scene, params = _grad_scene(shapes + [donut, stroked], 48, 40)
    for background in (True, False):
        (img, grads), _ = _assert_methods_agree([scene], params, background=background)
    assert all(g is not None and g.abs().sum() > 0 for g in grads[:2])          # gradients reach the shapes


def test_batched_equals_reference_for_several_scenes_at_another_size_and_supersampled():
    g = torch.Generator().manual_seed(1)
    scenes, params = [], []
    for k in range(3):
        shapes = random_paths(4, 4, 32, 32, box=0.5, generator=g) + stroke_shapes(2, 2, 1.5, 32, 32, generator=g)
        sc, p = _grad_scene(shapes, 32, 32, bg=(0.1 * k, 0.5, 0.9))
        scenes.append(sc)
        params += p
    _assert_methods_agree(scenes, params, size=(40, 48))
    _assert_methods_agree(scenes, params, samples=2, background=False)


def test_batched_equals_reference_for_pixel_art():
    g = torch.Generator().manual_seed(2)
    shapes = pixel_shapes(6, 30, 30, generator=g)
    scene, params = _grad_scene(shapes, 30, 30)
    _assert_methods_agree([scene], params)
    _assert_methods_agree([scene], params, size=23)      # cells ending mid-pixel


def test_batched_skips_what_the_reference_skips():
    # a transparent fill that is not optimized and a path with a zero-width stroke draw nothing in either
    hidden = Shape("path", circle_points((10, 10), 6, 4), fill=torch.tensor([1.0, 0.0, 0.0, 0.0]))
    thin = Shape("path", circle_points((14, 12), 5, 4), fill=torch.tensor([0.0, 0.0, 1.0, 0.5]),
                 stroke=torch.tensor([0.0, 1.0, 0.0, 1.0]), stroke_width=0.0)
    scene = Scene(24, 24, [hidden, thin])
    ref, bat = render(scene, method="reference"), render(scene, method="batched")
    assert (ref - bat).abs().max() < 2e-6
    assert ref[12, 14, 1] == 0.5 and abs(bat[12, 14, 1].item() - 0.5) < 2e-6   # no green, no red


def test_batched_handles_empty_stroke_only_invisible_and_off_canvas_scenes_in_one_batch():
    g = torch.Generator().manual_seed(0)
    scenes = [Scene(20, 20, []), Scene(20, 20, stroke_shapes(3, 2, 2.0, 20, 20, generator=g)),
              Scene(20, 20, [Shape("path", circle_points((10, 10), 5, 4), fill=torch.tensor([1.0, 0, 0, 0]))]),
              Scene(20, 20, [Shape("path", circle_points((-50, 10), 5, 4))]),
              Scene(20, 20, pixel_shapes(2, 20, 20, generator=g))]
    for background in (True, False):
        a = render_batch(scenes, method="reference", background=background)
        b = render_batch(scenes, method="batched", background=background)
        assert (a - b).abs().max() < 2e-6
    assert (b[0] == 0).all() and (b[2] == 0).all() and (b[3] == 0).all()    # nothing drawn: transparent


def test_batched_refuses_non_finite_points_like_the_reference():
    bad = Scene(10, 10, [Shape("path", torch.tensor([[0.0, 0.0], [float("nan"), 1.0], [2.0, 2.0]]))])
    with pytest.raises(ValueError, match="non-finite"):
        render(bad, method="batched")


def test_batched_float32_matches_reference_on_a_benchmark_scene():
    g = torch.Generator().manual_seed(0)
    scene = Scene(120, 120, random_paths(40, 4, 120, 120, generator=g))
    a, b = render(scene, method="reference"), render(scene, method="batched")
    assert (a - b).abs().max() < 2e-6


def test_batched_makes_a_constant_number_of_host_reads_whatever_the_path_count():
    for with_strokes in (False, True):
        counts = []
        for n in (4, 32):
            g = torch.Generator().manual_seed(n)
            shapes = random_paths(n, 4, 64, 64, generator=g)
            if with_strokes:
                shapes += stroke_shapes(n, 2, 2.0, 64, 64, generator=g)
            scene = Scene(64, 64, shapes)
            canvas0 = torch.ones(1, 64, 64, 3)
            syncs = []
            render_batched([scene], canvas0, torch.float32, syncs)
            counts.append(len(syncs))
        assert counts[0] == counts[1] == (4 if with_strokes else 2), counts


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method"):
        render(Scene(8, 8, []), method="fast")


# ------------------------------------------------------------------------------------------------- clipping

def _clip_polygon(poly, x0, y0, x1, y1):
    """Sutherland-Hodgman, float64, for the hand-clipped reference shapes."""
    def clip(pts, inside, cross):
        out = []
        for i, p in enumerate(pts):
            q = pts[(i + 1) % len(pts)]
            if inside(p):
                out.append(p)
                if not inside(q):
                    out.append(cross(p, q))
            elif inside(q):
                out.append(cross(p, q))
        return out

    def at_x(x):
        return lambda p, q: (x, p[1] + (q[1] - p[1]) * (x - p[0]) / (q[0] - p[0]))

    def at_y(y):
        return lambda p, q: (p[0] + (q[0] - p[0]) * (y - p[1]) / (q[1] - p[1]), y)

    pts = list(poly)
    pts = clip(pts, lambda p: p[0] >= x0, at_x(x0))
    pts = clip(pts, lambda p: p[0] <= x1, at_x(x1))
    pts = clip(pts, lambda p: p[1] >= y0, at_y(y0))
    pts = clip(pts, lambda p: p[1] <= y1, at_y(y1))
    return pts


@pytest.mark.parametrize("method", ["reference", "batched"])
def test_a_far_away_vertex_renders_like_the_shape_clipped_by_hand(method):
    for far in [(5e4, 13.0), (-3e6, 20.0), (17.0, 1e7), (1e9, -1e9)]:
        tri = [(6.0, 4.5), far, (20.3, 27.7)]
        hand = _clip_polygon(tri, 0.0, 0.0, 32.0, 32.0)
        a = render(Scene(32, 32, [Shape("path", _poly(tri))]), method=method, background=False)[..., 3]
        b = render(Scene(32, 32, [Shape("path", _poly(hand))]), method=method, background=False)[..., 3]
        assert (a - b).abs().max() < 1e-6, (far, (a - b).abs().max())


@pytest.mark.parametrize("method", ["reference", "batched"])
def test_a_far_away_vertex_has_the_gradients_of_the_clipped_shape(method):
    # the near vertices' gradients do not depend on how far the clipped-away vertex is
    grads = []
    for far in (1e3, 1e8):
        pts = _poly([(6.0, 4.5), (far, 13.0), (20.3, 27.7)]).requires_grad_()
        img = render(Scene(32, 32, [Shape("path", pts)], background=torch.zeros(3, dtype=torch.float64)),
                     method=method)
        (img * torch.linspace(0, 1, 32, dtype=torch.float64)[:, None, None]).sum().backward()
        grads.append(pts.grad[0])
    assert torch.allclose(grads[0], grads[1], atol=1e-9)


@pytest.mark.parametrize("method", ["reference", "batched"])
def test_huge_coordinates_cost_nothing(method):
    # <path d="M0 0 L3e6 5 L5 3e6Z"/> took 3.56 GB (and 1e10 an 80 GB allocation) before clipping
    for far in (3e6, 1e10):
        pts = _poly([(0.0, 0.0), (far, 5.0), (5.0, far)], dtype=torch.float32).requires_grad_()
        saved = []

        def pack(t):
            saved.append(t.numel() * t.element_size())
            return t

        t0 = time.process_time()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            img = render(Scene(64, 64, [Shape("path", pts)]), method=method)
        img.sum().backward()
        assert time.process_time() - t0 < 1.0
        assert sum(saved) < 16e6, sum(saved)
        assert img.max() < 1e-3                  # all black except a sliver along the top edge


@pytest.mark.parametrize("method", ["reference", "batched"])
def test_a_stroke_through_a_far_away_point_renders_like_its_near_part(method):
    # a straight centre line from (5, 5) to (1e10, 8), and the same line ending at x = 60 (its cap out of reach)
    a, b = torch.tensor([5.0, 5.0]), torch.tensor([1e10, 8.0])
    far = Shape("stroke", torch.stack([a, a + (b - a) / 3, a + (b - a) * 2 / 3, b]), stroke_width=3.0)
    u = (60.0 - 5.0) / (1e10 - 5.0)
    c = a + u * (b - a)
    near = Shape("stroke", torch.stack([a, a + (c - a) / 3, a + (c - a) * 2 / 3, c]), stroke_width=3.0)
    t0 = time.process_time()
    x = render(Scene(40, 24, [far]), method=method, background=False)[..., 3]
    assert time.process_time() - t0 < 1.0
    y = render(Scene(40, 24, [near]), method=method, background=False)[..., 3]
    assert x.sum() > 30 * 3
    assert (x - y).abs().max() < 1e-5


# ---------------------------------------------------------------------------------------------- estimate

def test_estimate_work_counts_the_renderers_chords_and_bounds_its_pieces():
    g = torch.Generator().manual_seed(3)
    scene = Scene(80, 80, random_paths(12, 4, 80, 80, box=0.5, generator=g))
    est = estimate_work([scene])
    assert est["pixels"] == 6400 and est["layers"] == 12
    cub = torch.cat([s.cubics() for s in scene.shapes])
    assert est["chords"] == int(chord_counts(cub).sum())
    # the real piece count: 3 per sub-line of the reference's fill coverage
    calls = []
    orig = render_fill.split_lines

    def spy(a, b, counts, total=None):
        calls.append(int(counts.sum()))
        return orig(a, b, counts, total)

    render_fill.split_lines = spy
    try:
        render(scene, method="reference")
    finally:
        render_fill.split_lines = orig
    assert 3 * calls[0] <= est["pieces"] < 40 * 3 * calls[0]


def test_estimate_work_sees_a_huge_output_or_many_subpaths_without_rendering():
    sq = Shape("square", torch.tensor([[0.0, 0.0], [10.0, 10.0]]))
    t0 = time.process_time()
    big = estimate_work([Scene(16, 16, [sq])], size=16384)
    assert big["pixels"] == 16384 * 16384 and big["bytes"] > 16384 * 16384 * 4
    many = Shape("path", torch.cat([_poly([(0, 0), (64, 0), (64, 64), (0, 64)], torch.float32)] * 20000),
                 subpaths=(4,) * 20000)
    est = estimate_work([Scene(64, 64, [many])])
    assert time.process_time() - t0 < 2.0
    assert est["chords"] == 80000 and est["pieces"] >= 3 * 80000 * 64
