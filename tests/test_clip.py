"""The CLIP scorer: tiny random-weight model offline, scores, reranking, R-precision, directional similarity."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from backends.measures import clip
from backends.core.errors import ModelUnavailableError


@pytest.fixture(scope="module")
def tiny():
    return clip.tiny_clip(seed=0)


def test_tiny_clip_is_built_offline_deterministic_and_labelled(tiny):
    images = torch.rand(3, 3, 40, 56)
    again = clip.tiny_clip(seed=0)
    assert torch.equal(tiny.similarity(images, ["a fox", "a cat"]), again.similarity(images, ["a fox", "a cat"]))
    other = clip.tiny_clip(seed=1)
    assert not torch.equal(tiny.embed_texts("a fox"), other.embed_texts("a fox"))
    assert tiny.random_weights and tiny.label()["clip_random_weights"] is True and "clip_note" in tiny.label()


def test_embeddings_are_unit_vectors_and_scores_are_cosines(tiny):
    img = tiny.embed_images(torch.rand(2, 3, 32, 32))
    txt = tiny.embed_texts(["a fox", "a red apple", "a lighthouse at night"])
    assert img.shape == (2, 32) and txt.shape == (3, 32)
    assert torch.allclose(img.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(txt.norm(dim=-1), torch.ones(3), atol=1e-5)
    sim = tiny.similarity(torch.rand(2, 3, 32, 32), ["a", "b", "c"])
    assert sim.shape == (2, 3) and (sim.abs() <= 1 + 1e-5).all()


def test_score_accepts_tensors_and_uint8_arrays_alike(tiny):
    x = torch.rand(2, 3, 24, 24)
    arr = (x.permute(0, 2, 3, 1).numpy() * 255 + 0.5).astype(np.uint8)
    a = tiny.score(x, "a fox")
    b = tiny.score(arr, "a fox")
    assert a.shape == (2,) and torch.allclose(a, b, atol=2e-2)
    with pytest.raises(ValueError):
        tiny.score(x, ["one", "two", "three"])


def test_rerank_puts_the_highest_score_first(tiny):
    images = torch.rand(5, 3, 32, 32)
    order, scores = clip.rerank(images, "a fox", model=tiny)
    assert sorted(order) == list(range(5))
    assert [float(scores[i]) for i in order] == sorted(scores.tolist(), reverse=True)
    assert torch.allclose(scores, clip.clip_score(images, "a fox", model=tiny))


def test_r_precision_counts_rows_whose_best_caption_is_their_own():
    sim = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.1, 0.3], [0.0, 0.1, 0.5]])
    assert clip.r_precision(sim, [0, 1, 2]) == pytest.approx(2 / 3)
    assert clip.r_precision(sim, torch.tensor([0, 2, 2])) == pytest.approx(1.0)


class _FakeScorer:
    """Embeddings chosen by hand, to check the directional-similarity formula."""

    def __init__(self, images: dict, texts: dict):
        self.images, self.texts = images, texts

    def embed_images(self, key):
        return torch.nn.functional.normalize(torch.tensor(self.images[key], dtype=torch.float32), dim=-1)

    def embed_texts(self, text):
        return torch.nn.functional.normalize(torch.tensor([self.texts[text]], dtype=torch.float32), dim=-1)


def test_directional_similarity_follows_the_caption_change():
    fake = _FakeScorer({"src": [[1.0, 0.0], [1.0, 0.0]], "edit": [[0.0, 1.0], [1.0, -1.0]]},
                       {"a photo": [1.0, 0.0], "a painting": [0.0, 1.0]})
    d = clip.directional_similarity("src", "edit", "a photo", "a painting", model=fake)
    # image 0 moved exactly along the text direction (cos = 1); image 1 moved partly against it
    assert d[0] == pytest.approx(1.0, abs=1e-5)
    assert float(d[1]) < 0
    same = clip.directional_similarity("src", "src", "a photo", "a painting", model=fake)
    assert torch.allclose(same, torch.zeros(2))  # no change in the image: no credit


def test_directional_similarity_runs_on_the_tiny_model(tiny):
    src, edit = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    d = clip.directional_similarity(src, edit, "a photo of a dog", "a painting of a dog", model=tiny)
    assert d.shape == (2,) and torch.isfinite(d).all()


def test_load_clip_never_downloads_and_says_how_to_get_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(clip, "_cached_weights", lambda name, pretrained: None)
    with pytest.raises(ModelUnavailableError, match="not on this machine"):
        clip.load_clip("ViT-B-16", "openai", device="cpu")
    with pytest.raises(ModelUnavailableError, match="unknown CLIP architecture"):
        clip.load_clip("no-such-model", "openai", device="cpu")


def test_default_clip_falls_back_to_the_tiny_model_offline(monkeypatch):
    monkeypatch.setattr(clip, "_default", {})
    monkeypatch.delenv(clip.ENV, raising=False)
    monkeypatch.setattr(clip, "_cached_weights", lambda name, pretrained: None)
    scorer = clip.default_clip("cpu")
    assert scorer.random_weights
    monkeypatch.setattr(clip, "_default", {})
    monkeypatch.setenv(clip.ENV, "tiny")
    assert clip.default_clip("cpu").random_weights
    assert clip.get_clip("tiny").random_weights
