"""benchmarks/eval_icons.py runs end to end on the icons prior (few prompts, few steps) and measures what it says."""
import json

import numpy as np
import pytest
import torch

from benchmarks import eval_icons


@pytest.fixture(autouse=True)
def offline_clip(monkeypatch):
    monkeypatch.setenv("DISTILL_CLIP_MODEL", "tiny")  # the backends' reranker: no weights to look for


def test_prompts_are_distinct_deterministic_captions_with_their_article():
    captions = ["red apple", "red apple", "umbrella", "ice cream cone", "grinning face", "a1 b2", "slice of pizza"]
    prompts = eval_icons.choose_prompts(captions, 3)
    assert prompts == ["a red apple", "an ice cream cone", "a slice of pizza"]
    with pytest.raises(SystemExit, match="only 3 captions"):
        eval_icons.choose_prompts(captions, 4)


def test_nearest_icon_of_a_shipped_icon_drawn_as_svg_is_that_icon(tmp_path):
    icons = eval_icons.Icons()
    i = 100
    img = (icons.images[i].reshape(3, 64, 64).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    rects = "".join(f'<rect x="{x}" y="{y}" width="1" height="1" fill="#{r:02x}{g:02x}{b:02x}"/>'
                    for y in range(64) for x in range(64) for r, g, b in [img[y, x]])
    svg = tmp_path / "icon.svg"
    svg.write_text(f'<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64" shape-rendering="crispEdges">{rects}</svg>')
    assert icons.captions[icons.nearest(eval_icons.rasterize(svg))] == icons.captions[i]


def test_pairwise_distance_is_zero_for_copies_and_grows_with_difference():
    a = np.zeros((2, 12), np.float32)
    assert eval_icons.pairwise_rms(a) == 0.0
    b = np.stack([np.zeros(12), np.ones(12), np.ones(12)]).astype(np.float32)
    assert eval_icons.pairwise_rms(b) == pytest.approx(2 / 3)


def test_quick_eval_reports_recognition_diversity_and_seconds_for_each_backend(tmp_path):
    torch.set_num_threads(1)
    res = eval_icons.main(["--quick", "--no-record", "--json", str(tmp_path / "res.json")])
    assert [r["backend"] for r in res["rows"]] == list(eval_icons.BACKENDS)
    for r in res["rows"]:
        assert r["n"] == 2 and 0.0 <= r["recognition"] <= 1.0 and r["seconds_mean"] > 0 and r["cpu_seconds_mean"] > 0
        assert len(r["misses"]) == round(2 * (1 - r["recognition"]))
    (d,) = res["diversity"]
    assert d["matching_icons"] >= 4 and 1 <= d["csd_distinct"] <= 4 and 1 <= d["independent_distinct"] <= 4
    assert d["csd_pairwise"] > 0 and d["independent_pairwise"] > 0  # candidates that differ at all
    assert json.loads((tmp_path / "res.json").read_text()) == res
    merged = eval_icons.main(["--no-record", "--merge", str(tmp_path / "res.json")])
    assert merged == res


def test_visitor_eval_scores_each_class_and_writes_a_contact_sheet(tmp_path):
    res = eval_icons.main(["--visitors", "--quick", "--no-record", "--sheet", str(tmp_path / "sheet.png"),
                           "--json", str(tmp_path / "res.json")])
    rows = res["visitors"]
    assert [r["class"] for r in rows] == [*eval_icons.VISITOR_PROMPTS, "composed", "sketch"]
    for r in rows:
        assert r["seconds"] > 0 and r["first_preview_s"] <= r["seconds"] and 0 <= r["coverage"] <= 1
        if r["judge"] == "windows":  # a composition: every thing by its best windows (judges.composed)
            assert r["recognized"] == all(not part.endswith(": -") for part in r["nearest"].split("; "))
        else:  # one thing: the nearest icon (a sketch: the nearest outline, judges.sketch_icon) carries it
            assert r["judge"] == ("outline" if r["class"] == "sketch" else "nearest")
            assert r["recognized"] == eval_icons.wanted(r["nearest"], r["want"])
    from PIL import Image

    assert Image.open(tmp_path / "sheet.png").size == (6 * 160, 2 * 188)
    assert json.loads((tmp_path / "res.json").read_text()) == res


def test_wanted_main_object_and_pale_canvas_measures():
    assert eval_icons.wanted("red apple", "red apple") and not eval_icons.wanted("green apple", "red apple")
    assert eval_icons.wanted("speech balloon", "balloon") and not eval_icons.wanted("speech balloon", "=balloon")
    blank = np.ones(3 * 64 * 64, np.float32)
    assert eval_icons.canvas_stats(blank) == (0.0, 0.0)
    half = blank.reshape(3, 64, 64).copy()
    half[:, :, :32] = 0.0
    coverage, contrast = eval_icons.canvas_stats(half.reshape(-1))
    assert coverage == 0.5 and contrast == pytest.approx(0.5)
