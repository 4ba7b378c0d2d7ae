"""What running a grid costs beyond its cells (issue 24): a 10-prompt x 2-method x 2-seed text-to-SVG grid on the
offline icons prior (svg/vectorfusion and svg/raster-then-vectorize at their defaults, the prompts the object
class of `eval_icons.VISITOR_PROMPTS`), run by `backends.compare.run_grid` on the local executor, one worker.

    python -m benchmarks.compare_grid [--out DIR] [--steps N] [--threads N] [--no-record]

grid wall s       from calling run_grid to its last event, in this process: the budget check of every cell, the
                  cells, the report rewritten after each (icons judge included) and the checks of what is done
cells s           the sum of the cells' own total_s (result.json: the run from its start, loading included)
overhead          wall / cells - 1 (the target: at most 10 %)
threads           torch threads: each run's own choice (`backends.core.devices.choose_threads`, recorded in its
                  result.json) unless --threads sets them for every run
rerun             the same spec again: every cell found done, nothing run; its wall seconds (reading 40
                  result.json files and writing the report, judging included)

Prints the table and appends it to benchmarks/RESULTS.md (the device named) unless --no-record.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from backends.compare import parse_spec, run_grid

from .eval_icons import VISITOR_PROMPTS

METHODS = ("svg/vectorfusion", "svg/raster-then-vectorize")
SEEDS = (0, 1)


def spec_data(out: Path, steps: int | None) -> dict:
    prompts = [p for p, _ in VISITOR_PROMPTS["object"]][:10]
    settings = {"steps": steps} if steps else {}
    return {"out": str(out), "prompts": prompts, "seeds": list(SEEDS), "priors": ["icons"], "device": "cpu",
            "backends": [{"name": METHODS[0], "settings": settings}, {"name": METHODS[1]}]}


def timed_grid(spec) -> tuple[float, list]:
    t0 = time.perf_counter()
    events = []
    for ev in run_grid(spec):
        events.append(ev)
        if ev.kind in ("done", "failed"):
            print(f"[{ev.done}/{ev.total}] {ev.cell.label} · {ev.cell.item} · seed {ev.cell.seed}: "
                  f"{ev.message}", flush=True)
    return time.perf_counter() - t0, events


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="the grid's folder (default: a fresh temporary one)")
    ap.add_argument("--steps", type=int, default=None, help="svg/vectorfusion's steps (default: the prior's, 200)")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads of every run (default: each run's own, from the free cores)")
    ap.add_argument("--no-record", action="store_true", help="print only; RESULTS.md is left alone")
    args = ap.parse_args(argv)
    if args.threads is not None:
        os.environ["DISTILL_THREADS"] = str(args.threads)  # what every run's thread policy obeys
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="compare-grid-")) / "out"
    spec = parse_spec(spec_data(out, args.steps), name="compare_grid")
    assert len(spec.cells) == 40, len(spec.cells)

    wall, events = timed_grid(spec)
    end = events[-1]
    rows = {r["cell"]: r for r in _table(out)}
    cells_s = sum(r["seconds"] for r in rows.values() if r["seconds"] is not None)
    rerun_wall, rerun_events = timed_grid(parse_spec(spec_data(out, args.steps), name="compare_grid"))
    rerun = rerun_events[-1]

    lines = ["| run | cells | run now | failed | grid wall s | cells s (sum) | overhead |", "|---|---|---|---|---|---|---|",
             f"| first | {end.total} | {end.ran} | {end.failed} | {wall:.1f} | {cells_s:.1f} | "
             f"{100 * (wall / cells_s - 1):.1f} % |",
             f"| again (all done) | {rerun.total} | {rerun.ran} | {rerun.failed} | {rerun_wall:.2f} | 0 | - |", "",
             "| method | cells done | s per cell (mean ± std) | loading in the first cell, s | icons judge |",
             "|---|---|---|---|---|"]
    record = [{"metric": "grid_wall_s", "value": round(wall, 2), "unit": "s"},
              {"metric": "cells_sum_s", "value": round(cells_s, 2), "unit": "s"},
              {"metric": "overhead", "value": round(100 * (wall / cells_s - 1), 2), "unit": "%"},
              {"metric": "rerun_wall_s", "value": round(rerun_wall, 2), "unit": "s"},
              {"metric": "rerun_cells_run", "value": rerun.ran, "unit": "cells"}]
    for method in METHODS:
        rs = [r for r in rows.values() if r["method"] == method and r["status"] == "done"]
        secs = [r["seconds"] for r in rs]
        shown = [r.get("icon_shown", 0.0) for r in rs]
        lines.append(f"| {method} | {len(rs)} | {statistics.fmean(secs):.2f} ± {statistics.stdev(secs):.2f} | "
                     f"{max(r['load_s'] for r in rs):.1f} | {100 * statistics.fmean(shown):.0f} % |")
        record += [{"metric": f"seconds_per_cell/{method}", "value": round(statistics.fmean(secs), 3), "unit": "s"},
                   {"metric": f"icons_judge/{method}", "value": round(statistics.fmean(shown), 3), "unit": "share"}]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        from .common import append_results, device_name

        steps = f"vectorfusion {args.steps} steps" if args.steps else "defaults"
        append_results(f"compare_grid (10 prompts x 2 methods x 2 seeds, icons prior, {steps}, local, 1 worker, "
                       + (f"{args.threads} torch threads" if args.threads else "torch threads by the policy") + ")",
                       table, record, device=device_name("cpu"),
                       notes=["`python -m benchmarks.compare_grid`: the grid's wall time from run_grid's call to its "
                              "last event against the sum of its cells' result.json total_s (the overhead: budget "
                              "checks, the report rewritten after every cell with the icons judge, the done-checks); "
                              "then the same spec again, which runs nothing."])


def _table(out: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (out / "table.jsonl").read_text().splitlines()]


if __name__ == "__main__":
    main()
