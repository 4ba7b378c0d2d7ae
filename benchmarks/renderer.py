"""Vector renderer speed: Distill Studio's PyTorch renderer (and pydiffvg when importable) on DiffVG's scene.

Scene (issue 3): N closed paths of 4 cubic segments, control points uniform in a random box a quarter of
the canvas side, random RGBA fill, white background, 600 x 600. "fwd" renders without autograd (a preview);
"fwd+bwd" is one optimization step: render with points and colors requiring grad, an L2 loss to a target,
backward. Median of several runs after a warm-up.

    python -m benchmarks.renderer                      # table, appended to RESULTS.md and results.jsonl
    python -m benchmarks.renderer --json --paths 128   # one JSON object per row, nothing recorded
"""
from __future__ import annotations

import argparse
import json

import torch

from backends.svg import diffvg_adapter
from backends.svg.render import render
from backends.svg.scene import Scene, random_paths

from .common import append_results, device_name, measure, median_ms

PATHS = (16, 64, 128, 256)
# DiffVG (pydiffvg) on this kind of machine (2 CPU cores), 600x600, 2x2 samples, from issue 3: (fwd s, fwd+bwd s)
DIFFVG_CPU = {16: (0.64, 3.2), 64: (1.16, 7.2), 128: (1.98, 12.0), 256: (3.42, 22.2)}


def make_scene(n: int, size: int, device: str, seed: int = 0) -> Scene:
    g = torch.Generator().manual_seed(seed)
    shapes = random_paths(n, 4, size, size, box=0.25, generator=g)
    scene = Scene(size, size, shapes, background=torch.ones(3)).to(device)
    for s in scene.shapes:
        s.points.requires_grad_(True)
        s.fill.requires_grad_(True)
    return scene


def bench_one(impl: str, device: str, n: int, size: int, samples: int, warmup: int, repeats: int,
              threads: int) -> dict:
    scene = make_scene(n, size, device)
    target = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(1)).to(device)
    def draw():
        if impl == "distill":
            return render(scene, samples=samples)
        return diffvg_adapter.render_diffvg(scene, samples=samples)

    def fwd():
        with torch.no_grad():
            draw()

    def step():
        loss = (draw() - target).pow(2).mean()
        loss.backward()

    fwd_ms = median_ms(measure(fwd, device=device, warmup=warmup, repeats=repeats))
    step_ms = median_ms(measure(step, device=device, warmup=warmup, repeats=repeats))
    return {"impl": impl, "device": device, "threads": threads if device == "cpu" else None, "paths": n, "size": size,
            "samples": samples, "fwd_ms": round(fwd_ms, 2), "fwdbwd_ms": round(step_ms, 2)}


def _table(rows: list[dict]) -> str:
    lines = ["| impl | device | threads | paths | size | samples/px | fwd ms | fwd+bwd ms | DiffVG CPU fwd+bwd ms "
             "(issue 3, 2 cores) | speed-up fwd+bwd |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = DIFFVG_CPU.get(r["paths"]) if r["size"] == 600 else None
        ref_ms = f"{ref[1] * 1000:.0f}" if ref else "-"
        speed = f"{ref[1] * 1000 / r['fwdbwd_ms']:.1f}x" if ref and r["device"] == "cpu" else "-"
        lines.append(f"| {r['impl']} | {r['device']} | {r['threads'] or '-'} | {r['paths']} | {r['size']} | "
                     f"{r['samples'] ** 2} | "
                     f"{r['fwd_ms']:.1f} | {r['fwdbwd_ms']:.1f} | {ref_ms} | {speed} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.renderer", description=__doc__.splitlines()[0])
    p.add_argument("--paths", type=int, action="append", help=f"number of paths (repeatable; default {PATHS})")
    p.add_argument("--size", type=int, default=600, help="canvas side in pixels (default 600)")
    p.add_argument("--device", choices=("cpu", "cuda"), action="append",
                   help="repeatable; default: cpu, and cuda when present")
    p.add_argument("--threads", type=int, action="append",
                   help="CPU threads (repeatable; default 2, the reference machine's cores)")
    p.add_argument("--samples", type=int, default=1, help="s x s samples per pixel for this renderer (default 1: "
                                                          "its coverage is area-exact); pydiffvg always uses 2x2")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object per row; record nothing")
    p.add_argument("--no-record", action="store_true", help="print the table only")
    args = p.parse_args(argv)

    paths = args.paths or list(PATHS)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    impls = ["distill"] + (["pydiffvg"] if diffvg_adapter.available() else [])
    rows = []
    for device in devices:
        for threads in (args.threads or [2]) if device == "cpu" else [torch.get_num_threads()]:
            torch.set_num_threads(threads)
            for impl in impls:
                for n in paths:
                    row = bench_one(impl, device, n, args.size, args.samples if impl == "distill" else 2,
                                    args.warmup, args.repeats, threads)
                    rows.append(row)
                    if args.json:
                        print(json.dumps(row), flush=True)
    if args.json:
        return
    table = _table(rows)
    print(table)
    if args.no_record:
        return
    notes = [f"- `{d}`: {device_name(d)}" for d in devices]
    notes.append("- This machine is shared with other jobs: with 2 threads, a job that keeps both cores busy "
                 "makes every parallel kernel wait for a preempted thread (10-100x slower here); the load "
                 "average above says how busy it was.")
    if "cuda" not in devices:
        notes.append("- CUDA: no GPU in this session (the renderer runs on CUDA unchanged; not measured here).")
    if "pydiffvg" not in impls:
        notes.append("- pydiffvg is not importable here; its column is the figure measured on the same kind of "
                     "machine and quoted in issue 3 (2x2 samples).")
    notes.append(f"- fwd: render without autograd; fwd+bwd: render with grad on points and colors, L2 loss, "
                 f"backward. Median of {args.repeats} runs after {args.warmup} warm-up.")
    records = []
    for r in rows:
        for metric in ("fwd_ms", "fwdbwd_ms"):
            records.append({"bench": "renderer", "device": device_name(r["device"]),
                            "metric": f"{r['impl']}/{r['device']}/threads={r['threads']}/paths={r['paths']}/"
                                      f"size={r['size']}/samples={r['samples']}/{metric[:-3]}",
                            "value": r[metric], "unit": "ms"})
    append_results("renderer (vector rasterizer, DiffVG's scene)", table, records,
                   device=", ".join(device_name(d) for d in devices), notes=notes)


if __name__ == "__main__":
    main()
