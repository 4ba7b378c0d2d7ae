"""benchmarks/eval_text_to_svg.py runs the paper's protocol end to end on tiny models (offline, seconds)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def eval_module():
    spec = importlib.util.spec_from_file_location("eval_text_to_svg", ROOT / "benchmarks" / "eval_text_to_svg.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_default_captions_exist(eval_module):
    caps = eval_module.read_captions(eval_module.DEFAULT_CAPTIONS)
    assert len(caps) >= 5 and all(not c.startswith("#") for c in caps)


def test_eval_reports_r_precision_and_clip_score_for_each_backend(eval_module, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISTILL_CLIP_MODEL", "tiny")
    captions = tmp_path / "captions.txt"
    captions.write_text("a fox\n# a comment\na red apple\n")
    sets = {"steps": "2", "paths": "4", "k": "2", "sample_steps": "2", "iters": "3", "live_size": "48",
            "every": "2"}
    rows = eval_module.evaluate(list(eval_module.DEFAULT_BACKENDS), eval_module.read_captions(captions),
                                prior="tiny-sd", clip_spec="tiny", sets=sets, out_dir=tmp_path / "out",
                                device="cpu")
    assert [r["backend"] for r in rows] == list(eval_module.DEFAULT_BACKENDS)
    for r in rows:
        assert r["n"] == 2 and 0.0 <= r["r_precision"] <= 1.0 and r["r_precision"] in (0.0, 0.5, 1.0)
        assert -100.0 <= r["clip_score"] <= 100.0
        assert len(r["similarity"]) == 2 and len(r["similarity"][0]) == 2
    assert "svg/csd" in eval_module.table(rows, "tiny")


def test_eval_cli_prints_the_table_without_touching_results(eval_module, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DISTILL_CLIP_MODEL", "tiny")
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_text() if results.exists() else None
    captions = tmp_path / "captions.txt"
    captions.write_text("a fox\na cat\n")
    rc = eval_module.main(["--prior", "tiny-sd", "--clip", "tiny", "--backends", "svg/vectorfusion",
                           "--captions", str(captions), "--set", "steps=1", "--set", "paths=2", "--device", "cpu",
                           "--out", str(tmp_path / "o"), "--no-append"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "| svg/vectorfusion |" in out and "R-precision" in out
    assert (results.read_text() if results.exists() else None) == before
