"""Command line: `python -m backends.svg render IN.svg OUT.png [--size N] [--samples S] [--transparent]`.

Rasterizes an SVG with Distill Studio's own renderer (the one the optimizers differentiate through).
Bad input exits with code 2 and one line on stderr (DISTILL_DEBUG=1 for a traceback).
"""
from __future__ import annotations

import argparse
import sys


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backends.svg", description="SVG tools of Distill Studio")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="rasterize an SVG to PNG with the differentiable renderer")
    r.add_argument("input", help="SVG file")
    r.add_argument("output", help="PNG file to write")
    r.add_argument("--size", type=int, default=None, help="output width in pixels (height keeps the aspect ratio; "
                                                          "default: the SVG's own size)")
    r.add_argument("--samples", type=int, default=1, help="s x s supersampling (default 1: coverage is area-exact)")
    r.add_argument("--transparent", action="store_true", help="write RGBA without the background")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from ..errors import DistillError, InputError, report_cli_error

    try:
        if args.size is not None and not 1 <= args.size <= 16384:
            raise InputError(f"--size must be between 1 and 16384, got {args.size}.")
        if not 1 <= args.samples <= 8:
            raise InputError(f"--samples must be between 1 and 8, got {args.samples}.")
        import numpy as np
        import torch
        from PIL import Image

        from .render import render
        from .svgio import load_svg

        scene = load_svg(args.input)
        with torch.no_grad():
            img = render(scene, size=args.size, samples=args.samples, background=not args.transparent)
        arr = (img.clamp(0, 1) * 255 + 0.5).to(torch.uint8).cpu().numpy()
        try:
            Image.fromarray(np.ascontiguousarray(arr)).save(args.output, format="PNG")
        except OSError as err:
            raise InputError(f"Cannot write {args.output!r}: {err.strerror or err}.") from None
        print(f"{args.output}: {arr.shape[1]}x{arr.shape[0]}, {len(scene.shapes)} shapes")
        return 0
    except DistillError as err:
        return report_cli_error(err)


if __name__ == "__main__":
    sys.exit(main())
