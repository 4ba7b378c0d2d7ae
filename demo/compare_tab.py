"""The Compare tab: a few prompts x the Text to SVG methods x seeds, run as one small grid (`backends.compare`, the
same code as `python -m backends compare`), seen as a gallery (a row per prompt; methods, then seeds, across) with
each method's summary, and the whole report to download: table.csv and the static index.html gallery with every
cell's files, which opens from disk once unzipped.

Kept to Text to SVG, the one task whose methods all start from a prompt alone: a grid of typed prompts needs no
upload per cell. Larger grids, other tasks, several priors and Ray run from a spec file (docs/compare.md).
"""
from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path

import gradio as gr

import backends
from backends import compare, free_memory
from backends.compare.report import preview
from backends.core.errors import DistillError, InputError

from .jobs import JOBS, Stopped, acquire, device_lock, session_of
from .requests import resolve_prior
from .tab import RunConfig

log = logging.getLogger(__name__)

NAME = "compare"
TASK = "svg"
MAX_PROMPTS = 4
MAX_SEEDS = 3
DEFAULT_METHODS = ("svg/vectorfusion", "svg/raster-then-vectorize")
# One click loads a row (prompts, methods, seeds); every prompt is one the offline icons prior knows.
EXAMPLES = [("a red fox\na cup of coffee", DEFAULT_METHODS, 1),
            ("a rocket\na tree in autumn\na snail under an umbrella", ("svg/vectorfusion",), 2)]
INTRO = ("**Compare.** Type a few prompts, choose the Text to SVG methods, and run them all, seed by seed, as one "
         "grid: the gallery shows a row per prompt, and the summary each method's mean figures. The report (a "
         "table and a gallery page with every result's files) downloads as a zip. For larger grids, other tabs' "
         "methods or a Ray cluster, run `python -m backends compare SPEC` (see the README).")


def parse_prompts(text: str | None) -> list[str]:
    """The prompts typed one a line (blank lines skipped); InputError naming the field when there are none or too
    many."""
    prompts = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not prompts:
        raise InputError("Prompts: type at least one prompt, one a line.")
    if len(prompts) > MAX_PROMPTS:
        raise InputError(f"Prompts: at most {MAX_PROMPTS} here, one a line (you gave {len(prompts)}); larger grids "
                         "run with `python -m backends compare`.")
    return prompts


def parse_seeds(value) -> list[int]:
    """Seeds 0..n-1 for n seeds per cell (1 to MAX_SEEDS)."""
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise InputError(f"Seeds: give a whole number from 1 to {MAX_SEEDS}.") from None
    if not 1 <= n <= MAX_SEEDS or n != value:
        raise InputError(f"Seeds: give a whole number from 1 to {MAX_SEEDS}, not {value}.")
    return list(range(n))


def grid_data(prompts: list[str], methods: list[str], seeds: list[int], run_config: RunConfig) -> dict:
    """The spec (as `backends.compare.parse_spec` reads it) of the grid the tab runs: each method on this server's
    prior for it, at its defaults."""
    known = {f"{TASK}/{name}" for name in backends.available().get(TASK, [])}
    if not methods:
        raise InputError("Methods: choose at least one method.")
    tables = []
    for key in methods:
        if methods.count(key) > 1:  # the page's words, not the spec's ("backends[2].label")
            raise InputError(f"Methods: {str(key)[:40]!r} is chosen twice; choose each method once.")
        if key not in known:  # the task too, not only the name: 'panorama/vectorfusion' is no method here
            raise InputError(f"Methods: {str(key)[:40]!r} is not a Text to SVG method here.")
        prior = resolve_prior(backends.get(key), "auto", run_config.env)
        tables.append({"name": key, **({"priors": [prior]} if prior else {})})
    env = run_config.env
    return {"out": "grid", "prompts": prompts, "seeds": seeds, "backends": tables,
            "device": env.run_device(), "memory": env.memory_mode}


def gallery_items(spec: compare.Spec) -> list[tuple[str, str]]:
    """(picture, caption) of every finished cell in the spec's order: item by item, so with as many columns as
    methods x seeds each prompt is a row."""
    items = []
    for cell in spec.cells:
        meta = compare.finished(cell)
        picture = preview(cell, meta) if meta else ""
        if picture:
            items.append((str(cell.folder / picture), f"{cell.label} · {cell.prompt} · seed {cell.seed}"))
    return items


def summary_markdown(summary: dict) -> str:
    """A line per method: runs done, mean seconds, and its paper-style figure (offline: the icons judge's share of
    results nearest an icon of their prompt; with real CLIP weights, CLIP R-precision). Every number's mean and
    spread are in the report's summary.md."""
    lines = ["| method | prior | done | seconds a run | figure |", "|---|---|---|---|---|"]
    for m in summary.get("methods", []):
        seconds = m.get("metrics", {}).get("seconds")
        took = f"{seconds['mean']:.1f} ± {seconds['std']:.1f}" if seconds else "-"
        figures = "; ".join(f"{f['figure']}: " + (f"{100 * f['value']:.0f} %" if f.get("unit") == "share"
                                                  else f"{f['value']:.3g}") + f" of {f['n']}"
                            for f in m.get("figures", []) if f.get("value") is not None) or "-"
        lines.append(f"| {m['method']} | {m.get('prior') or '-'} | {m['done']}/{m['cells']} | {took} | {figures} |")
    return "\n".join(lines)


def zip_report(out: Path, target: Path) -> Path:
    """The report folder (its table, summary, index.html and every cell's files) as one zip."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as z:
        for path in sorted(out.rglob("*")):
            if path.is_file():
                z.write(path, Path("report") / path.relative_to(out))
    return target


class CompareTab:
    """The tab's widgets and events, inside the current gr.Blocks."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.keys = [f"{TASK}/{n}" for n in backends.available().get(TASK, [])]
        # per session: a prompt a run refused and the prior's closest known ones, offered until the next run
        self.offered: dict[str, tuple[str, tuple[str, ...]]] = {}

    def build(self) -> None:
        gr.Markdown(INTRO, elem_classes=["tab-intro"])
        with gr.Row(equal_height=False, elem_classes=["tab-body"]):
            with gr.Column(scale=2, min_width=320):
                self.prompts = gr.Textbox(label=f"Prompts (one a line, at most {MAX_PROMPTS})", lines=3,
                                          placeholder="a red fox\na cup of coffee", elem_id="compare-prompts")
                self.methods = gr.CheckboxGroup(
                    choices=[(k.split("/", 1)[1], k) for k in self.keys],
                    value=[k for k in DEFAULT_METHODS if k in self.keys], label="Methods",
                    elem_id="compare-methods")
                self.seeds = gr.Slider(1, MAX_SEEDS, value=1, step=1, label="Seeds per prompt and method",
                                       elem_id="compare-seeds")
                with gr.Row(elem_classes=["run-row"]):
                    self.run_btn = gr.Button("Run", variant="primary", elem_id="compare-run", min_width=120)
                    self.stop_btn = gr.Button("Stop", variant="stop", elem_id="compare-stop", min_width=120)
                self.examples = gr.Examples(
                    [[prompts, [k for k in methods if k in self.keys], seeds] for prompts, methods, seeds in EXAMPLES],
                    [self.prompts, self.methods, self.seeds], label="Examples (one click loads them; then press Run)",
                    elem_id="compare-examples")
                self.status = gr.Markdown("", elem_id="compare-status")
                self.suggest = gr.Radio(choices=[], value=None, label="Did you mean (click one to use it)",
                                        visible=False, elem_id="compare-suggest")
            with gr.Column(scale=3, min_width=320):
                self.gallery = gr.Gallery(label="Results: a row per prompt", columns=2, height="auto",
                                          object_fit="contain", elem_id="compare-gallery")
                self.summary = gr.Markdown("", elem_id="compare-summary")
                self.files = gr.File(label="The report (zip: index.html, table.csv, every result)",
                                     file_count="multiple", elem_id="compare-files")
        outputs = [self.status, self.gallery, self.summary, self.files]
        # Run stays disabled while its grid runs (a second click would be dropped without a word); the grid's end
        # or Stop enables it again.
        started = self.run_btn.click(lambda: gr.update(interactive=False), None, self.run_btn,
                                     api_visibility="private", queue=False, show_progress="hidden")
        self.run_event = started.then(self.run, [self.prompts, self.methods, self.seeds], outputs,
                                      api_name="compare_run", concurrency_id=self.config.queue_id,
                                      concurrency_limit=self.config.concurrency)
        # the choices are not an output of `compare_run`: API clients read its outputs by position
        self.run_event.then(self.offer, None, self.suggest, api_visibility="private", queue=False,
                            show_progress="hidden")
        self.suggest.input(self.use_suggestion, [self.suggest, self.prompts], [self.prompts, self.suggest],
                           api_visibility="private", queue=False)
        stopped = self.stop_btn.click(self.stop, None, self.status, api_name="compare_stop", concurrency_id="ui",
                                      concurrency_limit=None, cancels=[self.run_event], show_progress="hidden")
        for event in (self.run_event, stopped):  # a cancelled run's own .then does not fire
            event.then(lambda: gr.update(interactive=True), None, self.run_btn, api_visibility="private",
                       queue=False, show_progress="hidden")

    def run(self, prompts_text: str, methods: list[str], seeds, request: gr.Request):
        """Run the grid and stream its progress, gallery, summary and report to the tab."""
        job = JOBS.start(session_of(request), NAME)
        t0 = time.perf_counter()
        outcome, grid = "stopped", None
        first_failure = ""
        self.offered.pop(session_of(request), None)
        try:
            from backends.core.files import JobDir, cleanup_expired

            cleanup_expired(self.config.job_ttl_s, root=self.config.job_root)
            data = grid_data(parse_prompts(prompts_text), list(methods or []), parse_seeds(seeds), self.config)
            job_dir = JobDir(self.config.job_root, prefix=NAME)
            spec = compare.parse_spec(data, base=job_dir.path, name="compare")
            columns = len(spec.labels) * len(data["seeds"])
            yield (f"**Grid**: {len(spec.cells)} runs ({len(data['prompts'])} prompts x {len(spec.labels)} methods "
                   f"x {len(data['seeds'])} seeds); waiting for the device...", gr.Gallery(value=[], columns=columns),
                   "", None)
            lock = device_lock(self.config.env.device, self.config.cpu_slots)
            acquire(lock, job)
            try:
                grid = compare.run_grid(spec)
                for event in grid:
                    if job.stopping:
                        raise Stopped()
                    job_dir.touch()
                    if event.kind == "progress" and event.progress is not None:
                        job.step, job.total = event.progress.step, event.progress.total
                    if event.kind == "failed" and not first_failure:
                        first_failure = event.message
                        choices = getattr(event.message, "suggestions", ())
                        if choices and event.cell is not None and event.cell.prompt:
                            self.offered[session_of(request)] = (event.cell.prompt, tuple(choices))
                    if event.kind in ("plan", "progress", "done", "failed"):
                        pictures = gallery_items(spec) if event.kind in ("done", "failed") else gr.skip()
                        yield self._status(event, t0), pictures, gr.skip(), gr.skip()
                    elif event.kind == "end":
                        summary = summary_markdown(json.loads((spec.out / "summary.json").read_text("utf-8")))
                        zipped = zip_report(spec.out, job_dir.path / "compare-report.zip")
                        failed = f", {event.failed} failed (the first: {first_failure})" if event.failed else ""
                        outcome = "done"
                        yield (f"**Done**: {event.done} of {event.total} runs{failed} in "
                               f"{time.perf_counter() - t0:.1f} s.", gallery_items(spec), summary,
                               [str(zipped), str(spec.out / "table.csv")])
            finally:
                if grid is not None:
                    grid.close()  # stops a cell in flight; the report keeps the finished ones
                lock.release()
        except Stopped:
            yield "**Stopped.** The finished runs are kept in this grid's folder until it expires.", gr.skip(), \
                gr.skip(), gr.skip()
        except DistillError as err:
            outcome = "failed"
            gr.Warning(str(err))
            kind = "Input problem" if isinstance(err, InputError) else "Run failed"
            yield f"**{kind}:** {err}", gr.skip(), gr.skip(), gr.skip()
        except Exception as err:  # a bug: log it, show one line, never a traceback
            outcome = "failed"
            log.exception("compare grid failed")
            msg = f"internal error ({type(err).__name__}: {str(err)[:200]}); the server log has the details"
            gr.Warning(msg)
            yield f"**Run failed:** {msg}", gr.skip(), gr.skip(), gr.skip()
        finally:
            free_memory()
            JOBS.finish(job, outcome)

    def offer(self, request: gr.Request):
        """The "Did you mean" choices after a run: a refused prompt's closest known ones, or hidden."""
        _prompt, choices = self.offered.get(session_of(request), ("", ()))
        return gr.update(visible=bool(choices), choices=list(choices), value=None)

    def use_suggestion(self, choice: str | None, prompts_text: str | None, request: gr.Request):
        """The refused prompt's line replaced by the chosen one; the choices hidden."""
        refused, _choices = self.offered.pop(session_of(request), ("", ()))
        hidden = gr.update(visible=False, choices=[], value=None)
        if not choice:
            return gr.update(), hidden
        lines = (prompts_text or "").splitlines()
        return "\n".join(choice if line.strip() == refused else line for line in lines), hidden

    @staticmethod
    def _status(event: compare.GridEvent, t0: float) -> str:
        """One line: where the grid is, the cell running (and its step), the time left."""
        if event.kind == "plan":
            line = f"**{event.done} of {event.total} runs done**" + (f": {event.message}" if event.message else "")
        elif event.kind in ("done", "failed"):
            line = f"**{event.done} of {event.total} runs done**"
            if event.cell is not None:
                what = "failed" if event.kind == "failed" else "finished"
                line += f"; {what}: {event.cell.label} · {event.cell.prompt} · seed {event.cell.seed}"
                if event.kind == "failed" and event.message:  # why, with the prior's closest prompts when it has them
                    line += f": {event.message}"
        else:
            line = f"**Run {min(event.done + 1, event.total)} of {event.total}**"
            if event.cell is not None:
                line += f": {event.cell.label} · {event.cell.prompt} · seed {event.cell.seed}"
            if event.progress is not None and event.progress.total:
                line += f" · step {event.progress.step}/{event.progress.total}"
        if event.eta_s is not None and event.done < event.total:
            line += f" · about {event.eta_s:.0f} s left"
        return line + f" ({time.perf_counter() - t0:.0f} s so far)"

    def stop(self, request: gr.Request) -> str:
        """Stop this session's grid: the cell in flight ends at its next step; finished ones are kept."""
        JOBS.stop(session_of(request), NAME)
        JOBS.wait_stopped(session_of(request), NAME, timeout_s=10.0)
        return "**Stopped.** The finished runs are kept in this grid's folder until it expires."
