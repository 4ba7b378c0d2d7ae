"""A grid on Ray beside busy processes, at Ray's worker priority and at the driver's (issue 35).

Ray starts its workers at nice 15 so that its own daemons stay responsive; a grid's cell is the whole of the work,
and at nice 15 a busy process beside it takes nearly all of its core. `backends.compare.executors` starts its
actors at nice 0 (`AT_DRIVER_PRIORITY`). This runs the README's grid (2 prompts x 2 methods x 2 seeds, the
icons prior, vectorfusion at 50 steps) three ways, each beside `--busy` processes that keep a core busy each:

local        the local executor, one worker, in this process
ray nice 15  one Ray CPU actor at Ray's own worker priority (the actors' runtime env without the setting)
ray nice 0   one Ray CPU actor as the executor starts it

    python -m benchmarks.ray_priority [--busy N] [--quick] [--no-record]

--quick runs one prompt and one seed (2 cells). Prints the table and appends it to benchmarks/RESULTS.md and
results.jsonl (the device named) unless --no-record.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from backends.compare import executors, parse_spec, run_grid

from .common import append_results, busy_processes, device_name

CONDITIONS = (("local", "local", None), ("ray nice 15", "ray", {}), ("ray nice 0", "ray", executors.AT_DRIVER_PRIORITY))


def spec_data(out: Path, quick: bool) -> dict:
    prompts, seeds = (["a fox"], [0]) if quick else (["a fox", "a red apple"], [0, 1])
    return {"out": str(out), "prompts": prompts, "seeds": seeds, "priors": ["icons"], "device": "cpu",
            "backends": [{"name": "svg/vectorfusion", "settings": {"steps": 50}},
                         {"name": "svg/raster-then-vectorize"}]}


def run_condition(executor: str, runtime_env: dict | None, out: Path, quick: bool) -> dict:
    if runtime_env is not None:
        executors.AT_DRIVER_PRIORITY = runtime_env  # read when the executor starts its actors
    t0 = time.perf_counter()
    events = list(run_grid(parse_spec(spec_data(out, quick), name="ray_priority"), executor=executor))
    wall = time.perf_counter() - t0
    metas = [json.loads(p.read_text()) for p in sorted(out.glob("*/result.json"))]
    assert events[-1].kind == "end" and events[-1].failed == 0 and metas, events[-1]
    return {"wall": wall, "cells": len(metas), "cells_s": sum(m["timings"]["total_s"] for m in metas),
            "nice": sorted({m["threads"]["nice"] for m in metas}),
            "threads": sorted({m["threads"]["threads"] for m in metas})}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--busy", type=int, default=os.cpu_count() or 1,
                    help="busy processes beside the grid (default: one per core)")
    ap.add_argument("--quick", action="store_true", help="one prompt and one seed: 2 cells")
    ap.add_argument("--no-record", action="store_true", help="print only; RESULTS.md is left alone")
    args = ap.parse_args(argv)
    saved = executors.AT_DRIVER_PRIORITY
    results = {}
    root = Path(tempfile.mkdtemp(prefix="ray-priority-"))
    try:
        with busy_processes(args.busy):
            for name, executor, env in CONDITIONS:
                results[name] = run_condition(executor, env, root / name.replace(" ", "-"), args.quick)
                print(f"{name}: {results[name]['wall']:.1f} s", flush=True)
    finally:
        executors.AT_DRIVER_PRIORITY = saved
    base = results["local"]["wall"]
    lines = ["| executor | cells | grid wall s | cells' total_s (sum) | x local | nice | torch threads |",
             "|---|---|---|---|---|---|---|"]
    rows = []
    for name, r in results.items():
        lines.append(f"| {name} | {r['cells']} | {r['wall']:.1f} | {r['cells_s']:.1f} | {r['wall'] / base:.1f} | "
                     f"{', '.join(map(str, r['nice']))} | {', '.join(map(str, r['threads']))} |")
        rows.append({"metric": f"{name} grid wall s, {args.busy} busy", "value": round(r["wall"], 2), "unit": "s",
                     "ratio_to_local": round(r["wall"] / base, 2)})
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        append_results(f"ray_priority ({results['local']['cells']} cells, beside {args.busy} busy processes)", table,
                       rows, device=device_name("cpu"),
                       notes=["`python -m benchmarks.ray_priority" + (" --quick" if args.quick else "") +
                              "`: the README's grid, each executor in turn beside `python3 -c 'while True: pass'` "
                              "processes at normal priority; wall seconds from run_grid's call to its last event "
                              "(Ray's start and its actors' prior loading included)."])


if __name__ == "__main__":
    main()
