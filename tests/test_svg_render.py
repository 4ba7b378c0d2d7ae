"""The differentiable vector renderer: exact coverage, compositing, fill rules, gradients, bounded memory."""
from __future__ import annotations

import math

import pytest
import torch

from backends.svg.render import render, render_batch
from backends.svg.painting import circle_points, pixel_shapes, random_paths, stroke_shapes
from backends.svg.scene import Scene, Shape


def _poly(corners, dtype=torch.float32) -> torch.Tensor:
    """Closed polygon corners -> (S*3, 2) straight cubic control points."""
    c = torch.as_tensor(corners, dtype=dtype)
    b = torch.roll(c, -1, 0)
    return torch.stack([c, c + (b - c) / 3, c + (b - c) * 2 / 3], 1).reshape(-1, 2)


def _alpha(scene: Scene) -> torch.Tensor:
    return render(scene, background=False)[..., 3]


def test_square_coverage_is_the_exact_pixel_area():
    sq = Shape("square", torch.tensor([[2.5, 2.25], [7.5, 7.0]]))
    a = _alpha(Scene(10, 10, [sq]))
    assert torch.allclose(a[2, 2], torch.tensor(0.5 * 0.75))
    assert torch.allclose(a[2, 4], torch.tensor(0.75))
    assert torch.allclose(a[4, 2], torch.tensor(0.5))
    assert torch.allclose(a[4, 4], torch.tensor(1.0))
    assert a[7:, :].abs().max() == 0 and a[:2].abs().max() == 0
    assert torch.allclose(a.sum(), torch.tensor(5.0 * 4.75))


def test_coverage_is_area_exact_for_a_diagonal_edge_at_one_sample():
    tri = Shape("path", _poly([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]]))
    a = _alpha(Scene(8, 8, [tri]))
    # the hypotenuse cuts every diagonal pixel exactly in half
    assert torch.allclose(torch.diagonal(a.flip(1)), torch.full((8,), 0.5), atol=1e-6)
    assert torch.allclose(a.sum(), torch.tensor(32.0), atol=1e-4)


def test_circle_area_is_pi_r_squared_wherever_it_sits_on_the_grid():
    for cx, cy in [(10.0, 10.0), (10.3, 9.71), (11.5, 10.5)]:
        a = _alpha(Scene(24, 24, [Shape("path", circle_points((cx, cy), 6.0, 4))]))
        assert abs(a.sum().item() - math.pi * 36) < 0.01 * math.pi * 36


def test_shapes_partly_outside_the_canvas_are_clipped_not_distorted():
    inside = _alpha(Scene(40, 40, [Shape("path", circle_points((20.0, 20.0), 10.0, 4))]))
    left = _alpha(Scene(40, 40, [Shape("path", circle_points((3.0, 20.0), 10.0, 4))]))
    assert torch.allclose(left[:, :13], inside[:, 17:30], atol=1e-5)
    top = _alpha(Scene(40, 40, [Shape("path", circle_points((20.0, -4.0), 10.0, 4))]))
    assert torch.allclose(top[:6], inside[24:30], atol=1e-5)
    assert _alpha(Scene(40, 40, [Shape("path", circle_points((-30.0, 20.0), 10.0, 4))])).sum() == 0


def test_evenodd_leaves_the_overlap_of_a_star_empty_and_nonzero_fills_it():
    pts = [(16 + 14 * math.sin(4 * math.pi * i / 5), 16 - 14 * math.cos(4 * math.pi * i / 5)) for i in range(5)]
    nz = _alpha(Scene(32, 32, [Shape("path", _poly(pts), fill_rule="nonzero")]))
    eo = _alpha(Scene(32, 32, [Shape("path", _poly(pts), fill_rule="evenodd")]))
    assert nz[17, 16] == 1.0 and eo[17, 16] == 0.0          # the pentagon in the middle
    assert nz[9, 16] == 1.0 and eo[9, 16] == 1.0             # a point of the star
    donut = Shape("path", torch.cat([circle_points((16, 16), 12, 4), circle_points((16, 16), 5, 4)]), subpaths=(4, 4))
    assert _alpha(Scene(32, 32, [donut]))[16, 16] == 1.0      # same direction: nonzero fills the hole
    donut.fill_rule = "evenodd"
    assert _alpha(Scene(32, 32, [donut]))[16, 16] == 0.0


def test_painters_order_puts_the_last_shape_on_top_with_over_compositing():
    red = Shape("square", torch.tensor([[0.0, 0.0], [6.0, 6.0]]), fill=torch.tensor([1.0, 0.0, 0.0, 1.0]))
    blue = Shape("square", torch.tensor([[3.0, 3.0], [8.0, 8.0]]), fill=torch.tensor([0.0, 0.0, 1.0, 0.5]))
    img = render(Scene(8, 8, [red, blue], background=torch.tensor([0.0, 1.0, 0.0])))
    assert torch.allclose(img[4, 4], torch.tensor([0.5, 0.0, 0.5]))          # blue at 50% over red
    assert torch.allclose(img[7, 7], torch.tensor([0.0, 0.5, 0.5]))          # blue at 50% over green
    img = render(Scene(8, 8, [blue, red], background=torch.tensor([0.0, 1.0, 0.0])))
    assert torch.allclose(img[4, 4], torch.tensor([1.0, 0.0, 0.0]))          # opaque red on top


def test_transparent_render_composites_back_to_the_background_render():
    g = torch.Generator().manual_seed(3)
    scene = Scene(40, 30, random_paths(6, 4, 40, 30, box=0.5, generator=g), background=torch.tensor([0.2, 0.5, 0.9]))
    rgba = render(scene, background=False)
    rgb = render(scene)
    bg = scene.background[:3]
    assert torch.allclose(rgba[..., :3] * rgba[..., 3:] + bg * (1 - rgba[..., 3:]), rgb, atol=1e-5)


def test_strokes_have_round_caps_and_the_right_area():
    line = Shape("stroke", torch.tensor([[10.0, 20.0], [15.0, 20.0], [25.0, 20.0], [30.0, 20.0]]), stroke_width=4.0)
    a = _alpha(Scene(40, 40, [line]))
    assert abs(a.sum().item() - (20 * 4 + math.pi * 4)) < 0.5
    assert a[20, 20] == 1.0 and a[20, 8] > 0.0 and a[20, 7] == 0.0       # the cap reaches x = 8
    thin = Shape("stroke", line.points, stroke_width=0.5)
    assert abs(_alpha(Scene(40, 40, [thin])).sum().item() - 20 * 0.5) < 1.0


def test_supersampling_agrees_with_area_coverage():
    g = torch.Generator().manual_seed(0)
    scene = Scene(48, 48, random_paths(8, 4, 48, 48, box=0.5, generator=g))
    one = render(scene)
    four = render(scene, samples=4)
    assert (one - four).abs().mean() < 0.01


def test_size_scales_the_scene_and_batches_match_single_renders():
    g = torch.Generator().manual_seed(1)
    a = Scene(32, 32, random_paths(5, 4, 32, 32, generator=g) + stroke_shapes(2, 2, 1.5, 32, 32, generator=g))
    b = Scene(32, 32, random_paths(5, 4, 32, 32, generator=g), background=torch.tensor([0.1, 0.1, 0.1]))
    batch = render_batch([a, b], size=(64, 64))
    assert batch.shape == (2, 64, 64, 3)
    assert torch.allclose(batch[0], render(a, size=64), atol=1e-6)
    assert torch.allclose(batch[1], render(b, size=(64, 64)), atol=1e-6)
    small, big = render(a), render(a, size=64)
    down = torch.nn.functional.avg_pool2d(big.permute(2, 0, 1)[None], 2)[0].permute(1, 2, 0)
    assert (small - down).abs().mean() < 0.01


def test_pixel_grid_on_whole_pixels_tiles_the_canvas_without_seams():
    # (cells ending mid-pixel show the background through their shared pixels, as in every area-coverage
    # renderer, resvg and cairo included: each cell covers half the pixel, composited one after the other)
    shapes = pixel_shapes(4, 32, 32)
    for s in shapes:
        s.fill = torch.tensor([0.2, 0.4, 0.6, 1.0])
    img = render(Scene(32, 32, shapes, background=torch.tensor([1.0, 0.0, 0.0])))
    assert torch.allclose(img, torch.tensor([0.2, 0.4, 0.6]).expand(32, 32, 3), atol=1e-5)


# ----------------------------------------------------------------------------------------------- gradients

def _fd_check(loss_fn, tensors, eps, rtol):
    """Compare autograd with central finite differences for every entry of every tensor."""
    for t in tensors:
        t.grad = None
    loss_fn().backward()
    for t in tensors:
        analytic = t.grad.reshape(-1).clone()
        numeric = torch.zeros_like(analytic)
        flat = t.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = loss_fn().item()
            flat[i] = old - eps
            down = loss_fn().item()
            flat[i] = old
            numeric[i] = (up - down) / (2 * eps)
        err = (analytic - numeric).norm() / numeric.norm().clamp_min(1e-12)
        assert err < rtol, (t.shape, err.item(), analytic[:6].tolist(), numeric[:6].tolist())


def _small_scene(dtype):
    g = torch.Generator().manual_seed(0)
    pts = (circle_points((8, 7), 5, 3).to(dtype) + torch.randn(9, 2, generator=g, dtype=dtype) * 0.7).requires_grad_()
    fill = torch.tensor([0.9, 0.2, 0.1, 0.7], dtype=dtype, requires_grad=True)
    spts = torch.tensor([[2.0, 3], [6, 14], [10, 1], [14.3, 12]], dtype=dtype, requires_grad=True)
    scol = torch.tensor([0.1, 0.8, 0.3, 0.8], dtype=dtype, requires_grad=True)
    width = torch.tensor(2.3, dtype=dtype, requires_grad=True)
    shapes = [Shape("path", pts, fill=fill, fill_rule="evenodd"),
              Shape("stroke", spts, stroke=scol, stroke_width=width)]
    scene = Scene(16, 16, shapes, background=torch.tensor([0.2, 0.3, 0.9], dtype=dtype))
    weight = torch.rand(16, 16, 3, generator=g, dtype=dtype)
    return scene, (pts, fill, spts, scol, width), lambda: (render(scene) * weight).sum()


def test_gradients_match_finite_differences_for_points_colors_and_stroke_width():
    _, (pts, fill, spts, scol, width), loss = _small_scene(torch.float64)
    _fd_check(loss, [pts, fill, scol, width], eps=1e-5, rtol=1e-3)
    _fd_check(loss, [spts], eps=1e-5, rtol=2e-3)


def test_float32_gradients_agree_with_finite_differences():
    _, (pts, fill, spts, scol, width), loss = _small_scene(torch.float32)
    _fd_check(loss, [pts, fill, scol], eps=1e-2, rtol=0.01)
    _fd_check(loss, [spts, width], eps=3e-3, rtol=0.1)


def test_moving_an_edge_changes_the_loss_through_boundary_gradients():
    # A flat-colored square whose interior matches the target: only its edges can move the loss.
    x0 = torch.tensor(10.3, requires_grad=True)
    target = torch.zeros(32, 32, 3)
    target[8:24, 8:24] = 1.0
    sq = Shape("path", _poly_from_box(x0, 8.0, 24.0, 24.0), fill=torch.tensor([1.0, 1.0, 1.0, 1.0]))
    img = render(Scene(32, 32, [sq], background=torch.zeros(3)))
    loss = (img - target).pow(2).sum()
    loss.backward()
    # moving the left edge to the left (towards 8) reduces the loss: 16 rows x 3 channels x 2 * (1 - cov)
    assert x0.grad > 0
    assert abs(x0.grad.item() - 16 * 3 * 2 * 0.3) < 0.05


def _poly_from_box(x0, y0, x1, y1):
    x1, y0, y1 = (torch.as_tensor(v, dtype=torch.float32) for v in (x1, y0, y1))
    corners = torch.stack([torch.stack([x0, y0]), torch.stack([x1, y0]), torch.stack([x1, y1]), torch.stack([x0, y1])])
    b = torch.roll(corners, -1, 0)
    return torch.stack([corners, corners + (b - corners) / 3, corners + (b - corners) * 2 / 3], 1).reshape(-1, 2)


def test_gradients_reach_every_parameter_of_a_batch_of_scenes():
    g = torch.Generator().manual_seed(5)
    scenes = []
    for _ in range(2):
        shapes = random_paths(3, 4, 40, 40, box=0.5, generator=g) + stroke_shapes(2, 2, 2.0, 40, 40, generator=g)
        for s in shapes:
            s.points.requires_grad_()
            (s.fill if s.kind == "path" else s.stroke).requires_grad_()
            if s.kind == "stroke":
                s.stroke_width.requires_grad_()
        scenes.append(Scene(40, 40, shapes))
    render_batch(scenes).mean().backward()
    for sc in scenes:
        for s in sc.shapes:
            assert s.points.grad is not None and s.points.grad.abs().sum() > 0
            if s.kind == "stroke":
                assert s.stroke_width.grad is not None and s.stroke_width.grad != 0


def test_autograd_memory_scales_with_bounding_boxes_not_pixels_times_paths():
    g = torch.Generator().manual_seed(0)
    n, size = 64, 300
    shapes = random_paths(n, 4, size, size, generator=g)
    for s in shapes:
        s.points.requires_grad_()
    saved = []

    def pack(t):
        saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        img = render(Scene(size, size, shapes))
    img.sum().backward()
    bbox_area = n * (size / 4 + 2) ** 2
    # pixels x paths alone would be 64 * 90000 * 4 bytes = 23 MB per float tensor
    assert max(saved) < 4 * 8 * bbox_area
    assert sum(saved) < 40 * 8 * bbox_area


def mixed_shapes(paths: int, generator: torch.Generator) -> list[Shape]:
    """`paths` filled paths, 3 strokes and 3 squares on a 48 x 40 canvas; one opaque fill and one evenodd path."""
    shapes = (random_paths(paths, 4, 48, 40, box=0.5, generator=generator)
              + stroke_shapes(3, 3, 3.0, 48, 40, generator=generator)
              + pixel_shapes(3, 48, 40, generator=generator)[:3])
    shapes[1].fill = torch.tensor([0.3, 0.6, 0.2, 1.0])
    shapes[2].fill_rule = "evenodd"
    return shapes


def test_sorted_and_loop_compositing_agree_in_values_and_gradients():
    g = torch.Generator().manual_seed(4)
    shapes = mixed_shapes(8, g)
    params = []
    for s in shapes:
        for name in ("points", "fill", "stroke", "stroke_width"):
            setattr(s, name, getattr(s, name).double().requires_grad_())
        params += [s.points, s.fill, s.stroke, s.stroke_width]
    weight = torch.rand(40, 48, 4, generator=g, dtype=torch.float64)
    for background in (True, False):
        scene = Scene(48, 40, shapes, background=torch.tensor([0.2, 0.9, 0.5], dtype=torch.float64))
        results = []
        for mode in ("loop", "sorted"):
            img = render(scene, composite=mode, background=background)
            grads = torch.autograd.grad((img * weight[..., :img.shape[-1]]).sum(), params, allow_unused=True)
            results.append((img, grads))
        (a, ga), (b, gb) = results
        assert (a - b).abs().max() < 1e-5
        for x, y in zip(ga, gb):
            if x is not None:
                assert (x - y).abs().max() <= 1e-4 * (1 + x.abs().max())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run `python -m benchmarks.gpu_check`")
def test_cuda_renders_what_the_cpu_renders():
    g = torch.Generator().manual_seed(2)
    scene = Scene(64, 64, random_paths(10, 4, 64, 64, generator=g) + stroke_shapes(3, 2, 2.0, 64, 64, generator=g))
    cpu = render(scene)
    gpu = render(scene.to("cuda")).cpu()
    assert (cpu - gpu).abs().max() < 1e-4


def test_backward_accepts_a_strided_gradient_from_a_later_permute():
    from backends.svg.render import render_batch
    from backends.svg.painting import circle_shapes
    from backends.svg.scene import Scene

    g = torch.Generator().manual_seed(0)
    scenes = []
    for _ in range(2):
        shapes = circle_shapes(3, 4, 6.0, 32, 32, generator=g)
        for sh in shapes:
            sh.points.requires_grad_(True)
        scenes.append(Scene(32, 32, shapes, torch.ones(3)))
    out = render_batch(scenes).permute(0, 3, 1, 2)  # (K, C, H, W): its gradient comes back strided
    (out * torch.linspace(0, 1, 32)).sum().backward()
    assert all(sh.points.grad is not None and torch.isfinite(sh.points.grad).all() for s in scenes for sh in s.shapes)


def test_sorted_compositing_hides_what_an_opaque_layer_covers_exactly():
    # the log-transmittance holds an opaque layer's 1 - alpha at 1e-6; its count of opaque layers puts the
    # hidden transmittance back to 0, so nothing leaks through (and the background gets no gradient there)
    bg = torch.tensor([1.0, 1.0, 1.0], requires_grad=True)
    red = Shape("square", torch.tensor([[0.0, 0.0], [4.0, 4.0]]), fill=torch.tensor([1.0, 0.0, 0.0, 1.0]))
    img = render(Scene(4, 4, [red], background=bg), composite="sorted")
    assert (img - torch.tensor([1.0, 0.0, 0.0])).abs().max() == 0
    img.sum().backward()
    assert bg.grad.abs().max() == 0
