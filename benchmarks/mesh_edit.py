"""views3d/csd-edit-mesh against views3d/per-view-mesh on the example house with the offline `edits` prior: how
strong the edit is, how much it varies from view to view, and how far the edited views are from one texture
(fit_residual on the views fitted, held_out_residual on the half a fit did not see), with and without carrying
the views into the texture during the edit (sync_every).

    .venv/bin/python -m benchmarks.mesh_edit [--particles 8] [--steps 40] [--size 128] [--record]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import backends

from .common import append_results, device_name

HOUSE = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"
FIGURES = ("edit_strength", "residual_variation_rel", "fit_residual", "held_out_residual")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--prompt", default="make it night")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    rows = []
    for key in ("views3d/csd-edit-mesh", "views3d/per-view-mesh"):
        for sync in (0, 20):
            settings = {"prompt": args.prompt, "steps": args.steps, "sync_every": sync, "short_side": args.size,
                        "particles": args.particles, "seed": 0}
            with tempfile.TemporaryDirectory() as out:
                t0 = time.perf_counter()
                result = backends.run_to_end(key, settings, prior="edits", inputs=[str(HOUSE)], out_dir=out)
                seconds = time.perf_counter() - t0
            found = result.metadata["metrics"]
            rows.append((key.split("/")[1], sync, *(found[f] for f in FIGURES), seconds))
    where = (f"house.glb, {args.particles} views x {args.size} px, {args.steps} steps, '{args.prompt}', "
             f"edits prior, seed 0")
    table = ("| backend | sync_every | " + " | ".join(FIGURES) + " | s |\n|---|---|" + "---|" * (len(FIGURES) + 1)
             + "\n" + "\n".join(f"| {name} | {sync} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {s:.0f} |"
                                for name, sync, *values, s in rows))
    print(f"{device_name('cpu')}; {where}\n\n{table}")
    if args.record:
        append_results(f"mesh_edit ({where})", table,
                       [dict(metric=f"{name} sync {sync} {figure}", value=round(v, 5), unit="rms",
                             device=device_name("cpu"))
                        for name, sync, *values, _s in rows for figure, v in zip(FIGURES, values)])


if __name__ == "__main__":
    main()
