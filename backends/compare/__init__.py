"""Compare at scale: a grid of backends x prompts x inputs x seeds x priors from one small spec, each cell a plain
`backends.run` with its files and result.json, resumable, run here or on Ray, with a table, a summary and a gallery.

    python -m backends compare grid.toml [--ray] [--workers N] [--out DIR]

    from backends import compare
    spec = compare.load_spec("grid.toml")             # or compare.parse_spec({...}, base=folder)
    for event in compare.run_grid(spec):              # GridEvent: kind, done / total, eta_s, cell, progress
        ...
    compare.Report(spec)                              # the report alone (run_grid writes it after every cell)

spec.py: the spec (parse, check, expand; a cell's id and whether its folder holds its result); plan.py: the grid
against the budget; executors.py: local and Ray; report.py: table, summary, gallery; grid.py: the run; cli.py:
the command. docs/compare.md describes the spec and the executors.
"""
from .grid import EVENT_KINDS, GridEvent, run_grid
from .report import Report
from .spec import Cell, Spec, finished, load_spec, parse_spec

__all__ = ["Cell", "Spec", "GridEvent", "EVENT_KINDS", "Report", "finished", "load_spec", "parse_spec", "run_grid"]
