"""backends.mesh on a CPU: rasterize (once per edit), render, render + backward, and a fit_texture step, for an
icosphere of 20,480 triangles with a 512x512 texture seen by 8 orbit cameras at 256 px (the issue 22 target:
rasterizing well under 5 s on 2 cores).

    .venv/bin/python -m benchmarks.mesh_raster [--threads 2] [--record]

--record appends the table to benchmarks/RESULTS.md and results.jsonl.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch

from backends.core.devices import apply_threads, choose_threads
from backends.mesh import Mesh, fit_texture, orbit, rasterize, render

from .common import append_results, device_name, measure, median_ms


def sphere(subdivisions: int = 5, texture: int = 512) -> Mesh:
    import trimesh

    ico = trimesh.creation.icosphere(subdivisions=subdivisions)
    v = np.asarray(ico.vertices, np.float32)
    uv = np.stack([0.5 + np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi),
                   0.5 + np.arcsin(np.clip(v[:, 1], -1, 1)) / np.pi], 1).astype(np.float32)
    return Mesh(v, np.asarray(ico.faces, np.int64), uv, torch.rand(texture, texture, 3, generator=torch.Generator().manual_seed(0)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the thread policy's)")
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    apply_threads(choose_threads(asked=args.threads))
    mesh = sphere()
    cameras = orbit(mesh, args.views)
    raster = rasterize(mesh, cameras, args.size)
    targets = render(mesh.texture, raster, 0.0)
    texture = mesh.texture.clone().requires_grad_(True)

    def backward():
        texture.grad = None
        render(texture, raster).sum().backward()

    def times(fn, repeats=10):
        return measure(fn, repeats=repeats)

    fit0, fit20 = times(lambda: fit_texture(targets, raster, mesh.texture, steps=0), 3), \
        times(lambda: fit_texture(targets, raster, mesh.texture, steps=20), 3)
    # median and best of the repeats: on a shared machine the best is the figure other processes disturbed least
    rows = [
        ("rasterize (all views)", times(lambda: rasterize(mesh, cameras, args.size), 3)),
        ("render", times(lambda: render(mesh.texture, raster), 20)),
        ("render + backward", times(backward, 20)),
        ("fit_texture, setup (levels, masks)", fit0),
        ("fit_texture, per step", [(b - a) / 20 for a, b in zip(sorted(fit0), sorted(fit20))]),
    ]
    rows = [(name, median_ms(t), 1000.0 * min(t)) for name, t in rows]
    where = f"{len(mesh.faces):,} triangles, {args.views} views x {args.size} px, {torch.get_num_threads()} threads"
    table = "| operation | median ms | best ms |\n|---|---|---|\n" + "\n".join(
        f"| {name} | {med:.0f} | {low:.0f} |" for name, med, low in rows)
    print(f"{device_name('cpu')}; {where}\n\n{table}")
    if args.record:
        append_results(f"mesh_raster ({where})", table,
                       [dict(metric=name, value=round(med, 1), best=round(low, 1), unit="ms",
                             device=device_name("cpu")) for name, med, low in rows])


if __name__ == "__main__":
    main()
