"""The opt-in `fast` encoder of the text-to-SVG backends: the prior owns the model (`with_fast_encoder`), the
setting reaches the SDS step, and a missing fast VAE is one InputError before anything runs. Tiny-sd and the
tiny random-weight AutoencoderTiny (DISTILL_FAST_VAE=tiny), on a CPU."""
import numpy as np
import pytest
import torch

import backends
from backends.core.errors import InputError
from backends.priors import load_prior
from backends.priors.diffusers_prior import FastEncoderPrior
from backends.svg.distill import with_encoder

SMALL = {"prompt": "a fox", "paths": 4, "steps": 3, "size": 64, "every": 3, "seed": 0}


@pytest.fixture(autouse=True)
def tiny_env(monkeypatch):
    monkeypatch.setenv("DISTILL_FAST_VAE", "tiny")
    monkeypatch.setenv("DISTILL_CLIP_MODEL", "tiny")


@pytest.fixture(scope="module")
def sd():
    return load_prior("tiny-sd", "cpu")


def images(batch=2, size=64, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_fast_encoder_view_encodes_through_the_fast_vae_and_shares_everything_else(sd):
    fast = sd.with_fast_encoder()
    x = images()
    assert isinstance(fast, FastEncoderPrior)
    torch.testing.assert_close(fast.encode(x), fast.fast.encode(x), rtol=0, atol=0)
    assert not torch.allclose(fast.encode(x), sd.encode(x, mode="mean"))  # not the KL encoder under another name
    assert fast.unet is sd.unet and fast.alphas_cumprod is sd.alphas_cumprod and fast.name == sd.name
    assert sd.with_fast_encoder().fast is fast.fast  # loaded once per prior


def test_gradient_flows_to_the_images_through_the_fast_encoder(sd):
    x = images().requires_grad_(True)
    sd.with_fast_encoder().encode(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_vectorfusion_with_the_fast_encoder_runs_and_differs_from_kl(tmp_path, sd):
    kl = backends.run_to_end("svg/vectorfusion", dict(SMALL, encoder="kl"), prior="tiny-sd",
                             out_dir=tmp_path / "kl", device="cpu")
    fast = backends.run_to_end("svg/vectorfusion", dict(SMALL, encoder="fast"), prior="tiny-sd",
                               out_dir=tmp_path / "fast", device="cpu")
    assert fast.metadata["settings"]["encoder"] == "fast"
    assert not np.array_equal(kl.preview, fast.preview)  # same seed: only the encoder differs


def test_csd_candidates_take_the_encoder_setting(tmp_path, sd):
    result = backends.run_to_end("svg/csd", dict(SMALL, encoder="fast", k=2), prior="tiny-sd",
                                 out_dir=tmp_path, device="cpu")
    assert {"svg_1", "svg_2"} <= set(result.files)


def test_missing_fast_vae_weights_are_an_input_error_naming_the_way_out(monkeypatch, tmp_path, sd):
    monkeypatch.setenv("DISTILL_FAST_VAE", str(tmp_path / "no-such-taesd"))
    fresh = load_prior("tiny-sd", "cpu")
    fresh._fast_vae = None  # the module's prior may have loaded the tiny one already
    with pytest.raises(InputError, match="encoder 'kl'"):
        with_encoder(fresh, "fast")


def test_a_prior_without_a_fast_encoder_refuses_the_setting():
    class NoFastPrior:
        name = "icons"

    with pytest.raises(InputError, match="has no fast encoder"):
        with_encoder(NoFastPrior(), "fast")
    prior = NoFastPrior()
    assert with_encoder(prior, "kl") is prior


def test_previews_decode_with_the_fast_decoder_when_present(sd):
    sd._fast_vae = None
    decode = sd.preview_decoder()
    z = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = decode(z)
        torch.testing.assert_close(out, sd.fast_vae().decode(z))
    assert out.shape == (2, 3, 64, 64)
