"""The diffusers-backed priors, run on the tiny random-weight models (built once per test module, offline).

The reference for every noise prediction is diffusers' own pipeline: we run one step of StableDiffusionPipeline /
StableDiffusionInstructPix2PixPipeline on the same components and read the guided noise it hands its scheduler.
"""
from __future__ import annotations

import json
import warnings

import pytest
import torch

from backends.priors import catalog, tiny
from backends.priors.analytic import scaled_linear_alphas_cumprod
from backends.priors.base import Prior
from backends.priors.diffusers_prior import (
    DiffusersPrior,
    load_diffusers_prior,
)
from backends.core.errors import InputError, ModelUnavailableError


@pytest.fixture(scope="module")
def offline_cache(tmp_path_factory):
    """A fresh model cache for this module, with the hub switched off (no network may be touched)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DISTILL_CACHE", str(tmp_path_factory.mktemp("distill_cache")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        yield


def own_tiny(recipe: str, device: str = "cpu") -> DiffusersPrior:
    """A tiny prior of this test's own (load_prior would hand out the process's shared, cached one)."""
    kind = {"sd": "text", "ip2p": "instruct"}[recipe]
    return load_diffusers_prior(str(tiny.ensure_tiny(recipe)), kind, device=device, tiny=True, name=f"tiny-{recipe}")


@pytest.fixture(scope="module")
def sd(offline_cache) -> DiffusersPrior:
    return own_tiny("sd")


@pytest.fixture(scope="module")
def ip2p(offline_cache) -> DiffusersPrior:
    return own_tiny("ip2p")


def _images(b=2, h=64, w=64, seed=0):
    return torch.rand(b, 3, h, w, generator=torch.Generator().manual_seed(seed))


def _latents(b=2, h=8, w=8, seed=1):
    return torch.randn(b, 4, h, w, generator=torch.Generator().manual_seed(seed))


def _pipeline(cls, prior):
    """A diffusers pipeline of class `cls` on the prior's own components, with DDIM (whose scale_model_input is
    the identity, so the UNet sees exactly the latents we give it)."""
    from diffusers import DDIMScheduler

    return cls(vae=prior.vae, text_encoder=prior.text_encoder, tokenizer=prior.tokenizer, unet=prior.unet,
               scheduler=DDIMScheduler.from_config(prior.scheduler.config, clip_sample=False),
               safety_checker=None, feature_extractor=None, requires_safety_checker=False)


def _pipeline_guided_eps(pipe, latents, **call):
    """Run one denoising step of a diffusers pipeline and return (t, the guided noise it passed to its scheduler)."""
    seen = {}
    step = pipe.scheduler.step

    def spy(model_output, timestep, sample, *args, **kwargs):
        seen["eps"], seen["t"] = model_output.clone(), timestep
        return step(model_output, timestep, sample, *args, **kwargs)

    pipe.scheduler.step = spy
    pipe.set_progress_bar_config(disable=True)
    pipe(latents=latents.clone(), num_inference_steps=1, output_type="latent", **call)
    return seen["t"], seen["eps"]


# ---- loading ----

def test_tiny_models_load_offline_through_from_pretrained_from_a_pipeline_layout(sd, ip2p):
    for prior, kind, in_ch in ((sd, "text", 4), (ip2p, "instruct", 8)):
        folder = tiny.tiny_dir("sd" if kind == "text" else "ip2p")
        assert (folder / "model_index.json").is_file()
        for sub in ("unet", "vae", "text_encoder", "tokenizer", "scheduler"):
            assert (folder / sub).is_dir()
        assert (folder / "tokenizer" / "vocab.json").is_file() and (folder / "tokenizer" / "merges.txt").is_file()
        assert isinstance(prior, Prior)
        assert prior.kind == kind and prior.tiny and not prior.needs_target
        assert prior.name == ("tiny-sd" if kind == "text" else "tiny-ip2p")
        assert prior.device == torch.device("cpu") and prior.dtype == torch.float32
        assert prior.latent_scale == 8 and prior.latent_channels == 4
        assert prior.unet.config.in_channels == in_ch and prior.unet.config.cross_attention_dim == 32
        assert prior.num_train_timesteps == 1000
        assert prior.alphas_cumprod.dtype == torch.float32
        torch.testing.assert_close(prior.alphas_cumprod, scaled_linear_alphas_cumprod(1000))
    assert json.loads((tiny.tiny_dir("ip2p") / "model_index.json").read_text())["_class_name"] == \
        "StableDiffusionInstructPix2PixPipeline"


def test_tiny_tokenizer_uses_the_generated_bpe_merges(sd):
    ids = sd.tokenizer("A photo of the cat").input_ids
    assert sd.tokenizer.convert_ids_to_tokens(ids) == \
        ["<|startoftext|>", "a</w>", "photo</w>", "of</w>", "the</w>", "cat</w>", "<|endoftext|>"]
    assert sd.tokenizer.model_max_length == 77


def test_build_tiny_is_deterministic_for_a_seed(tmp_path, sd):
    from safetensors.torch import load_file

    tiny.build_tiny("sd", tmp_path / "again", seed=0)
    for sub in ("unet/diffusion_pytorch_model", "vae/diffusion_pytorch_model", "text_encoder/model"):
        a = load_file(tiny.tiny_dir("sd") / f"{sub}.safetensors")
        b = load_file(tmp_path / "again" / f"{sub}.safetensors")
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_ensure_tiny_builds_once_and_survives_losing_a_race(tmp_path, monkeypatch):
    monkeypatch.setenv("DISTILL_CACHE", str(tmp_path))
    builds = []

    def fake_build(kind, path, seed=0):
        builds.append(path)
        (path / "model_index.json").write_text("{\"by\": \"loser\"}")
        # meanwhile another process finished first and renamed its copy into place
        winner = tiny.tiny_dir(kind)
        winner.mkdir()
        (winner / "model_index.json").write_text("{\"by\": \"winner\"}")
        return path

    monkeypatch.setattr(tiny, "build_tiny", fake_build)
    path = tiny.ensure_tiny("sd")
    assert path == tmp_path / "tiny-sd-v1"
    assert json.loads((path / "model_index.json").read_text()) == {"by": "winner"}
    assert tiny.ensure_tiny("sd") == path and len(builds) == 1  # cached: not built again
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny-sd-v1"]  # the loser's temp copy is gone


def test_missing_local_directory_raises_model_unavailable(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no" / "model"
    with pytest.raises(ModelUnavailableError) as info:
        load_diffusers_prior(str(missing), "text")
    msg = str(info.value)
    assert str(missing) in msg and "DISTILL_SD_MODEL" in msg and "local directory" in msg
    assert "\n" not in msg and msg.endswith(".")


def test_unreachable_hub_id_offline_raises_model_unavailable(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        load_diffusers_prior("distill-studio/no-such-model", "instruct")
    msg = str(info.value)
    assert "'distill-studio/no-such-model'" in msg and "DISTILL_IP2P_MODEL" in msg
    assert "hf download distill-studio/no-such-model" in msg and "HF_HUB_OFFLINE" in msg
    assert "\n" not in msg and msg.endswith(".")


def test_an_incomplete_local_directory_raises_model_unavailable(tmp_path):
    (tmp_path / "model_index.json").write_text("{}")  # a pipeline folder whose weights never arrived
    with pytest.raises(ModelUnavailableError, match="incomplete or unreadable"):
        load_diffusers_prior(str(tmp_path), "text", device="cpu")


def test_a_text_model_is_refused_as_an_instruct_prior(sd, offline_cache):
    with pytest.raises(InputError, match="not an InstructPix2Pix model"):
        load_diffusers_prior(str(tiny.tiny_dir("sd")), "instruct", device="cpu")


def test_the_real_models_sources_read_the_environment(monkeypatch):
    monkeypatch.delenv("DISTILL_SD_MODEL", raising=False)
    monkeypatch.delenv("DISTILL_IP2P_MODEL", raising=False)
    assert catalog.real("text").source() == "stable-diffusion-v1-5/stable-diffusion-v1-5"
    assert catalog.real("instruct").source() == "timbrooks/instruct-pix2pix"
    monkeypatch.setenv("DISTILL_IP2P_MODEL", "/models/ip2p")
    assert catalog.real("instruct").source() == "/models/ip2p"


def test_only_the_catalogs_kinds_are_accepted(sd, offline_cache):
    with pytest.raises(ValueError, match="prior kind"):
        load_diffusers_prior(str(tiny.tiny_dir("sd")), "sd")  # a model name is not a kind


# ---- images <-> latents, text ----

def test_encode_decode_shapes_dtypes_and_gradient(sd):
    x = _images(2, 64, 96).requires_grad_()
    z = sd.encode(x)
    assert z.shape == (2, 4, 8, 12) and z.dtype == torch.float32
    z.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # the encoder passes gradients to the images
    torch.testing.assert_close(sd.encode(x, mode="mean"), sd.encode(x, mode="mean"))
    with torch.no_grad():
        img = sd.decode(z)
    assert img.shape == (2, 3, 64, 96) and img.dtype == torch.float32
    assert img.min() >= 0 and img.max() <= 1


def test_decode_with_vae_tiling_handles_wide_latents(offline_cache):
    prior = own_tiny("sd")  # own copy: tiling must not leak into the shared fixture
    prior.enable_vae_tiling()
    with torch.no_grad():
        img = prior.decode(_latents(1, 8, 24))  # 192 px wide, tiles of 64 px
    assert img.shape == (1, 3, 64, 192) and img.min() >= 0 and img.max() <= 1


def test_image_condition_is_the_unscaled_posterior_mode(ip2p):
    x = _images(2)
    with torch.no_grad():
        expected = ip2p.vae.encode(x * 2 - 1).latent_dist.mode()
    cond = ip2p.condition("make it snowy", images=x)
    torch.testing.assert_close(cond.image, expected)
    assert cond.text.shape == (2, 77, 32) and cond.uncond.shape == (2, 77, 32)
    assert cond.guidance.tolist() == [7.5, 7.5] and cond.image_guidance.tolist() == [1.5, 1.5]


def test_text_embeddings_are_cached_per_prompt(sd):
    sd.text_cache.clear()
    calls = []
    hook = sd.text_encoder.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    try:
        first = sd.embed_text(["a cat", "a dog", "a cat"])
        second = sd.embed_text(["a dog", "a cat"])
    finally:
        hook.remove()
    assert calls == [2]  # one encoder call, for the two distinct prompts; the second lookup is all hits
    assert first.shape == (3, 77, 32)
    torch.testing.assert_close(second, first[[1, 0]])
    torch.testing.assert_close(first[0], first[2])


# ---- noise prediction against diffusers' pipelines ----

def test_text_prior_equals_stable_diffusion_pipeline_cfg_step(sd):
    from diffusers import StableDiffusionPipeline

    pipe = _pipeline(StableDiffusionPipeline, sd)
    z = _latents(2)
    prompts = ["a photo of a cat", "a dog"]
    t, expected = _pipeline_guided_eps(pipe, z, prompt=prompts, guidance_scale=7.5, height=64, width=64)
    got = sd.predict_eps(z, torch.full((2,), int(t)), sd.condition(prompts, guidance=7.5))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_instruct_prior_equals_instruct_pix2pix_pipeline_three_way_step(ip2p):
    from diffusers import StableDiffusionInstructPix2PixPipeline

    pipe = _pipeline(StableDiffusionInstructPix2PixPipeline, ip2p)
    x, z = _images(2), _latents(2)
    prompts = ["make it snowy", "turn the cat into a dog"]
    t, expected = _pipeline_guided_eps(pipe, z, prompt=prompts, image=x, guidance_scale=7.5,
                                       image_guidance_scale=1.5)
    cond = ip2p.condition(prompts, images=x, guidance=7.5, image_guidance=1.5)
    got = ip2p.predict_eps(z, torch.full((2,), int(t)), cond)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def _unet(prior, x, t, text):
    with torch.no_grad():
        return prior.unet(x, t, encoder_hidden_states=text).sample


def test_guidance_scale_one_gives_exactly_the_conditional_prediction(sd, ip2p):
    z, t = _latents(2), torch.tensor([300, 800])
    cond = sd.condition(["a cat", "a dog"], guidance=1.0)
    eps_cond = _unet(sd, z, t, cond.text)
    eps_uncond = _unet(sd, z, t, cond.uncond)
    assert (eps_cond - eps_uncond).abs().max() > 1e-3  # the text matters, so a scale slip would show
    torch.testing.assert_close(sd.predict_eps(z, t, cond), eps_cond, rtol=1e-4, atol=1e-5)

    x = _images(2)
    cond = ip2p.condition("make it snowy", images=x, guidance=1.0, image_guidance=1.0)
    eps_full = _unet(ip2p, torch.cat([z, cond.image], dim=1), t, cond.text)
    torch.testing.assert_close(ip2p.predict_eps(z, t, cond), eps_full, rtol=1e-4, atol=1e-5)
    parts = ip2p.predict_eps_parts(z, t, cond)
    eps_image = _unet(ip2p, torch.cat([z, cond.image], dim=1), t, cond.uncond)
    torch.testing.assert_close(parts["image"], eps_image, rtol=1e-4, atol=1e-5)


def test_per_sample_guidance_in_one_batch_equals_separate_calls(sd, ip2p):
    z, t = _latents(3), torch.tensor([100, 500, 900])
    prompts, scales = ["a cat", "a dog", "the photo"], [1.0, 3.0, 7.5]
    batched = sd.predict_eps(z, t, sd.condition(prompts, guidance=scales))
    for i in range(3):
        alone = sd.predict_eps(z[i:i + 1], t[i:i + 1], sd.condition(prompts[i], guidance=scales[i]))
        torch.testing.assert_close(batched[i:i + 1], alone, rtol=1e-4, atol=1e-5)

    x = _images(2)
    prompts, scales, image_scales = ["make it snowy", "make it red"], [1.0, 7.5], [1.5, 1.0]
    batched = ip2p.predict_eps(z[:2], t[:2], ip2p.condition(prompts, images=x, guidance=scales,
                                                             image_guidance=image_scales))
    for i in range(2):
        one = ip2p.condition(prompts[i], images=x[i:i + 1], guidance=scales[i], image_guidance=image_scales[i])
        alone = ip2p.predict_eps(z[i:i + 1], t[i:i + 1], one)
        torch.testing.assert_close(batched[i:i + 1], alone, rtol=1e-4, atol=1e-5)


def test_predict_eps_has_no_gradient_and_keeps_the_latents_dtype(sd):
    z = _latents(1).double().requires_grad_()
    eps = sd.predict_eps(z, 500, sd.condition("a cat"))
    assert eps.dtype == torch.float64 and not eps.requires_grad


def test_condition_refuses_mismatched_batches(sd, ip2p):
    with pytest.raises(ValueError, match="guidance scales"):
        sd.condition(["a", "b"], guidance=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="takes no images"):
        sd.condition("a", images=_images(1))
    with pytest.raises(ValueError, match="needs the source images"):
        ip2p.condition("a")
    with pytest.raises(ValueError, match="condition has batch 1"):
        sd.predict_eps(_latents(2), 500, sd.condition("a"))


# ---- sampling ----

def test_sample_returns_images_in_unit_range(sd, ip2p):
    out = sd.sample(["a cat", "a dog"], steps=3, height=64, width=48, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 64, 48) and out.min() >= 0 and out.max() <= 1
    again = sd.sample(["a cat", "a dog"], steps=3, height=64, width=48, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out, again)  # deterministic DDIM for a fixed generator
    edited = ip2p.sample("make it snowy", steps=2, images=_images(2, 32, 64), generator=torch.Generator().manual_seed(0))
    assert edited.shape == (2, 3, 32, 64) and edited.min() >= 0 and edited.max() <= 1


# ---- speed switches: the exact code paths CUDA runs, run here on a CPU ----

def _eps_inputs(prior):
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 4, 8, 8, generator=g)
    cond = prior.condition(["a red fox", "a blue bird"], guidance=7.5)
    return z, torch.tensor([100, 700]), cond


def _assert_close_to(out, ref):
    # tolerance relative to the values' magnitude: NHWC and fused kernels reorder sums, which any CPU may do
    scale = float(ref.abs().max())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.filterwarnings("ignore:UNet CUDA graphs are off")
@pytest.mark.parametrize("mode", ["channels_last", "graph", "compile"])
def test_every_accelerate_mode_gives_the_eager_noise_prediction(sd, mode):
    """torch.compile runs on a CPU too (inductor, C++): the same call CUDA makes, minus the CUDA graphs. "graph"
    runs the CUDA path's wrapper here, which falls back to the eager call (the graphs themselves: `python -m
    benchmarks.gpu_check` runs tests/test_cuda_graph.py's cuda tests)."""
    z, t, cond = _eps_inputs(sd)
    try:
        sd.accelerate("eager")
        ref = sd.predict_eps(z, t, cond)
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            switched = sd.accelerate(mode)
        assert "channels_last" in switched and (mode in switched or mode == "graph")
        _assert_close_to(sd.predict_eps(z, t, cond), ref)
        _assert_close_to(sd.predict_eps(z, t, cond), ref)  # the second call replays what the first one built
    finally:
        sd.accelerate("eager")


def test_a_compiled_unet_is_called_without_asking_its_truth_value(sd):
    """`compiled or unet` raised TypeError on every GPU run: a compiled module has no usable bool()."""
    z, t, cond = _eps_inputs(sd)
    sd.accelerate("eager")
    ref = sd.predict_eps(z, t, cond)

    class NoTruth:
        calls = 0

        def __init__(self, fn):
            self.fn = fn

        def __bool__(self):
            raise TypeError("a compiled module does not support len()")

        __len__ = __bool__

        def __call__(self, *args, **kwargs):
            NoTruth.calls += 1
            return self.fn(*args, **kwargs)

    try:
        sd._compiled_unet = NoTruth(sd.unet)
        _assert_close_to(sd.predict_eps(z, t, cond), ref)
        assert NoTruth.calls == 1
    finally:
        sd.accelerate("eager")


def test_accelerate_auto_stays_eager_on_a_cpu(sd):
    assert sd.accelerate("auto") == []


def test_graph_mode_on_a_cpu_calls_the_unet_through_the_graph_wrapper_and_warns_once(sd, monkeypatch):
    """The exact call CUDA makes (x, t, text positional into GraphedUNet) on a CPU: one warning naming why graphs
    are off, "cuda_graph" not claimed in the switches, and the eager numbers."""
    from backends.priors.cuda_graph import GraphedUNet

    monkeypatch.delenv("DISTILL_CUDA_GRAPHS", raising=False)
    z, t, cond = _eps_inputs(sd)
    try:
        sd.accelerate("eager")
        ref = sd.predict_eps(z, t, cond)
        assert sd.accelerate("graph") == ["channels_last"]
        assert isinstance(sd._graphed_unet, GraphedUNet) and "cuda_graph" not in sd.switches
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            out = sd.predict_eps(z, t, cond)
            again = sd.predict_eps(z, t, cond)
        graph_warnings = [w for w in seen if "CUDA graphs are off" in str(w.message)]
        assert len(graph_warnings) == 1 and "CUDA is not available" in str(graph_warnings[0].message)
        _assert_close_to(out, ref)
        torch.testing.assert_close(out, again, rtol=0, atol=0)
        assert sd._graphed_unet.replays == 0 and sd._graphed_unet.captures == 0
    finally:
        sd.accelerate("eager")


def test_switching_modes_replaces_the_speed_switches_and_keeps_the_memory_ones(sd):
    try:
        sd.switches[:] = ["attention_slicing"]
        sd.accelerate("channels_last")
        assert sd.switches == ["attention_slicing", "channels_last"]
        sd.accelerate("eager")
        assert sd.switches == ["attention_slicing"]
    finally:
        sd.switches[:] = []
        sd.accelerate("eager")


def test_auto_picks_graphs_on_cuda_unless_zero_gpu_or_switched_off(monkeypatch):
    from backends.priors import machine

    monkeypatch.delenv("DISTILL_ACCELERATE", raising=False)
    monkeypatch.delenv("DISTILL_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert machine.accelerate_mode("cuda") == "graph"
    assert machine.accelerate_mode("cpu") == "eager"
    assert machine.accelerate_mode("cuda", "compile") == "compile"  # compile only when asked
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert machine.accelerate_mode("cuda") == "eager"
    monkeypatch.delenv("SPACES_ZERO_GPU")
    monkeypatch.setenv("DISTILL_CUDA_GRAPHS", "0")
    assert machine.accelerate_mode("cuda") == "eager"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.delenv("DISTILL_CUDA_GRAPHS")
    assert machine.accelerate_mode("cuda") == "eager"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run `python -m benchmarks.gpu_check`")
@pytest.mark.parametrize("kind,batch", [("sd", 2), ("ip2p", 16)])  # ip2p at 16 frames: the 3B = 48 guided batch
def test_cuda_graph_mode_gives_the_eager_noise_prediction_within_fp16(offline_cache, monkeypatch, kind, batch):
    monkeypatch.delenv("DISTILL_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    prior = own_tiny(kind, device="cuda")
    g = torch.Generator().manual_seed(0)
    z = torch.randn(batch, 4, 8, 8, generator=g).cuda()
    t = torch.randint(20, 980, (batch,), generator=g).cuda()
    images = _images(batch, 64, 64).cuda() if kind == "ip2p" else None
    cond = prior.condition("a red fox", images=images, guidance=7.5)
    prior.accelerate("eager")
    ref = prior.predict_eps(z, t, cond)
    assert prior.accelerate("graph") == ["channels_last", "cuda_graph"] and "cuda_graph" in prior.switches
    first, second = prior.predict_eps(z, t, cond), prior.predict_eps(z + 0.1, t, cond)
    assert prior._graphed_unet.captures == 1 and prior._graphed_unet.replays == 2
    scale = float(ref.abs().max())
    torch.testing.assert_close(first, ref, rtol=1e-2, atol=1e-2 * scale)
    prior.accelerate("eager")
    torch.testing.assert_close(second, prior.predict_eps(z + 0.1, t, cond), rtol=1e-2, atol=1e-2 * scale)


@pytest.mark.parametrize("name", ["icons", "edits", "tiny-sd", "tiny-ip2p", "analytic", "analytic-edit"])
def test_the_catalogs_size_facts_are_the_loaded_priors_own(name):
    """The work budget sizes a run from the catalog entry before the prior loads: the entry must not guess."""
    from backends.priors import catalog, load_prior

    entry, prior = catalog.entry(name), load_prior(name, "cpu", "none")
    assert (entry.native_size, entry.latent_scale, entry.size_multiple) == (
        prior.native_size, prior.latent_scale, prior.size_multiple)


def test_a_sketch_at_its_defaults_with_the_icons_prior_is_not_refused_before_the_prior_loads(tmp_path, monkeypatch):
    """Before the catalog's facts, the check before loading sized every prior as Stable Diffusion (600 px canvas,
    2000 steps) and refused this run: "would take about 1.0 hours"."""
    from backends.core import runner

    class Loading(Exception):
        pass

    def load_prior(*args, **kwargs):  # the run got past every check made before loading
        raise Loading()

    monkeypatch.setattr(runner, "load_prior", load_prior)
    with pytest.raises(Loading):
        for _ in runner.run("svg/vectorfusion", {"prompt": "a cat", "style": "sketch"}, prior="icons",
                            out_dir=tmp_path, device="cpu"):
            pass


def test_per_row_broadcasts_one_text_and_refuses_a_count_that_fits_no_row():
    from backends.priors.base import per_row

    assert per_row("a", 3) == ["a", "a", "a"] and per_row(["a"], 2) == ["a", "a"]
    assert per_row(["a", "b"], 2) == ["a", "b"]
    with pytest.raises(ValueError, match="3 negative prompts for a batch of 2"):
        per_row(["a", "b", "c"], 2, "negative prompts")


def test_optional_capabilities_are_declared_protocols_that_the_priors_meet(sd):
    from backends.priors import load_prior
    from backends.priors.base import FastEncoding, PreviewDecoding, StartNotice, TaskDefaults, suggested_settings
    from backends.priors.cuda_graph import CAPTURE_STATUS

    edits, icons = load_prior("edits", "cpu"), load_prior("icons", "cpu")
    assert isinstance(sd, FastEncoding) and isinstance(sd, PreviewDecoding) and isinstance(sd, StartNotice)
    assert not any(isinstance(icons, p) for p in (FastEncoding, PreviewDecoding, StartNotice, TaskDefaults))
    # per-task suggestions refine the prior's defaults; a backend without a prior gets none
    assert isinstance(edits, TaskDefaults)
    pano = suggested_settings(edits, "panorama")
    assert pano["window"] == 64 and pano["steps"] == 200 and pano["t_max"] == edits.defaults["t_max"]
    assert suggested_settings(edits, "no-such-task") == edits.defaults
    assert suggested_settings(icons, "svg") == icons.defaults and suggested_settings(None, "svg") == {}
    # the capture notice shows only when the capture switch is on
    assert sd.start_notice() is None
    sd.switches.append("cuda_graph")
    try:
        assert sd.start_notice() == CAPTURE_STATUS
    finally:
        sd.switches.remove("cuda_graph")


def test_describe_decides_what_the_app_words(monkeypatch):
    """Per kind: the prior "auto" means, whether it is the real one and what the real one lacks; per prior: its
    role and whether a person may pick it here. The roles come from the catalog alone."""
    from backends.priors import describe

    monkeypatch.setenv("DISTILL_SD_MODEL", "/nowhere/sd15")
    facts = describe("cpu", "auto")
    text = facts["kinds"]["text"]
    assert (text["prior"], text["uses_real"]) == (catalog.first("text", "offline"), False) == ("icons", False)
    assert text["missing"][0] == "a CUDA GPU" and "/nowhere/sd15" in text["missing"][1]
    assert not text["weights"]["usable"] and not facts["tiny_asked"]
    offered = {n for n, p in facts["priors"].items() if p["offered"]}
    assert {"icons", "edits", "analytic"} <= offered and not offered & {"sd", "tiny-sd", "tiny-ip2p"}
    assert {n for n, p in facts["priors"].items() if p["tiny"]} == {"tiny-sd", "tiny-ip2p"}
    tiny_facts = describe("cpu", "tiny")
    assert tiny_facts["kinds"]["instruct"]["prior"] == "tiny-ip2p" and tiny_facts["kinds"]["instruct"]["missing"] == []
    assert tiny_facts["priors"]["tiny-sd"]["offered"] and tiny_facts["tiny_asked"]
    with pytest.raises(ValueError, match="prior mode"):
        describe("cpu", "huge")
