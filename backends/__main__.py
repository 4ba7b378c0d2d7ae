"""Command line: `python -m backends list`, `python -m backends run TASK/NAME ...` and `python -m backends compare
SPEC` (a grid of runs, `backends.compare`).

The CLI is a thin shell over `backends.run` (the same code the UI calls). Bad input exits with code 2 and
one line on stderr; a failed run exits 1 with one line; no traceback either way (set DISTILL_DEBUG=1 for one).
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .core import interrupts, registry
from .priors import catalog
from .priors.machine import MEMORY_MODES
from .core.errors import DistillError, InputError, report_cli_error
from .core import runner
from .core.runner import run
from .core.settings import describe
from .core.types import Result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m backends", description="Distill Studio: score distillation backends")
    sub = p.add_subparsers(dest="cmd", required=True)
    ls = sub.add_parser("list", help="tasks, backends, their options and defaults")
    ls.add_argument("--json", action="store_true", help="machine-readable output")
    r = sub.add_parser("run", help="run one backend")
    r.add_argument("backend", help="TASK/NAME, e.g. image/sds (see `list`)")
    r.add_argument("--prior", default=None, help=f"auto (default: real weights with a GPU, else an offline prior), "
                   f"one of {', '.join(catalog.names())}, or sd:<hub id|dir>, ip2p:<hub id|dir>")
    r.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="a setting (repeatable)")
    r.add_argument("--input", dest="inputs", action="append", default=[], metavar="PATH", help="input file (repeatable)")
    r.add_argument("--out", required=True, help="output folder")
    r.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if present)")
    r.add_argument("--memory", default="auto", choices=MEMORY_MODES,
                   help="memory savers for 24 GB / 16 GB GPUs (auto: from the GPU's size)")
    r.add_argument("--threads", default=None, metavar="N",
                   help="CPU threads (default: DISTILL_THREADS or OMP_NUM_THREADS when set, else chosen from the "
                        "cores free for this run and its size; result.json says which and why)")
    r.add_argument("--quiet", action="store_true", help="no progress lines")
    e = sub.add_parser("examples", help="copy the example inputs that ship with the project into a folder, for the "
                       "README's commands")
    e.add_argument("folder", nargs="?", default=".", help="where to put them (default: the current folder)")
    c = sub.add_parser("compare", help="run a grid of backends x prompts x inputs x seeds from a spec file, with a "
                       "table, a summary and a gallery (docs/compare.md)")
    c.add_argument("spec", help="the spec file (.toml, or .yaml)")
    c.add_argument("--out", default=None, help="output folder (default: the spec's out)")
    c.add_argument("--ray", action="store_true", help="run the cells on Ray: RAY_ADDRESS's cluster (set, it implies "
                   "--ray), else a local Ray (pip install -r requirements-ray.txt)")
    c.add_argument("--workers", type=int, default=None, help="workers on a CPU (default: the spec's, else 1); GPUs "
                   "get one each")
    c.add_argument("--quiet", action="store_true", help="no progress lines but each cell's end")
    return p


def _list(as_json: bool) -> None:
    info = {}
    for task, names in registry.available().items():
        for name in names:
            cls = registry.get(task, name)
            info[cls.key] = {"description": cls.spec.description, "prior": cls.spec.prior, "inputs": cls.inputs,
                             "settings": describe(cls.Settings)}
    if as_json:
        priors = {n: {"kind": e.kind, "summary": e.summary} for n, e in catalog.entries().items()}
        print(json.dumps({"backends": info, "priors": priors, "plugin_errors": registry.plugin_errors}, indent=2,
                         default=str))
        return
    for key, b in info.items():
        print(f"{key}  [prior: {b['prior']}, input: {b['inputs']}]\n    {b['description']}")
        for o in b["settings"]:
            rng = f" [{o['lo']}..{o['hi']}]" if o["lo"] is not None or o["hi"] is not None else ""
            ch = f" {{{', '.join(map(str, o['choices']))}}}" if o["choices"] else ""
            print(f"    --set {o['name'] + '=' + repr(o['default']):<24} {o['help']}{rng}{ch}")
    print("\npriors:")
    for name, e in catalog.entries().items():
        print(f"  {name:<14} [{e.kind}] {e.summary}")
    for name, err in registry.plugin_errors.items():
        print(f"plugin {name} failed to load: {err}", file=sys.stderr)


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
# The example inputs the README's commands name, by the name they get in the folder (all CC0: examples/LICENSE*).
EXAMPLE_FILES = {"shapes.png": "image/shapes.png", "landscape.png": "panorama/landscape.png",
                 "rolling_ball.mp4": "video/rolling_ball.mp4", "house.glb": "views3d/house.glb",
                 "icon.svg": "svg/icon.svg"}


def copy_examples(folder: str) -> list[Path]:
    """Copy EXAMPLE_FILES into `folder` (made if missing); returns the paths written. InputError when the
    project's examples folder is not there (an install without the checkout) or `folder` cannot take them."""
    missing = [name for name, rel in EXAMPLE_FILES.items() if not (EXAMPLES / rel).is_file()]
    if missing:
        raise InputError(f"The example files are not installed here ({EXAMPLES} lacks {', '.join(missing)}); they "
                         f"come with a checkout of the project (pip install -e .).")
    out = Path(folder)
    written = []
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, rel in EXAMPLE_FILES.items():
            written.append(out / name)
            shutil.copyfile(EXAMPLES / rel, written[-1])
    except OSError as err:
        raise InputError(f"The folder {str(out)[:80]!r} cannot take the examples: {err.strerror or err}.") from None
    return written


def _parse_sets(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set takes KEY=VALUE, got {pair!r}")
        if key.strip() in out:
            raise InputError(f"--set {key.strip()} is given twice; give each setting once")
        out[key.strip()] = value
    return out


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    interrupts.raise_on_signals()  # till now (imports, parsing) a signal ended the process at once
    try:
        if args.cmd in ("run", "compare"):
            runner.QUIET_LIBRARIES = True  # applied once the checks pass, just before a prior loads
        if args.cmd == "list":
            _list(args.json)
            return 0
        if args.cmd == "examples":
            for path in copy_examples(args.folder):
                print(path)
            return 0
        if args.cmd == "compare":
            from .compare import cli

            return cli.main(args)
        t0 = time.perf_counter()
        for item in run(args.backend, _parse_sets(args.sets), prior=args.prior, inputs=args.inputs,
                        out_dir=args.out, device=args.device, memory=args.memory, threads=args.threads):
            if isinstance(item, Result):
                for role, path in item.files.items():
                    print(f"{role}: {path}")
                metrics = item.metadata.get("metrics", {})
                random_clip = item.metadata.get("clip_random_weights")
                if metrics:
                    print("metrics: " + ", ".join(
                        f"{k}={v:.4g}" + (" (random-weight CLIP: not meaningful)" if random_clip and
                                          k.startswith("clip_") else "")
                        for k, v in metrics.items() if isinstance(v, (int, float))))
                for note in item.metadata.get("notes") or []:  # e.g. what an offline prior understood
                    print(f"note: {note}")
                print(f"done in {time.perf_counter() - t0:.1f} s")
            elif not args.quiet:
                loss = f" loss {item.loss:.4g}" if item.loss is not None else ""
                line = f"step {item.step}/{item.total}{loss}" if item.total else ""
                print(" ".join(x for x in (line, item.message) if x), file=sys.stderr, flush=True)
        return 0
    except DistillError as err:
        return report_cli_error(err)
    except interrupts.Terminated:
        print(f"{interrupts.TERMINATED}; files being written were removed", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(interrupts.INTERRUPTED, file=sys.stderr)
        return 130


if __name__ == "__main__":
    interrupts.exit_with(main)
