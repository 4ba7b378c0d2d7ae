"""Estimates against reality (issue 23, item 2): for every backend with its offline prior, at two sizes, the
expected seconds (`backends.runner.expect`, the figure beside Run) and the memory estimate (`cls.estimate`) against
the real run's seconds after its prior loaded (result.json's total_s - load_s) and its peak RSS, each run in its
own process (`resource.getrusage(RUSAGE_CHILDREN)`).

    python -m benchmarks.estimates [--quick]

Prints a table with the ratios and appends it to RESULTS.md (the device named). The memory estimate covers the
run's arrays, not the interpreter, torch and the prior (the "base" column: a run's RSS less its arrays is mostly
those ~0.7 GB).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import backends
from backends import runner
from backends.priors import catalog
from backends.settings import make_settings, resolve_auto

from .calibrate_time import cases
from .common import append_results, device_name

# the larger size of each task: what grows its cost (candidates, paths, particles, sample steps)
LARGER = {"svg": {"k": 8}, "svg/raster-then-vectorize": {"k": 16, "sample_steps": 100}, "svg/vectorize": {"paths": 32},
          "panorama": {"particles": 8}, "video": {"particles": 16}, "views3d": {"particles": 8},
          "image": {"size": 128}}
FEW_STEPS = 20

CHILD = """
import json, resource, sys, backends
key, settings, inputs, prior, out = json.loads(sys.argv[1])
backends.run_to_end(key, settings, inputs=inputs, prior=prior or "auto", out_dir=out, device="cpu")
t = json.load(open(out + "/result.json"))["timings"]
print(json.dumps({"seconds": t["total_s"] - t["load_s"],
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


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


def measure(key, settings, inputs, prior) -> dict | None:
    """{"seconds", "rss"} of the real run in a fresh process, or None when it failed."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([key, settings, inputs, prior, out])],
                              capture_output=True, text=True, timeout=600)
    if proc.returncode:
        print(f"{key}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}", flush=True)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the default size only")
    args = ap.parse_args(argv)
    rows, lines = [], ["| backend | prior | settings | expected s | measured s | ratio | memory est. | peak RSS | "
                       "RSS - base |", "|---|---|---|---|---|---|---|---|---|"]
    base = None
    for _tab, key, settings, inputs in cases():
        prior = offline_prior(key)
        cls = backends.get(key)
        small = {**settings, **({"steps": FEW_STEPS} if "steps" in cls.Settings.__dataclass_fields__ else {})}
        sizes = [small] if args.quick else [small, {**small, **LARGER.get(key, LARGER.get(key.split("/")[0], {}))}]
        for st in sizes:
            exp_s, est_b = estimate(key, st, inputs, prior)
            got = measure(key, st, inputs, prior)
            if got is None:
                continue
            base = got["rss"] - est_b if base is None else min(base, got["rss"] - est_b)
            shown = ", ".join(f"{k}={v}" for k, v in st.items() if k != "prompt")
            row = dict(backend=key, prior=prior or "-", settings=shown, expected_s=exp_s, measured_s=got["seconds"],
                       ratio=exp_s / got["seconds"] if got["seconds"] else float("nan"), estimate_bytes=est_b,
                       rss_bytes=got["rss"])
            rows.append(row)
            print(f"{key:28s} {shown:40s} expected {exp_s:7.1f} s measured {got['seconds']:7.1f} s "
                  f"ratio {row['ratio']:5.2f}  memory {est_b / 2**20:6.0f} MB est, {got['rss'] / 2**20:6.0f} MB RSS",
                  flush=True)
    for r in rows:
        lines.append(f"| {r['backend']} | {r['prior']} | {r['settings']} | {r['expected_s']:.1f} | "
                     f"{r['measured_s']:.1f} | {r['ratio']:.2f} | {r['estimate_bytes'] / 2**20:.0f} MB | "
                     f"{r['rss_bytes'] / 2**20:.0f} MB | {(r['rss_bytes'] - (base or 0)) / 2**20:.0f} MB |")
    table = "\n".join(lines)
    print(table)
    append_results("estimates (expected vs measured, offline priors)", table,
                   [dict(metric="expected_over_measured", value=r["ratio"], unit="x", **r) for r in rows],
                   device=device_name("cpu"),
                   notes=["Expected: `backends.runner.expect` (seconds after the prior loads); measured: result.json's "
                          "total_s - load_s of the run in its own process. RSS - base: peak RSS less the smallest "
                          "(RSS - estimate) of the table, i.e. the interpreter, torch and priors."])


if __name__ == "__main__":
    main()
