"""svg/vectorize on real icons vs vtracer, at the same budget of at most 32 SVG shapes.

    python benchmarks/vectorize_icons.py                    # the icons in benchmarks/data/icons, append results
    python benchmarks/vectorize_icons.py --no-append --icons 3 --iters 60      # a quick look
    python benchmarks/vectorize_icons.py --from-npm /tmp/icons   # rebuild the PNGs from unpacked npm packages

Test set: 12 icons rasterized at 256 x 256 on white with resvg: six flat-color emoji from
@iconify-json/fluent-emoji-flat (MIT, Microsoft Fluent Emoji) and six from @tabler/icons (MIT; three filled,
three outline). benchmarks/data/icons/LICENSE.md names them.

Fair counting. Both SVGs are drawn by resvg at 256 x 256 and compared with the icon (PSNR over RGB). The budget
is on drawing elements (<path>, <rect>, ...) in the file, background included: vtracer writes its
background as a full-canvas <path>, ours is one <rect>, so ours gets paths = budget - 1. vtracer has no
path-count option: its path count follows from speckle filtering, color precision and layer difference, so
every icon is traced with a grid of 200 parameter sets and the best-PSNR result with <= budget elements is
kept (vtracer's best case, chosen with the ground truth). Segment counts (cubic or line segments, from
parsing each SVG) are reported too: vtracer's paths are polygons/splines with as many segments as the
outline needs, ours have `segments` cubics each.
"""
from __future__ import annotations

import argparse
import io
import itertools
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

ICONS = ROOT / "benchmarks" / "data" / "icons"
SIZE = 256
ELEMENT = re.compile(r"<(path|rect|circle|ellipse|polygon|polyline|line)\b")
FLUENT = ("cherries", "fire", "green-apple", "mushroom", "red-heart", "watermelon")
TABLER = (("filled", "bell"), ("filled", "camera"), ("filled", "home"), ("outline", "heart"), ("outline", "camera"),
          ("outline", "star"))
VTRACER_GRID = dict(filter_speckle=(1, 2, 4, 8, 16), color_precision=(4, 5, 6, 7, 8), layer_difference=(8, 16, 32, 64),
                    mode=("spline", "polygon"))


def rasterize(svg: str, size: int = SIZE) -> np.ndarray:
    """An SVG drawn by resvg at size x size over white: (size, size, 3) float64 in [0, 1]."""
    import resvg_py
    from PIL import Image

    png = resvg_py.svg_to_bytes(svg_string=svg, width=size, height=size)
    rgba = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGBA")).astype(np.float64) / 255.0
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10.0 * np.log10(1.0 / max(float(((a - b) ** 2).mean()), 1e-12)))


def count(svg: str) -> tuple[int, int]:
    """(drawing elements, Bezier / line segments) of an SVG."""
    from backends.svg import svg_to_scene

    scene = svg_to_scene(svg)
    return len(ELEMENT.findall(svg)), sum(sum(s.segment_counts()) for s in scene.shapes)


def load_icons(folder: Path, limit: int | None = None) -> list[tuple[str, np.ndarray, Path]]:
    from PIL import Image

    files = sorted(folder.glob("*.png"))[:limit]
    if not files:
        raise SystemExit(f"no icons in {folder}: run with --from-npm DIR (see the module docstring)")
    return [(f.stem, np.asarray(Image.open(f).convert("RGB")).astype(np.float64) / 255.0, f) for f in files]


def build_icons(npm_dir: Path, out: Path) -> None:
    """Rasterize the test set from unpacked npm packages (`npm pack @tabler/icons @iconify-json/fluent-emoji-flat`,
    each .tgz extracted into a folder of the same name under npm_dir) at 256 x 256 on white."""
    import resvg_py
    from PIL import Image

    out.mkdir(parents=True, exist_ok=True)
    fluent = next(npm_dir.glob("iconify-json-fluent-emoji-flat*/package/icons.json"))
    data = json.loads(fluent.read_text())
    tabler = next(npm_dir.glob("tabler-icons*/package/icons"))
    sources = {}
    for name in FLUENT:
        body = data["icons"][name]["body"]
        w, h = data.get("width", 16), data.get("height", 16)
        sources[f"fluent-{name}"] = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                                     f'viewBox="0 0 {w} {h}">{body}</svg>')
    for kind, name in TABLER:
        sources[f"tabler-{kind}-{name}"] = (tabler / kind / f"{name}.svg").read_text()
    for stem, svg in sources.items():
        png = resvg_py.svg_to_bytes(svg_string=svg, width=SIZE, height=SIZE, background="#ffffff")
        Image.open(io.BytesIO(bytes(png))).convert("RGB").save(out / f"{stem}.png", optimize=True)
    print(f"wrote {len(sources)} icons to {out}")


def run_ours(png: Path, budget: int, segments: int, iters: int, out_dir: Path) -> tuple[str, float]:
    from backends import run_to_end

    t0 = time.perf_counter()
    result = run_to_end("svg/vectorize", {"paths": budget - 1, "segments": segments, "iters": iters,
                                          "size": SIZE, "every": 1000}, inputs=[png], out_dir=out_dir)
    return Path(result.files["svg"]).read_text(), time.perf_counter() - t0


def run_vtracer(png: Path, target: np.ndarray, budget: int) -> tuple[str | None, float, dict]:
    """vtracer's best-PSNR SVG with <= budget elements over the parameter grid (None if none fits)."""
    import vtracer

    data = png.read_bytes()
    best, best_psnr, best_params = None, -1.0, {}
    t0 = time.perf_counter()
    keys = list(VTRACER_GRID)
    for values in itertools.product(*VTRACER_GRID.values()):
        params = dict(zip(keys, values))
        svg = vtracer.convert_raw_image_to_svg(data, img_format="png", colormode="color", hierarchical="stacked",
                                               path_precision=3, **params)
        if len(ELEMENT.findall(svg)) > budget:
            continue
        p = psnr(rasterize(svg), target)
        if p > best_psnr:
            best, best_psnr, best_params = svg, p, params
    return best, time.perf_counter() - t0, best_params


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--icons", type=int, default=None, help="only the first N icons")
    ap.add_argument("--budget", type=int, default=32, help="SVG drawing elements allowed (background included)")
    ap.add_argument("--segments", type=int, default=4, help="cubic segments per path (ours)")
    ap.add_argument("--iters", type=int, default=150, help="optimization steps per stage (ours)")
    ap.add_argument("--out", default="/tmp/vectorize_icons", help="where the SVGs are written")
    ap.add_argument("--from-npm", type=Path, default=None, help="rebuild the icon PNGs from unpacked npm packages")
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)

    if args.from_npm:
        build_icons(args.from_npm, ICONS)
    out = Path(args.out)
    rows, lines = [], []
    header = ("| icon | ours PSNR (dB) | ours elements | ours segments | vtracer PSNR (dB) | vtracer elements "
              "| vtracer segments | ours time (s) |\n|---|---|---|---|---|---|---|---|")
    ours_all, vt_all = [], []
    for name, target, png in load_icons(ICONS, args.icons):
        svg, t_ours = run_ours(png, args.budget, args.segments, args.iters, out / name)
        ours_psnr = psnr(rasterize(svg), target)
        ours_n, ours_seg = count(svg)
        vt_svg, t_vt, params = run_vtracer(png, target, args.budget)
        vt_psnr = psnr(rasterize(vt_svg), target) if vt_svg else float("nan")
        vt_n, vt_seg = count(vt_svg) if vt_svg else (0, 0)
        if vt_svg:
            (out / name / "vtracer.svg").write_text(vt_svg)
        assert ours_n <= args.budget and vt_n <= args.budget
        ours_all.append(ours_psnr)
        vt_all.append(vt_psnr)
        line = (f"| {name} | {ours_psnr:.2f} | {ours_n} | {ours_seg} | {vt_psnr:.2f} | {vt_n} | {vt_seg} | "
                f"{t_ours:.1f} |")
        lines.append(line)
        print(line, f"vtracer {params}", flush=True)
        rows.append({"metric": f"psnr_ours/{name}", "value": round(ours_psnr, 3), "unit": "dB", "elements": ours_n,
                     "segments": ours_seg})
        rows.append({"metric": f"psnr_vtracer/{name}", "value": round(vt_psnr, 3), "unit": "dB", "elements": vt_n,
                     "segments": vt_seg, "params": json.dumps(params)})
    mean_ours, mean_vt = float(np.mean(ours_all)), float(np.nanmean(vt_all))
    lines.append(f"| **mean** | **{mean_ours:.2f}** | | | **{mean_vt:.2f}** | | | |")
    table = header + "\n" + "\n".join(lines)
    print("\n" + table)
    rows += [{"metric": "psnr_ours_mean", "value": round(mean_ours, 3), "unit": "dB"},
             {"metric": "psnr_vtracer_mean", "value": round(mean_vt, 3), "unit": "dB"}]
    if not args.no_append:
        from benchmarks.common import append_results, device_name

        notes = [f"svg/vectorize (paths = {args.budget - 1} + a background rect, {args.segments} cubics each, "
                 f"{args.iters} steps per stage, doubling schedule) vs vtracer (best PSNR over "
                 f"{np.prod([len(v) for v in VTRACER_GRID.values()])} parameter sets with <= {args.budget} "
                 f"elements, chosen per icon). Both drawn by resvg at {SIZE} px; PSNR against the icon PNG. "
                 "Icons: benchmarks/data/icons (Fluent Emoji flat and Tabler, MIT)."]
        append_results("vectorize_icons", table, rows, device=device_name("cpu"), notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
