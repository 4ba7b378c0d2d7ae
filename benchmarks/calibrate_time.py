"""Seconds of every backend's default run on this machine, and the reference table the tabs' time estimates
start from (`backends.core.timing`).

    python -m benchmarks.calibrate_time              # every backend at its defaults, this machine's default priors
    python -m benchmarks.calibrate_time --write      # ... and write them as backends/data/timings_cpu.json
    python -m benchmarks.calibrate_time --only KEY,KEY --write   # re-measure some; the others keep their rows

Each run goes through `backends.run` in a fresh process, as the CLI runs it, with the tab's default settings, a
visitor's prompt and the shipped example input; "total" is the run after its prior loaded (`runner.warm_up`
included in loading, as the app loads the prior and the scorer at start). A fresh process pays a run's first-call
costs (first optimizer step, first writes), so the app's later runs take a little less than the record. Each
backend also runs twice more with FIT_STEPS steps, at its defaults and at a larger size (`LARGER`), to fit the share
of its time that does not grow with the work (`Timing.fixed`). Prints a table and appends it to
benchmarks/RESULTS.md and benchmarks/results.jsonl; --write also replaces the reference table (run it on the
reference machine, idle: the 2-core CPU the README's figures come from). About 8 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from dataclasses import replace

import backends
from backends.core import timing
from backends.core.runner import check_prior

from .e2e import inputs_for

TARGET_S = 20.0  # a first visit's budget: each tab's default offline run, idle


# tab -> (task, a visitor's prompt, the shipped example inputs to use); every installed backend of the task runs
TABS = {
    "text to svg": ("svg", "a red apple", ["svg/*.png"]),
    "panorama": ("panorama", "make it winter", ["panorama/*.png", "panorama/*.jpg"]),
    "video": ("video", "turn it into a Van Gogh painting", ["video/*.mp4"]),
    "3d views": ("views3d", "make it black and white", ["views3d/*.png"]),
    "sds check": ("image", "a red apple", []),
}


def cases() -> list[tuple[str, str, dict, list[str]]]:
    """(tab, backend key, settings, inputs) for every installed backend of the tabs' tasks, at its defaults."""
    out = []
    for tab, (task, prompt, globs) in TABS.items():
        for name in backends.available().get(task, []):
            key = f"{task}/{name}"
            cls = backends.get(key)
            settings = {"prompt": prompt} if "prompt" in cls.Settings.__dataclass_fields__ else {}
            # a mesh backend of the task edits the example mesh, not its views
            wanted = [f"{task}/*.glb"] if cls.inputs == "mesh" else globs
            inputs = inputs_for(wanted) if cls.inputs not in ("none", "image?") else []
            out.append((tab, key, settings, inputs))
    return out


# a larger size per task (what grows the work: candidates, paths, working size, particles, sample steps) and the
# steps of the two runs that fit the fixed share; benchmarks/estimates.py checks at other sizes
LARGER = {"svg": {"k": 8}, "svg/raster-then-vectorize": {"k": 8, "sample_steps": 60},
          "svg/vectorize": {"paths": 48, "size": 160}, "panorama": {"short_side": 192},
          "video": {"particles": 12, "short_side": 160}, "views3d": {"short_side": 192}, "image": {"size": 96}}
FIT_STEPS = 20

# One run in a fresh process. From the run's start (the prior loaded and warmed): its CPU seconds, all threads, and
# its memory: the RSS it started at and the peak over the run (VmHWM, reset at the start where the kernel allows).
CHILD = """
import json, sys, time, backends
from backends.core import runner
key, settings, inputs, prior, out, device = json.loads(sys.argv[1])
def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
start, mark = runner._StepClock.start, {}
def clocked(self):
    mark["base"] = status("VmRSS")
    try:
        open("/proc/self/clear_refs", "w").write("5")  # the peak RSS from here on
    except OSError:
        pass
    mark["cpu"] = time.process_time()
    start(self)
runner._StepClock.start = clocked
backends.run_to_end(key, settings, inputs=inputs, prior=prior or "auto", out_dir=out, device=device)
cpu = time.process_time() - mark["cpu"]
print(json.dumps({"timings": json.load(open(out + "/result.json"))["timings"], "cpu": cpu, "base": mark["base"],
                  "peak": status("VmHWM")}))
"""


def run_cold(key: str, settings: dict, inputs: list[str], prior: str | None = None, device: str = "cpu") -> dict:
    """The run in a fresh process: {"timings": result.json's, "seconds": after loading, "cpu": its CPU seconds,
    "base": RSS at its start, "peak": peak RSS over the run}; a RuntimeError with the last stderr line if it failed."""
    with tempfile.TemporaryDirectory() as out:
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps([key, settings, inputs, prior, out, device])],
                              capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"{key}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    got["seconds"] = got["timings"]["total_s"] - got["timings"]["load_s"]
    return got


def larger(key: str) -> dict:
    return LARGER.get(key, LARGER.get(key.split("/")[0], {}))


def fixed_share(key: str, settings: dict, inputs: list[str], device: str = "cpu") -> float:
    """The share of a run's time that does not grow with the work, from FIT_STEPS-step runs at the default and the
    larger size: T_large = T_small' x (fixed + (1 - fixed) x work_large / work_small), where T_small' is the small
    run's own setup, step and finish at the large run's steps (they differ where paths add stages)."""
    few = {"steps": FIT_STEPS} if "steps" in backends.get(key).Settings.__dataclass_fields__ else {}
    small = timing.Timing.of(run_cold(key, {**settings, **few}, inputs, device=device)["timings"])
    big = run_cold(key, {**settings, **few, **larger(key)}, inputs, device=device)
    ratio = big["timings"]["work"] / small.work if small.work else 1.0
    base = small.setup_s + big["timings"]["steps"] * small.step_s + small.finish_s if small.steps else small.setup_s
    if ratio < 1.1 or base <= 0:
        return 0.0
    return min(1.0, max(0.0, (ratio - big["seconds"] / base) / (ratio - 1)))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--only", default="", help="comma list of backend keys (default: all)")
    p.add_argument("--repeat", type=int, default=3, help="runs per backend; the fastest is kept (a shared or busy "
                                                          "machine only ever slows a run down)")
    p.add_argument("--write", action="store_true", help="write the reference table backends/data/timings_cpu.json")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    rows, reference = [], {}
    for tab, key, settings, inputs in cases():
        if args.only and key not in args.only.split(","):
            continue
        prior = check_prior(backends.get(key), "auto", args.device)
        runs = [run_cold(key, settings, inputs, device=args.device) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])  # the least disturbed run
        fixed = fixed_share(key, settings, inputs, args.device)
        measured = replace(timing.Timing.of(best["timings"]), fixed=round(fixed, 3))
        reference[timing.Records.name(key, prior, "cpu")] = measured
        rows.append(dict(tab=tab, backend=key, prior=prior or "-", steps=measured.steps, setup=measured.setup_s,
                         step=measured.step_s, finish=measured.finish_s, fixed=fixed, seconds=best["seconds"]))
        tried = ", ".join(f"{r['seconds']:.1f}" for r in runs)
        print(f"{key}: {best['seconds']:.1f} s (of {tried}), "
              f"fixed share {fixed:.2f}", flush=True)
    lines = [f"| tab | backend | prior | steps | setup s | s per step | finish s | fixed share | total s | "
             f"within {TARGET_S:.0f} s |", "|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['tab']} | {r['backend']} | {r['prior']} | {r['steps']} | {r['setup']:.2f} | {r['step']:.3f} | "
              f"{r['finish']:.2f} | {r['fixed']:.2f} | {r['seconds']:.1f} | "
              f"{'yes' if r['seconds'] <= TARGET_S else 'no'} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    from .common import append_results, device_name

    machine = device_name(args.device)
    if args.write and rows:
        if args.only:  # the other backends keep their rows
            kept = json.loads(timing.REFERENCE.read_text())["runs"] if timing.REFERENCE.is_file() else {}
            reference = {**{k: timing.Timing(**v) for k, v in kept.items()}, **reference}
        timing.write_reference(reference, machine)
        print(f"wrote {timing.REFERENCE}")
    if not args.no_record and rows:
        append_results(f"calibrate_time (every backend's default run in a fresh process, fastest of {args.repeat})", table,
                       [dict(bench="calibrate_time", metric=f"{r['backend']}/{r['prior']}/{r['steps']}steps",
                             value=r["seconds"], unit="s") for r in rows], device=machine)


if __name__ == "__main__":
    main()
