"""Text-to-SVG candidates in one batch: seconds for svg/csd with K candidates against K = 1.

    python -m benchmarks.svg_candidates                 # real `sd` prior on CUDA, 600 px, 200 steps
    python -m benchmarks.svg_candidates --quick         # tiny-sd on a CPU, 150 px, 20 steps

Issue 7's target (on an H100): K = 4 costs < 1.5x one candidate, because the step is overhead-bound there and
the K renders, encodes and UNet rows go through one batched call each. On a CPU every row costs its FLOPs, so
expect ~K x there: the CPU row records that the batching works, not the GPU speed-up.
"""
from __future__ import annotations

import argparse
import tempfile
import time

import torch

import backends


def seconds(k: int, prior: str, steps: int, size: int, device: str) -> float:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        backends.run_to_end("svg/csd", {"prompt": "a red fox", "k": k, "steps": steps, "size": size, "every": steps},
                            prior=prior, out_dir=out, device=device)
        return time.perf_counter() - t0


def step_ops(k: int, prior: str, size: int, device: str = "cpu") -> dict:
    """Operators of one svg/csd optimization step with K candidates (the CPU proxy for a GPU's launch-bound cost:
    `benchmarks.renderer.count_ops`): the difference between a 2-step and a 1-step loop, so loading, planning and
    the reports' previews cancel. Equal counts for K = 1 and K = 4 mean nothing in the step scales with K in Python."""
    from backends.priors import load_prior
    from backends.core.settings import resolve_auto
    from backends.svg import distill as vf
    from backends.svg.csd_vectorfusion import CSDVectorFusionSettings

    from .renderer import count_ops

    p = load_prior(prior, device)

    def loop(n):
        s, _ = resolve_auto(CSDVectorFusionSettings(prompt="a red fox", k=k, steps=n, size=size, every=n, reinit_every=0),
                            "full", getattr(p, "defaults", {}))
        plan = vf.make_plan(s, p)
        gen = torch.Generator().manual_seed(0)
        painting = vf.init_painting(plan, k, gen, p.device)
        return lambda: list(vf.distill_painting(painting, p, plan, objective="csd", generator=gen))

    one, two = count_ops(loop(1)), count_ops(loop(2))
    return {key: two[key] - one[key] for key in one}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--ks", default="1,2,4")
    p.add_argument("--no-record", action="store_true")
    p.add_argument("--ops", action="store_true", help="also count the operators of one step per K (CPU profiler)")
    args = p.parse_args(argv)
    prior, steps, size = ("tiny-sd", 20, 150) if args.quick else ("sd", 200, 600)
    seconds(1, prior, 2, size, args.device)  # load the prior and warm up outside the timings
    rows = [dict(k=k, seconds=seconds(k, prior, steps, size, args.device)) for k in map(int, args.ks.split(","))]
    base = rows[0]["seconds"]
    lines = [f"| K | seconds ({steps} steps, {prior}, {size} px) | x one candidate |", "|---|---|---|"]
    lines += [f"| {r['k']} | {r['seconds']:.2f} | {r['seconds'] / base:.2f} |" for r in rows]
    if args.ops:
        ops = {r["k"]: step_ops(r["k"], prior, size) for r in rows}
        lines += ["", "| K | aten ops / step | kernels / step | host reads / step | blocking H2D / step |",
                  "|---|---|---|---|---|"]
        lines += [f"| {k} | {o['aten_ops']} | {o['kernels']} | {o['d2h']} | {o['h2d']} |" for k, o in ops.items()]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        from .common import append_results, device_name

        append_results("svg_candidates" + (" (quick: tiny-sd)" if args.quick else ""), table,
                       [dict(bench="svg_candidates", metric=f"k{r['k']}_seconds", value=r["seconds"], unit="s")
                        for r in rows], device=device_name(args.device))


if __name__ == "__main__":
    main()
