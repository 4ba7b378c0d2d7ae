"""gpu_check's speed section (issue 14): every figure has its row even when the budget ran out, and the table and the
results.jsonl rows put each accelerated figure beside its eager one. (The figures themselves run in gpu_check's
--quick test, tests/test_gpu_check.py, and on a GPU in `python -m benchmarks.gpu_check`.)"""
import torch

from benchmarks import gpu_check

WHAT = ["renderer 16 paths", "renderer 128 paths", "text-to-SVG step kl", "text-to-SVG step fast",
        "svg/csd K candidates", "text-to-SVG init", "fast encoder fidelity", "CSD-Edit 8 frames", "CSD-Edit 16 frames",
        "CSD-Edit panorama"]


def test_over_budget_every_speed_figure_is_a_not_run_row(tmp_path):
    rows = gpu_check.speed_rows(torch.device("cpu"), True, lambda m: None, tmp_path, deadline=0.0)
    assert [r["what"] for r in rows] == WHAT
    assert all(r["error"].startswith("not run") and r["base_ms"] is None for r in rows)


def test_table_and_result_rows_put_the_eager_figure_beside_the_accelerated_one():
    row = dict(what="CSD-Edit 16 frames", base_label="eager", base_ms=280.0, fast_label="graph", fast_ms=110.0,
               target_ms=120.0, peak_gib=9.5, note=None, error=None)
    table = gpu_check.speed_table([row])
    assert "| CSD-Edit 16 frames | eager 280.0 | graph 110.0 | 120 | 9.50 |" in table
    metrics = {r["metric"]: r["value"] for r in gpu_check.speed_result_rows([row])}
    assert metrics == {"speed/CSD-Edit 16 frames/eager": 280.0, "speed/CSD-Edit 16 frames/graph": 110.0}
