"""Each tab's default run with no added load and beside busy processes, with torch's default threads ("before":
one per core) and with the thread policy ("after": `backends.core.devices.choose_threads`), in one sitting, so the
ratios hold whatever else the machine runs.

    python -m benchmarks.threads                      # every tab, 1 busy process, before / after / before+PASSIVE
    python -m benchmarks.threads --tabs svg,mesh --repeats 2 --quota   # also in a 1-CPU cgroup quota (root)

Each run is a fresh CLI process (`python -m backends run`, as a person would start it; OMP_WAIT_POLICY is read
when torch loads), timed by its result.json's total_s (load and run, not Python's imports). The conditions of one
tab run back to back, interleaved, and the table gives each one's ratio to the same variant with no added load.
Prints a table and appends it to benchmarks/RESULTS.md and benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import append_results, busy_processes, cpu_quota_cgroup, device_name, load_note

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
# tab -> (backend, settings, inputs): what the tab runs with its defaults on a CPU (offline priors)
CASES = {
    "svg": ("svg/vectorfusion", {"prompt": "a red fox", "style": "iconography"}, []),
    "panorama": ("panorama/csd-edit", {"prompt": "make it winter"}, [EX / "panorama" / "landscape.png"]),
    "video": ("video/csd-edit", {"prompt": "turn it into a Van Gogh painting"}, [EX / "video" / "rolling_ball.mp4"]),
    "views3d": ("views3d/csd-edit", {"prompt": "make it black and white"}, sorted(EX.glob("views3d/view_*.png"))),
    "mesh": ("views3d/csd-edit-mesh", {"prompt": "make it night"}, [EX / "views3d" / "house.glb"]),
    "image": ("image/sds", {"steps": 150, "lr": 0.05}, [EX / "image" / "shapes.png"]),  # its example: analytic
}


def torch_default_threads() -> int:
    """What torch starts with in a process where nothing sets its threads (one per core it sees)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DISTILL_THREADS")}
    out = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=env,
                         capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def run_once(tab: str, variant: str, default_threads: int, procs_file: Path | None = None) -> dict:
    """One CLI run of `tab`'s default: its result.json's total_s and the threads it used (and why)."""
    key, settings, inputs = CASES[tab]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DISTILL_THREADS", "OMP_WAIT_POLICY")}
    env.update(PYTHONPATH=str(ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    if variant.startswith("before"):
        env["DISTILL_THREADS"] = str(default_threads)
    if variant.endswith("passive"):
        env["OMP_WAIT_POLICY"] = "PASSIVE"
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, "-m", "backends", "run", key, "--out", out, "--quiet", "--device", "cpu"]
        if key == "image/sds":
            cmd += ["--prior", "analytic"]
        for k, v in settings.items():
            cmd += ["--set", f"{k}={v}"]
        for p in inputs:
            cmd += ["--input", str(p)]
        join = (lambda: procs_file.write_text(str(os.getpid()))) if procs_file is not None else None
        done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, preexec_fn=join)
        if done.returncode:
            raise SystemExit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-400:]}")
        meta = json.loads((Path(out) / "result.json").read_text())
    return {"seconds": meta["timings"]["total_s"], "threads": meta["threads"]["threads"],
            "why": meta["threads"]["why"], "steps": meta["settings"].get("steps")}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tabs", default=",".join(CASES), help="comma list of: " + ", ".join(CASES))
    p.add_argument("--hogs", type=int, default=1, help="busy processes beside the run")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--variants", default="before,after,before+passive",
                   help="before: torch's default threads; after: the policy; +passive: OMP_WAIT_POLICY=PASSIVE")
    p.add_argument("--busy-variants", default=None,
                   help="the variants run beside the busy processes (default: --variants); 'after' alone leaves out "
                        "torch's default threads there, the slow case the policy exists for (minutes a run)")
    p.add_argument("--quota", action="store_true", help="also run the policy in a 1-CPU cgroup quota (root)")
    p.add_argument("--note", default="", help="the machine's conditions, in words, for the record")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    default_threads = torch_default_threads()
    variants = args.variants.split(",")
    busy_variants = args.busy_variants.split(",") if args.busy_variants else variants
    conditions = ["idle", f"{args.hogs} busy"] + (["1-CPU quota"] if args.quota else [])
    for tab in args.tabs.split(","):  # each tab recorded as it ends: a long sitting cut short keeps what it measured
        start_load = load_note()
        seconds: dict[tuple[str, str], list[float]] = {}
        threads: dict[tuple[str, str], str] = {}
        for _ in range(args.repeats):
            for cond in conditions:
                for variant in {"idle": variants, "1-CPU quota": ["after"]}.get(cond, busy_variants):
                    if cond == "idle":
                        r = run_once(tab, variant, default_threads)
                    elif cond == "1-CPU quota":
                        with cpu_quota_cgroup(1.0) as (procs, why):
                            if procs is None:
                                print(f"no quota condition: {why}")
                                continue
                            r = run_once(tab, variant, default_threads, procs)
                    else:
                        with busy_processes(args.hogs):
                            r = run_once(tab, variant, default_threads)
                    seconds.setdefault((cond, variant), []).append(r["seconds"])
                    threads[(cond, variant)] = f"{r['threads']}"
                    print(f"{tab} {cond} {variant}: {r['seconds']:.1f} s, {r['threads']} threads ({r['why']})",
                          flush=True)
        rows, table = tab_table(tab, seconds, threads)
        print(table)
        if not args.no_record and rows:
            record(tab, table, rows, args, argv, default_threads, start_load)


def tab_table(tab: str, seconds: dict, threads: dict) -> tuple[list[dict], str]:
    """One tab's rows for results.jsonl and its markdown table: each condition's median and its ratio to the same
    variant with no added load (the quota's to the policy's)."""
    rows, lines = [], []
    for (cond, variant), values in seconds.items():
        s = statistics.median(values)
        base = seconds.get(("idle", variant)) or seconds.get(("idle", "after"))
        ratio = s / statistics.median(base) if base else float("nan")
        rows.append(dict(metric=f"{tab} {CASES[tab][0]} {cond} {variant} seconds", value=round(s, 2), unit="s",
                         threads=int(threads[(cond, variant)]), ratio_to_idle=round(ratio, 2)))
        lines.append(f"| {tab} | {cond} | {variant} | {threads[(cond, variant)]} | {s:.1f} | {ratio:.2f} |")
    return rows, "\n".join(["| tab | condition | threads from | threads | s (median) | x its idle |",
                            "|---|---|---|---|---|---|", *lines])


def record(tab: str, table: str, rows: list[dict], args, argv, default_threads: int, start_load: str) -> None:
    notes = [f"`python -m benchmarks.threads {' '.join(argv if argv is not None else sys.argv[1:])}`: {tab}'s "
             f"default run (CLI, fresh process, result.json total_s), {args.repeats} repeat(s). before: torch's "
             f"default ({default_threads} threads, one per core); after: the thread policy; +passive: "
             f"OMP_WAIT_POLICY=PASSIVE. idle: no busy process added by this script; {args.hogs} busy: that many "
             f"`python3 -c 'while True: pass'` beside the run. Load when the tab started: {start_load}."]
    if args.note:
        notes.append(args.note)
    append_results(f"threads ({tab}'s default run, idle vs busy, before / after the thread policy)", table,
                   [dict(bench="threads", **r) for r in rows], device=device_name("cpu"), notes=notes)


if __name__ == "__main__":
    main()
