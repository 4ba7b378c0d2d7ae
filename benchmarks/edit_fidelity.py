"""Edits at full fidelity (issue 34): what the visitor gets back from the editing tabs, offline (`edits` prior), at
the tabs' defaults.

Part 1, delivered fidelity: a real photo (scikit-image's "coffee", CC0, as a 1482x500 strip) through the panorama
tab, a real clip (a pan over scikit-image's "rocket", public domain: 5 s, 24 fps, 640x360, 120 frames) through the
video tab, and the example views through the views tab, for the method and its baseline, and the panorama with the
old resize (upsample=resize) beside them. Columns: the output's size and frame count, the high-pass detail
correlation of the result with the input (`metrics.DetailCorrelation`; target >= 0.9 for colour edits), the
delivered edit strength and inconsistency, the clip's frame-to-frame change over the source's (target <= 1.2), and
the run's time (targets: clip <= 30 s, photo <= 10 s on 2 idle cores; `--note` records the machine's conditions).

Part 2, strength at equal consistency: every edit example of the panorama, video and views tabs (their prompts and
inputs, `demo/*_tab.py`), over seeds, CSD-Edit's edit strength over the baseline's (target >= 0.9) and its
inconsistency over the baseline's (target <= 0.5): residual_variation for frames and views, the texture-blind
colour_map_variation for the panorama's windows (metrics.py says why the per-pixel figure cannot see windows
that took different looks), beside what one look of the edit applied everywhere scores on the same windows
(`one_look`): where the baseline's windows happened to agree too, both sit there and their ratio says nothing.

    .venv/bin/python -m benchmarks.edit_fidelity [--seeds 0,1,2] [--part 1|2|both] [--tasks video,panorama,views3d]
        [--record]
"""
from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

from PIL import Image

import backends
from backends.csd_edit import metrics, outputs, samples, windows
from backends.priors import edits

from .common import append_results, device_name

ROOT = Path(__file__).resolve().parents[1]


def _inputs(folder: Path) -> dict[str, list[str]]:
    photo = folder / "coffee_strip.png"
    Image.fromarray(samples.photo_strip()).save(photo)
    clip = folder / "rocket_pan.mp4"
    outputs.write_mp4(samples.panned_clip(), 24.0, clip)
    return {"photo": [str(photo)], "clip": [str(clip)],
            "views": sorted(glob.glob(str(ROOT / "examples" / "views3d" / "view_*.png")))}


FIDELITY = [  # (label, backend, input, prompt, extra settings)
    ("photo, winter", "panorama/csd-edit", "photo", "make it winter", {}),
    ("photo, winter", "panorama/per-patch", "photo", "make it winter", {}),
    ("photo, winter, resize", "panorama/csd-edit", "photo", "make it winter", {"upsample": "resize"}),
    ("clip, sunset", "video/csd-edit", "clip", "make it a sunset", {}),
    ("clip, sunset", "video/per-frame", "clip", "make it a sunset", {}),
    ("views, sepia", "views3d/csd-edit", "views", "make it an old sepia photo", {}),
    ("views, sepia", "views3d/per-view", "views", "make it an old sepia photo", {}),
]

EXAMPLES = [  # (task, input, prompt, baseline): the tabs' edit examples
    ("video", "examples/video/rolling_ball.mp4", "make it winter", "per-frame"),
    ("video", "examples/video/rolling_ball.mp4", "make it a watercolour painting", "per-frame"),
    ("panorama", "examples/panorama/landscape.png", "make it winter, snow on the ground", "per-patch"),
    ("panorama", "examples/panorama/landscape.png", "make it a sunset", "per-patch"),
    ("views3d", "examples/views3d/view_*.png", "make it an old sepia photo", "per-view"),
    ("views3d", "examples/views3d/view_*.png", "make it night", "per-view"),
]


def _size_of(result) -> tuple[str, int, float | None]:
    """(WxH, frames, fps) of what the run wrote."""
    files = result.files
    if "png" in files:
        w, h = Image.open(files["png"]).size
        return f"{w}x{h}", 1, None
    if "zip" in files:
        import zipfile

        with zipfile.ZipFile(files["zip"]) as zf:
            names = zf.namelist()
            w, h = Image.open(zf.open(names[0])).size
        return f"{w}x{h}", len(names), None
    import imageio.v2 as iio

    reader = iio.get_reader(files["mp4"], format="FFMPEG")
    meta, count = reader.get_meta_data(), reader.count_frames()
    reader.close()
    w, h = meta["size"]
    return f"{w}x{h}", count, float(meta["fps"])


def part1(folder: Path) -> tuple[str, list[dict]]:
    inputs = _inputs(folder)
    lines = ["| input, edit | backend | delivered | working size | detail corr. | strength | inconsistency "
             "| frame change / source's | time (s) |", "|" + "---|" * 9]
    rows = []
    for k, (label, key, which, prompt, extra) in enumerate(FIDELITY):
        t0 = time.perf_counter()
        result = backends.run_to_end(key, {"prompt": prompt, **extra}, prior="edits", inputs=inputs[which],
                                     out_dir=str(folder / f"run{k}"), device="cpu")
        took = time.perf_counter() - t0
        m, meta = result.metadata["metrics"], result.metadata
        size, frames, fps = _size_of(result)
        work = "x".join(str(v) for v in meta["work_size"])
        inconsistency = m.get("delivered_residual_variation", m.get("delivered_colour_map_variation"))
        delivered = size + (f", {frames} frames at {fps:g} fps" if fps else (f", {frames} views" if frames > 1 else ""))
        change = m.get("frame_change_ratio")
        lines.append(f"| {label} | {key}{' (upsample=resize)' if extra else ''} | {delivered} | {work} "
                     f"| {m['detail_correlation']:.3f} | {m['delivered_edit_strength']:.4f} | {inconsistency:.4f} "
                     f"| {'' if change is None else f'{change:.2f}'} | {took:.1f} |")
        for metric, value in [("detail_correlation", m["detail_correlation"]),
                              ("delivered_edit_strength", m["delivered_edit_strength"]),
                              ("delivered_inconsistency", inconsistency), ("frame_change_ratio", change),
                              ("time", took)]:
            if value is not None:
                rows.append({"metric": metric, "value": float(value), "unit": "s" if metric.startswith("time") else "",
                             "case": label, "backend": key, "settings": extra, "delivered": delivered})
        print(lines[-1], flush=True)
    return "\n".join(lines), rows


def one_look(prompt: str, image_path: str, meta: dict) -> tuple[float, float]:
    """The panorama's consistency figure of each of the `edits` prior's looks of the edit applied to the whole
    working-size source, on the windows the backend compares (panorama.py's outputs: half-overlapping windows of
    `window_cells`; one latent cell per pixel with this prior): what a perfectly consistent edit scores here, as
    (least, most) over the looks. Both methods at or near it have both kept one look everywhere."""
    prior = edits.EditPrior.load("cpu")
    source = outputs.to_batch([Image.open(image_path)], tuple(meta["work_size"]), "cpu")
    looks = prior.decode(prior.variant_means(prior.encode(source, mode="mean"), edits.match_index(prompt))[0])
    window = meta["window_cells"]
    tiles, grid = windows.window_boxes(*source.shape[-2:], window, max(window // 2, 1))
    pairs, cut = metrics.grid_pairs(*grid), lambda x: windows.take_windows(x, tiles)
    found = [metrics.colour_map_variation(cut(look[None]), cut(source), pairs)["colour_map_variation"]
             for look in looks]
    return min(found), max(found)


def part2(folder: Path, seeds: list[int], tasks: set[str]) -> tuple[str, list[dict]]:
    lines = ["| task | prompt | seed | strength CSD / base | ratio | inconsistency CSD / base | ratio "
             "| one look everywhere |", "|" + "---|" * 8]
    rows = []
    for task, pattern, prompt, base in EXAMPLES:
        if task not in tasks:
            continue
        inp = sorted(glob.glob(str(ROOT / pattern)))
        for seed in seeds:
            found = {}
            for name in ("csd-edit", base):
                result = backends.run_to_end(f"{task}/{name}", {"prompt": prompt, "seed": seed}, prior="edits",
                                             inputs=inp, out_dir=str(folder / "examples"), device="cpu")
                found[name] = result.metadata
            key = "colour_map_variation" if task == "panorama" else "residual_variation"
            c, b = found["csd-edit"]["metrics"], found[base]["metrics"]
            rs, ri = c["edit_strength"] / b["edit_strength"], c[key] / max(b[key], 1e-12)
            floor = one_look(prompt, inp[0], found["csd-edit"]) if task == "panorama" else None
            lines.append(f"| {task} | {prompt} | {seed} | {c['edit_strength']:.4f} / {b['edit_strength']:.4f} | "
                         f"{rs:.2f} | {c[key]:.4f} / {b[key]:.4f} ({key}) | {ri:.2f} | "
                         f"{'' if floor is None else f'{floor[0]:.4f}-{floor[1]:.4f}'} |")
            rows += [{"metric": "strength_ratio", "value": rs, "unit": "", "task": task, "prompt": prompt,
                      "seed": seed},
                     {"metric": "inconsistency_ratio", "value": ri, "unit": "", "task": task, "prompt": prompt,
                      "seed": seed, "figure": key}]
            if floor is not None:
                rows.append({"metric": "one_look_inconsistency", "value": floor[1], "unit": "", "task": task,
                             "prompt": prompt, "seed": seed, "figure": key, "least": floor[0]})
            print(lines[-1], flush=True)
    return "\n".join(lines), rows


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--part", default="both", choices=("1", "2", "both"))
    ap.add_argument("--tasks", default="video,panorama,views3d", help="part 2's tasks, comma-separated")
    ap.add_argument("--record", action="store_true", help="append the tables to RESULTS.md and results.jsonl")
    ap.add_argument("--note", default="", help="the machine's conditions, in words, for the record (the times are "
                    "idle figures only on a quiet machine; the header's load average says how busy it was)")
    args = ap.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tables, rows = [], []
        if args.part in ("1", "both"):
            table, found = part1(folder)
            tables.append("Delivered fidelity (offline `edits` prior, tab defaults):\n\n" + table)
            rows += found
        if args.part in ("2", "both"):
            table, found = part2(folder, seeds, set(args.tasks.split(",")))
            tables.append("CSD-Edit against its per-item baseline on the tabs' edit examples (targets: strength "
                          "ratio >= 0.9, inconsistency ratio <= 0.5):\n\n" + table)
            rows += found
    print("\n\n".join(tables))
    if args.record:
        append_results("edit_fidelity (benchmarks/edit_fidelity.py)", "\n\n".join(tables), rows,
                       device=device_name("cpu"),
                       notes=[args.note or "The machine's conditions were not stated: read the times with the "
                              "header's load average (on 2 cores, over 1 means other work shared them)."])


if __name__ == "__main__":
    main()
