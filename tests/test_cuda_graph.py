"""GraphedUNet: the eager fallback (exact), the graph cache's keys and LRU, the env switches, and, on a CUDA GPU,
graph replay against the eager call."""
import warnings

import pytest
import torch

from backends.priors.cuda_graph import GraphCache, GraphedUNet, as_timesteps, disabled_reason, signature

NEEDS_CUDA = "needs a CUDA GPU: run `python -m benchmarks.gpu_check`"


def tiny_unet(in_channels: int = 4, device="cpu", dtype=torch.float32):
    """A UNet2DConditionModel of SD's structure, tiny (like backends/engine/priors/tiny.py), random weights."""
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(16, 32),
                                layers_per_block=1, down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=8)
    return unet.to(device, dtype).eval().requires_grad_(False)


def inputs(batch: int, channels: int = 4, device="cpu", dtype=torch.float32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, channels, 8, 8, generator=g).to(device, dtype)
    t = torch.randint(0, 1000, (batch,), generator=g).to(device)
    text = torch.randn(batch, 7, 16, generator=g).to(device, dtype)
    return x, t, text


@pytest.fixture
def graphs_allowed(monkeypatch):
    monkeypatch.delenv("DISTILL_CUDA_GRAPHS", raising=False)
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)


# ---- the fallback ----
def test_fallback_on_cpu_returns_exactly_the_eager_result_and_warns_once(graphs_allowed):
    unet = tiny_unet()
    graphed = GraphedUNet(unet)
    x, t, text = inputs(2)
    with torch.no_grad():
        expected = unet(x, t, encoder_hidden_states=text, return_dict=False)[0]
    with pytest.warns(UserWarning, match="running the UNet eagerly"):
        first = graphed(x, t, text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second warning would raise here
        second = graphed(x, t, text)
    assert torch.equal(first, expected) and torch.equal(second, expected)
    assert not graphed.enabled and graphed.captures == 0 and len(graphed.graphs) == 0


def test_fallback_takes_a_python_number_as_timestep_like_the_unet(graphs_allowed):
    unet = tiny_unet()
    x, _, text = inputs(2)
    with torch.no_grad():
        expected = unet(x, 500, encoder_hidden_states=text, return_dict=False)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(GraphedUNet(unet)(x, 500, text), expected)


def test_instruct_pix2pix_shaped_call_falls_back_to_the_eager_result(graphs_allowed):
    unet = tiny_unet(in_channels=8)
    x, t, text = inputs(3, channels=8)  # batch 3B with B = 1: [full, image, uncond]
    with torch.no_grad():
        expected = unet(x, t, encoder_hidden_states=text, return_dict=False)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert torch.equal(GraphedUNet(unet)(x, t, text), expected)


class NoTruthModule(torch.nn.Module):
    """A module whose truthiness and len() raise, as a compiled module's could (the `compiled or unet` bug)."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0), requires_grad=False)

    def forward(self, x, t, encoder_hidden_states=None, return_dict=True):
        return (x * self.scale + t.reshape(-1, 1, 1, 1) + encoder_hidden_states.mean(),)

    def __bool__(self):
        raise TypeError("truthiness of the wrapped module was asked")

    def __len__(self):
        raise TypeError("len() of the wrapped module was asked")


def test_wrapper_refuses_its_own_truthiness_and_never_asks_the_wrapped_modules(graphs_allowed):
    graphed = GraphedUNet(NoTruthModule())
    with pytest.raises(TypeError, match="is None"):
        bool(graphed)
    with pytest.raises(TypeError):
        _ = graphed or None  # the pattern that broke before must fail here, loudly, not on a GPU later
    x, t, text = inputs(2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = graphed(x, t, text)
    assert torch.equal(out, x * 2.0 + t.reshape(-1, 1, 1, 1) + text.mean())
    assert "eager" in repr(graphed)


# ---- the switches ----
def test_env_switch_and_zero_gpu_turn_graphs_off(monkeypatch, graphs_allowed):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the switches must win even with a GPU
    assert disabled_reason("cuda") is None
    monkeypatch.setenv("DISTILL_CUDA_GRAPHS", "0")
    assert "DISTILL_CUDA_GRAPHS=0" in disabled_reason("cuda")
    assert not GraphedUNet(NoTruthModule()).enabled
    monkeypatch.setenv("DISTILL_CUDA_GRAPHS", "1")
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    assert "ZeroGPU" in disabled_reason("cuda")
    monkeypatch.setenv("SPACES_ZERO_GPU", "0")
    assert disabled_reason("cuda") is None


def test_no_cuda_or_cpu_inputs_turn_graphs_off(monkeypatch, graphs_allowed):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert disabled_reason() == "CUDA is not available"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert "cpu" in disabled_reason("cpu")
    graphed = GraphedUNet(NoTruthModule())
    assert graphed.enabled  # CUDA "available": the wrapper only learns at the first call that inputs are on the CPU
    x, t, text = inputs(2)
    with pytest.warns(UserWarning, match="not a CUDA device"):
        graphed(x, t, text)
    assert not graphed.enabled


# ---- keys and the LRU ----
def test_signature_separates_shapes_dtypes_and_memory_formats():
    x, t, text = inputs(2)
    key = signature(x, t, text)
    assert signature(x.clone(), t.clone(), text.clone()) == key  # values do not matter
    x4, t4, text4 = inputs(4)
    assert signature(x4, t4, text4) != key  # batch (text 2B vs instruct 3B)
    assert signature(x.double(), t, text.double()) != key
    assert signature(x.contiguous(memory_format=torch.channels_last), t, text) != key
    assert signature(x, as_timesteps(7, x), text) == key  # a number becomes the same (B,) integer tensor


def test_as_timesteps_expands_one_and_refuses_a_wrong_count():
    x = torch.zeros(3, 4, 8, 8)
    assert as_timesteps(5, x).tolist() == [5, 5, 5]
    assert as_timesteps(torch.tensor([9]), x).tolist() == [9, 9, 9]
    assert as_timesteps(torch.tensor([1, 2, 3]), x).tolist() == [1, 2, 3]
    with pytest.raises(ValueError, match="one per sample"):
        as_timesteps(torch.tensor([1, 2]), x)


def test_graph_cache_forgets_the_least_recently_used_beyond_its_size():
    cache = GraphCache(max_size=2)
    assert cache.put("a", 1) == [] and cache.put("b", 2) == []
    assert cache.get("a") == 1  # "a" is now the most recent
    assert cache.put("c", 3) == ["b"]
    assert cache.keys() == ["a", "c"] and cache.get("b") is None
    assert cache.put("a", 10) == [] and cache.get("a") == 10 and len(cache) == 2
    with pytest.raises(ValueError):
        GraphCache(max_size=0)


# ---- on a GPU ----
@pytest.mark.skipif(not torch.cuda.is_available(), reason=NEEDS_CUDA)
def test_cuda_graph_replay_matches_eager_on_cuda(graphs_allowed):
    unet = tiny_unet(device="cuda", dtype=torch.float16)
    graphed = GraphedUNet(unet, max_graphs=2)
    for batch, seed in ((2, 1), (2, 2), (4, 3)):  # a second replay with new inputs, then a second shape
        x, t, text = inputs(batch, device="cuda", dtype=torch.float16, seed=seed)
        out = graphed(x, t, text)
        expected = graphed.eager(x, t, text)
        torch.testing.assert_close(out, expected, atol=2e-2, rtol=2e-2)  # fp16 tolerance
    assert graphed.enabled and graphed.captures == 2 and graphed.replays == 3
    kept = graphed(*inputs(2, device="cuda", dtype=torch.float16, seed=4))
    assert kept.data_ptr() != graphed.graphs.get(graphed.graphs.keys()[-1]).output.data_ptr()  # a clone
    assert graphed.captures == 2  # batch 2 was still cached


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NEEDS_CUDA)
def test_cuda_graph_of_an_instruct_pix2pix_unet_matches_eager_on_cuda(graphs_allowed):
    unet = tiny_unet(in_channels=8, device="cuda", dtype=torch.float16)
    graphed = GraphedUNet(unet, max_graphs=1)
    for batch in (3, 6, 3):  # with one slot, going back to batch 3 recaptures
        x, t, text = inputs(batch, channels=8, device="cuda", dtype=torch.float16, seed=batch)
        torch.testing.assert_close(graphed(x, t, text), graphed.eager(x, t, text), atol=2e-2, rtol=2e-2)
    assert graphed.captures == 3 and len(graphed.graphs) == 1


class HostSyncModule(NoTruthModule):
    def forward(self, x, t, encoder_hidden_states=None, return_dict=True):
        if float(x.abs().max()) > 1e9:  # a host sync: not capturable
            x = x.clamp(-1e9, 1e9)
        return super().forward(x, t, encoder_hidden_states, return_dict)


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NEEDS_CUDA)
def test_cuda_capture_failure_falls_back_to_the_eager_result_once(graphs_allowed):
    graphed = GraphedUNet(HostSyncModule().cuda())
    x, t, text = inputs(2, device="cuda")
    with pytest.warns(UserWarning, match="capturing the UNet call failed"):
        out = graphed(x, t, text)
    assert torch.equal(out, graphed.eager(x, t, text)) and not graphed.enabled
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphed(x, t, text)


@pytest.mark.parametrize("zero_gpu, graphs", [("yes", "1"), ("on", "1"), ("1", "off"), ("", "false")])
def test_the_switches_read_the_words_every_other_switch_reads(monkeypatch, graphs_allowed, zero_gpu, graphs):
    # the same yes and no words as DISTILL_SHARE, HF_HUB_OFFLINE and the machine's own ZeroGPU check
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("SPACES_ZERO_GPU", zero_gpu)
    monkeypatch.setenv("DISTILL_CUDA_GRAPHS", graphs)
    assert disabled_reason("cuda") is not None
    monkeypatch.setenv("SPACES_ZERO_GPU", "no")
    monkeypatch.setenv("DISTILL_CUDA_GRAPHS", "yes")
    assert disabled_reason("cuda") is None
