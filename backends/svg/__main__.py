"""Command line: `python -m backends.svg render IN.svg OUT.png [--size N] [--samples S] [--transparent]`.

Rasterizes an SVG with Distill Studio's own renderer (the one the optimizers differentiate through).
Every failure is one line on stderr starting "error: ", as in `python -m backends`: exit 2 for bad input (the
SVG, an option, the output path), 1 for a run that failed on good input, 130 for Ctrl-C ("error: interrupted"),
143 for SIGTERM ("error: terminated (SIGTERM)"), also while the package imports torch (`backends.core.interrupts`);
DISTILL_DEBUG=1 re-raises for a traceback.

What a small input can cost is bounded before any work: the input is read only if it is a regular file
(a FIFO or device is refused without blocking), at most 2 MB, within a deadline; the import bounds the scene
(`backends.svg.svgio`); the output size (with --size and --samples) and the estimated rendering work are
checked before rendering; the output path is checked, and a temporary file created next to it, before
rendering, and the PNG is renamed into place only when complete.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

READ_DEADLINE_S = 10.0       # a regular file of 2 MB reads in milliseconds; only a stalled file system is slower
READ_CHUNK = 1 << 16


class _Parser(argparse.ArgumentParser):
    """argparse with its usage errors on one line (exit 2), like every other failure of this CLI."""

    def error(self, message):
        self.exit(2, f"error: {' '.join(message.split())} (see --help).\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m backends.svg", description="SVG tools of Distill Studio")
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("render", help="rasterize an SVG to PNG with the differentiable renderer")
    r.add_argument("input", help="SVG file")
    r.add_argument("output", help="PNG file to write")
    r.add_argument("--size", type=int, default=None, help="output width in pixels (height keeps the aspect ratio; "
                                                          "default: the SVG's own size)")
    r.add_argument("--samples", type=int, default=1, help="s x s supersampling (default 1: coverage is area-exact)")
    r.add_argument("--transparent", action="store_true", help="write RGBA without the background")
    return p


def _shown(path: str) -> str:
    """A path for a one-line message: printable, at most 80 characters."""
    text = "".join(ch if ch.isprintable() else "?" for ch in path)
    return repr(text if len(text) <= 80 else text[:37] + "..." + text[-40:])


def read_svg(path: str, max_bytes: int, deadline_s: float = READ_DEADLINE_S) -> bytes:
    """The bytes of the SVG file at `path`: a regular file only, at most max_bytes, read within deadline_s.

    Opening uses O_NONBLOCK and fstat (validate.open_regular), so a FIFO, /dev/zero or a directory is refused
    at once instead of blocking or reading forever.
    """
    from ..core.errors import InputError
    from ..inputs.validate import human_size, open_regular

    fh, _real, size = open_regular(path, "SVG")
    with fh:
        if size > max_bytes:
            raise InputError(f"The SVG file {_shown(path)} is {human_size(size)}; "
                             f"at most {human_size(max_bytes)} is allowed.")
        end = time.monotonic() + deadline_s
        chunks, got = [], 0
        while got <= max_bytes:
            try:
                chunk = fh.read(min(READ_CHUNK, max_bytes + 1 - got))
            except OSError as err:
                raise InputError(f"The SVG file {_shown(path)} could not be read: {err.strerror or err}.") from None
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
            if time.monotonic() > end:
                raise InputError(f"Reading the SVG file {_shown(path)} took more than {deadline_s:g} s; "
                                 "copy it to a local disk.")
    data = b"".join(chunks)
    if len(data) > max_bytes:
        raise InputError(f"The SVG file {_shown(path)} grew past {human_size(max_bytes)} while being read.")
    return data


def prepare_output(path: str) -> str:
    """Check that `path` can receive a PNG and create a temporary file next to it; returns the temporary path.

    Refused (InputError, naming the output): an empty name, a directory, /dev/null or any other existing
    non-regular file, a missing or unwritable folder, a name longer than the file system allows.
    """
    import errno
    import stat
    import tempfile

    from ..core.errors import InputError

    shown = _shown(path)
    if not path or "\x00" in path:
        raise InputError("The output path is empty or contains a NUL character; give a PNG file name.")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as err:
        if err.errno == errno.ENAMETOOLONG:
            raise InputError(f"The output path {shown} is longer than the file system allows; use a shorter name.") \
                from None
        raise InputError(f"The output path {shown} cannot be used: {err.strerror or err}.") from None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise InputError(f"The output path {shown} is a directory; give a PNG file name inside it.")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise InputError(f"The output path {shown} is not a regular file (a device, FIFO or socket); "
                         "give a PNG file name.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise InputError(f"The folder of the output {shown} does not exist; create it first.")
    try:
        name_max = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if len(os.fsencode(os.path.basename(path))) > name_max:
        raise InputError(f"The output file name {shown} is longer than the file system's {name_max} bytes; "
                         "use a shorter name.")
    suffix = os.path.splitext(path)[1]
    if suffix.lower() != ".png":  # PNG bytes under another extension once went to x.jpg
        raise InputError(f"The output {shown} would hold a PNG; name it .png"
                         f"{f' (not {suffix[:10]})' if suffix else ''}.")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".svgrender-", suffix=".png.part", dir=folder)
    except OSError as err:
        raise InputError(f"The folder of the output {shown} is not writable ({err.strerror or err}); "
                         "choose another folder.") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)                   # mkstemp's 0600 would outlive the rename
    return tmp


def _render(args) -> int:
    from ..core.errors import InputError

    if args.size is not None and not 1 <= args.size <= 4096:
        raise InputError(f"--size must be between 1 and 4096, got {args.size}.")
    if not 1 <= args.samples <= 8:
        raise InputError(f"--samples must be between 1 and 8, got {args.samples}.")
    from .render import output_size
    from .cost import check_work
    from .svgio import MAX_ASPECT, MAX_BYTES, MAX_CANVAS, svg_to_scene

    data = read_svg(args.input, MAX_BYTES)
    scene = svg_to_scene(data)
    H, W = output_size(scene, args.size)
    if max(H, W) > MAX_CANVAS or max(H, W) > MAX_ASPECT * min(H, W):
        raise InputError(f"The output would be {W}x{H} px; each side is limited to {MAX_CANVAS} px and the aspect "
                         f"to {MAX_ASPECT:.0f}:1, so choose a smaller --size.")
    check_work(scene, size=args.size, samples=args.samples, reduce="a smaller --size or --samples")
    tmp = prepare_output(args.output)
    try:
        import numpy as np
        import torch
        from PIL import Image

        from .render import render

        with torch.no_grad():
            img = render(scene, size=args.size, samples=args.samples, background=not args.transparent)
            arr = img.mul_(255).add_(0.5).clamp_(0, 255).to(torch.uint8).cpu().numpy()   # in place: 4096^2 x 4
        try:
            Image.fromarray(np.ascontiguousarray(arr)).save(tmp, format="PNG")
            os.replace(tmp, args.output)
        except OSError as err:  # a full disk is a failed run (exit 1), a refusing folder the user's choice (2)
            from ..core.files import write_error

            raise write_error(args.output, err) or InputError(
                f"Cannot write the output {_shown(args.output)}: {err.strerror or err}.") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    for line in scene.warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"{args.output}: {arr.shape[1]}x{arr.shape[0]}, {len(scene.shapes)} shapes")
    return 0


def main(argv: list[str] | None = None) -> int:
    from ..core import interrupts

    try:
        args = _parser().parse_args(argv)
        interrupts.raise_on_signals()  # till now (imports, parsing) a signal ended the process at once
        from ..core.errors import DistillError, RunError, report_cli_error

        try:
            return _render(args)
        except DistillError as err:
            return report_cli_error(err)
        except MemoryError:
            return report_cli_error(RunError("Rendering ran out of memory; choose a smaller --size or --samples."))
        except Exception as err:                               # one line, never a traceback, for anything else
            if os.environ.get("DISTILL_DEBUG"):
                raise
            first = (str(err).splitlines() or [""])[0][:200]
            return report_cli_error(RunError(f"Rendering failed: {type(err).__name__}: {first}"))
    except KeyboardInterrupt as err:  # the temporary PNG is removed on the way out
        if os.environ.get("DISTILL_DEBUG"):
            raise
        terminated = isinstance(err, interrupts.Terminated)
        print(interrupts.TERMINATED if terminated else interrupts.INTERRUPTED, file=sys.stderr)
        return 143 if terminated else 130


if __name__ == "__main__":
    from ..core.interrupts import exit_with

    exit_with(main)
