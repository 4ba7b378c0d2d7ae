"""Vector renderer speed: Distill Studio's PyTorch renderer (and pydiffvg when importable) on DiffVG's scene.

Scene (issue 3): N closed paths of 4 cubic segments, control points uniform in a random box a quarter of
the canvas side, random RGBA fill, white background, 600 x 600. "fwd" renders without autograd (a preview);
"fwd+bwd" is one optimization step: render with points and colors requiring grad, an L2 loss to a target,
backward. Median of several runs after a warm-up.

    python -m benchmarks.renderer                      # table, appended to RESULTS.md and results.jsonl
    python -m benchmarks.renderer --json --paths 128   # one JSON object per row, nothing recorded
    python -m benchmarks.renderer --ops                # operators and host syncs per fwd+bwd, per method

--ops counts, with torch.profiler on the CPU, the operators of one fwd+bwd (600x600, 1 sample per pixel) for
the renderer before this work (the commit given by --before, loaded from git; its CUDA compositor "sorted"
and its CPU one "loop") and now (the reference method with both compositors, and the batched method that
CUDA uses), and the host syncs: device-to-host reads (.item()/int()/bool(), .tolist(), nonzero, unique,
repeat_interleave without output_size) and blocking host-to-device copies (torch.tensor(..., device=)).
On a CPU those are plain memory reads; on a GPU each one waits for the device to drain its queue.
It also times fwd+bwd of each method on the CPU (median of --repeats after --warmup).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import torch

from backends.core.devices import choose_threads
from backends.svg import diffvg_adapter
from backends.svg.render import render
from backends.svg.painting import random_paths
from backends.svg.scene import Scene

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


BEFORE = "9e821a4"      # the renderer before the batched method and clipping
# Operators that launch no kernel (views, metadata, allocation): left out of the "kernels" count.
_NO_KERNEL = {"aten::view", "aten::reshape", "aten::_reshape_alias", "aten::as_strided", "aten::expand",
              "aten::slice", "aten::select", "aten::unsqueeze", "aten::squeeze", "aten::permute", "aten::t",
              "aten::transpose", "aten::detach", "detach", "aten::alias", "aten::empty", "aten::empty_strided",
              "aten::empty_like", "aten::resize_", "aten::lift_fresh", "aten::unbind", "aten::split",
              "aten::split_with_sizes", "aten::narrow", "aten::flatten", "aten::unflatten", "aten::view_as",
              "aten::expand_as", "aten::as_strided_", "aten::_unsafe_view", "aten::chunk", "aten::result_type",
              "aten::is_nonzero", "aten::resolve_conj", "aten::resolve_neg", "aten::contiguous",
              "aten::to", "aten::_to_copy", "aten::lift", "aten::set_", "aten::_local_scalar_dense",
              "aten::item", "aten::numpy_T", "aten::_has_compatible_shallow_copy_type"}


def load_before(commit: str = BEFORE):
    """The renderer module as it was at `commit` (read with git show, imported inside backends.svg)."""
    root = Path(__file__).resolve().parent.parent
    src = subprocess.run(["git", "show", f"{commit}:backends/svg/render.py"], cwd=root, capture_output=True,
                         text=True, check=True).stdout
    name = f"backends.svg._render_{commit}"
    spec = importlib.util.spec_from_loader(name, loader=None)
    mod = importlib.util.module_from_spec(spec)
    mod.__package__ = "backends.svg"
    sys.modules[name] = mod
    exec(compile(src, f"<{commit}:backends/svg/render.py>", "exec"), mod.__dict__)
    return mod


class _HostCalls:
    """Counts Tensor.tolist calls and torch.tensor(..., device=...) host-to-device copies while active."""

    def __enter__(self):
        self.tolist = self.h2d = 0
        self._tolist, self._tensor = torch.Tensor.tolist, torch.tensor
        outer = self

        def tolist(t, *a, **k):
            outer.tolist += 1
            return outer._tolist(t, *a, **k)

        def tensor(data, *a, **k):
            if k.get("device") is not None:
                outer.h2d += 1
            return outer._tensor(data, *a, **k)

        torch.Tensor.tolist, torch.tensor = tolist, tensor
        return self

    def __exit__(self, *exc):
        torch.Tensor.tolist, torch.tensor = self._tolist, self._tensor


def count_ops(fn) -> dict:
    """Operators and host syncs of one call of fn, on the CPU (torch.profiler).

    aten_ops: operators called from Python or autograd (top-level, the dispatcher calls a GPU pays for);
    kernels: innermost operators that do work (views, allocations, scalar reads and operators on 0-dim
    tensors only left out), roughly one GPU kernel each; d2h: device-to-host reads; h2d: blocking host-to-device copies.
    """
    from torch.profiler import ProfilerActivity, profile
    with _HostCalls() as host, profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        fn()
    events = [e for e in prof.events() if e.name.startswith("aten::")]

    def does_work(e) -> bool:
        # on a GPU, an operator on 0-dim tensors only is a host scalar (a CPU artifact of wrapped numbers)
        return e.name not in _NO_KERNEL and any(len(s) > 0 for s in (e.input_shapes or [[1]]))

    has_kernel_below = {}

    def below(e) -> bool:
        if id(e) not in has_kernel_below:
            has_kernel_below[id(e)] = any((c.name.startswith("aten::") and does_work(c)) or below(c)
                                          for c in e.cpu_children)
        return has_kernel_below[id(e)]

    top = kernels = reads = 0
    for e in events:
        name = e.name
        parent = e.cpu_parent
        while parent is not None and not parent.name.startswith("aten::"):
            parent = parent.cpu_parent
        top += parent is None
        kernels += does_work(e) and not below(e)
        if name in ("aten::nonzero", "aten::_unique2", "aten::unique_dim", "aten::_unique",
                    "aten::unique_consecutive"):
            reads += 1
        elif name == "aten::_local_scalar_dense":
            # repeat_interleave without output_size reads its total (and on CPU also checks repeats >= 0):
            # one sync on a GPU, counted below
            anc = e.cpu_parent
            while anc is not None and anc.name != "aten::repeat_interleave":
                anc = anc.cpu_parent
            reads += anc is None
        elif name == "aten::repeat_interleave" and any(c.name == "aten::item" for c in e.cpu_children):
            reads += 1
    return {"aten_ops": top, "kernels": kernels, "d2h": reads + host.tolist, "h2d": host.h2d}


def ops_rows(paths, size: int, repeats: int, warmup: int, before: str) -> list[dict]:
    old = load_before(before)
    target = torch.rand(size, size, 3, generator=torch.Generator().manual_seed(1))
    methods = {f"before {before} (sorted: CUDA)": lambda sc: old.render(sc, composite="sorted"),
               f"before {before} (loop: CPU)": lambda sc: old.render(sc, composite="loop"),
               "reference (sorted)": lambda sc: render(sc, method="reference", composite="sorted"),
               "reference (loop: CPU default)": lambda sc: render(sc, method="reference", composite="loop"),
               "batched (CUDA default)": lambda sc: render(sc, method="batched")}
    rows = []
    for n in paths:
        scene = make_scene(n, size, "cpu")
        for name, draw in methods.items():
            def step():
                for s in scene.shapes:          # no accumulation into .grad: count the renderer's operators
                    s.points.grad = s.fill.grad = None
                (draw(scene) - target).pow(2).mean().backward()
            step()                                               # warm-up (lazy inits out of the count)
            row = {"method": name, "paths": n, "size": size, **count_ops(step)}
            row["fwdbwd_ms"] = round(median_ms(measure(step, warmup=warmup, repeats=repeats)), 1)
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def _ops_table(rows: list[dict]) -> str:
    lines = ["| method | paths | aten ops (top-level) | kernels (leaf ops) | device-to-host reads | "
             "blocking host-to-device copies | CPU fwd+bwd ms |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['paths']} | {r['aten_ops']} | {r['kernels']} | {r['d2h']} | {r['h2d']} | "
                     f"{r['fwdbwd_ms']:.1f} |")
    return "\n".join(lines)


def clip_rows(methods=("reference", "batched")) -> list[dict]:
    """Far-away vertices: `<path d="M0 0 L{far} 5 L5 {far}Z"/>` on a 600x600 canvas, fwd+bwd time and the bytes
    autograd keeps (saved tensors), per method; before clipping, far = 3e6 took 3.56 GB and 1e10 asked for 80 GB."""
    from backends.svg.cost import estimate_work
    from backends.svg.scene import Shape
    rows = []
    for far in (3e6, 1e10):
        corners = torch.tensor([[0.0, 0.0], [far, 5.0], [5.0, far]])
        nxt = torch.roll(corners, -1, 0)
        pts = torch.stack([corners, corners + (nxt - corners) / 3, corners + (nxt - corners) * 2 / 3], 1).reshape(-1, 2)
        for method in methods:
            scene = Scene(600, 600, [Shape("path", pts.clone().requires_grad_())])
            saved = []

            def pack(t):
                saved.append(t.numel() * t.element_size())
                return t

            def step():
                saved.clear()
                with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
                    img = render(scene, method=method)
                img.sum().backward()

            ms = median_ms(measure(step, warmup=1, repeats=3))
            rows.append({"far": far, "method": method, "fwdbwd_ms": round(ms, 1),
                         "saved_mb": round(sum(saved) / 2**20, 1),
                         "estimate_mb": round(estimate_work([scene])["bytes"] / 2**20, 1)})
            print(json.dumps(rows[-1]), flush=True)
    return rows


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
                   help="CPU threads (repeatable; default: the thread policy's, backends.core.devices.choose_threads)")
    p.add_argument("--samples", type=int, default=1, help="s x s samples per pixel for this renderer (default 1: "
                                                          "its coverage is area-exact); pydiffvg always uses 2x2")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--json", action="store_true", help="print one JSON object per row; record nothing")
    p.add_argument("--no-record", action="store_true", help="print the table only")
    p.add_argument("--ops", action="store_true", help="count operators and host syncs per fwd+bwd (CPU)")
    p.add_argument("--clip", action="store_true", help="far-away vertices: time and autograd memory per method")
    p.add_argument("--before", default=BEFORE, help=f"commit of the 'before' renderer for --ops (default {BEFORE})")
    args = p.parse_args(argv)
    if args.clip:
        torch.set_num_threads((args.threads or [choose_threads().threads])[0])
        rows = clip_rows()
        table = "\n".join(["| path | method | fwd+bwd ms | autograd saved MB | estimate_work MB |", "|---|---|---|---|---|"]
                          + [f"| M0 0 L{r['far']:g} 5 L5 {r['far']:g}Z | {r['method']} | {r['fwdbwd_ms']:.1f} | "
                             f"{r['saved_mb']:.1f} | {r['estimate_mb']:.1f} |" for r in rows])
        print(table)
        if args.no_record or args.json:
            return
        notes = ["- One path on a 600x600 canvas whose far vertices are clipped to its tile (the whole canvas, so "
                 "the coverage work is that of a full-canvas shape). Before clipping (issue \"Bounded work\"): "
                 "3.56 GB for 3e6 and an 80 GB allocation for 1e10.",
                 f"- {torch.get_num_threads()} thread(s), median of 3 after 1 warm-up; autograd saved MB: the "
                 "tensors kept for backward through autograd (the reference's loop compositor keeps its own "
                 "per-layer tiles besides, not counted)."]
        records = [{"bench": "renderer", "device": "CPU (2 cores)",
                    "metric": f"clip/far={r['far']:g}/{r['method']}/{k}", "value": r[k], "unit": u}
                   for r in rows for k, u in (("fwdbwd_ms", "ms"), ("saved_mb", "MiB"), ("estimate_mb", "MiB"))]
        append_results("renderer far-away vertices (clipping)", table, records, device="CPU (2 cores)", notes=notes)
        return
    if args.ops:
        torch.set_num_threads((args.threads or [choose_threads().threads])[0])
        rows = ops_rows(args.paths or list(PATHS), args.size, args.repeats, args.warmup, args.before)
        table = _ops_table(rows)
        print(table)
        if args.no_record or args.json:
            return
        threads = torch.get_num_threads()
        notes = ["- Operators of one fwd+bwd (render with grad on points and colors, L2 loss, backward), counted "
                 "by torch.profiler on the CPU: `aten ops` are the operators called from Python or autograd, "
                 "`kernels` the innermost operators that do work (views, allocations, scalar reads and operators "
                 "on 0-dim tensors only, host scalars on a GPU, left out), "
                 "about one GPU kernel launch each.",
                 "- Host syncs: device-to-host reads (`.item()`/`int()`/`bool()`, `.tolist()`, `nonzero` (also "
                 "inside boolean indexing), `unique`, `repeat_interleave` without `output_size`) and blocking "
                 "host-to-device copies (`torch.tensor(..., device=)`); each one waits for a GPU's queue to drain.",
                 f"- `before {args.before}`: the renderer at that commit (loaded with git show); `sorted` is "
                 "what it ran on CUDA, `loop` on CPU. `batched` is what `render` now runs on CUDA.",
                 f"- CPU fwd+bwd: {threads} thread(s), median of {args.repeats} after {args.warmup} warm-up, on a "
                 "machine shared with other jobs (see the load average). No GPU in this session: GPU times are "
                 "not measured here."]
        records = []
        for r in rows:
            for metric, unit in (("aten_ops", "ops"), ("kernels", "ops"), ("d2h", "syncs"), ("h2d", "syncs"),
                                 ("fwdbwd_ms", "ms")):
                records.append({"bench": "renderer", "device": "CPU (2 cores)",
                                "metric": f"ops/{r['method']}/paths={r['paths']}/size={r['size']}/"
                                          f"{metric if metric != 'fwdbwd_ms' else f'threads={threads}/fwdbwd'}",
                                "value": r[metric], "unit": unit})
        append_results("renderer operators and host syncs per fwd+bwd (before / after the batched method)", table,
                       records, device="CPU (2 cores)", notes=notes)
        return

    paths = args.paths or list(PATHS)
    devices = args.device or (["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    if "cuda" in devices and not torch.cuda.is_available():
        p.error("--device cuda: no CUDA device here")
    impls = ["distill"] + (["pydiffvg"] if diffvg_adapter.available() else [])
    rows = []
    for device in devices:
        for threads in (args.threads or [choose_threads().threads]) if device == "cpu" else [torch.get_num_threads()]:
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
