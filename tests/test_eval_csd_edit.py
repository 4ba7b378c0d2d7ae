"""benchmarks/eval_csd_edit.py runs end to end with tiny models: the tiny InstructPix2Pix prior and the project's
tiny random-weight CLIP (no weights are downloaded)."""
import json
import math

import pytest
import torch

from benchmarks import eval_csd_edit

@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread (two spin-wait each other on a busy two-core machine); restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_eval_script_measures_csd_edit_and_its_baselines_with_tiny_models(tmp_path):
    rows = eval_csd_edit.main(["--prior", "tiny-ip2p", "--clip", "tiny",
                               "--quick", "--device", "cpu", "--no-record", "--json", str(tmp_path / "rows.json")])
    assert [r["backend"] for r in rows] == ["panorama/csd-edit", "panorama/per-patch", "video/csd-edit",
                                            "video/per-frame", "views3d/csd-edit", "views3d/per-view"]
    for r in rows:
        for key in ("clip_dir", "clip_consist", "residual_variation", "edit_strength"):
            assert math.isfinite(r[key]), (r["backend"], key)
        assert -1.0 <= r["clip_dir"] <= 1.0 and r["particles"] >= 2
        assert "lpips_nbr" in r or r["lpips_note"]  # LPIPS when available, else a sentence saying why not
    assert json.loads((tmp_path / "rows.json").read_text()) == rows


def test_eval_with_the_edits_prior_uses_its_vocabulary_and_reports_panorama_colour_consistency(tmp_path):
    rows = eval_csd_edit.main(["--prior", "edits", "--clip", "", "--quick", "--device", "cpu", "--no-record",
                               "--tasks", "panorama,video"])
    assert [r["backend"] for r in rows] == ["panorama/csd-edit", "panorama/per-patch", "video/csd-edit",
                                            "video/per-frame"]
    for r in rows:
        assert math.isfinite(r["residual_variation"]) and r["edit_strength"] > 0 and r["seconds"] > 0
        assert ("residual_colour_variation" in r) == (r["case"] == "panorama")
    assert "residual colour variation" in eval_csd_edit.table(rows)


def test_seeds_average_the_runs_and_keep_each_seeds_residual_variation(tmp_path):
    args = ["--prior", "edits", "--clip", "", "--quick", "--device", "cpu", "--no-record", "--tasks", "views3d"]
    (one_csd, one_base) = eval_csd_edit.main(args)
    rows = eval_csd_edit.main(args + ["--seeds", "2"])
    for one, two in zip((one_csd, one_base), rows):
        assert two["seeds"] == 2 and len(two["residual_variation_per_seed"]) == 2
        assert two["residual_variation_per_seed"][0] == pytest.approx(one["residual_variation"])  # seed 0 is seed 0
        assert two["residual_variation"] == pytest.approx(sum(two["residual_variation_per_seed"]) / 2)
    assert f"({rows[0]['residual_variation_per_seed'][0]:.4f} / " in eval_csd_edit.table(rows)
