"""Estimates against reality (issue 23, item 2): for every backend with its offline prior, at two sizes, the
expected seconds (`backends.core.runner.expect`, the figure beside Run) and the memory estimate (`cls.estimate`) against
the real run's seconds after its prior loaded (result.json's total_s - load_s) and the RSS it added over its start
(its peak less its RSS when the run began: what the estimate covers, the run's arrays, not the interpreter, torch
and the prior), each run in its own process as the CLI runs it (`calibrate_time.run_cold`), the fastest of
--repeat kept: on a shared 2-core machine a neighbour's process slowed a run by up to 10x (torch's two threads
wait on a core another process holds), and a busy machine only ever slows a run down.

    python -m benchmarks.estimates [--quick] [--repeat N]

Prints a table with the ratios and appends it to RESULTS.md (the device named).
"""
from __future__ import annotations

import argparse

import backends
from backends.core import runner
from backends.priors import catalog
from backends.core.settings import make_settings, resolve_auto

from .calibrate_time import cases, run_cold
from .common import append_results, device_name

# the larger size of each task: what grows its cost (candidates, paths, particles, sample steps)
LARGER = {"svg": {"k": 8}, "svg/raster-then-vectorize": {"k": 16, "sample_steps": 100}, "svg/vectorize": {"paths": 32},
          "panorama": {"particles": 8}, "video": {"particles": 16}, "views3d": {"particles": 8},
          "image": {"size": 128}}
FEW_STEPS = 20



def offline_prior(key: str) -> str | None:
    cls = backends.get(key)
    if cls.prior == "none":
        return None
    return {"text": "icons", "instruct": "edits"}.get(cls.prior, "analytic")


def estimate(key, settings, inputs, prior):
    cls = backends.get(key)
    s = resolve_auto(make_settings(cls.Settings, settings, where=key), runner.run_profile(prior, "cpu"))[0]
    work = runner.work_of(cls, s, inputs, catalog.entry(prior) if prior else None)
    exp = runner.expect(key, settings, prior=prior or "auto", inputs=inputs, device="cpu")
    return (exp.seconds if exp else float("nan")), (work.bytes if work else 0)


def measure(key, settings, inputs, prior, repeat: int) -> dict | None:
    """{"seconds": the fastest of `repeat` real runs, each in a fresh process, "added": the most RSS one of them
    added over its start}, or None when a run failed (said in one line)."""
    try:
        runs = [run_cold(key, settings, inputs, prior) for _ in range(repeat)]
    except RuntimeError as err:
        print(err, flush=True)
        return None
    return {"seconds": min(r["seconds"] for r in runs), "added": max(r["peak"] - r["base"] for r in runs)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the default size only")
    ap.add_argument("--repeat", type=int, default=2, help="runs per case; the fastest is kept")
    args = ap.parse_args(argv)
    rows, lines = [], ["| backend | prior | settings | expected s | measured s | ratio | memory est. | RSS added | "
                       "ratio |", "|---|---|---|---|---|---|---|---|---|"]
    for _tab, key, settings, inputs in cases():
        prior = offline_prior(key)
        cls = backends.get(key)
        small = {**settings, **({"steps": FEW_STEPS} if "steps" in cls.Settings.__dataclass_fields__ else {})}
        sizes = [small] if args.quick else [small, {**small, **LARGER.get(key, LARGER.get(key.split("/")[0], {}))}]
        for st in sizes:
            try:
                exp_s, est_b = estimate(key, st, inputs, prior)
            except backends.InputError as err:  # the case's inputs do not fit the backend: one line, the rest run
                print(f"{key}: skipped: {err}", flush=True)
                continue
            got = measure(key, st, inputs, prior, args.repeat)
            if got is None:
                continue
            shown = ", ".join(f"{k}={v}" for k, v in st.items() if k != "prompt")
            row = dict(backend=key, prior=prior or "-", settings=shown, expected_s=exp_s, measured_s=got["seconds"],
                       ratio=exp_s / got["seconds"] if got["seconds"] else float("nan"), estimate_bytes=est_b,
                       added_bytes=got["added"],
                       memory_ratio=est_b / got["added"] if got["added"] > 0 else float("nan"))
            rows.append(row)
            print(f"{key:28s} {shown:40s} expected {exp_s:7.1f} s measured {got['seconds']:7.1f} s "
                  f"ratio {row['ratio']:5.2f}  memory {est_b / 2**20:6.0f} MB est, {got['added'] / 2**20:6.0f} MB "
                  "added", flush=True)
    for r in rows:
        lines.append(f"| {r['backend']} | {r['prior']} | {r['settings']} | {r['expected_s']:.1f} | "
                     f"{r['measured_s']:.1f} | {r['ratio']:.2f} | {r['estimate_bytes'] / 2**20:.0f} MB | "
                     f"{r['added_bytes'] / 2**20:.0f} MB | {r['memory_ratio']:.2f} |")
    table = "\n".join(lines)
    print(table)
    append_results("estimates (expected vs measured, offline priors)", table,
                   [dict(metric="expected_over_measured", value=r["ratio"], unit="x", **r) for r in rows],
                   device=device_name("cpu"),
                   notes=["Expected: `backends.core.runner.expect` (seconds after the prior loads); measured: "
                          "result.json's total_s - load_s of the run in its own process, the fastest of "
                          f"{args.repeat}. Memory est.: the backend's estimate of its run's arrays; RSS added: the "
                          f"run's peak RSS less its RSS when it began (the most of the {args.repeat}). Ratios: "
                          "estimate / measured."])


if __name__ == "__main__":
    main()
