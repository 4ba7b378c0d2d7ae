"""benchmarks/eval_csd_edit.py runs end to end with tiny models: the tiny InstructPix2Pix prior and the project's
tiny random-weight CLIP (no weights are downloaded). LPIPS needs its package and downloaded AlexNet weights, which
a test machine may not have: these tests decide whether it is there (absent, or a stand-in distance) instead of
accepting either outcome."""
import builtins
import json
import math

import pytest

from backends.csd_edit import metrics
from backends.core.errors import ModelUnavailableError
from benchmarks import eval_csd_edit

LPIPS_MISSING = "The LPIPS distance needs the lpips package (a test without it)."


def lpips_missing(device="cpu"):
    raise ModelUnavailableError(LPIPS_MISSING)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_eval_script_measures_csd_edit_and_its_baselines_with_tiny_models(tmp_path, monkeypatch):
    """Without LPIPS every other metric is measured, and each row says why LPIPS is missing (never a silent gap)."""
    monkeypatch.setattr(metrics, "load_lpips", lpips_missing)
    rows = eval_csd_edit.main(["--prior", "tiny-ip2p", "--clip", "tiny",
                               "--quick", "--device", "cpu", "--no-record", "--json", str(tmp_path / "rows.json")])
    assert [r["backend"] for r in rows] == ["panorama/csd-edit", "panorama/per-patch", "video/csd-edit",
                                            "video/per-frame", "views3d/csd-edit", "views3d/per-view"]
    for r in rows:
        for key in ("clip_dir", "clip_consist", "residual_variation", "edit_strength"):
            assert math.isfinite(r[key]), (r["backend"], key)
        assert -1.0 <= r["clip_dir"] <= 1.0 and r["particles"] >= 2
        assert "lpips_nbr" not in r and r["lpips_note"] == LPIPS_MISSING
    assert all(line.split("|")[-3].strip() == "n/a" for line in eval_csd_edit.table(rows).splitlines()[2:])
    assert json.loads((tmp_path / "rows.json").read_text()) == rows


def test_lpips_neighbours_are_the_mean_distance_between_neighbouring_edited_particles(monkeypatch):
    """The LPIPS column is the given distance over the neighbour pairs, on the edited particles: a stand-in
    distance (mean absolute difference) takes the place of the network, whose weights cannot be fetched here."""
    seen = []

    def stand_in(device="cpu"):
        def distance(a, b):
            seen.append((a.shape, b.shape))
            return (a - b).abs().flatten(1).mean(1)
        return distance

    monkeypatch.setattr(metrics, "load_lpips", stand_in)
    rows = eval_csd_edit.main(["--prior", "edits", "--clip", "", "--quick", "--device", "cpu", "--no-record",
                               "--tasks", "video"])
    assert len(seen) == len(rows) == 2
    for r, (a, b) in zip(rows, seen):
        assert r["lpips_note"] == "" and 0.0 <= r["lpips_nbr"] <= 1.0
        assert a == b and a[0] == r["particles"] - 1  # the consecutive frames of a clip: N - 1 pairs
    assert [line.split("|")[-3].strip() for line in eval_csd_edit.table(rows).splitlines()[2:]] == [
        f"{r['lpips_nbr']:.4f}" for r in rows]


def test_lpips_without_its_package_is_unavailable_in_one_sentence(monkeypatch):
    real_import = builtins.__import__

    def no_lpips(name, *args, **kwargs):
        if name == "lpips":
            raise ImportError("No module named 'lpips'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lpips)
    with pytest.raises(ModelUnavailableError, match="needs the lpips package"):
        metrics.load_lpips("cpu")


def test_eval_with_the_edits_prior_uses_its_vocabulary_and_reports_panorama_colour_consistency(tmp_path):
    rows = eval_csd_edit.main(["--prior", "edits", "--clip", "", "--quick", "--device", "cpu", "--no-record",
                               "--tasks", "panorama,video"])
    assert [r["backend"] for r in rows] == ["panorama/csd-edit", "panorama/per-patch", "video/csd-edit",
                                            "video/per-frame"]
    for r in rows:
        assert math.isfinite(r["residual_variation"]) and r["edit_strength"] > 0 and r["seconds"] > 0
        assert ("colour_map_variation" in r) == (r["case"] == "panorama")
    assert "colour map variation" in eval_csd_edit.table(rows)


def test_seeds_average_the_runs_and_keep_each_seeds_residual_variation(tmp_path):
    args = ["--prior", "edits", "--clip", "", "--quick", "--device", "cpu", "--no-record", "--tasks", "views3d"]
    (one_csd, one_base) = eval_csd_edit.main(args)
    rows = eval_csd_edit.main(args + ["--seeds", "2"])
    for one, two in zip((one_csd, one_base), rows):
        assert two["seeds"] == 2 and len(two["residual_variation_per_seed"]) == 2
        assert two["residual_variation_per_seed"][0] == pytest.approx(one["residual_variation"])  # seed 0 is seed 0
        assert two["residual_variation"] == pytest.approx(sum(two["residual_variation_per_seed"]) / 2)
    assert f"({rows[0]['residual_variation_per_seed'][0]:.4f} / " in eval_csd_edit.table(rows)
