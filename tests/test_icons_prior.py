"""The `icons` prior: its noise prediction is the exact score of the retrieved icons' mixture, smoothing behaves
as documented, retrieval follows the prompt's nouns, and sampling and SDS land on a retrieved icon."""
import math

import numpy as np
import pytest
import torch

from backends import engine
from backends.priors.base import Cond
from backends.core.errors import InputError
from backends.priors.icons import IconPrior

SUFFIX = ". minimal flat 2d vector icon. lineal color. on a white background. trending on artstation"


# ----- exact score on a small synthetic set


def tiny_prior(**kwargs) -> IconPrior:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(3, 3, 8, 8, generator=g)
    return IconPrior(images, ["red apple", "green apple", "fox"], [["fruit"], ["fruit"], ["animal"]], **kwargs)


def mixture_log_density(z, a, mu, logw, sigma):
    """log p(z_t) of sum_m w_m N(a mu_m, (a^2 sigma^2 + s^2) I), by brute force. z: (D,), mu: (M, D)."""
    v = a * a * sigma**2 + (1 - a * a)
    d = z.numel()
    logn = -0.5 * ((z - a * mu) ** 2).sum(1) / v - 0.5 * d * math.log(2 * math.pi * v)
    return torch.logsumexp(logw - torch.logsumexp(logw, 0) + logn, 0)


@pytest.mark.parametrize("t", [50, 400, 900])
def test_eps_equals_minus_s_times_autograd_score_of_the_mixture(t):
    prior = tiny_prior(sigma=0.3, smoothing=0.0)
    logw = torch.tensor([0.0, -0.7, -math.inf])  # two icons, one excluded
    cond = Cond(text=logw[None].double().float(), uncond=torch.zeros(1, 3), guidance=torch.ones(1))
    z = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(t)) * 1.5
    eps = prior.predict_eps(z, torch.tensor([t]), cond)

    ab = prior.alphas_cumprod[t].double()
    a, s = ab.sqrt(), (1 - ab).sqrt()
    mu = prior.bank().double()
    zz = z.double().flatten().requires_grad_(True)
    (score,) = torch.autograd.grad(mixture_log_density(zz, a, mu, logw.double(), 0.3), zz)
    assert torch.allclose(eps.double().flatten(), -s * score, atol=1e-4, rtol=1e-4)


def test_guidance_is_cfg_between_uncond_and_cond_branches():
    prior = tiny_prior(smoothing=0.0)
    z = torch.randn(1, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    t = torch.tensor([600])

    def eps(w):
        return prior.predict_eps(z, t, Cond(text=torch.tensor([[0.0, -math.inf, -math.inf]]),
                                            uncond=torch.zeros(1, 3), guidance=torch.tensor([w])))

    e0, e1, e4 = eps(0.0), eps(1.0), eps(4.0)
    assert not torch.allclose(e0, e1)
    assert torch.allclose(e4, e0 + 4.0 * (e1 - e0), atol=1e-5)


def two_icon_prior(smoothing):
    """Two 8x8 icons, a black and a white square (latents -1 and +1)."""
    images = torch.stack([torch.zeros(3, 8, 8), torch.ones(3, 8, 8)])
    return IconPrior(images, ["black square", "white square"], smoothing=smoothing, draws=64)


def test_smoothing_zero_snaps_to_the_nearest_icon_and_smoothing_blends_near_ties():
    # z_t just off the midpoint of the two icons, at small noise: the exact posterior mean is the nearer icon;
    # the smoothed one is a barycenter of both, and every pixel stays between them (a convex combination)
    cond = Cond(text=torch.zeros(1, 2), uncond=torch.zeros(1, 2), guidance=torch.ones(1))
    t = torch.tensor([30])
    ab = two_icon_prior(0.0).alphas_cumprod[t]
    a, s = ab.sqrt(), (1 - ab).sqrt()
    z = torch.full((1, 3, 8, 8), 0.02) * a

    def x0(prior):
        return (z - s * prior.predict_eps(z, t, cond)) / a

    exact, smooth = x0(two_icon_prior(0.0)), x0(two_icon_prior(0.2))
    assert torch.allclose(exact, torch.ones_like(exact), atol=1e-3)  # nearer to the white square
    assert -0.9 < smooth.mean() < 0.9  # a blend: neither icon
    assert smooth.min() >= -1 - 1e-5 and smooth.max() <= 1 + 1e-5
    assert torch.allclose(smooth, smooth.flatten()[0].expand_as(smooth), atol=1e-5)  # on the segment between them


def test_smoothing_leaves_a_point_on_an_icon_where_it_is():
    # far from any tie, smoothing (at its default) must not move the denoised estimate off the icon
    prior = two_icon_prior(0.05)
    cond = Cond(text=torch.zeros(1, 2), uncond=torch.zeros(1, 2), guidance=torch.ones(1))
    t = torch.tensor([100])
    ab = prior.alphas_cumprod[t]
    z = ab.sqrt() * torch.ones(1, 3, 8, 8)
    x0 = (z - (1 - ab).sqrt() * prior.predict_eps(z, t, cond)) / ab.sqrt()
    assert torch.allclose(x0, torch.ones_like(x0), atol=1e-4)


# ----- the shipped icon set


@pytest.fixture(scope="module")
def prior():
    return IconPrior.load()


def nearest_caption(prior, image):
    """Caption and per-pixel MSE (in [0, 1] units) of the icon nearest to `image` (3, 64, 64) in [0, 1]."""
    d = ((prior.bank() - (image * 2 - 1).flatten()) ** 2).mean(1) / 4
    i = int(d.argmin())
    return prior.captions[i], float(d[i])


def test_shipped_data_has_thousands_of_icons_with_captions_sources_and_licences(prior):
    from backends.priors.icons import load_icon_data

    data = load_icon_data()
    n = data["images"].shape[0]
    assert n > 3000 and data["images"].shape[1:] == (64, 64, 3) and data["images"].dtype == np.uint8
    assert set(data["licence"]) == {"MIT", "CC-BY-4.0"} and set(data["source"]) == {"fluent-emoji-flat", "twemoji"}
    assert len(prior.captions) == n and "closed-form" in prior.description


def test_retrieval_follows_the_noun_and_ignores_style_suffixes(prior):
    assert prior.read("a slice of pizza").drawn[0] == "pizza"
    assert prior.read("a red fox").drawn[0] == "fox"
    for p in ["a slice of pizza", "a red fox", "a rocket", "a white cat"]:
        for suffix in [SUFFIX, ". pixel art. trending on artstation",
                       ". minimal 2d line drawing. trending on artstation"]:
            assert prior.read(p + suffix) == prior.read(p)
    w = prior.log_weights("a red fox" + SUFFIX)
    kept = {prior.captions[i] for i in torch.isfinite(w).nonzero().flatten().tolist()}
    assert kept == {"fox"}  # "red" alone does not pull in red hearts and circles


def retrieved_captions(prior, prompt: str) -> set[str]:
    return {prior.captions[i] for i in torch.isfinite(prior.log_weights(prompt)).nonzero().flatten().tolist()}


def test_colour_words_choose_among_the_nouns_matches_by_their_pixels(prior):
    assert retrieved_captions(prior, "an apple") == {"red apple", "green apple"}
    assert retrieved_captions(prior, "a red apple") == {"red apple"}
    assert retrieved_captions(prior, "a green apple") == {"green apple"}
    # the noun decides: "red" alone would retrieve red circles, squares and hearts before any bicycle
    assert retrieved_captions(prior, "a red bicycle") == {"bicycle"}
    reading = prior.read("a red bicycle")
    assert reading.colours == ("red",) and reading.colour_found
    # a colour no match has, nor a near one: all the noun's matches stay, recoloured, and the reading says so
    purple = prior.read("a purple apple")
    assert set(purple.drawn) == {"red apple (recoloured purple)", "green apple (recoloured purple)"}
    assert not purple.colour_found and purple.recoloured == "purple"
    assert "recoloured purple" in purple.sentence() and "could not be matched" not in purple.sentence()


def test_a_colour_no_icon_has_is_drawn_by_recolouring_the_matches_as_mixture_components(prior):
    from backends.priors.reading import COLOUR_CLASSES, colour_shares

    ids, _, reading = prior._retrieve("a blue banana")
    assert reading.recoloured == "blue" and all(i >= len(prior.captions) for i in ids)  # rows of the mixture
    n = prior.native_size
    pictures = ((prior.bank(torch.from_numpy(ids)).view(-1, 3, n, n) + 1) / 2 * 255).byte().permute(0, 2, 3, 1)
    shares = colour_shares(pictures.numpy())
    assert (shares[:, COLOUR_CLASSES.index("blue")] >= 0.25).all(), shares
    banana = prior.captions.index("banana")
    plain = ((prior.bank(torch.tensor([banana])).view(1, 3, n, n) + 1) / 2 * 255).byte().permute(0, 2, 3, 1)
    assert colour_shares(plain.numpy())[0, COLOUR_CLASSES.index("blue")] < 0.25  # a check that can fail


def test_a_colour_word_takes_the_nearest_colour_its_icons_have_before_recolouring(prior):
    fox = prior.read("a red fox")  # the app's first example: the fox emoji is orange, as red foxes are
    assert fox.colour_found and fox.nearest_colour == "orange" and not fox.recoloured
    assert "could not be matched" not in fox.sentence() and "recoloured" not in fox.sentence()


def test_recolouring_keeps_outlines_and_white_and_turns_the_main_colour():
    from backends.priors.compose import recolour

    image = torch.ones(1, 3, 16, 16)
    image[0, :, 4:12, 4:12] = torch.tensor([0.9, 0.1, 0.1])[:, None, None]  # a red square
    image[0, :, 4, 4:12] = 0.0  # a black outline along its top
    out = recolour(image, "blue")
    assert torch.allclose(out[0, :, 0, 0], torch.ones(3)) and torch.allclose(out[0, :, 4, 6], torch.zeros(3))
    r, g, b = out[0, :, 8, 8]
    assert b > 0.8 and r < 0.2  # the red is blue now, as bright


def test_colour_shares_measure_the_icons_own_pixels_not_the_white_background(prior):
    from backends.priors.reading import COLOUR_CLASSES

    ids = np.array([prior.captions.index(c) for c in ("red apple", "green apple", "blue heart")])
    shares = prior.colour_shares(ids)
    top = [COLOUR_CLASSES[j] for j in shares.argmax(1)]
    assert top == ["red", "green", "blue"] and (shares.sum(1) <= 1.0 + 1e-6).all()


def test_negation_icons_only_when_the_prompt_asks_for_a_prohibition(prior):
    assert "no bicycles" not in retrieved_captions(prior, "a bicycle")
    assert "no bicycles" in prior.read("a bicycle").negation_dropped
    assert "no smoking" in retrieved_captions(prior, "no smoking")
    assert "no bicycles" in retrieved_captions(prior, "a no bicycles sign")


def test_a_composition_draws_both_things_and_says_how(prior):
    reading = prior.read("a robot holding a balloon")
    assert reading.subject == ("robot",) and reading.drawn == ("robot + balloon",) and not reading.left_out
    w = prior.log_weights("a robot holding a balloon")
    assert int(torch.isfinite(w).nonzero().min()) >= len(prior.captions)  # composed pictures, no lone icon
    assert "holding a balloon at its side" in reading.sentence()
    # the head noun of the main phrase decides: a hot air balloon is a balloon, not a hot pepper
    assert prior.read("a hot air balloon over mountains").drawn[0] == "balloon + mountain"
    # a prompt that is an icon's own name is read whole, relation word and all
    assert prior.read("a heart with arrow").drawn[0] == "heart with arrow"
    unknown = prior.read("a lighthouse on a rock")
    assert unknown.unknown == ("lighthouse",) and unknown.drawn == ("rock",)
    assert "Words it does not know: lighthouse" in unknown.sentence()


def test_unknown_word_raises_input_error_naming_prompt_and_suggestions(prior):
    with pytest.raises(InputError) as err:
        prior.condition("a pizzza" + SUFFIX)
    msg = str(err.value)
    said = msg.partition("; ")[2]  # what follows the quoted prompt: one sentence, ended once
    assert "pizzza" in msg and "'pizza'" in said and said.count(".") == 1 and said.endswith(".")


def test_condition_batches_like_any_cond(prior):
    c = prior.condition(["a fox", "pizza"], guidance=2.0)
    assert c.text.shape == c.uncond.shape == (2, prior.components) and c.guidance.tolist() == [2.0, 2.0]
    both = Cond.cat([c.index(slice(1, 2)), c.repeat(2)])
    assert len(both) == 5 and torch.equal(both.text[0], c.text[1])


def test_sample_for_pizza_lands_on_a_pizza_icon_and_is_deterministic(prior):
    x = prior.sample("a slice of pizza" + SUFFIX, steps=20, guidance=1.0, generator=torch.Generator().manual_seed(0))
    caption, mse = nearest_caption(prior, x[0])
    assert caption == "pizza" and mse < 2e-3
    y = prior.sample("a slice of pizza" + SUFFIX, steps=20, guidance=1.0, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, y)
    small = prior.sample("pizza", steps=5, height=32, width=48, generator=torch.Generator().manual_seed(0))
    assert small.shape == (1, 3, 32, 48)


def test_samples_follow_the_retrieval_weights_not_the_icons_norms():
    """Two "apple" icons, one mid-grey (latent norm 0) and one white (the largest norm): at SD's first DDIM timestep
    the signal left (alphabar 0.008) over 3,072 pixels makes a start drawn from N(0, I) pick the grey one nearly
    every time (~12 nats; measured 99.75 %); drawn from the exact noisy marginal, each as often as it weighs."""
    images = torch.stack([torch.full((3, 32, 32), 0.5), torch.ones(3, 32, 32), torch.zeros(3, 32, 32)])
    prior = IconPrior(images, ["green apple", "red apple", "fox"], [["fruit"], ["fruit"], ["animal"]], smoothing=0.0)
    weights = torch.softmax(prior.log_weights("apple"), dim=0)
    assert weights[0] == pytest.approx(0.5)
    x = prior.sample(["apple"] * 400, steps=10, guidance=1.0, generator=torch.Generator().manual_seed(0))
    grey = (x - 0.5).abs().mean(dim=(1, 2, 3)) < 0.02
    white = (x - 1.0).abs().mean(dim=(1, 2, 3)) < 0.02
    assert (grey | white).all()
    assert abs(float(grey.float().mean()) - 0.5) < 0.075  # 3 standard deviations of 400 fair coin flips


@pytest.mark.parametrize("side", [16, 24])
def test_eps_at_a_larger_size_is_the_exact_score_of_the_icons_upsampled(side):
    # scored at the icons' 8 px: with icons of one colour each (upsampling them is exact), eps at 16 or 24 px
    # equals the brute-force score of the mixture of the upsampled icons at that size
    colours = torch.rand(3, 3, 1, 1, generator=torch.Generator().manual_seed(2))
    prior = IconPrior(colours.expand(3, 3, 8, 8), ["red apple", "green apple", "fox"], sigma=0.3, smoothing=0.0)
    logw = torch.tensor([0.0, -0.7, -math.inf])
    cond = Cond(text=logw[None], uncond=torch.zeros(1, 3), guidance=torch.ones(1))
    z = torch.randn(1, 3, side, side, generator=torch.Generator().manual_seed(3)) * 1.2
    t = 300
    eps = prior.predict_eps(z, torch.tensor([t]), cond)

    ab = prior.alphas_cumprod[t].double()
    a, s = ab.sqrt(), (1 - ab).sqrt()
    mu = (colours.double() * 2 - 1).expand(3, 3, side, side).flatten(1)  # the bank is in latent units
    zz = z.double().flatten().requires_grad_(True)
    (score,) = torch.autograd.grad(mixture_log_density(zz, a, mu, logw.double(), 0.3), zz)
    assert torch.allclose(eps.double().flatten(), -s * score, atol=1e-4, rtol=1e-4)


def test_a_large_canvas_never_resizes_the_icons(prior, monkeypatch):
    # a 512 px run once resized all 3508 icons (11 GB at 512 px, 44 GB at 1024), later the few hundred a step
    # weighs (0.8 GB); now it is scored at the icons' 64 px, and only its two posterior means are resized
    resized = []
    real = torch.nn.functional.interpolate
    monkeypatch.setattr(torch.nn.functional, "interpolate",
                        lambda x, **kw: resized.append(tuple(x.shape)) or real(x, **kw))
    cond = prior.condition("a fox")
    eps = prior.predict_eps(torch.randn(1, 3, 1024, 1024), torch.tensor([500]), cond)
    assert eps.shape == (1, 3, 1024, 1024) and torch.isfinite(eps).all()
    assert resized == [(1, 3, 64, 64)] * 2


def test_sds_on_raw_pixels_converges_to_a_retrieved_icon(prior):
    gen = torch.Generator().manual_seed(0)
    image = torch.full((1, 3, 64, 64), 0.5).requires_grad_(True)
    cond = prior.condition("a red fox" + SUFFIX, guidance=prior.defaults["guidance"])
    opt = torch.optim.Adam([image], lr=0.05)
    ab = prior.alphas_cumprod
    start = nearest_caption(prior, image.detach()[0])[1]
    for _ in range(40):
        z = prior.encode(image)
        t = engine.sample_timesteps(1, 20, 980, generator=gen)
        eps = torch.randn(z.shape, generator=gen)
        eps_hat = prior.predict_eps(engine.add_noise(z.detach(), eps, ab[t]), t, cond)
        loss = engine.grad_to_loss(z, engine.sds_grad(eps_hat, eps, engine.weighting(ab[t], "sds")))
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            image.clamp_(0, 1)
    caption, mse = nearest_caption(prior, image.detach()[0])
    assert caption == "fox" and mse < 2e-3 < start


def test_build_script_writes_the_same_bytes_for_the_same_arrays(tmp_path):
    import importlib.util
    import time
    from pathlib import Path

    spec = importlib.util.spec_from_file_location("build_icons", Path(__file__).parents[1] / "scripts/build_icons.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    arrays = {"images": np.arange(2 * 4 * 4 * 3, dtype=np.uint8).reshape(2, 4, 4, 3),
              "caption": np.array(["pizza", "fox"]), "tags": np.array(["food;slice", "animal"])}
    build.write_npz(tmp_path / "a.npz", arrays)
    time.sleep(2.1)  # a zip timestamp has 2-second resolution: a build-time stamp would differ now
    build.write_npz(tmp_path / "b.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz", allow_pickle=False) as z:
        assert all(np.array_equal(z[k], v) for k, v in arrays.items())


def test_score_is_the_icons_log_weight_on_a_retrieved_icon_and_falls_with_distance_from_every_one(prior):
    logw = torch.log_softmax(prior.log_weights("a slice of pizza"), 0)
    ids = torch.isfinite(logw).nonzero().flatten()
    pizza = (prior.bank()[ids[0]].reshape(1, 3, 64, 64) + 1) / 2
    other = torch.isfinite(prior.log_weights("a red fox")).nonzero().flatten()[0]
    fox = (prior.bank()[other].reshape(1, 3, 64, 64) + 1) / 2
    big = torch.nn.functional.interpolate(pizza, size=(75, 75), mode="bilinear", antialias=True)
    s = prior.score(torch.cat([pizza, 0.5 * pizza + 0.5 * fox, fox]), "a slice of pizza")
    assert s[0] == pytest.approx(float(logw[ids[0]]), abs=1e-3) and s[0] > s[1] > s[2]
    assert prior.score(big, "a slice of pizza")[0] > s[1]  # any size: resized to the icons' 64 px first


def test_csd_ranks_its_candidates_by_the_icon_prior_score_not_by_the_offline_clip(tmp_path, monkeypatch):
    from backends import run_to_end

    monkeypatch.setenv("DISTILL_CLIP_MODEL", "tiny")
    result = run_to_end("svg/csd", {"prompt": "a slice of pizza", "k": 3, "steps": 3, "every": 100, "init": "scratch"},
                        prior="icons",
                        out_dir=tmp_path, device="cpu")
    meta = result.metadata
    assert meta["ranked_by"] == "the icons prior's score"
    assert meta["rank_scores"] == sorted(meta["rank_scores"], reverse=True) and sorted(meta["ranking"]) == [0, 1, 2]
