"""The grid's report, written into its output folder after every cell, so a partial grid has one too.

table.csv, table.jsonl  a row per cell, in grid order: cell (its folder), method, backend, prior, prompt, input,
                        seed, status (done / failed / pending), seconds (the run's total, loading included), load_s,
                        error, preview (the picture the gallery shows), every metric of its result.json, and the
                        judged columns below. The CSV's values are text; the JSONL's keep their types.
summary.json, summary.md  per method and prior: the cells done, failed and pending, the mean and standard deviation
                        (spread) of each number, and the paper's figure where one applies:
      Text to SVG       with real CLIP weights (result.json says clip_random_weights false, and this process loads
                        them too), CLIP R-precision over the prompt set (the share of a seed's SVGs whose most
                        similar prompt is their own, averaged over seeds; VectorFusion's figure); offline, on the
                        icons prior, the icons judge: the share of SVGs whose nearest shipped icon is one their prompt
                        retrieves (`backends.measures.icon_judge.shows_prompt`; columns icon_nearest, icon_shown).
      edits             each CSD method's consistency against its per-item baseline (the per-item backend of the same
                        task, prior, input, prompt and seed; of the same module where there are several, so
                        csd-edit-mesh meets per-view-mesh): <metric>_ratio = CSD's / the baseline's, for the
                        consistency figures the task reports (residual_variation; colour_map_variation on a
                        panorama; held_out_residual on a mesh). Below 1: CSD's edit is the more consistent.
index.html              a gallery that needs no server (open it from disk): prompts / inputs as rows, methods as
                        columns, seeds side by side; each cell shows its picture and numbers and links its files and
                        result.json, by relative links. Every text from the spec or a run is escaped.
"""
from __future__ import annotations

import csv
import html
import io
import json
import math
import statistics
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import quote

from ..core.files import atomic_path
from .spec import Cell, Spec

FILES = ("table.csv", "table.jsonl", "summary.json", "summary.md", "index.html")
COLUMNS = ("cell", "method", "backend", "prior", "prompt", "input", "seed", "status", "seconds", "load_s", "error",
           "preview")
CONSISTENCY = ("residual_variation", "colour_map_variation", "held_out_residual")
PREVIEW_ROLES = ("png", "gif", "comparison", "grid")  # the picture a cell shows, first found
IMAGE_SUFFIXES = (".png", ".gif", ".jpg", ".jpeg", ".webp")
ICONS_PRIOR = "icons"
ICONS_FIGURE = "icons judge: share nearest an icon of the prompt"
R_PRECISION_FIGURE = "CLIP R-precision"


class Report:
    """What the grid knows of its cells (the result.json of each finished one, the sentence of each failed one),
    and the files made of it. `done` / `failed` as cells end, `write()` after each."""

    def __init__(self, spec: Spec):
        self.spec = spec
        self.metas: dict[str, dict] = {}
        self.failures: dict[str, str] = {}
        self._judged: dict[str, dict] = {}  # cell id -> its icon judge's columns, judged once per result
        self._precision: dict[tuple, float | None] = {}  # (method, prior, seed, cell ids) -> R-precision

    def done(self, cell: Cell, meta: dict) -> None:
        self.metas[cell.id] = meta
        self.failures.pop(cell.id, None)
        self._judged.pop(cell.id, None)

    def failed(self, cell: Cell, message: str) -> None:
        self.failures[cell.id] = message

    # ------------------------------------------------------------------------------------------- the table
    def rows(self) -> list[dict]:
        """A row per cell, grid order, with the judged columns."""
        rows = [self._row(c) for c in self.spec.cells]
        by_id = {r["cell"]: r for r in rows}
        for cell in self.spec.cells:
            if by_id[cell.id]["status"] == "done":
                by_id[cell.id].update(self._icon_columns(cell))
        self._consistency_ratios(by_id)
        return rows

    def _row(self, cell: Cell) -> dict:
        meta = self.metas.get(cell.id)
        status = "done" if meta is not None else "failed" if cell.id in self.failures else "pending"
        timings = (meta or {}).get("timings") or {}
        row = {"cell": cell.id, "method": cell.label, "backend": cell.backend, "prior": cell.prior or "",
               "prompt": cell.prompt or "", "input": ", ".join(Path(p).name for p in cell.inputs), "seed": cell.seed,
               "status": status, "seconds": timings.get("total_s"), "load_s": timings.get("load_s"),
               "error": self.failures.get(cell.id, ""), "preview": preview(cell, meta) if meta else ""}
        for name, value in ((meta or {}).get("metrics") or {}).items():
            if isinstance(value, (int, float)) and math.isfinite(float(value)):
                row[name if name not in COLUMNS else f"metric_{name}"] = float(value)
        return row

    def _icon_columns(self, cell: Cell) -> dict:
        """icon_nearest / icon_shown of a text-to-SVG cell on the icons prior (judged once per result)."""
        meta = self.metas[cell.id]
        if cell.prior != ICONS_PRIOR or not cell.prompt or not cell.backend.startswith("svg/"):
            return {}
        if cell.id not in self._judged:
            png = cell.folder / str((meta.get("files") or {}).get("png", ""))
            self._judged[cell.id] = {}
            if png.suffix == ".png" and png.is_file():
                from ..measures.icon_judge import shows_prompt
                from ..priors import load_prior

                try:
                    found = shows_prompt(png, cell.prompt, load_prior(ICONS_PRIOR, "cpu"))
                    self._judged[cell.id] = {"icon_nearest": found.nearest, "icon_shown": float(found.shows)}
                except Exception:  # a judge must never stop the report; the cell keeps its own numbers
                    pass
        return self._judged[cell.id]

    def _consistency_ratios(self, by_id: dict[str, dict]) -> None:
        """<metric>_ratio and baseline_cell on each CSD cell that has its per-item baseline in the grid."""
        from ..core import registry

        def key(c: Cell):
            return c.backend.split("/")[0], c.prior, c.input_sha256, c.prompt, c.seed

        baselines: dict[tuple, list[Cell]] = {}
        for c in self.spec.cells:
            if (self.metas.get(c.id) or {}).get("method") == "per-item":
                baselines.setdefault(key(c), []).append(c)
        for c in self.spec.cells:
            if (self.metas.get(c.id) or {}).get("method") != "csd" or key(c) not in baselines:
                continue
            module = registry.get(c.backend).__module__
            found = baselines[key(c)]
            base = next((b for b in found if registry.get(b.backend).__module__ == module), found[0])
            row, base_row = by_id[c.id], by_id[base.id]
            row["baseline_cell"] = base.id
            for m in CONSISTENCY:
                if isinstance(row.get(m), float) and isinstance(base_row.get(m), float) and base_row[m] > 0:
                    row[f"{m}_ratio"] = row[m] / base_row[m]

    # ------------------------------------------------------------------------------------------- the summary
    def summary(self, rows: list[dict]) -> list[dict]:
        """Per method and prior: counts, mean and spread of every number, and the paper's figures."""
        out = []
        for (label, prior), group in _groups(rows).items():
            done = [r for r in group if r["status"] == "done"]
            numbers: dict[str, list[float]] = {}
            for r in done:
                for name, value in r.items():
                    if name not in ("seed",) and isinstance(value, (int, float)) and not isinstance(value, bool) \
                            and value is not None:
                        numbers.setdefault(name, []).append(float(value))
            stats = {name: {"mean": statistics.fmean(vs), "std": statistics.stdev(vs) if len(vs) > 1 else 0.0,
                            "n": len(vs)} for name, vs in numbers.items()}
            out.append({"method": label, "backend": group[0]["backend"], "prior": prior, "cells": len(group),
                        "done": len(done), "failed": sum(r["status"] == "failed" for r in group),
                        "pending": sum(r["status"] == "pending" for r in group), "metrics": stats,
                        "figures": self._figures(label, prior, group, stats)})
        return out

    def _figures(self, label: str, prior: str, group: list[dict], stats: dict) -> list[dict]:
        figures = []
        if "icon_shown" in stats:
            figures.append({"figure": ICONS_FIGURE, "value": stats["icon_shown"]["mean"], "n": stats["icon_shown"]["n"],
                            "unit": "share"})
        precision = self._r_precision(label, prior, group)
        if precision is not None:
            figures.append({"figure": R_PRECISION_FIGURE, **precision})
        for m in CONSISTENCY:
            if f"{m}_ratio" in stats:
                s = stats[f"{m}_ratio"]
                figures.append({"figure": f"{m}: CSD / per-item baseline", "value": s["mean"], "std": s["std"],
                                "n": s["n"]})
        return figures

    def _r_precision(self, label: str, prior: str, group: list[dict]) -> dict | None:
        """CLIP R-precision of a text-to-SVG method: per seed over its prompt set, then the mean over seeds; only
        with real CLIP weights (the runs' and this process's), and once every cell of the seed is done."""
        cells = {c.id: c for c in self.spec.cells}
        by_seed: dict[Any, list[dict]] = {}
        for r in group:
            if r["prompt"] and r["backend"].startswith("svg/"):
                by_seed.setdefault(r["seed"], []).append(r)
        values = []
        for seed, rs in by_seed.items():
            if len({r["prompt"] for r in rs}) < 2 or any(r["status"] != "done" for r in rs) or any(
                    self.metas[r["cell"]].get("clip_random_weights", True) for r in rs):
                continue
            key = (label, prior, seed, tuple(r["cell"] for r in rs))
            if key not in self._precision:
                self._precision[key] = _clip_r_precision([cells[r["cell"]].folder / r["preview"] for r in rs],
                                                         [r["prompt"] for r in rs])
            if self._precision[key] is not None:
                values.append(self._precision[key])
        if not values:
            return None
        return {"value": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "n": len(values)}

    # ------------------------------------------------------------------------------------------- the files
    def write(self) -> dict[str, Path]:
        """Write the table, the summary and the gallery into the spec's output folder; their paths by name."""
        out = self.spec.out
        out.mkdir(parents=True, exist_ok=True)
        rows = self.rows()
        summary = self.summary(rows)
        columns = list(COLUMNS) + [k for k in dict.fromkeys(k for r in rows for k in r) if k not in COLUMNS]
        texts = {
            "table.csv": _csv(rows, columns),
            "table.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows),
            "summary.json": json.dumps({"spec": self.spec.name, "cells": len(rows), "methods": summary}, indent=1,
                                       ensure_ascii=False) + "\n",
            "summary.md": _summary_md(self.spec, rows, summary),
            "index.html": gallery(self.spec, rows, summary, self.metas),
        }
        paths = {}
        for name, text in texts.items():
            with atomic_path(out / name) as tmp:
                tmp.write_text(text, encoding="utf-8")
            paths[name] = out / name
        return paths


def preview(cell: Cell, meta: dict) -> str:
    """The name of the picture a finished cell shows (in its folder): the first of PREVIEW_ROLES it wrote, else its
    first image file; '' when it wrote none."""
    files = {str(k): str(v) for k, v in (meta.get("files") or {}).items()}
    for name in [files[r] for r in PREVIEW_ROLES if r in files] + list(files.values()):
        if Path(name).suffix.lower() in IMAGE_SUFFIXES and Path(name).name == name \
                and (cell.folder / name).is_file():
            return name
    return ""


def _clip_r_precision(pngs: list[Path], prompts: list[str]) -> float | None:
    """The share of pictures whose most similar prompt (of the set) is their own, by the real CLIP this process
    loads; None when it has only the random-weight one."""
    import numpy as np
    from PIL import Image

    from ..measures.clip import default_clip, r_precision

    scorer = default_clip("cpu")
    if scorer.random_weights:
        return None
    texts = list(dict.fromkeys(prompts))
    images = [np.asarray(Image.open(p).convert("RGB")) for p in pngs]
    return r_precision(scorer.similarity(images, texts), [texts.index(p) for p in prompts])


def _groups(rows: Iterable[dict]) -> dict[tuple[str, str], list[dict]]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["method"], r["prior"]), []).append(r)
    return groups


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def _number(value: float) -> str:
    return f"{value:.4g}"


def _figure_text(f: dict) -> str:
    if f.get("unit") == "share":  # "83 % of 6"
        return f"{f['figure']}: {100 * f['value']:.0f} % of {f['n']}"
    spread = f" ± {_number(f['std'])}" if f.get("std") else ""
    return f"{f['figure']}: {_number(f['value'])}{spread} (n={f['n']})"


def _counts(rows: list[dict]) -> str:
    done = sum(r["status"] == "done" for r in rows)
    failed = sum(r["status"] == "failed" for r in rows)
    return f"{done} of {len(rows)} cells done, {failed} failed, {len(rows) - done - failed} still to run"


def _summary_md(spec: Spec, rows: list[dict], summary: list[dict]) -> str:
    lines = [f"# Compare: {spec.name}", "", f"{_counts(rows)}. A row per cell: table.csv; the gallery: index.html.",
             "", "| method | prior | done | seconds (mean ± std) | paper figure |", "|---|---|---|---|---|"]
    for s in summary:
        sec = s["metrics"].get("seconds")
        lines.append(f"| {_md(s['method'])} | {s['prior']} | {s['done']}/{s['cells']} | "
                     f"{_number(sec['mean']) + ' ± ' + _number(sec['std']) if sec else ''} | "
                     f"{'; '.join(_figure_text(f) for f in s['figures'])} |")
    lines += ["", "Every number, mean ± std over the cells done:", "", "| method | prior | number | mean | std | n |",
              "|---|---|---|---|---|---|"]
    for s in summary:
        for name, st in s["metrics"].items():
            lines.append(f"| {_md(s['method'])} | {s['prior']} | {name} | {_number(st['mean'])} | "
                         f"{_number(st['std'])} | {st['n']} |")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


# ---------------------------------------------------------------------------------------------------- gallery

_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px;margin:0 0 4px} p.note{color:#555;margin:4px 0 12px}
table{border-collapse:collapse} th,td{border:1px solid #ddd;padding:6px;vertical-align:top;text-align:left}
th{background:#f4f4f4} td.item{max-width:180px;font-weight:600;word-wrap:break-word}
table.summary td,table.summary th{font-size:13px} table.summary{margin-bottom:16px}
.seeds{display:flex;gap:8px} figure{margin:0;width:180px}
figure img{width:180px;height:auto;max-height:180px;object-fit:contain;background:#fafafa;border:1px solid #eee;
display:block}
.ph{width:180px;height:120px;display:flex;align-items:center;justify-content:center;background:#f6f6f6;color:#888;
border:1px dashed #ccc} figure.failed .ph{color:#b00;border-color:#e99}
figcaption{font-size:12px;color:#333;margin-top:4px;overflow-wrap:anywhere} .m{color:#555}
.err{color:#b00} .files a{margin-right:6px}
"""


def gallery(spec: Spec, rows: list[dict], summary: list[dict], metas: dict[str, dict]) -> str:
    """The static gallery page (relative links only, no script, no outside resource)."""
    e = html.escape
    by_id = {r["cell"]: r for r in rows}
    items = list(dict.fromkeys(c.item for c in spec.cells))
    grid: dict[tuple[str, str], list[Cell]] = {}
    for c in spec.cells:
        grid.setdefault((c.item, c.label), []).append(c)
    random_clip = any(m.get("clip_random_weights") for m in metas.values())
    parts = ["<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
             f"<title>Compare: {e(spec.name)}</title><style>{_CSS}</style></head><body>",
             f"<h1>Compare: {e(spec.name)}</h1>",
             f'<p class="note">{e(_counts(rows))}. Rows: table.csv and table.jsonl; numbers: summary.md.'
             + (" clip_* scores come from a tiny random-weight CLIP here (no real weights): they mean nothing."
                if random_clip else "") + "</p>",
             '<table class="summary"><tr><th>method</th><th>prior</th><th>done</th><th>seconds (mean ± std)</th>'
             "<th>paper figure</th></tr>"]
    for s in summary:
        sec = s["metrics"].get("seconds")
        parts.append(f"<tr><td>{e(s['method'])}</td><td>{e(s['prior'])}</td><td>{s['done']}/{s['cells']}</td>"
                     f"<td>{e(_number(sec['mean']) + ' ± ' + _number(sec['std'])) if sec else ''}</td>"
                     f"<td>{'<br>'.join(e(_figure_text(f)) for f in s['figures'])}</td></tr>")
    parts.append("</table>")
    parts.append('<table class="grid"><tr><th>prompt / input</th>'
                 + "".join(f"<th>{e(label)}</th>" for label in spec.labels) + "</tr>")
    for item in items:
        parts.append(f'<tr><td class="item">{e(item)}</td>')
        for label in spec.labels:
            cells = grid.get((item, label), [])
            parts.append('<td><div class="seeds">' + "".join(_figure(c, by_id[c.id], metas.get(c.id)) for c in cells)
                         + "</div></td>")
        parts.append("</tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts) + "\n"


def _href(cell: Cell, name: str) -> str:
    return f"{quote(cell.id)}/{quote(name)}"


def _figure(cell: Cell, row: dict, meta: dict | None) -> str:
    e = html.escape
    head = " · ".join(x for x in (f"seed {cell.seed}" if cell.seed is not None else "", cell.prior or "") if x)
    if row["status"] != "done":
        what = "failed" if row["status"] == "failed" else "not run yet"
        err = f'<br><span class="err">{e(row["error"])}</span>' if row["error"] else ""
        return (f'<figure class="{row["status"]}" id="{e(cell.id)}"><div class="ph">{what}</div>'
                f"<figcaption>{e(head)}{err}</figcaption></figure>")
    alt = f"{cell.label} · {cell.item} · {head}"
    picture = (f'<a href="{_href(cell, row["preview"])}"><img src="{_href(cell, row["preview"])}" alt="{e(alt)}"></a>'
               if row["preview"] else '<div class="ph">no picture</div>')
    numbers = []
    if row.get("seconds") is not None:
        loading = row.get("load_s") or 0.0
        numbers.append(f"{row['seconds']:.1f} s" + (f" ({loading:.1f} s loading)" if loading >= 0.5 else ""))
    skip = set(COLUMNS) | {"icon_nearest", "icon_shown", "baseline_cell"}
    numbers += [f"{k} {_number(v)}" for k, v in row.items() if k not in skip and isinstance(v, float)]
    if row.get("icon_nearest"):
        verdict = "the prompt's" if row.get("icon_shown") else "not the prompt's"
        numbers.append(f"nearest icon: {row['icon_nearest']} ({verdict})")
    files = [str(v) for v in (meta.get("files") or {}).values() if Path(str(v)).name == str(v)] + ["result.json"]
    links = " ".join(f'<a href="{_href(cell, name)}">{e(name)}</a>' for name in dict.fromkeys(files))
    return (f'<figure class="done" id="{e(cell.id)}">{picture}<figcaption>{e(head)}<br>'
            f'<span class="m">{"<br>".join(e(n) for n in numbers)}</span>'
            f'<div class="files">{links}</div></figcaption></figure>')
