"""`python -m backends compare SPEC`: a grid's progress on stderr, the report's files on stdout.

Exit codes as every run: 0 when every cell is done, 2 for a bad spec or a grid the budget refuses (one line naming
the key, nothing run), 1 when a cell failed (each failure is its own line as it happens; a last line counts them),
130 on Ctrl-C and 143 on SIGTERM (one line: the cells done, and that the same command finishes the rest).
"""
from __future__ import annotations

import os
import sys

from ..core import interrupts
from ..core.errors import InputError
from ..core.timing import duration
from .grid import GridEvent, run_grid
from .spec import MAX_WORKERS, finished, load_spec


def main(args) -> int:
    """args: the parsed `compare` arguments (spec, out, ray, workers, quiet) of `backends.__main__`."""
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, not {args.workers}.")
    if args.workers is not None and args.workers > MAX_WORKERS:
        raise InputError(f"--workers must be at most {MAX_WORKERS}, not {args.workers:,}.")
    spec = load_spec(args.spec, out=args.out)
    executor = "ray" if args.ray or os.environ.get("RAY_ADDRESS") else "local"
    events = run_grid(spec, executor=executor, workers=args.workers)
    last: GridEvent | None = None
    try:
        for ev in events:
            last = ev
            line = _line(ev, args.quiet)
            if line:
                print(line, file=sys.stderr, flush=True)
    except KeyboardInterrupt as stop:
        events.close()
        done = sum(finished(c) is not None for c in spec.cells)
        first = interrupts.TERMINATED if isinstance(stop, interrupts.Terminated) else interrupts.INTERRUPTED
        print(f"{first}; {done} of {len(spec.cells)} cells are done (report: {spec.out / 'index.html'}); the same "
              "command runs the rest", file=sys.stderr)
        return 143 if isinstance(stop, interrupts.Terminated) else 130
    finally:
        events.close()
    for name, path in (last.files if last else {}).items():
        print(f"{name}: {path}")
    if last is not None and last.failed:
        print(f"error: {last.failed} of {last.total} cells failed (the lines above; table.csv has them); the same "
              "command runs them again", file=sys.stderr)
        return 1
    return 0


def _line(ev: GridEvent, quiet: bool) -> str:
    """The stderr line of an event ('' for none): the grid's count and ETA, the cell and its step."""
    grid = f"grid {ev.done}/{ev.total} done" + (f", about {duration(ev.eta_s)} left" if ev.eta_s else "")
    if ev.kind in ("plan", "end"):
        return ev.message if ev.kind == "plan" or not quiet else ""
    cell = ev.cell
    name = f"[{ev.index}/{ev.total}] {cell.label} · {cell.item}" + (f" · seed {cell.seed}" if cell.seed is not None
                                                                     else "")
    if ev.kind == "done":
        return f"{name}: {ev.message} ({grid})"
    if ev.kind == "failed":
        return f"{name}: failed: {ev.message}"
    if quiet:
        return ""
    if ev.kind == "start":
        return f"{name}: started ({grid})"
    p = ev.progress
    step = f"step {p.step}/{p.total}" + (f" loss {p.loss:.4g}" if p.loss is not None else "") if p.total else ""
    return f"{name}: {' '.join(x for x in (step, p.message) if x)} ({grid})"
