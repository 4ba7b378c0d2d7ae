"""views3d/csd-edit-mesh against views3d/per-view-mesh on the example house with the offline `edits` prior, at the
tab's defaults, over seeds: how far the edited views are from one texture (held_out_residual: a texture fitted to
half the views, measured on the other half; fit_residual on the views fitted), how much the edit varies between
neighbouring views pixel by pixel (residual_variation, the video tab's measure) and the same figure for the edited
texture's own renders, which agree by construction (views 45 degrees apart show different things at the same
pixel, so that figure has a floor no texture goes below), how strong the edit is, how long each run took and when
its first preview came. The ratio columns are CSD-Edit's figure over per-view editing's (the target: at most
1/2). `--sync 0` carries the views into the texture only once, after the last step.

    .venv/bin/python -m benchmarks.mesh_edit [--seeds 0,1,2] [--size 128] [--particles 8] [--steps N] [--record]
"""
from __future__ import annotations

import argparse
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import backends
from backends.csd_edit.metrics import residual_consistency, sequence_pairs
from backends.mesh import Camera, load_mesh, rasterize, render
from backends.core.types import Progress

from .common import append_results, device_name

HOUSE = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"
METHOD, BASELINE = "views3d/csd-edit-mesh", "views3d/per-view-mesh"
FIGURES = ("held_out_residual", "residual_variation", "edit_strength", "fit_residual")


def run(key: str, settings: dict) -> dict:
    """One run in this process: its figures, its seconds, the seconds to its first preview, and `one_texture`: the
    residual variation of its edited texture's own renders (over the views' edited backdrops), which agree by
    construction, so what the pixel-by-pixel figure gives views that agree perfectly on this edit."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        first = None
        for item in backends.run(key, settings, prior="edits", inputs=[str(HOUSE)], out_dir=out):
            if isinstance(item, Progress) and item.preview is not None and first is None:
                first = time.perf_counter() - t0
            result = item
        seconds = time.perf_counter() - t0
        one_texture = texture_variation(result, Path(out))
    found = {f: result.metadata["metrics"][f] for f in FIGURES}
    return dict(found, seconds=seconds, first_preview=first or float("nan"), one_texture=one_texture)


def texture_variation(result, out: Path) -> float:
    """residual_variation (the video tab's measure) of the edited texture rendered from the run's cameras."""
    mesh = load_mesh(HOUSE)
    meta = result.metadata
    cameras = [Camera(**{k: np.asarray(v) if k != "fov" else v for k, v in c.items()}) for c in meta["cameras"]]
    raster = rasterize(mesh, cameras, meta["work_size"][0])
    with zipfile.ZipFile(result.files["zip"]) as z:
        views = np.stack([np.array(Image.open(io.BytesIO(z.read(n))).convert("RGB")) for n in sorted(z.namelist())])
    backdrops = torch.from_numpy(views).permute(0, 3, 1, 2).float() / 255.0
    texture = torch.from_numpy(np.array(Image.open(out / "edited.png").convert("RGB"))).float() / 255.0
    pairs = sequence_pairs(len(cameras), cyclic=True)
    return residual_consistency(render(texture, raster, backdrops), render(mesh.texture, raster, 1.0),
                                pairs)["residual_variation"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--size", type=int, default=128, help="the views' side in pixels (short_side)")
    parser.add_argument("--particles", type=int, default=8)
    parser.add_argument("--steps", type=int, default=None, help="default: the prior's suggestion (300)")
    parser.add_argument("--sync", type=int, default=None, help="sync_every (default: the backend's, 20)")
    parser.add_argument("--prompt", default="make it night")
    parser.add_argument("--record", action="store_true")
    args = parser.parse_args()

    settings = {"prompt": args.prompt, "short_side": args.size, "particles": args.particles}
    settings.update({k: v for k, v in (("steps", args.steps), ("sync_every", args.sync)) if v is not None})
    for key in (METHOD, BASELINE):  # the prior loads and the first optimizer imports before any timed run
        backends.run_to_end(key, {**settings, "steps": 2, "turntable_frames": 4}, prior="edits",
                            inputs=[str(HOUSE)], out_dir=tempfile.mkdtemp())
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        got = {key: run(key, {**settings, "seed": seed}) for key in (METHOD, BASELINE)}
        rows.append((seed, got[METHOD], got[BASELINE]))
        print(f"seed {seed}: " + ", ".join(f"{f} {got[METHOD][f]:.4f} / {got[BASELINE][f]:.4f}" for f in FIGURES),
              flush=True)
    where = (f"house.glb, {args.particles} views of {args.size} px, steps {args.steps or 'auto (300)'}, sync_every "
             f"{args.sync if args.sync is not None else 20}, '{args.prompt}', edits prior")
    head = ("| seed | held-out residual CSD / per-view | ratio | fit residual CSD / per-view | ratio | "
            "residual variation CSD / per-view | ratio | the same of one texture's renders CSD / per-view | "
            "edit strength CSD / per-view | s CSD / per-view | first preview s |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for seed, a, b in rows:
        lines.append(f"| {seed} | {a['held_out_residual']:.4f} / {b['held_out_residual']:.4f} | "
                     f"{a['held_out_residual'] / b['held_out_residual']:.2f} | "
                     f"{a['fit_residual']:.4f} / {b['fit_residual']:.4f} | "
                     f"{a['fit_residual'] / b['fit_residual']:.2f} | "
                     f"{a['residual_variation']:.4f} / {b['residual_variation']:.4f} | "
                     f"{a['residual_variation'] / b['residual_variation']:.2f} | "
                     f"{a['one_texture']:.4f} / {b['one_texture']:.4f} | "
                     f"{a['edit_strength']:.3f} / {b['edit_strength']:.3f} | "
                     f"{a['seconds']:.1f} / {b['seconds']:.1f} | {a['first_preview']:.1f} |")
    table = "\n".join(lines)
    print(f"{device_name('cpu')}; {where}\n\n{table}")
    if args.record:
        append_results(f"mesh_edit ({where})", table,
                       [dict(metric=f"{name} seed {seed} {figure}", value=round(float(got[figure]), 5),
                             unit="s" if figure in ("seconds", "first_preview") else "rms")
                        for seed, a, b in rows for name, got in (("csd-edit-mesh", a), ("per-view-mesh", b))
                        for figure in (*FIGURES, "one_texture", "seconds", "first_preview")],
                       device=device_name("cpu"))


if __name__ == "__main__":
    main()
