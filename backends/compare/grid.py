"""Run a grid: the cells still to run, checked against the budget, through an executor, with the report rewritten
after every cell. One generator for the CLI, the app and the API, as `backends.run` is for a single run:

    spec = backends.compare.load_spec("grid.toml")
    for event in backends.compare.run_grid(spec):            # executor="ray" for Ray
        print(event.kind, event.done, event.total, event.eta_s, event.cell and event.cell.id)

Resuming: a cell whose folder holds a result.json of its own settings (`spec.finished`) is done and not run again.
Stopping: closing the generator, Ctrl-C or SIGTERM stops the cells in flight (each run takes away what it had
written; a cell folder left without a result.json is removed), writes the report of the finished cells and lets
the interrupt go on; the next call runs only the missing cells.
"""
from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import dataclass, field
from typing import Iterator

from ..core.errors import InputError
from ..core.types import Progress
from . import executors
from .report import Report
from .spec import Cell, Spec, finished

EVENT_KINDS = ("plan", "start", "progress", "done", "failed", "end")


@dataclass
class GridEvent:
    """One report of a grid's run.

    kind: "plan" (once, before any cell: what is done and what will run), "start" (a cell began), "progress" (a
    cell's Progress, in `progress`), "done" / "failed" (a cell ended; `message`: its failure), "end" (once; `files`
    holds the report's paths). total: cells in the grid; done: cells with a result (those found done included);
    failed: cells failed in this call; ran: cells this call ran to the end; to_run: cells this call set out to run;
    eta_s: seconds until the grid is through, at its own pace so far (None before anything is known); cell: the
    cell of a start / progress / done / failed; index: its place in the grid, from 1; message: a line for a person
    (the plan's summary, "done in 8.1 s", a failure's sentence); files: the report's files by name (end, and after each cell).
    """

    kind: str
    total: int
    done: int
    failed: int
    ran: int
    to_run: int
    eta_s: float | None = None
    cell: Cell | None = None
    index: int = 0
    progress: Progress | None = None
    message: str = ""
    files: dict = field(default_factory=dict)


def run_grid(spec: Spec, *, executor: str = "local", workers: int | None = None) -> Iterator[GridEvent]:
    """Run the cells of `spec` still to run; yields GridEvents (see there). Raises InputError before anything runs
    for a budget refusal, an unknown executor or a missing Ray. workers: overrides the spec's."""
    index = {c.id: i for i, c in enumerate(spec.cells, 1)}
    report = Report(spec)
    todo = []
    for cell in spec.cells:
        meta = finished(cell)
        if meta is None:
            todo.append(cell)
        else:
            report.done(cell, meta)
    found_done = len(spec.cells) - len(todo)
    if executor not in executors.KINDS:
        raise InputError(f"The executor must be one of {', '.join(executors.KINDS)}, not {str(executor)[:40]!r}.")
    if executor == "ray":
        executors.import_ray()  # a missing Ray is said even when nothing is left to run
    # no executor (no Ray cluster started) when every cell is done already
    ex = executors.make(executor, device=spec.device, workers=workers or spec.workers, memory=spec.memory) \
        if todo else None
    stream = None
    started: dict[str, Cell] = {}  # cells begun and not ended: their folders go if stopped
    counts = {"done": found_done, "failed": 0, "ran": 0}
    complete = False
    try:
        expected = dict(zip((c.id for c in todo), ex.check(todo) if ex is not None else []))
        clock = _Pace(expected, ex.slots if ex is not None else 1)
        files = report.write()

        def event(kind: str, **kw) -> GridEvent:
            return GridEvent(kind, len(spec.cells), counts["done"], counts["failed"], counts["ran"], len(todo),
                             eta_s=clock.eta(), files=files, **kw)

        yield event("plan", message=_plan_line(spec, found_done, todo, ex, sum(expected.values())))
        stream = ex.run(todo) if ex is not None else iter(())
        for kind, cell, payload in stream:
            if kind == "start":
                started[cell.id] = cell
                clock.start(cell.id)
                yield event("start", cell=cell, index=index[cell.id])
            elif kind == "progress":
                yield event("progress", cell=cell, index=index[cell.id], progress=payload)
            else:
                started.pop(cell.id, None)
                timings = (payload.get("timings") or {}) if kind == "done" else {}
                clock.end(cell.id, ran_s=timings.get("total_s", 0.0) - timings.get("load_s", 0.0) if timings else None)
                if kind == "done":
                    report.done(cell, payload)
                    counts["done"] += 1
                    counts["ran"] += 1
                else:
                    report.failed(cell, payload)
                    counts["failed"] += 1
                    _remove_unfinished(cell)
                files = report.write()
                seconds = ((payload.get("timings") or {}).get("total_s") if kind == "done" else None)
                yield event(kind, cell=cell, index=index[cell.id], message=payload if kind == "failed" else
                            f"done in {seconds:.1f} s" if isinstance(seconds, (int, float)) else "done")
        complete = True
        yield event("end", message=f"{counts['ran']} run, {found_done} found done, {counts['failed']} failed")
    finally:
        if stream is not None and hasattr(stream, "close"):
            stream.close()  # stops the cells in flight (each run's cleanup)
        if ex is not None:
            ex.close()
        if not complete and stream is not None:
            for cell in started.values():  # a run stopped between its reports leaves no half-written folder
                _remove_unfinished(cell)
            with contextlib.suppress(Exception):  # the report of what finished, whatever stopped the grid
                report.write()


def _remove_unfinished(cell: Cell) -> None:
    """A cell folder holds a whole result or is gone: the run took its own files away when it failed or was
    stopped; what is left (the folder, files a run stopped between two reports had written) goes too."""
    if not (cell.folder / "result.json").is_file():
        shutil.rmtree(cell.folder, ignore_errors=True)


class _Pace:
    """The grid's ETA: the expected seconds of the cells not yet ended, scaled by how the ended ones compared with
    their expectation (measured / expected), shared among the workers."""

    def __init__(self, expected: dict[str, float], slots: int):
        self.expected, self.slots = expected, max(1, slots)
        self.left = set(expected)
        self.began: dict[str, float] = {}
        self.measured = self.planned = 0.0

    def start(self, cell_id: str) -> None:
        self.began[cell_id] = time.perf_counter()

    def end(self, cell_id: str, ran_s: float | None) -> None:
        """ran_s: the cell's seconds once its prior was loaded (what it was expected to take); None: it failed."""
        self.left.discard(cell_id)
        self.began.pop(cell_id, None)
        if ran_s is not None and self.expected.get(cell_id):
            self.measured += max(0.0, ran_s)
            self.planned += self.expected[cell_id]

    def eta(self) -> float | None:
        planned = sum(self.expected.get(c, 0.0) for c in self.left)
        if not self.left:
            return 0.0
        if not planned:
            return None
        pace = self.measured / self.planned if self.planned else 1.0
        now = time.perf_counter()
        running = sum(min(now - t, self.expected.get(c, 0.0) * pace) for c, t in self.began.items())
        return max(0.0, planned * pace - running) / self.slots


def _plan_line(spec: Spec, found_done: int, todo: list[Cell], ex, expected_s: float) -> str:
    from ..core.timing import duration

    total = len(spec.cells)
    if not todo:
        return f"{spec.name}: all {total} cells are done already; nothing to run"
    expect = f", expected about {duration(expected_s / max(1, ex.slots))}" if expected_s else ""
    return (f"{spec.name}: {total} cells, {found_done} done already, {len(todo)} to run on {ex.where}{expect}")
