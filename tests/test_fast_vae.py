"""The `fast` VAE (AutoencoderTiny): loading (never a download), shapes, gradients, and the latent convention
pinned against diffusers' own pipelines; and the encoder-fidelity measurement."""
import warnings

import pytest
import torch

from backends.core.errors import ModelUnavailableError
from backends.priors import fast_vae
from backends.priors.fast_vae import FastVAE, available, encoder_fidelity, from_sd_latents, load_fast_vae, to_sd_latents


@pytest.fixture(scope="module")
def tiny():
    return load_fast_vae("tiny", device="cpu")


def images(batch=2, size=64, seed=0):
    return torch.rand(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_tiny_loads_through_the_same_function_as_a_folder(tmp_path):
    folder = fast_vae.build_tiny_fast_vae(tmp_path / "taesd", seed=0)
    from_folder = load_fast_vae(str(folder), device="cpu")
    from_cache = load_fast_vae("tiny", device="cpu")
    assert isinstance(from_folder, FastVAE) and from_cache.tiny and not from_folder.tiny
    x = images(1)
    assert torch.equal(from_folder.encode(x), from_cache.encode(x))  # same seed, same recipe: same weights


def test_encode_and_decode_shapes(tiny):
    x = images(2, 64)
    z = tiny.encode(x)
    assert z.shape == (2, 4, 8, 8) and z.dtype == torch.float32
    assert tiny.latent_scale == 8 and tiny.latent_channels == 4
    with torch.no_grad():
        y = tiny.decode(z)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0


def test_encode_refuses_a_size_that_is_not_a_multiple_of_8(tiny):
    with pytest.raises(ValueError, match="multiple of 8"):
        tiny.encode(torch.rand(1, 3, 60, 64))


def test_encode_is_differentiable_with_respect_to_the_images(tiny):
    x = images(2).requires_grad_(True)
    tiny.encode(x).pow(2).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in tiny.vae.parameters())  # frozen weights


def test_latent_conversion_uses_the_configs_scaling_factor_in_both_directions():
    raw = torch.randn(1, 4, 2, 2)
    assert torch.equal(to_sd_latents(raw, {"scaling_factor": 1.0}), raw)  # TAESD: already SD-scaled
    assert torch.equal(to_sd_latents(raw, {"scaling_factor": 2.0}), raw * 2.0)
    assert torch.equal(from_sd_latents(to_sd_latents(raw, {"scaling_factor": 0.5}), {"scaling_factor": 0.5}), raw)
    from diffusers import AutoencoderTiny

    # TAESD's published config leaves scaling_factor at AutoencoderTiny's default, 1.0: no 0.18215 on top.
    assert AutoencoderTiny().config.scaling_factor == 1.0
    assert load_fast_vae("tiny", device="cpu").vae.config.scaling_factor == 1.0


def test_encode_matches_diffusers_img2img_latents(tiny):
    """The img2img pipeline's own steps: VaeImageProcessor.preprocess, retrieve_latents, times scaling_factor."""
    from diffusers.image_processor import VaeImageProcessor
    from diffusers.pipelines.stable_diffusion.pipeline_stable_diffusion_img2img import retrieve_latents

    x = images(2, 64)
    with torch.no_grad():
        pixels = VaeImageProcessor(vae_scale_factor=8).preprocess(x)
        expected = tiny.vae.config.scaling_factor * retrieve_latents(tiny.vae.encode(pixels))
        torch.testing.assert_close(tiny.encode(x), expected, rtol=1e-5, atol=1e-6)


def test_decode_matches_a_stable_diffusion_pipeline_using_the_fast_vae(tiny):
    """The same denoised latents, decoded by StableDiffusionPipeline with `pipe.vae = AutoencoderTiny` (as diffusers
    documents TAESD) and by FastVAE.decode, give the same image: FastVAE takes the UNet's latents as they are."""
    from diffusers import StableDiffusionPipeline

    from backends.priors.tiny import ensure_tiny

    pipe = StableDiffusionPipeline.from_pretrained(str(ensure_tiny("sd")), safety_checker=None,
                                                   requires_safety_checker=False, local_files_only=True)
    pipe.vae = tiny.vae
    pipe.set_progress_bar_config(disable=True)
    run = dict(prompt="a cat", num_inference_steps=2, height=64, width=64, guidance_scale=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        latents = pipe(**run, output_type="latent", generator=torch.Generator().manual_seed(3)).images
        image = pipe(**run, output_type="pt", generator=torch.Generator().manual_seed(3)).images
    with torch.no_grad():
        torch.testing.assert_close(tiny.decode(latents), image, rtol=1e-5, atol=1e-5)


def test_a_missing_hub_model_is_reported_not_downloaded(monkeypatch):
    repo = "distill-studio-tests/no-such-taesd"
    ok, reason = available(repo)
    assert not ok and "not in the local Hugging Face cache" in reason and "hf download" in reason
    monkeypatch.setenv(fast_vae.ENV, repo)
    assert fast_vae.default_source() == repo
    with pytest.raises(ModelUnavailableError, match="never downloaded implicitly"):
        load_fast_vae(device="cpu")


def test_a_folder_without_weights_is_not_available(tmp_path):
    ok, reason = available(str(tmp_path / "nothing"))
    assert not ok and "config.json missing" in reason
    (tmp_path / "config.json").write_text("{}")
    ok, reason = available(str(tmp_path))
    assert not ok and "no weights" in reason
    assert available("tiny")[0]


def test_encoder_fidelity_recovers_targets_through_an_invertible_encoder():
    targets = images(2, 8, seed=5)
    identity = lambda x: x * 2.0 - 1.0  # the analytic prior's own encoder: perfectly invertible
    rows = encoder_fidelity({"same": identity, "same again": identity, "halved": lambda x: identity(x) * 0.5},
                            targets, identity, steps=150, lr=0.05)
    assert rows["same"] == rows["same again"]  # seeded: a difference between rows is the encoder's, not chance
    assert rows["same"]["psnr_db"] > rows["same"]["start_psnr_db"] + 15.0
    assert rows["same"]["latent_rmse"] < 0.05
    # an encoder whose latents are off by a factor drives the pixels elsewhere: lower PSNR, and a latent gap remains
    assert rows["halved"]["psnr_db"] < rows["same"]["psnr_db"] - 3.0
    assert rows["halved"]["latent_rmse"] > 5 * rows["same"]["latent_rmse"]


def test_encoder_fidelity_runs_with_the_tiny_kl_and_fast_encoders(tiny):
    from backends.priors import load_prior

    kl = load_prior("tiny-sd", "cpu")
    kl_mean = lambda x: kl.encode(x, mode="mean")
    rows = encoder_fidelity({"kl": kl_mean, "fast": tiny.encode}, images(1, 64), kl_mean, steps=3)
    assert set(rows) == {"kl", "fast"}
    assert all(torch.isfinite(torch.tensor(list(r.values()))).all() for r in rows.values())
