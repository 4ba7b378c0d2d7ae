"""Evaluate CSD-Edit against its per-item baselines: CLIP directional similarity, consistency, LPIPS.

    python -m benchmarks.eval_csd_edit --prior ip2p --clip ViT-B-32:openai          # the shipped examples
    python -m benchmarks.eval_csd_edit --prior tiny-ip2p --clip tiny --quick  # exercise it on a CPU
    python -m benchmarks.eval_csd_edit --prior edits --clip '' --device cpu   # offline: the edits prior, defaults

For each case (an input, an instruction, and before/after captions for CLIP) it runs the csd-edit backend and its
baseline with the same settings and seed, reads back the files a user would download, and measures on the
particles (panorama windows, frames, views):
  clip_dir      CLIP directional similarity (edited - source image embedding vs target - source caption), higher
                follows the instruction better (Gal et al.; the CSD paper's figure);
  clip_consist  mean CLIP image-embedding cosine between neighbouring edited particles, higher is more consistent;
  resid_var     mean |r_i - r_j| between neighbours of the edit residual r = edited - source, lower is more
                consistent (no weights needed), with edit_strength = mean |r| beside it;
  colour_map    panorama only: how differently neighbouring half-overlapping windows' centres change the same
                source colour (`metrics.colour_map_variation`): the per-pixel figure compares different pixels
                there and is dominated by the content under them, this one sees a teal window beside a pink one;
  lpips_nbr     mean LPIPS between neighbouring edited particles, when the lpips package and weights are present.
--clip takes NAME:PRETRAINED from the local OpenCLIP cache, or tiny (random weights: numbers mean nothing; tests);
--clip-config registers an OpenCLIP model config JSON first (its file name is the ARCH). Prints a table and, unless
--no-record, appends it to benchmarks/RESULTS.md and benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import backends
from backends.inputs import media
from backends.measures.clip import directional_similarity, get_clip
from backends.csd_edit import metrics, windows
from backends.core.errors import ModelUnavailableError

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

CASES = [
    dict(task="panorama", inputs=["panorama/landscape.png"], prompt="make it a snowy winter landscape",
         source_caption="a landscape with mountains, a lake and a meadow",
         target_caption="a snowy winter landscape with mountains, a frozen lake and snow"),
    dict(task="video", inputs=["video/rolling_ball.mp4"], prompt="turn the ball into a blue glass ball",
         source_caption="a red ball rolling on a green meadow", target_caption="a blue glass ball rolling on a green meadow"),
    dict(task="views3d", inputs=[f"views3d/view_{k:02d}.png" for k in range(8)], prompt="make it look like a watermelon",
         source_caption="a patterned ball on a plinth", target_caption="a watermelon on a plinth"),
]
# The `edits` prior knows a closed vocabulary (winter, sunset, night, black and white, sepia, watercolour, pop art,
# invert): the same inputs, with the tabs' example instructions where the vocabulary has them ("make it winter, snow
# on the ground", "make it a Van Gogh painting"; the 3D tab's "bronze statue" is not in it, so sepia there).
EDIT_CASES = [
    dict(CASES[0], prompt="make it winter, snow on the ground"),
    dict(CASES[1], prompt="make it a Van Gogh painting", target_caption="a Van Gogh painting of a red ball rolling "
                                                                        "on a green meadow"),
    dict(CASES[2], prompt="make it an old sepia photo", target_caption="an old sepia photo of a patterned ball on a "
                                                                       "plinth"),
]
BASELINE = {"panorama": "per-patch", "video": "per-frame", "views3d": "per-view"}
QUICK = {"steps": 1, "short_side": 64, "window": 64, "stride": 64, "particles": 3}


def particles(task: str, case_inputs: list[str], result) -> tuple[torch.Tensor, torch.Tensor, list]:
    """(source, edited) particles (N, 3, H, W) in [0, 1] read from the input files and the result's files, and
    their neighbour pairs."""
    if task == "panorama":
        src = np.asarray(media.image(case_inputs[0]))
        out = np.asarray(Image.open(result.files["png"]).convert("RGB"))
        h, w = src.shape[:2]
        side = min(h, w)
        boxes, grid = windows.window_boxes(h, w, side, max(side // 2, 1))
        pick = lambda a: np.stack([a[y:y + bh, x:x + bw] for y, x, bh, bw in boxes])  # noqa: E731
        return _t(pick(src)), _t(pick(out)), metrics.grid_pairs(*grid)
    if task == "video":
        edited = _read_video(result.files["mp4"])
        src, _ = media.video(case_inputs[0], sample=len(edited))
        src = src[:, : edited.shape[1], : edited.shape[2]]  # the mp4 has even sides
        return _t(src), _t(edited), metrics.sequence_pairs(len(edited))
    with zipfile.ZipFile(result.files["zip"]) as zf:
        edited = np.stack([np.asarray(Image.open(zf.open(n)).convert("RGB")) for n in sorted(zf.namelist())])
    src = np.stack([np.asarray(v) for v in media.images(case_inputs)])
    return _t(src), _t(edited), metrics.sequence_pairs(len(edited))


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(0, 3, 1, 2).float() / 255.0


def _read_video(path: str) -> np.ndarray:
    import imageio.v2 as iio

    reader = iio.get_reader(path)
    try:
        return np.stack([frame for frame in reader])  # list(reader) asks len(), which is inf for mp4
    finally:
        reader.close()


def evaluate(args) -> list[dict]:
    clip = get_clip(args.clip, args.device) if args.clip else None
    try:
        lpips = metrics.load_lpips(args.device)
    except ModelUnavailableError as err:
        lpips, lpips_note = None, str(err)
    else:
        lpips_note = ""
    cases = json.loads(Path(args.cases).read_text()) if args.cases else (
        EDIT_CASES if args.prior.split(":")[0] == "edits" else CASES)
    overrides = dict(QUICK if args.quick else {}, **dict(kv.split("=", 1) for kv in args.set))
    rows = []
    for case in cases:
        if args.tasks and case["task"] not in args.tasks.split(","):
            continue
        files = [str(p if Path(p).is_absolute() else EXAMPLES / p) for p in case["inputs"]]
        if args.quick and case["task"] != "panorama":
            files = files[:3]
        for name in ("csd-edit", BASELINE[case["task"]]):
            key = f"{case['task']}/{name}"
            settings = {"prompt": case["prompt"], **{k: v for k, v in overrides.items() if _has(key, k)}}
            runs = [measure(key, dict(settings, seed=seed), case, files, args, clip, lpips) for seed in range(args.seeds)]
            row = {k: (float(np.mean([r[k] for r in runs])) if isinstance(v, float) else v) for k, v in runs[0].items()}
            row.update(seeds=args.seeds, residual_variation_per_seed=[r["residual_variation"] for r in runs],
                       lpips_note=lpips_note)
            rows.append(row)
            print(f"{key}: " + ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float))
                  + f" (per seed: {', '.join(f'{v:.4f}' for v in row['residual_variation_per_seed'])})", flush=True)
    return rows


def measure(key: str, settings: dict, case: dict, files: list[str], args, clip, lpips) -> dict:
    """One run of backend `key` on a case, and its metrics on the particles (see the module docstring)."""
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        result = backends.run_to_end(key, settings, prior=args.prior, inputs=files, out_dir=out, device=args.device)
        seconds = time.perf_counter() - t0
        source, edited, pairs = particles(case["task"], files, result)
    row = {"case": case["task"], "backend": key, "seconds": seconds, "particles": len(edited)}
    row.update(metrics.residual_consistency(edited, source, pairs))
    if case["task"] == "panorama":  # neighbouring windows cover different pixels: compare their colour
        row.update(metrics.colour_map_variation(edited, source, pairs))
    if clip is not None:
        row["clip_dir"] = float(directional_similarity(source, edited, case["source_caption"], case["target_caption"],
                                                       model=clip).mean())
        row["clip_consist"] = metrics.neighbour_similarity(clip, edited, pairs)
    if lpips is not None and pairs:
        a, b = zip(*pairs)
        with torch.no_grad():
            row["lpips_nbr"] = float(lpips(edited[list(a)].to(args.device), edited[list(b)].to(args.device)).mean())
    return row


def _has(key: str, setting: str) -> bool:
    import dataclasses

    return setting in {f.name for f in dataclasses.fields(backends.get(key).Settings)}


def table(rows: list[dict]) -> str:
    def f(row, k):
        return f"{row[k]:.4f}" if isinstance(row.get(k), float) else "n/a"

    lines = ["| case | backend | CLIP dir (higher) | CLIP consistency (higher) | residual variation (lower) | "
             "colour map variation (lower, panorama) | edit strength | LPIPS neighbours (lower) | s |",
             "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['backend']} | {f(r, 'clip_dir')} | {f(r, 'clip_consist')} | "
              f"{f(r, 'residual_variation')}{_per_seed(r)} | {f(r, 'colour_map_variation')} | "
              f"{f(r, 'edit_strength')} | {f(r, 'lpips_nbr')} | {r['seconds']:.1f} |" for r in rows]
    return "\n".join(lines)


def _per_seed(row: dict) -> str:
    per = row.get("residual_variation_per_seed", [])
    return f" ({' / '.join(f'{v:.4f}' for v in per)})" if len(per) > 1 else ""


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--prior", default="ip2p", help="ip2p, tiny-ip2p, edits (offline; its own vocabulary cases), "
                                                   "analytic, or ip2p:<hub id or folder>")
    p.add_argument("--clip", default="ViT-B-32:openai", help="CLIP NAME:PRETRAINED from the local cache, or tiny "
                                                             "(random weights) ('' to skip CLIP metrics)")
    p.add_argument("--clip-config", default=None, help="an OpenCLIP model config JSON to register first")
    p.add_argument("--cases", default=None, help="JSON list of cases (task, inputs, prompt, source_caption, "
                                                 "target_caption); default: the shipped examples")
    p.add_argument("--tasks", default="", help="comma list of tasks to run (default: all)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting for every backend")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="1 step at 64 px, 3 frames / views (tiny priors on a CPU)")
    p.add_argument("--seeds", type=int, default=1, help="runs per backend (seeds 0..N-1); metrics are their means "
                                                        "(which variant an item lands on is random: one seed can "
                                                        "flatter either method)")
    p.add_argument("--json", default=None, help="also write the rows to this JSON file")
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args(argv)
    if args.clip_config:
        import open_clip

        open_clip.add_model_config(args.clip_config)
    rows = evaluate(args)
    text = table(rows)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    if not args.no_record:
        from .common import append_results, device_name

        note = [f"Prior {args.prior}, CLIP {args.clip or 'none'}" + (", quick (tiny sizes)" if args.quick else "")
                + f", seeds 0-{args.seeds - 1} (means; residual variation per seed in results.jsonl)."]
        if rows and rows[0]["lpips_note"]:
            note.append(f"LPIPS: {rows[0]['lpips_note']}")
        append_results("eval_csd_edit", text, [
            dict(metric=f"{r['backend']}/{k}", value=r[k], unit="s" if k == "seconds" else "")
            for r in rows for k in ("clip_dir", "clip_consist", "residual_variation", "colour_map_variation",
                                    "edit_strength", "lpips_nbr", "seconds")
            if isinstance(r.get(k), float)] + [
            dict(metric=f"{r['backend']}/residual_variation_seed{i}", value=v, unit="")
            for r in rows for i, v in enumerate(r["residual_variation_per_seed"])], device=device_name(args.device),
            notes=note)
    return rows


if __name__ == "__main__":
    main()
