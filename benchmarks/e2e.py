"""End-to-end seconds for each tab's default run, through the same `backends.run` the app calls.

    python -m benchmarks.e2e                  # this machine's default priors ("auto"), every setting at its default
    python -m benchmarks.e2e --priors real    # sd / ip2p (a GPU with their weights), paper defaults
    python -m benchmarks.e2e --quick          # tiny priors and a few steps: exercises every tab on a CPU

The inputs are the shipped examples. Prints a table and appends it to benchmarks/RESULTS.md and
benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

import backends

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# tab -> (backend, settings, input glob(s), quick overrides); the prior is "auto", "real" or "tiny" (--priors)
CASES = {
    "text to svg": ("svg/vectorfusion", {"prompt": "a red fox", "style": "iconography"}, [],
                    {"steps": 20, "size": 128}),
    "panorama": ("panorama/csd-edit", {"prompt": "make it winter"}, ["panorama/*.png", "panorama/*.jpg"],
                 {"steps": 5, "short_side": 64}),
    "video": ("video/csd-edit", {"prompt": "turn it into a Van Gogh painting"}, ["video/*.mp4"],
              {"steps": 5, "short_side": 64}),
    "3d views": ("views3d/csd-edit", {"prompt": "make it black and white"}, ["views3d/*.png"],
                 {"steps": 5, "short_side": 64}),
}
REAL = {"text": "sd", "instruct": "ip2p"}
TINY = {"text": "tiny-sd", "instruct": "tiny-ip2p"}


def inputs_for(globs: list[str]) -> list[str]:
    for pattern in globs:
        found = sorted(str(p) for p in EXAMPLES.glob(pattern))
        if found:
            return found if pattern.endswith("views3d/*.png") else found[:1]
    return []


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny priors and a few steps")
    p.add_argument("--priors", choices=("auto", "real", "tiny"), default="auto",
                   help="auto: this machine's default (offline priors without a GPU and weights)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--tabs", default=",".join(CASES), help="comma list of tabs")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    installed = {f"{t}/{n}" for t, names in backends.available().items() for n in names}
    rows = []
    for tab in args.tabs.split(","):
        key, settings, globs, quick = CASES[tab]
        kind = backends.get(key).prior
        prior = {"auto": None, "real": REAL.get(kind), "tiny": TINY.get(kind)}["tiny" if args.quick else args.priors]
        if key not in installed:
            print(f"skipping {tab}: {key} is not installed")
            continue
        settings = dict(settings, **(quick if args.quick else {}))
        with tempfile.TemporaryDirectory() as out:
            t0 = time.perf_counter()
            result = backends.run_to_end(key, settings, prior=prior,
                                         inputs=inputs_for(globs), out_dir=out, device=args.device)
            seconds = time.perf_counter() - t0
        steps = result.metadata["settings"].get("steps")
        rows.append(dict(tab=tab, backend=key, prior=result.metadata["prior"], steps=steps, seconds=seconds))
        print(f"{tab}: {seconds:.1f} s", flush=True)
    lines = ["| tab | backend | prior | steps | seconds |", "|---|---|---|---|---|"]
    lines += [f"| {r['tab']} | {r['backend']} | {r['prior']} | {r['steps']} | {r['seconds']:.1f} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if not args.no_record and rows:
        from .common import append_results, device_name

        append_results("e2e" + (" (quick: tiny priors, few steps)" if args.quick else f" ({args.priors} priors, "
                                                                                        "default settings)"), table,
                       [dict(bench="e2e", metric=f"{r['backend']}/{r['prior']}/{r['steps']}steps", value=r["seconds"],
                             unit="s") for r in rows], device=device_name(args.device))


if __name__ == "__main__":
    main()
