"""VectorFusion's evaluation protocol: CLIP R-precision and CLIP score of text-to-SVG backends over captions.

    python benchmarks/eval_text_to_svg.py --prior sd --clip ViT-B-16:openai            # on a GPU machine
    python benchmarks/eval_text_to_svg.py --prior tiny-sd --clip tiny --set steps=20 --no-append   # the flow

For each backend and caption, the backend runs with that caption as its prompt and its final PNG is kept (for
svg/csd, its CLIP-ranked best candidate, as with the paper's rejection sampling of K). The evaluation CLIP
model then embeds all N images and all N captions:
  R-precision: the fraction of images whose most similar caption (among the N) is their own;
  CLIP score: 100 x the mean cosine similarity of each image with its own caption.
The backends rerank with their own CLIP (DISTILL_CLIP_MODEL, default ViT-B/16 if cached); evaluating with a
different, larger model (e.g. --clip ViT-L-14:openai) keeps the metric from rewarding the reranker's taste.
Captions: one per line (default examples/svg/prompts.txt).
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import fields
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

DEFAULT_CAPTIONS = ROOT / "examples" / "svg" / "prompts.txt"
DEFAULT_BACKENDS = ("svg/vectorfusion", "svg/raster-then-vectorize", "svg/csd")


def read_captions(path: Path, limit: int | None = None) -> list[str]:
    lines = [ln.strip() for ln in Path(path).read_text(encoding="utf-8").splitlines()]
    caps = [ln for ln in lines if ln and not ln.startswith("#")]
    return caps[:limit] if limit else caps


def parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set takes KEY=VALUE, got {pair!r}")
        out[key.strip()] = value
    return out


def evaluate(backends_: list[str], captions: list[str], *, prior: str, clip_spec: str, sets: dict[str, str],
             out_dir: Path, device: str | None = None, seed: int = 0) -> list[dict]:
    """Run every backend on every caption; returns one dict per backend with r_precision, clip_score, timings,
    and the (N, N) similarity matrix."""
    import torch

    import backends
    from backends.measures.clip import get_clip, r_precision
    from backends.core.pixels import load_image

    scorer = get_clip(clip_spec, device)
    rows = []
    for key in backends_:
        cls = backends.get(key)
        known = {f.name for f in fields(cls.Settings)}
        settings = {k: v for k, v in sets.items() if k in known}
        images, times = [], []
        for i, caption in enumerate(captions):
            t0 = time.perf_counter()
            result = backends.run_to_end(key, {**settings, "prompt": caption, "seed": seed}, prior=prior,
                                         out_dir=out_dir / key.replace("/", "_") / f"{i:03d}", device=device)
            times.append(time.perf_counter() - t0)
            images.append(load_image(result.files["png"]))
            print(f"{key} [{i + 1}/{len(captions)}] {caption!r}: {times[-1]:.1f} s", file=sys.stderr, flush=True)
        size = min(min(im.shape[-2:]) for im in images)
        batch = torch.stack([torch.nn.functional.interpolate(im[None], size=(size, size), mode="bilinear",
                                                             antialias=True)[0] for im in images])
        sim = scorer.similarity(batch, captions)
        rows.append({"backend": key, "r_precision": r_precision(sim, list(range(len(captions)))),
                     "clip_score": 100.0 * float(sim.diagonal().mean()), "seconds_per_caption": float(np.mean(times)),
                     "n": len(captions), "similarity": sim.tolist(), "settings": settings})
    return rows


def table(rows: list[dict], clip_name: str) -> str:
    lines = [f"| backend | CLIP R-precision ({clip_name}) | CLIP score (x100) | s / caption |",
             "|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['r_precision']:.3f} | {r['clip_score']:.2f} | "
                     f"{r['seconds_per_caption']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prior", default="sd", help="diffusion prior (sd, tiny-sd, sd:<hub id or folder>)")
    ap.add_argument("--clip", default="default", help="evaluation CLIP: tiny, ViT-B-16:openai, ViT-L-14:openai, ...")
    ap.add_argument("--backends", default=",".join(DEFAULT_BACKENDS), help="comma-separated TASK/NAME list")
    ap.add_argument("--captions", type=Path, default=DEFAULT_CAPTIONS, help="caption file, one per line")
    ap.add_argument("--limit", type=int, default=None, help="only the first N captions")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a setting for every backend that has it (repeatable), e.g. steps=500")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default=None)
    ap.add_argument("--out", type=Path, default=Path("/tmp/eval_text_to_svg"))
    ap.add_argument("--no-append", action="store_true", help="print only; do not append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)

    from backends.measures.clip import get_clip

    captions = read_captions(args.captions, args.limit)
    if len(captions) < 2:
        raise SystemExit("R-precision needs at least 2 captions")
    keys = [k.strip() for k in args.backends.split(",") if k.strip()]
    rows = evaluate(keys, captions, prior=args.prior, clip_spec=args.clip, sets=parse_sets(args.sets),
                    out_dir=args.out, device=args.device, seed=args.seed)
    scorer = get_clip(args.clip, args.device)
    md = table(rows, scorer.name)
    print(md)
    if scorer.random_weights:
        print("(tiny random-weight CLIP: these numbers only show that the protocol runs)")
    if not args.no_append:
        from benchmarks.common import append_results, device_name

        notes = [f"Prior {args.prior}, evaluation CLIP {scorer.name}, {len(captions)} captions from "
                 f"{args.captions.name}, seed {args.seed}, settings {parse_sets(args.sets) or 'defaults'}."]
        out_rows = []
        for r in rows:
            out_rows.append({"metric": f"r_precision/{r['backend']}", "value": round(r["r_precision"], 4),
                             "unit": "fraction"})
            out_rows.append({"metric": f"clip_score/{r['backend']}", "value": round(r["clip_score"], 3),
                             "unit": "100 x cosine"})
        append_results("eval_text_to_svg", md, out_rows, device=device_name(args.device), notes=notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
