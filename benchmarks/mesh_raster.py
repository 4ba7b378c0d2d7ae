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
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    mesh = sphere()
    cameras = orbit(mesh, args.views)
    raster = rasterize(mesh, cameras, args.size)
    targets = render(mesh.texture, raster, 0.0)
    texture = mesh.texture.clone().requires_grad_(True)

    def backward():
        texture.grad = None
        render(texture, raster).sum().backward()

    rows = [
        ("rasterize (all views)", median_ms(measure(lambda: rasterize(mesh, cameras, args.size), repeats=3))),
        ("render", median_ms(measure(lambda: render(mesh.texture, raster)))),
        ("render + backward", median_ms(measure(backward))),
        ("fit_texture, per step", (median_ms(measure(lambda: fit_texture(targets, raster, mesh.texture, steps=20),
                                                     repeats=3))
                                   - median_ms(measure(lambda: fit_texture(targets, raster, mesh.texture, steps=0),
                                                       repeats=3))) / 20),
    ]
    where = f"{len(mesh.faces):,} triangles, {args.views} views x {args.size} px, {args.threads} threads"
    table = "| operation | ms |\n|---|---|\n" + "\n".join(f"| {name} | {ms:.0f} |" for name, ms in rows)
    print(f"{device_name('cpu')}; {where}\n\n{table}")
    if args.record:
        append_results(f"mesh_raster ({where})", table,
                       [dict(metric=name, value=round(ms, 1), unit="ms", device=device_name("cpu"))
                        for name, ms in rows])


if __name__ == "__main__":
    main()
