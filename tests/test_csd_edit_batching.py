"""CSD-Edit's VAE calls: all latents in one call by default (a GPU is launch-bound at 4 a call), halved only when
the GPU runs out of memory, with the same images either way; previews take the prior's fast decoder if it has one."""
from pathlib import Path

import pytest
import torch

import backends
from backends.csd_edit import csd


class CountingPrior:
    """decode = a fixed per-row map; raises CUDA's out-of-memory error above `fits` rows a call."""

    def __init__(self, fits: int = 1 << 30):
        self.fits, self.calls = fits, []

    def decode(self, z):
        self.calls.append(z.shape[0])
        if z.shape[0] > self.fits:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return torch.sigmoid(z[:, :3].repeat_interleave(8, -1).repeat_interleave(8, -2))

    def encode(self, x, mode="sample"):
        assert mode == "mean"
        self.calls.append(x.shape[0])
        return x[:, :3, ::8, ::8] * 2


def latents(n=10):
    return torch.randn(n, 4, 4, 4, generator=torch.Generator().manual_seed(0))


def test_decode_makes_one_call_for_all_latents_by_default():
    prior = CountingPrior()
    out = csd.decode(prior, latents(10))
    assert prior.calls == [10] and out.shape == (10, 3, 32, 32)


def test_decode_halves_the_batch_on_out_of_memory_and_gives_the_same_images():
    z = latents(10)
    reference = csd.decode(CountingPrior(), z)
    prior = CountingPrior(fits=3)
    out = csd.decode(prior, z)
    assert prior.calls[:3] == [10, 5, 2] and set(prior.calls[3:]) == {2}
    torch.testing.assert_close(out, reference, rtol=0, atol=0)


def test_out_of_memory_at_one_latent_a_call_is_not_swallowed():
    with pytest.raises(torch.cuda.OutOfMemoryError):
        csd.decode(CountingPrior(fits=0), latents(3))


def test_encode_is_batched_the_same_way():
    prior = CountingPrior()
    x = torch.rand(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    out = csd.encode(prior, x, batch=4)
    assert prior.calls == [4, 2] and out.shape == (6, 3, 2, 2)
    torch.testing.assert_close(out, x[:, :, ::8, ::8] * 2)


def test_previews_use_the_priors_preview_decoder_when_it_has_one():
    prior = CountingPrior()
    assert csd.decode_preview(prior, latents(2)).shape == (2, 3, 32, 32)  # no preview decoder: decode
    prior.preview_decoder = lambda: (lambda z: torch.zeros(z.shape[0], 3, 5, 5))
    assert csd.decode_preview(prior, latents(2)).shape == (2, 3, 5, 5)


@pytest.mark.parametrize("key, inputs", [("video/csd-edit", ["video/rolling_ball.mp4"]),
                                         ("views3d/csd-edit", ["views3d/view_00.png", "views3d/view_01.png"])])
def test_live_previews_of_frames_and_views_go_through_the_preview_decoder(tmp_path, monkeypatch, key, inputs):
    examples = Path(__file__).resolve().parents[1] / "examples"
    calls = []
    real = csd.decode_preview

    def counted(prior, z, batch=0):
        calls.append(z.shape[0])
        return real(prior, z, batch)

    monkeypatch.setattr(csd, "decode_preview", counted)
    backends.run_to_end(key, {"prompt": "make it winter", "steps": 4, "every": 2, "short_side": 32}, prior="edits",
                        inputs=[str(examples / p) for p in inputs], out_dir=tmp_path, device="cpu")
    assert len(calls) >= 2  # a preview every 2 of 4 steps, each through the preview decoder
