"""What a grid costs, checked against the budget before any cell runs, by the rule a single run meets.

Each cell is estimated as `backends.run` would estimate it (`runner.estimate`: the work's peak bytes with what the
prior will hold, and the expected seconds once the prior is loaded) and put to `budget.check` on its own, as a
single run is; then the cells still to run are put to the same `budget.check` together: the heaviest cell's
memory (times the workers that share this machine's memory), and their expected seconds summed and shared among the workers (wall-clock seconds). So a grid is refused
with the sentence a run is ("compare: a grid of 768 runs would take about 2.1 hours on this CPU, more than
DISTILL_TIME_BUDGET (3600 s); lower the grid (prompts, inputs, seeds or methods) or steps"), and no second rule
exists. This runs where the cells run (a Ray executor asks one of its workers), so a GPU cluster is estimated with
its GPU's records and memory, not the driver's.
"""
from __future__ import annotations

import json
from typing import Sequence

from ..core import budget, runner
from .spec import Cell

GRID_LOWER = "the grid (prompts, inputs, seeds or methods)"


def check_cells(cells: Sequence[Cell], device, parallel: int, where: str = "compare") -> list[float]:
    """Refuse (InputError, one sentence) a cell or a grid the budget refuses; else each cell's expected seconds
    (0 where nothing is known: a plugin without an estimate). parallel: the workers sharing the cells."""
    seconds, heaviest = [], None
    known: dict[str, tuple] = {}  # cells that differ only in their seed cost the same: estimated once
    for cell in cells:
        same = json.dumps([cell.backend, {k: v for k, v in cell.settings.items() if k != "seed"}, cell.prior,
                           cell.inputs], sort_keys=True, default=str)
        if same not in known:
            known[same] = runner.estimate(cell.backend, cell.settings, prior=cell.prior, inputs=list(cell.inputs),
                                          device=device)
            work, expected = known[same]
            if work is not None:
                budget.check(work, device, where=cell.backend,
                             seconds=expected.seconds if expected is not None else 0.0)
        work, expected = known[same]
        if work is not None and (heaviest is None or work.bytes > heaviest.bytes):
            heaviest = work
        seconds.append(expected.seconds if expected is not None else 0.0)
    if cells:
        runs = f"a grid of {len(cells)} run{'s' if len(cells) != 1 else ''}"
        what = runs if parallel == 1 else f"{runs} on {parallel} workers"
        peak = heaviest.bytes if heaviest is not None else 0
        if parallel > 1 and str(device).split(":")[0] == "cpu":
            # workers on the CPU share this machine's memory, each holding a cell; a GPU worker has its own device
            budget.check(budget.Work(peak * parallel, what, "the workers"), device, where=where, seconds=0.0)
        grid = budget.Work(peak, what, GRID_LOWER)
        budget.check(grid, device, where=where, seconds=sum(seconds) / max(1, parallel))
    return seconds
