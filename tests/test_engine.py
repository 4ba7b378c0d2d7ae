"""The engine's formulas and loop, proved on small tensors and the analytic prior."""
import math
import time

import pytest
import torch

from backends import engine
from backends.priors import AnalyticPrior
from backends.core.errors import RunError


def test_sds_gradient_is_weighted_residual():
    g = torch.Generator().manual_seed(0)
    eps_hat, eps = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    w = torch.tensor([0.1, 0.5, 0.9])
    out = engine.sds_grad(eps_hat, eps, w)
    for i in range(3):
        assert torch.allclose(out[i], w[i] * (eps_hat[i] - eps[i]))


def test_mse_target_loss_backpropagates_exactly_the_given_gradient():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(2, 4, 8, 8, generator=g, requires_grad=True)
    grad = torch.randn(2, 4, 8, 8, generator=g)
    engine.grad_to_loss(z, grad).backward()
    assert torch.allclose(z.grad, grad, atol=1e-6)
    z.grad = None
    engine.grad_to_loss(z, grad, reduction="batch").backward()
    assert torch.allclose(z.grad, grad / 2, atol=1e-6)


def test_sds_never_differentiates_the_denoiser():
    # the loss's graph reaches z only: a denoiser output that requires grad must not receive any
    z = torch.zeros(1, 4, 4, 4, requires_grad=True)
    eps_hat = torch.ones(1, 4, 4, 4, requires_grad=True)
    engine.grad_to_loss(z, engine.sds_grad(eps_hat, torch.zeros_like(z), 1.0)).backward()
    assert eps_hat.grad is None


def test_csd_with_one_particle_equals_sds():
    g = torch.Generator().manual_seed(2)
    z_t, eps_hat, eps = (torch.randn(1, 4, 8, 8, generator=g) for _ in range(3))
    w = torch.tensor([0.7])
    assert torch.equal(engine.csd_grad(z_t, eps_hat, eps, w), engine.sds_grad(eps_hat, eps, w))


def test_csd_with_every_cell_corresponding_to_itself_is_the_plain_csd_sum():
    g = torch.Generator().manual_seed(5)
    z_t, eps_hat, eps = (torch.randn(4, 3, 6, 5, generator=g) for _ in range(3))
    w = torch.tensor([0.2, 0.4, 0.6, 0.8])
    itself = engine.Correspondence(torch.arange(30).repeat(4, 4, 1), torch.ones(4, 4, 30, dtype=torch.bool))
    assert torch.allclose(engine.csd_grad(z_t, eps_hat, eps, w, correspondence=itself),
                          engine.csd_grad(z_t, eps_hat, eps, w), atol=1e-6)
    half = itself.mix(torch.ones(4, 4), eps_hat.half())  # the product runs in float32, the scores keep their dtype
    assert half.dtype == torch.float16 and torch.allclose(half.float(), eps_hat.sum(0).expand_as(eps_hat), atol=1e-2)


def test_csd_shares_each_score_at_the_cell_that_shows_the_same_thing():
    # two particles of 1x4 cells; particle 1 shows particle 0's cells shifted right by one (its cell 0 shows
    # nothing particle 0 has). With a kernel of ones and no repulsion, particle 0's cell p takes the mean of its own
    # score and particle 1's at p + 1; particle 1's cell 0 has only its own score, at the full weight of two
    index = torch.tensor([[[0, 1, 2, 3], [0, 0, 1, 2]], [[1, 2, 3, 0], [0, 1, 2, 3]]])
    valid = torch.tensor([[[True] * 4, [False, True, True, True]], [[True, True, True, False], [True] * 4]])
    shift = engine.Correspondence(index, valid)  # index[j, i, p]: particle j's cell showing particle i's cell p
    scores = torch.tensor([[1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 40.0]]).view(2, 1, 1, 4)
    mixed = shift.mix(torch.ones(2, 2), scores)
    assert mixed.view(2, 4).tolist() == [[1 + 20, 2 + 30, 3 + 40, 2 * 4], [2 * 10, 20 + 1, 30 + 2, 40 + 3]]
    mixed_at_the_same_place = torch.einsum("ji,j...->i...", torch.ones(2, 2), scores)
    assert mixed_at_the_same_place.view(2, 4)[0].tolist() == [11, 22, 33, 44]  # what the plain sum mixes instead
    with pytest.raises(ValueError, match="itself"):
        engine.Correspondence(index, ~valid)


def test_the_one_step_noises_once_and_compares_the_prediction_with_its_baseline():
    # what the denoiser sees is z noised by the given eps at t; SDS is w(t) (eps_hat - baseline) whatever the
    # baseline (the noise itself for text SDS, the source's prediction for CSD-Edit); the step never needs grad
    g = torch.Generator().manual_seed(3)
    z = torch.randn(3, 4, 8, 8, generator=g, requires_grad=True)
    eps, base = torch.randn(3, 4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    ab = torch.linspace(0.99, 0.01, 1000)
    t = torch.tensor([10, 500, 900])
    seen = {}

    def predict(z_t, tt, noise):
        seen.update(z_t=z_t, t=tt, eps=noise, grad_enabled=torch.is_grad_enabled())
        return 2.0 * z_t, base

    step = engine.distillation_grad(predict, z, t, eps, ab)
    assert torch.equal(seen["z_t"], engine.add_noise(z.detach(), eps, ab[t])) and seen["eps"] is eps
    assert not seen["grad_enabled"] and not step.grad.requires_grad
    assert torch.allclose(step.grad, engine.sds_grad(2.0 * seen["z_t"], base, engine.weighting(ab[t])))
    csd = engine.distillation_grad(predict, z, t, eps, ab, objective="csd", repulsion=0.5)
    assert torch.allclose(csd.grad, engine.csd_grad(seen["z_t"], 2.0 * seen["z_t"], base, engine.weighting(ab[t]),
                                                    repulsion=0.5))
    with pytest.raises(ValueError, match="objective"):
        engine.distillation_grad(predict, z, t, eps, ab, objective="vsd")


def test_the_text_step_draws_its_noise_from_the_generator_and_returns_a_loss_with_that_gradient():
    prior = AnalyticPrior(torch.zeros(1, 4, 8, 8))
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4), requires_grad=True)
    t = torch.tensor([300, 700])
    cond = prior.condition(["x", "x"])
    loss, grad = engine.distillation_loss(prior, z, cond, t, generator=torch.Generator().manual_seed(5))
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(5))
    z_t = engine.add_noise(z.detach(), eps, prior.alphas_cumprod[t])
    expected = engine.sds_grad(prior.predict_eps(z_t, t, cond), eps, engine.weighting(prior.alphas_cumprod[t]))
    assert torch.allclose(grad, expected)
    loss.backward()
    assert torch.allclose(z.grad, grad, atol=1e-6)


def test_median_bandwidth_matches_hand_computation():
    x = torch.tensor([[0.0], [1.0], [3.0]])  # distances 1, 3, 2 -> median 2
    h = engine.median_bandwidth(engine.pairwise_sq_dists(x))
    assert math.isclose(float(h), 2.0**2 / math.log(3), rel_tol=1e-6)


def test_two_particle_kernel_is_finite():
    x = torch.randn(2, 4, 8, 8)
    k, grad_k, h = engine.svgd_kernel(x)
    assert torch.isfinite(k).all() and torch.isfinite(grad_k).all() and float(h) > 0
    assert math.isclose(float(k[0, 1]), math.exp(-math.log(2)), rel_tol=1e-5)  # d^2 / h = log N exactly


def test_kernel_gradient_matches_autograd():
    x = torch.randn(4, 3, dtype=torch.float64)
    h = 1.7
    _, grad_k, _ = engine.svgd_kernel(x, bandwidth=h)
    for i in range(4):
        xs = x.clone().requires_grad_(True)
        total = sum(torch.exp(-(xs[j] - xs[i].detach()).pow(2).sum() / h) for j in range(4))
        (g,) = torch.autograd.grad(total, xs)
        # g[j] = d k(x_j, x_i) / d x_j (x_i held fixed); grad_k[i] is their sum over j
        assert torch.allclose(grad_k[i], g.sum(0), atol=1e-10)


def test_csd_kernel_term_pushes_nearby_particles_apart():
    # one-mode prior, two particles close together on the same side: after one step CSD leaves them
    # further apart than SDS does with the same t and noise
    prior = AnalyticPrior(torch.zeros(1, 1, 4, 4))
    z = torch.stack([torch.full((1, 4, 4), 0.50), torch.full((1, 4, 4), 0.52)])
    t = torch.tensor([300, 300])
    eps = torch.randn(z.shape, generator=torch.Generator().manual_seed(3))
    ab = prior.alphas_cumprod[t]
    z_t = engine.add_noise(z, eps, ab)
    eps_hat = prior.predict_eps(z_t, t)
    w = engine.weighting(ab)
    after_sds = z - 0.1 * engine.sds_grad(eps_hat, eps, w)
    after_csd = z - 0.1 * engine.csd_grad(z_t, eps_hat, eps, w)
    no_repulsion = z - 0.1 * engine.csd_grad(z_t, eps_hat, eps, w, repulsion=0.0)
    gap = lambda zz: float((zz[0] - zz[1]).norm())
    assert gap(after_csd) > gap(after_sds)
    assert gap(after_csd) > gap(no_repulsion)


def test_cfg_scale_one_is_the_conditional_prediction_not_scale_plus_one():
    u, c = torch.randn(2, 4, 4, 4), torch.randn(2, 4, 4, 4)
    assert torch.allclose(engine.cfg(u, c, 1.0), c, atol=1e-6)
    assert torch.allclose(engine.cfg(u, c, 0.0), u, atol=1e-6)
    assert not torch.allclose(engine.cfg(u, c, 2.0), c + 2.0 * (c - u), atol=1e-3)
    assert torch.allclose(engine.cfg(u, c, 7.5), u + 7.5 * (c - u))


def test_ip2p_guidance_reduces_to_its_terms():
    u, i, f = (torch.randn(1, 4, 4, 4) for _ in range(3))
    assert torch.allclose(engine.ip2p_guidance(u, i, f, 1.0, 1.0), f, atol=1e-6)
    assert torch.allclose(engine.ip2p_guidance(u, i, f, 0.0, 1.0), i, atol=1e-6)
    assert torch.allclose(engine.ip2p_guidance(u, i, f, 0.0, 0.0), u)


def test_weightings():
    ab = torch.tensor([0.04, 0.25, 0.81])
    assert torch.allclose(engine.weighting(ab, "sds"), 1 - ab)
    assert torch.allclose(engine.weighting(ab, "uniform"), torch.ones(3))
    assert torch.allclose(engine.weighting(ab, "fantasia3d"), ab.sqrt() * (1 - ab))
    with pytest.raises(ValueError):
        engine.weighting(ab, "nope")


def test_timesteps_stay_in_range_and_anneal_downwards():
    g = torch.Generator().manual_seed(0)
    t = engine.sample_timesteps(10000, 50, 950, generator=g)
    assert int(t.min()) == 50 and int(t.max()) == 950
    late = engine.sample_timesteps(1000, 50, 950, step=99, total_steps=100, anneal="linear", generator=g)
    assert int(late.max()) <= 50
    mid = engine.sample_timesteps(1000, 50, 950, step=50, total_steps=101, anneal="linear", generator=g)
    assert int(mid.max()) <= 500


def _reconstruct(sigma: float, steps: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(1, 3, 64, 64, generator=g)
    prior = AnalyticPrior(target * 2.0 - 1.0, sigma=sigma)  # one mode on the target
    x = torch.full_like(target, 0.5).requires_grad_(True)
    opt = torch.optim.Adam([x], lr=0.05)
    ab = prior.alphas_cumprod

    def step(i):
        z = prior.encode(x)
        t = engine.sample_timesteps(1, 20, 980, generator=g)
        eps = torch.randn(z.shape, generator=g)
        z_t = engine.add_noise(z.detach(), eps, ab[t])
        return engine.grad_to_loss(z, engine.sds_grad(prior.predict_eps(z_t, t), eps, engine.weighting(ab[t])))

    sched = lambda i: engine.warmup_cosine(i, warmup=0, total=steps, start=1, peak=1, end=0.01)
    for _ in engine.distill(step, opt, steps=steps, every=steps, lr_schedule=sched):
        pass
    mse = (x.detach().clamp(0, 1) - target).pow(2).mean()
    return float(10 * torch.log10(1 / mse))


def test_sds_with_analytic_prior_reconstructs_target_above_30db():
    assert _reconstruct(sigma=0.05, steps=400) >= 30.0


def test_csd_spreads_particles_over_both_modes_where_sds_collapses():
    m, shape, n = 0.5, (1, 2, 2), 8
    prior = AnalyticPrior(torch.stack([torch.full(shape, m), torch.full(shape, -m)]), sigma=0.1)

    def run(mode: str):
        g = torch.Generator().manual_seed(0)
        # all particles start on mode A's side: plain SDS sends every one of them there
        z = (0.1 + 0.05 * torch.randn((n,) + shape, generator=g)).requires_grad_(True)
        opt = torch.optim.SGD([z], lr=0.05)
        ab = prior.alphas_cumprod

        def step(i):
            t = engine.sample_timesteps(1, 20, 300, generator=g).expand(n)
            eps = torch.randn(z.shape, generator=g)
            z_t = engine.add_noise(z.detach(), eps, ab[t])
            eps_hat, w = prior.predict_eps(z_t, t), engine.weighting(ab[t])
            grad = engine.csd_grad(z_t, eps_hat, eps, w, repulsion=3.0) if mode == "csd" else engine.sds_grad(eps_hat, eps, w)
            return engine.grad_to_loss(z, grad)

        for _ in engine.distill(step, opt, steps=600, every=600):
            pass
        means = z.detach().mean(dim=(1, 2, 3))
        return int((means > m / 2).sum()), int((means < -m / 2).sum())

    sds_a, sds_b = run("sds")
    csd_a, csd_b = run("csd")
    assert (sds_a, sds_b) == (n, 0)
    assert csd_a >= 2 and csd_b >= 2


def _quadratic_problem():
    p = torch.nn.Parameter(torch.tensor([3.0, -2.0]))
    opt = torch.optim.SGD([p], lr=0.1)
    return p, opt


def test_distill_stops_when_the_consumer_stops():
    p, opt = _quadratic_problem()
    calls = []

    def step(i):
        calls.append(i)
        return (p**2).sum()

    gen = engine.distill(step, opt, steps=1000, every=5)
    for progress in gen:
        if progress.step >= 10:
            break
    gen.close()
    assert len(calls) == 10


def test_distill_skips_nonfinite_steps_and_counts_them():
    p, opt = _quadratic_problem()

    def step(i):
        loss = (p**2).sum()
        return loss * float("nan") if i in (2, 3) else loss

    reports = list(engine.distill(step, opt, steps=10, every=10))
    assert reports[-1].metrics["bad_steps"] == 2
    assert torch.isfinite(p).all() and float(p.detach().norm()) < float(torch.tensor([3.0, -2.0]).norm())


def test_distill_leaves_parameters_untouched_on_a_bad_step():
    p, opt = _quadratic_problem()
    before = p.detach().clone()
    list(engine.distill(lambda i: (p**2).sum() * float("inf"), opt, steps=3, every=3, max_bad_steps=5))
    assert torch.equal(p.detach(), before)


def test_distill_stops_with_a_clear_error_after_repeated_nan():
    p, opt = _quadratic_problem()
    with pytest.raises(RunError, match="diverged"):
        list(engine.distill(lambda i: (p**2).sum() * float("nan"), opt, steps=50, every=5, max_bad_steps=3))


def test_distill_same_seed_same_result():
    def once():
        p = torch.nn.Parameter(torch.zeros(5))
        opt = torch.optim.Adam([p], lr=0.1)
        for _ in engine.distill(lambda i: ((p - torch.randn(5)) ** 2).sum(), opt, steps=20, seed=123, every=20):
            pass
        return p.detach()

    assert torch.equal(once(), once())


def test_distill_clips_the_gradient_norm():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=1.0)
    list(engine.distill(lambda i: (p * 1000.0).sum(), opt, steps=1, grad_clip=1.0))
    assert math.isclose(float(p.norm()), 1.0, rel_tol=1e-5)


def test_distill_reports_at_least_every_report_s_however_few_steps_that_is():
    """Stop acts at a report: slow steps must not push the next report past report_s."""
    p = torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.SGD([p], lr=0.1)

    def slow(i):
        time.sleep(0.05)
        return (p - 1).pow(2).sum()

    steps = [r.step for r in engine.distill(slow, opt, steps=12, every=1000, report_s=0.12)]
    assert steps[-1] == 12 and 3 <= len(steps) <= 7  # about every third step, and the last
    assert [r.step for r in engine.distill(slow, opt, steps=6, every=1000, report_s=None)] == [6]
