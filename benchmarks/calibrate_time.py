"""Seconds of every backend's default run on this machine, and the reference table the tabs' time estimates
start from (`backends.timing`).

    python -m benchmarks.calibrate_time              # every backend at its defaults, this machine's default priors
    python -m benchmarks.calibrate_time --write      # ... and write them as backends/data/timings_cpu.json

Each run goes through `backends.run`, as the app's Run does, with the tab's default settings, a visitor's prompt
and the shipped example input. The prior is loaded once before its first timed run (the app preloads it at start),
so "total" is what a visitor waits after pressing Run. Prints a table and appends it to benchmarks/RESULTS.md and
benchmarks/results.jsonl; --write also replaces the reference table (run it on the reference machine, idle: the
2-core CPU the README's figures come from).
"""
from __future__ import annotations

import argparse
import tempfile
import time

import backends
from backends import timing
from backends.runner import check_prior, preload

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
            inputs = inputs_for(globs) if cls.inputs not in ("none", "image?") else []
            out.append((tab, key, settings, inputs))
    return out


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
        if prior:
            preload(prior, args.device)
        runs = []
        for _ in range(args.repeat):
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                result = backends.run_to_end(key, settings, inputs=inputs, out_dir=out, device=args.device)
                runs.append((time.perf_counter() - t0, timing.Timing.of(result.metadata["timings"])))
        seconds, measured = min(runs, key=lambda r: r[0])  # the least disturbed run
        reference[timing.Records.name(key, prior, "cpu")] = measured
        rows.append(dict(tab=tab, backend=key, prior=prior or "-", steps=measured.steps, setup=measured.setup_s,
                         step=measured.step_s, seconds=seconds))
        print(f"{key}: {seconds:.1f} s (of {', '.join(f'{r[0]:.1f}' for r in runs)})", flush=True)
    lines = [f"| tab | backend | prior | steps | setup s | s per step | total s | within {TARGET_S:.0f} s |",
             "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['tab']} | {r['backend']} | {r['prior']} | {r['steps']} | {r['setup']:.2f} | {r['step']:.3f} | "
              f"{r['seconds']:.1f} | {'yes' if r['seconds'] <= TARGET_S else 'no'} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    from .common import append_results, device_name

    machine = device_name(args.device)
    if args.write and rows:
        timing.write_reference(reference, machine)
        print(f"wrote {timing.REFERENCE}")
    if not args.no_record and rows:
        append_results(f"calibrate_time (every backend's default run, prior preloaded, fastest of {args.repeat})", table,
                       [dict(bench="calibrate_time", metric=f"{r['backend']}/{r['prior']}/{r['steps']}steps",
                             value=r["seconds"], unit="s") for r in rows], device=machine)


if __name__ == "__main__":
    main()
