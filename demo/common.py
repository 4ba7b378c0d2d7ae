"""The widgets every tab shares, built from the backend registry: settings panels, Run / Stop / Compare, the
status line, result display. A tab module only declares what is particular to it (`TabSpec`).

Flow of one press of Run (no diffusion here, only widgets and files):
  widgets --collect--> request JSON (shown, copyable)  --`<tab>_run`-->  backends.run(...) for the method and,
  when Compare is on, the baseline, on the same inputs and seed  -->  live previews, then files and a report.
The `<tab>_run` endpoint takes that JSON plus the input files, so the API and the CLI line it shows repeat a
run exactly. Stop (`<tab>_stop`) flags this session's runs in this tab; they end at the next progress report.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import logging
import os
import shlex
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr
import numpy as np
from PIL import Image

import backends
from backends import settings as bsettings
from backends.errors import DistillError, InputError, RunError
from backends.types import Progress, Result

from . import environment
from backends.priors.machine import free_memory
from backends.runner import preload

from .jobs import JOBS, Stopped, acquire, device_lock, drive, publish, safe_stem

log = logging.getLogger("distill_studio.app")

SHARED_FIELDS = ("prompt", "seed")  # shown once per tab; method and baseline get the same values
STOP_WAIT_S = 10.0  # how long the Stop handler waits for the run to end before answering
# UI default for a backend's `every` (progress reports with a preview): Stop can only end a run at a report, so
# report often. CPU steps (try-out mode) take up to ~1 s, GPU steps ~0.1-0.3 s.
REPORT_EVERY = {"cpu": 2, "cuda": 5}
IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
VIDEO_EXT = {".mp4", ".webm"}
TINY_NOTE = "tiny prior: shows the flow, not the method's quality"


@dataclass
class InputSlot:
    """One input widget of a tab. kind: what backends call it ("image", "images", "video", "svg")."""

    kind: str
    label: str
    make: Callable[[], gr.components.Component]


@dataclass
class Example:
    """One row of gr.Examples: backend, prompt, input files by slot kind, settings for that backend."""

    label: str
    backend: str
    prompt: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    compare: bool = False
    compare_settings: dict[str, Any] = field(default_factory=dict)

    def available(self) -> bool:
        for value in self.inputs.values():
            paths = value if isinstance(value, (list, tuple)) else [value]
            if not all(Path(p).is_file() for p in paths):
                return False
        return True


@dataclass
class TabSpec:
    """What a tab is: its task in the registry, words, inputs, how to show results, examples."""

    name: str  # api prefix and elem_id prefix: "svg", "panorama", ...
    task: str  # registry task
    title: str
    intro: str
    inputs: list[InputSlot]
    method: tuple[str, ...] = ()  # preferred default backend names, first found wins
    baseline: tuple[str, ...] = ()
    media: tuple[str, ...] = ()  # extra result widgets beside the preview: "svg", "video", "gallery"
    media_labels: dict[str, str] = field(default_factory=dict)  # kind -> what it shows, e.g. "turntable"
    prompt_label: str = "Prompt"
    default_prior: str = "auto"
    examples: Callable[[], list[Example]] = lambda: []
    compare_default: bool = False


@dataclass
class RunConfig:
    """How runs are placed: the detected environment, the device queue, where job folders go."""

    env: environment.Environment
    queue_id: str = "gpu0"
    concurrency: int = 1
    job_ttl_s: float = 2 * 3600
    job_root: str | None = None


# ---------------------------------------------------------------------------------------------------------------
# settings panels


def _label(name: str) -> str:
    return name.replace("_", " ")


def auto_help(d: dict) -> str:
    """What an "auto" field becomes: '(auto: 200 with real weights, 40 in try-out mode)'."""
    full, quick = d.get("full"), d.get("quick")
    if full is None and quick is None:
        return "(auto: chosen by the method)"
    parts = ([f"{full} with real weights"] if full is not None else []) + (
        [f"{quick} in try-out mode"] if quick is not None else [])
    return f"(auto: {', '.join(parts)})"


def field_widget(d: dict, elem_id: str, value: Any = None):
    """A widget for one settings field from `describe()`: dropdown, checkbox, slider, number or text. An "auto" field
    (default None) is a text box that reads "auto" until a person types a value."""
    value = d["default"] if value is None else value
    kw = dict(label=_label(d["name"]), info=d["help"] or None, elem_id=elem_id)
    t, lo, hi = d["type"], d["lo"], d["hi"]
    if d.get("optional") and d["default"] is None and not d["choices"]:
        rng = f" {lo:g}-{hi:g}" if t in ("int", "float") and lo is not None and hi is not None else ""
        kw["info"] = f"{d['help']} {auto_help(d)}{'; or a value' + rng if rng else ''}"
        return gr.Textbox(value="" if value is None else str(value), placeholder="auto", lines=1, max_lines=1, **kw)
    if d["choices"]:
        return gr.Dropdown(choices=list(d["choices"]), value=value, **kw)
    if t == "bool":
        return gr.Checkbox(value=bool(value), **kw)
    if t in ("int", "float") and lo is not None and hi is not None and value is not None:
        small_int = t == "int" and hi - lo <= 1100
        unit_float = t == "float" and lo >= 0 and hi <= 1.0
        if small_int or unit_float:
            return gr.Slider(minimum=lo, maximum=hi, value=value, step=1 if t == "int" else 0.01, **kw)
    if t in ("int", "float"):  # also an optional number left empty: the backend picks (its help says how)
        # no minimum/maximum: Gradio would refuse out-of-range input with a toast that names no field; the settings
        # parser says which field and why
        return gr.Number(value=value, precision=0 if t == "int" else None, **kw)
    if t == "str":
        return gr.Textbox(value=value, lines=1, placeholder="auto" if value is None else None, **kw)
    return gr.Textbox(value="" if value is None else json.dumps(value, default=str), **kw)


def ui_fields(cls) -> list[dict]:
    """The fields a panel shows: `ui` ones that are not the tab-wide shared fields."""
    return [d for d in bsettings.describe(cls.Settings) if d["ui"] and d["name"] not in SHARED_FIELDS]


def report_every(device: str) -> int:
    return REPORT_EVERY["cuda" if str(device).startswith("cuda") else "cpu"]


def ui_default(d: dict, device: str = "cpu") -> Any:
    if d["name"] == "every" and isinstance(d["default"], int):
        return min(d["default"], report_every(device))
    return d["default"]


# ---------------------------------------------------------------------------------------------------------------
# requests: what one press of Run asks for, as JSON


def resolve_prior(cls, asked: str | None, env: environment.Environment) -> str | None:
    """The prior name for backend `cls`: None if it needs none; "auto" -> this machine's default. A web request
    may only pick priors of this server's catalog by name: paths and hub ids ("sd:/some/folder") are for the CLI
    and the environment, never for a visitor."""
    if cls.prior == "none":
        return None
    if asked in (None, "", "auto"):
        return env.prior_for(cls.prior)
    if not isinstance(asked, str) or asked not in env.facts["priors"]:
        shown = repr(asked)[:40] if isinstance(asked, str) else type(asked).__name__
        raise InputError(f"The prior {shown} is not offered here; choose auto or one of "
                         f"{', '.join(env.facts['priors'])}.")
    return asked


def parse_request(text: str) -> dict:
    """Validate the request JSON's shape (not the settings: backends.run does that)."""
    try:
        req = json.loads(text or "")
    except json.JSONDecodeError as err:
        raise InputError(f"the settings JSON is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(req, dict) or not isinstance(req.get("backend"), str):
        raise InputError('the settings JSON must be an object with a "backend" name, e.g. {"backend": "image/sds"}')
    for side in (req, req.get("compare") or {}):
        if not isinstance(side, dict) or not isinstance(side.get("settings", {}), dict):
            raise InputError('"settings" in the settings JSON must be an object of name: value')
    if req.get("compare") is not None and not isinstance(req["compare"].get("backend"), str):
        raise InputError('"compare" in the settings JSON needs a "backend" name')
    return req


def baseline_settings(method_cls, baseline_cls, method_settings: dict) -> dict:
    """The baseline's starting settings: the prompt and seed, plus every setting both backends declare with the
    same name and the same default (so it means the same thing: steps, guidance, size...), taken from the method.
    With the same backend on both sides that is all of them: "two settings of one method"."""
    a = {d["name"]: d["default"] for d in bsettings.describe(method_cls.Settings)}
    b = {d["name"]: d["default"] for d in bsettings.describe(baseline_cls.Settings)}
    return {k: v for k, v in method_settings.items()
            if k in b and (k in SHARED_FIELDS or (k in a and a[k] == b[k]))}


def cli_line(key: str, prior: str | None, settings: dict, defaults: dict, inputs: list[str]) -> str:
    """The `python -m backends run` line that repeats one run (non-default settings, always the seed)."""
    parts = ["python", "-m", "backends", "run", key]
    if prior:
        parts += ["--prior", prior]
    for name, value in settings.items():
        if name == "seed" or (name == "prompt" and value) or defaults.get(name, object()) != value:
            parts += ["--set", f"{name}={value}"]
    for path in inputs:
        parts += ["--input", Path(path).name]
    parts += ["--out", "out/"]
    return " ".join(shlex.quote(p) for p in parts)


# ---------------------------------------------------------------------------------------------------------------
# result display


def svg_html(path: str | None) -> str:
    """The SVG itself, drawn by the browser (gr.Image cannot show SVG), as a sandboxed <img> data URI."""
    if not path:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure class="svg-result"><img alt="result SVG" src="data:image/svg+xml;base64,{data}"/>'
            '<figcaption>the .svg file, drawn by your browser</figcaption></figure>')


def unpack_views(zip_path: str, folder: Path, limit: int = 64) -> list[str]:
    """The images inside a result zip (our own backend wrote it), written under generated names for the gallery."""
    out = []
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXT and not n.endswith("/"))
        folder.mkdir(exist_ok=True)
        for i, name in enumerate(names[:limit]):
            if zf.getinfo(name).file_size > 64 * 2**20:
                continue
            dst = folder / f"view-{i:03d}{Path(name).suffix.lower()}"
            dst.write_bytes(zf.read(name))
            out.append(str(dst))
    return out


def media_value(kind: str, files: dict[str, str], folder: Path):
    """What a result widget of `kind` shows, from the run's published files."""
    paths = list(files.values())
    if kind == "svg":
        return svg_html(files.get("svg") or next((p for p in paths if p.lower().endswith(".svg")), None))
    if kind == "video":
        return files.get("mp4") or next((p for p in paths if Path(p).suffix.lower() in VIDEO_EXT), None)
    if kind == "gallery":
        zips = [p for p in paths if p.lower().endswith(".zip")]
        if zips:
            return unpack_views(zips[0], folder / (Path(zips[0]).stem + "-views"))
        return [p for r, p in files.items() if Path(p).suffix.lower() in IMAGE_EXT - {".gif"} and r != "comparison"]
    raise ValueError(f"unknown media kind {kind!r}")


def media_widget(kind: str, label: str, elem_id: str):
    if kind == "svg":
        return gr.HTML(label=label, elem_id=elem_id)
    if kind == "video":
        return gr.Video(label=label, elem_id=elem_id, interactive=False, height=260)
    if kind == "gallery":
        return gr.Gallery(label=label, elem_id=elem_id, columns=4, height=220, interactive=False, object_fit="contain")
    raise ValueError(f"unknown media kind {kind!r}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def report_markdown(rows: list[tuple[str, dict]]) -> str:
    """The runs side by side, one column each: backend, prior, seed, time, then every metric either reports."""
    if not rows:
        return ""
    metric_names: list[str] = []
    for _, meta in rows:
        for k in (meta.get("metrics") or {}):
            if k not in metric_names and k != "bad_steps":
                metric_names.append(k)

    def prior(meta):
        return (meta.get("prior") or "none") + (" (tiny)" if meta.get("prior_is_tiny") else "")

    table = [("backend", lambda m: f"`{m.get('backend', '')}`"), ("prior", prior),
             ("seed", lambda m: _fmt(m.get("seed", ""))),
             ("time (s)", lambda m: _fmt((m.get("timings") or {}).get("total_s", "")))]
    table += [(k, lambda m, k=k: _fmt((m.get("metrics") or {}).get(k, ""))) for k in metric_names]
    lines = ["| | " + " | ".join(side for side, _ in rows) + " |", "|---|" + "---|" * len(rows)]
    for name, cell in table:
        lines.append(f"| {name} | " + " | ".join(cell(meta) for _, meta in rows) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# the tab


class Tab:
    """Builds one tab's widgets and events inside the current gr.Blocks and holds references for tests."""

    def __init__(self, spec: TabSpec, config: RunConfig):
        self.spec, self.config, self.env = spec, config, config.env
        names = backends.available().get(spec.task, [])
        self.keys = [f"{spec.task}/{n}" for n in names]
        self.classes = {k: backends.get(k) for k in self.keys}
        self.events: dict[str, Any] = {}
        self.panel_fields: list[tuple[str, str, Any]] = []  # (backend key, field name, widget)

    # -- defaults
    def _pick(self, prefs: tuple[str, ...], avoid: str | None = None) -> str | None:
        for name in prefs:
            key = f"{self.spec.task}/{name}"
            if key in self.classes and key != avoid:
                return key
        rest = [k for k in self.keys if k != avoid]
        return rest[0] if rest else (self.keys[0] if self.keys else None)

    def prior_choices(self) -> list[tuple[str, str]]:
        kinds = {c.prior for c in self.classes.values() if c.prior != "none"}
        out = [(f"auto ({', '.join(self.env.prior_for(k) for k in sorted(kinds))})" if kinds else "auto", "auto")]
        targets_ok = any(c.analytic_ok for c in self.classes.values())
        for kind in sorted(kinds):
            for name in self.env.prior_names(kind):
                if targets_ok or not self.env.facts["priors"][name]["needs_target"]:
                    out.append((name, name))
        return out

    def has_field(self, name: str) -> bool:
        return any(name in {f.name for f in dataclasses.fields(c.Settings)} for c in self.classes.values())

    # -- layout
    def build(self) -> None:
        s = self.spec
        gr.Markdown(s.intro, elem_classes=["tab-intro"])
        if not self.keys:
            gr.Markdown(f"**No backend for this task is installed yet.** Backends register under the task "
                        f"`{s.task}` (see `python -m backends list`); this tab fills itself in once one is there.",
                        elem_id=f"{s.name}-empty")
            return
        self.method_key = self._pick(s.method)
        self.baseline_key = self._pick(s.baseline, avoid=self.method_key)
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=320):
                self.input_widgets = []
                for slot in s.inputs:
                    self.input_widgets.append(slot.make())
                self.prompt = (gr.Textbox(label=s.prompt_label, lines=2, elem_id=f"{s.name}-prompt")
                               if self.has_field("prompt") else None)
                with gr.Row():
                    self.backend = gr.Dropdown(
                        choices=[(f"{k.split('/', 1)[1]}", k) for k in self.keys], value=self.method_key,
                        label="Method", info=self.classes[self.method_key].description, elem_id=f"{s.name}-backend")
                    self.prior = gr.Dropdown(choices=self.prior_choices(), value=s.default_prior, label="Prior",
                                             elem_id=f"{s.name}-prior")
                self.seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (shared by method and baseline)",
                                      elem_id=f"{s.name}-seed")
                self.panels = {}
                for key, cls in self.classes.items():
                    with gr.Group(visible=key == self.method_key) as panel:
                        basic = [d for d in ui_fields(cls) if not d["advanced"]]
                        adv = [d for d in ui_fields(cls) if d["advanced"]]
                        stem = f"{s.name}-{safe_stem(key.split('/', 1)[1])}"
                        for d in basic:
                            self.panel_fields.append((key, d["name"], field_widget(d, f"{stem}-{d['name']}",
                                                                                   ui_default(d, self.env.device))))
                        if adv:
                            with gr.Accordion(f"Advanced settings: {key.split('/', 1)[1]}", open=False):
                                for d in adv:
                                    self.panel_fields.append((key, d["name"], field_widget(
                                        d, f"{stem}-{d['name']}", ui_default(d, self.env.device))))
                    self.panels[key] = panel
                with gr.Accordion("Compare with a baseline", open=s.compare_default or len(self.keys) > 1):
                    self.compare = gr.Checkbox(value=s.compare_default and len(self.keys) > 1,
                                               label="Run a second backend on the same input and seed, side by side",
                                               elem_id=f"{s.name}-compare")
                    self.compare_backend = gr.Dropdown(choices=[(k.split("/", 1)[1], k) for k in self.keys],
                                                       value=self.baseline_key, label="Baseline",
                                                       elem_id=f"{s.name}-compare-backend")
                    self.compare_json = gr.Textbox(
                        value="{}", lines=1, label="Baseline settings (JSON overrides)",
                        info="Prompt, seed and the settings both share (same name and default) are copied from the "
                             "method; these override them, e.g. {\"lr\": 0.01} with the same method as baseline.",
                        elem_id=f"{s.name}-compare-json")
                with gr.Row():
                    self.run_btn = gr.Button("Run", variant="primary", elem_id=f"{s.name}-run")
                    self.stop_btn = gr.Button("Stop", variant="stop", elem_id=f"{s.name}-stop")
                self.example_settings = gr.Textbox(visible=False, elem_id=f"{s.name}-example-settings")
                self._examples()
            with gr.Column(scale=3, min_width=360):
                self.status = gr.Markdown("Ready.", elem_id=f"{s.name}-status", elem_classes=["run-status"])
                # Gradio draws the progress bar and the queue position over this (empty) slot, not over the status.
                self.progress_slot = gr.HTML("", elem_id=f"{s.name}-progress", elem_classes=["progress-slot"])
                with gr.Row(equal_height=False):
                    with gr.Column():
                        self.caption_a = gr.Markdown("**Method**", elem_id=f"{s.name}-caption-a")
                        self.preview_a = gr.Image(label="Method preview", show_label=False, interactive=False,
                                                  elem_id=f"{s.name}-preview-a", elem_classes=["preview"],
                                                  height=320, format="png")
                        self.media_a = [media_widget(k, f"Method: {s.media_labels.get(k, k)}", f"{s.name}-{k}-a")
                                        for k in s.media]
                        self.files_a = gr.File(label="Method files", file_count="multiple", interactive=False,
                                               elem_id=f"{s.name}-files-a", height=150)
                    with gr.Column(visible=self.compare.value) as self.col_b:
                        self.caption_b = gr.Markdown("**Baseline**", elem_id=f"{s.name}-caption-b")
                        self.preview_b = gr.Image(label="Baseline preview", show_label=False, interactive=False,
                                                  elem_id=f"{s.name}-preview-b", elem_classes=["preview"],
                                                  height=320, format="png")
                        self.media_b = [media_widget(k, f"Baseline: {s.media_labels.get(k, k)}",
                                                     f"{s.name}-{k}-b") for k in s.media]
                        self.files_b = gr.File(label="Baseline files", file_count="multiple", interactive=False,
                                               elem_id=f"{s.name}-files-b", height=150)
                self.report = gr.Markdown(elem_id=f"{s.name}-report")
                with gr.Accordion("Copy settings: JSON for the API, command line for the CLI", open=False):
                    self.request = gr.Code(language="json", label="Settings JSON (what Run sends; paste one to repeat "
                                           "a run)", lines=6, interactive=True, elem_id=f"{s.name}-request")
                    self.run_json_btn = gr.Button("Run this JSON", size="sm", elem_id=f"{s.name}-run-json")
                    self.cli = gr.Code(language="shell", label="Repeat with the CLI", lines=2, interactive=False,
                                       elem_id=f"{s.name}-cli")
                    self.details = gr.JSON(label="Run details (result.json)", elem_id=f"{s.name}-details")
        self._wire()

    def _examples(self) -> None:
        rows = [e for e in self.spec.examples() if f"{self.spec.task}/{e.backend}" in self.classes and e.available()]
        self.example_rows = rows
        if not rows:
            return
        comps, values = [], [[] for _ in rows]
        comps.append(self.backend)
        for i, e in enumerate(rows):
            values[i].append(f"{self.spec.task}/{e.backend}")
        if self.prompt is not None:
            comps.append(self.prompt)
            for i, e in enumerate(rows):
                values[i].append(e.prompt)
        for slot, widget in zip(self.spec.inputs, self.input_widgets):
            comps.append(widget)
            for i, e in enumerate(rows):
                values[i].append(e.inputs.get(slot.kind))
        comps.append(self.example_settings)
        for i, e in enumerate(rows):
            values[i].append(json.dumps({"backend": f"{self.spec.task}/{e.backend}", "settings": e.settings,
                                         "compare": e.compare, "compare_settings": e.compare_settings}))
        self.examples = gr.Examples(values, comps, label="Examples (one click loads them; then press Run)",
                                    example_labels=[e.label for e in rows], examples_per_page=8)

    # -- events
    def _wire(self) -> None:
        s = self.spec
        panel_list = [self.panels[k] for k in self.keys]
        self.backend.change(lambda b: [gr.update(visible=k == b) for k in self.keys]
                            + [gr.update(info=self.classes[b].description if b in self.classes else None)],
                            self.backend, panel_list + [self.backend], api_visibility="private", queue=False)
        self.compare.change(lambda on: gr.update(visible=on), self.compare, self.col_b, api_visibility="private",
                            queue=False)
        widgets = [w for _, _, w in self.panel_fields]
        self.example_settings.change(self.apply_example, [self.backend, self.example_settings],
                                     widgets + [self.compare, self.compare_json], api_visibility="private",
                                     queue=False)
        # A multi-file input keeps what it holds and adds an upload to it: after an example, a person's own upload
        # must replace the example's files, not join them.
        for slot, widget in zip(s.inputs, self.input_widgets):
            if isinstance(widget, gr.File) and widget.file_count == "multiple":
                from_example = gr.State([])
                self.example_settings.change(lambda v: _paths(v), widget, from_example, api_visibility="private",
                                             queue=False)
                widget.upload(without_example_files, [widget, from_example], [widget, from_example],
                              api_visibility="private", queue=False)
        collect_inputs = [self.backend, self.prior, self.seed, self.compare, self.compare_backend, self.compare_json]
        collect_inputs += [self.prompt] if self.prompt is not None else []
        collect_inputs += widgets
        outputs = [self.status, self.caption_a, self.preview_a, self.caption_b, self.preview_b]
        outputs += self.media_a + self.media_b
        outputs += [self.files_a, self.files_b, self.report, self.cli, self.details]
        self.outputs = outputs
        # Widgets -> request JSON is UI plumbing (private); the API's way in is `<tab>_defaults` then `<tab>_run`.
        collect = self.run_btn.click(self.collect, collect_inputs, [self.request, self.status],
                                     api_visibility="private", concurrency_id="ui", concurrency_limit=None,
                                     show_progress="hidden")
        runner = environment.gpu_call(make_runner(self, len(self.input_widgets)))
        self.events["run"] = collect.success(
            runner, [self.request] + self.input_widgets, outputs, api_name=f"{s.name}_run",
            concurrency_id=self.config.queue_id, concurrency_limit=self.config.concurrency,
            show_progress="full", show_progress_on=[self.progress_slot])
        # The same handler on a pasted JSON (same queue); the API has it as `<tab>_run` already.
        self.events["run_json"] = self.run_json_btn.click(
            runner, [self.request] + self.input_widgets, outputs, api_visibility="private",
            concurrency_id=self.config.queue_id, concurrency_limit=self.config.concurrency,
            show_progress="full", show_progress_on=[self.progress_slot])
        gr.api(self.defaults, api_name=f"{s.name}_defaults", api_description=(
            f"The request JSON for `{s.name}_run` with every setting of one {s.title} backend at its default "
            f"(backend: one of {', '.join(self.keys)}; empty for {self.method_key}). Edit it, then call "
            f"`{s.name}_run` with it and the input file(s)."))
        self.events["stop"] = self.stop_btn.click(self.stop, None, self.status, api_name=f"{s.name}_stop",
                                                  concurrency_id="ui", concurrency_limit=None,
                                                  cancels=[self.events["run"], self.events["run_json"]],
                                                  show_progress="hidden")

    def defaults(self, backend: str = "") -> str:
        """A request JSON with every setting of `backend` at its default; compare with the baseline left out."""
        key = backend or self.method_key
        if key not in self.classes:
            raise gr.Error(f"Unknown backend {key!r} for this tab; choose one of {', '.join(self.keys)}.",
                           print_exception=False)
        settings = {d["name"]: ui_default(d, self.env.device) for d in bsettings.describe(self.classes[key].Settings)}
        return json.dumps({"backend": key, "prior": "auto", "settings": settings, "compare": None}, indent=1,
                          default=str)

    def apply_example(self, backend_key: str, payload: str):
        """Set the panel of the example's backend to its settings (others to defaults); other panels untouched."""
        try:
            data = json.loads(payload or "{}")
        except json.JSONDecodeError:
            data = {}
        settings = data.get("settings", {})
        backend_key = data.get("backend", backend_key)
        out = []
        for key, name, _ in self.panel_fields:
            if key != backend_key:
                out.append(gr.update())
                continue
            d = next(d for d in ui_fields(self.classes[key]) if d["name"] == name)
            out.append(gr.update(value=settings.get(name, ui_default(d, self.env.device))))
        if data:
            out.append(bool(data.get("compare", False)))
            out.append(json.dumps(data.get("compare_settings") or {}))
        else:
            out += [gr.update(), gr.update()]
        return out

    def collect(self, backend_key, prior, seed, compare, compare_key, compare_json, *rest):
        """Widgets -> the request JSON that `<tab>_run` takes (also what the person can copy)."""
        prompt = None
        if self.prompt is not None:
            prompt, rest = rest[0], rest[1:]
        if backend_key not in self.classes:
            raise gr.Error(f"Choose a method for this tab (installed: {', '.join(self.keys)}).", print_exception=False)
        settings = {name: value for (key, name, _), value in zip(self.panel_fields, rest) if key == backend_key}
        shared = {"seed": int(seed or 0)}
        if prompt is not None:
            shared["prompt"] = prompt
        req: dict[str, Any] = {"backend": backend_key, "prior": prior or "auto",
                               "settings": self._fit(backend_key, {**settings, **shared})}
        if compare:
            if compare_key not in self.classes:
                raise gr.Error("Choose a baseline to compare with.", print_exception=False)
            try:
                extra = json.loads(compare_json or "{}")
            except json.JSONDecodeError as err:
                raise gr.Error(f"The baseline settings are not valid JSON ({err.msg}).", print_exception=False)
            if not isinstance(extra, dict):
                raise gr.Error('The baseline settings must be a JSON object, e.g. {"steps": 100}.',
                               print_exception=False)
            b_prior = prior if prior in (None, "auto") or self._prior_fits(compare_key, prior) else "auto"
            base = baseline_settings(self.classes[backend_key], self.classes[compare_key], req["settings"])
            req["compare"] = {"backend": compare_key, "prior": b_prior or "auto", "settings": {**base, **extra}}
        for side in [req] + ([req["compare"]] if compare else []):
            try:
                bsettings.make_settings(self.classes[side["backend"]].Settings, side["settings"], where=side["backend"])
            except InputError as err:
                raise gr.Error(str(err), print_exception=False)
        return json.dumps(req, indent=1, default=str), "Waiting for the device (the queue position shows below)..."

    def _fit(self, key: str, values: dict) -> dict:
        names = {f.name for f in dataclasses.fields(self.classes[key].Settings)}
        return {k: v for k, v in values.items() if k in names}

    def _prior_fits(self, key: str, prior: str) -> bool:
        from backends.runner import check_prior

        try:
            check_prior(self.classes[key], prior)
            return True
        except InputError:
            return False

    def stop(self, request: gr.Request):
        """Stop this session's run in this tab (Gradio also cancels the queued or streaming event) and report when
        it has really ended: the optimization stops at its next progress report and the device is free."""
        t0 = time.monotonic()
        session = _session(request)
        hits = JOBS.stop(session, self.spec.name)
        if not JOBS.wait_stopped(session, self.spec.name, timeout_s=STOP_WAIT_S):
            return ("**Stopping**: the current step is still running; the run ends at its next progress report "
                    "(lower *every* in the advanced settings to report more often).")
        last = JOBS.last(session, self.spec.name)
        if last is None or (not hits and last.ended_at is not None and last.ended_at < t0 - 2.0):
            return "Nothing was running here (a run still waiting in the queue is taken off it). Ready."
        where = f"at step {last.step} of {last.total}" if last.total else "before the first step"
        took = max(0.0, (last.ended_at or t0) - t0)
        return f"**Stopped** {where} ({took:.1f} s after Stop). Ready for the next run."


def _session(request: gr.Request | None) -> str:
    return getattr(request, "session_hash", None) or "local"


# ---------------------------------------------------------------------------------------------------------------
# the run handler


def make_runner(tab: Tab, n_inputs: int):
    """The `<tab>_run` handler with exactly one parameter per input widget (Gradio maps them by position)."""

    def run0(request_json, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [], request, progress)

    def run1(request_json, input_1, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [input_1], request, progress)

    def run2(request_json, input_1, input_2, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [input_1, input_2], request, progress)

    fn = {0: run0, 1: run1, 2: run2}[n_inputs]
    fn.__name__ = f"{tab.spec.name}_run"
    fn.__doc__ = (f"Run the {tab.spec.title} tab: request_json is the settings JSON "
                  '({"backend", "prior", "settings", optional "compare"}); then its input files.')
    return fn


def _paths(value) -> list[str]:
    """Whatever an input widget gives (path, list of paths, (path, caption) pairs, FileData dicts) -> paths."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += _paths(v[0] if isinstance(v, (list, tuple)) else v)
        return out
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
        return [value] if value else []
    path = getattr(value, "name", value)
    return [str(path)]


def without_example_files(value, example_files: list[str]):
    """The files of a multi-file input after an upload, less those an example had put there."""
    keep = [p for p in _paths(value) if p not in set(example_files or [])]
    return keep or None, []


def inputs_for(tab: Tab, cls, values: list) -> list[str]:
    """The input files this backend takes, from the tab's slots."""
    want = cls.inputs
    if want == "none":
        return []
    by_kind = {slot.kind: _paths(v) for slot, v in zip(tab.spec.inputs, values)}
    base = want.rstrip("?")
    paths = by_kind.get(base)
    if paths is None and base == "images":
        paths = by_kind.get("image")
    if paths is None and base == "image":
        paths = by_kind.get("images")
    paths = paths or []
    if not paths and not want.endswith("?"):
        noun = {"image": "an image", "images": "the views (images or a zip)", "video": "a video",
                "svg": "an SVG file"}.get(base, "an input file")
        raise InputError(f"{cls.key} needs {noun}: upload one (or click an example) and press Run again")
    if base in ("image", "video", "svg") and len(paths) > 1:
        paths = paths[:1]
    return paths


def run_request(tab: Tab, request_json: str, input_values: list, request: gr.Request | None, progress):
    """Run the method (and the baseline when asked) and stream what happens to the tab's outputs."""
    spec, env, cfg = tab.spec, tab.env, tab.config
    out = _Outputs(tab)
    job = JOBS.start(_session(request), spec.name)
    t0 = time.perf_counter()
    outcome, it = "stopped", None  # "stopped" also covers Gradio closing this generator (Stop, a closed page)
    log.info("job %d (%s) started", job.id, spec.name)
    try:
        from backends.files import JobDir, cleanup_expired

        cleanup_expired(cfg.job_ttl_s, root=cfg.job_root)
        req = parse_request(request_json)
        sides = [("Method", req)] + ([("Baseline", req["compare"])] if req.get("compare") else [])
        plan = []
        for label, side in sides:
            cls = backends.get(side["backend"])
            if cls.task != spec.task:
                raise InputError(f"{cls.key} is not a {spec.title} backend; choose one of {', '.join(tab.keys)}")
            settings = dict(side.get("settings") or {})
            if "every" in {f.name for f in dataclasses.fields(cls.Settings)}:
                settings.setdefault("every", min(report_every(env.device), _default(cls, "every")))
            plan.append((label, cls, resolve_prior(cls, side.get("prior"), env), settings,
                         inputs_for(tab, cls, input_values)))
        job_dir = JobDir(cfg.job_root, prefix=safe_stem(spec.name).replace("-", "")[:16] or "job", keep=True)
        out.folder = job_dir.path
        yield out.reset(compare=len(plan) > 1)
        rows, cli_lines, details = [], [], {}
        for i, (label, cls, prior, settings, inputs) in enumerate(plan):
            side = "ab"[i]
            note = _prior_note(prior)
            loading = prior_loading_message(prior, env)
            yield out.status(f"**{label}** `{cls.key}`: {loading or 'preparing'}{note}...")
            warm_prior(prior, env)
            side_dir = job_dir.path / side
            side_dir.mkdir()
            lock = device_lock(env.device)
            it = drive(job, cls.key, settings, prior=prior, inputs=inputs, out_dir=side_dir,
                       device=env.run_device(), memory=env.memory_mode)
            result = None
            while True:
                acquire(lock, job)
                try:
                    item = next(it, None)
                finally:
                    lock.release()
                if item is None:
                    it = None
                    break
                if isinstance(item, Result):
                    result = item
                    continue
                job_dir.touch()
                progress((item.step, item.total), desc=f"{label}: step")
                yield out.progress(side, label, cls.key, item, note)
            if result is None:
                raise RunError(f"{cls.key} finished without a result")
            files = publish(result.files, job_dir.path, safe_stem(f"{label}-{cls.name}"))
            meta = result.metadata
            rows.append((label, meta))
            details[label.lower()] = meta
            cli_lines.append(f"# {label.lower()}\n" + cli_line(cls.key, prior, meta.get("settings", settings),
                                                                  _defaults(cls), inputs))
            yield out.result(side, label, cls.key, result, files, meta, job_dir.path)
        took = time.perf_counter() - t0
        status = f"**Done** in {took:.1f} s." + prior_sentence([m for _, m in rows])
        outcome = "done"
        yield out.final(status, report_markdown(rows), "\n".join(cli_lines), details)
    except Stopped:
        latency = time.monotonic() - job.stop_requested_at if job.stop_requested_at else 0.0
        where = f"at step {job.step} of {job.total}" if job.total else "before the first step"
        yield out.final(f"**Stopped** {where} ({latency:.1f} s after Stop). The next run starts fresh.",
                        None, None, None)
    except DistillError as err:
        outcome = "failed"
        kind = "Input problem" if isinstance(err, InputError) else "Run failed"
        gr.Warning(str(err))
        yield out.final(f"**{kind}:** {err}", None, None, None)
    except Exception as err:  # a bug: log it, show one line, never a traceback
        outcome = "failed"
        log.exception("run failed in tab %s", spec.name)
        msg = f"internal error ({type(err).__name__}: {str(err)[:200]}); the server log has the details"
        gr.Warning(msg)
        yield out.final(f"**Run failed:** {msg}", None, None, None)
    finally:
        if it is not None:
            it.close()  # ends the backend's loop now, not whenever the garbage collector gets to it
        free_memory()
        JOBS.finish(job, outcome)
        log.info("job %d (%s) %s after %.2f s at step %d/%d", job.id, spec.name, outcome, time.perf_counter() - t0,
                 job.step, job.total)


def prior_sentence(metas: list[dict]) -> str:
    """' Made with `icons`: <what it is>.' for the priors a run used (none for prior-less backends)."""
    seen = {}
    for m in metas:
        if m.get("prior"):
            seen.setdefault(m["prior"], (m.get("prior_description") or "", m.get("prior_is_tiny")))
    parts = [f"`{name}` ({TINY_NOTE})" if tiny else f"`{name}`: {desc}" for name, (desc, tiny) in seen.items()]
    return f" Made with {'; '.join(parts)}." if parts else ""


def _default(cls, name: str):
    return next(d["default"] for d in bsettings.describe(cls.Settings) if d["name"] == name)


def _defaults(cls) -> dict:
    return {d["name"]: d["default"] for d in bsettings.describe(cls.Settings)}


def _prior_note(prior: str | None) -> str:
    if prior and prior.startswith("tiny-"):
        return f" ({TINY_NOTE})"
    return ""


_warmed: set[tuple[str, str]] = set()
_warm_lock = threading.Lock()


def _needs_warming(prior: str | None, env: environment.Environment) -> bool:
    """Only the real models take long to load (and may download): they get their own status line first."""
    return bool(prior) and prior in {k["real"] for k in env.facts["kinds"].values()}


def prior_loading_message(prior: str | None, env: environment.Environment) -> str | None:
    """What the status says while a real prior loads for the first time (a download on a fresh machine)."""
    if not _needs_warming(prior, env) or (prior, str(env.run_device())) in _warmed:
        return None
    k = next(k for k in env.facts["kinds"].values() if k["real"] == prior)
    what = f"{k['real_label']} weights `{k['weights']['source']}`"
    if k["weights"]["state"] == "download":
        return f"downloading {what} from the Hugging Face Hub (first use only, a few GB)"
    return f"loading {what} (first use only, up to a minute)"


def warm_prior(prior: str | None, env: environment.Environment) -> None:
    """Load a real prior before the run (it stays cached), so a download or load shows as its own status line.
    The runner loads it with the same device and memory profile the run will ask for."""
    if not _needs_warming(prior, env):
        return
    key = (prior, str(env.run_device()))
    with _warm_lock:
        if key in _warmed:
            return
        preload(prior, env.run_device(), env.memory_mode)  # raises ModelUnavailableError with a how-to sentence
        _warmed.add(key)


def warm_in_background(env: environment.Environment) -> threading.Thread | None:
    """Start loading (downloading) the real priors this machine will use, without delaying start-up; the first run
    then waits for that load instead of starting its own. Failures are logged; the run reports them again."""
    wanted = [k["real"] for kind, k in env.facts["kinds"].items() if env.uses_real(kind)]
    if not wanted:
        return None

    def work():
        for name in wanted:
            try:
                warm_prior(name, env)
                log.info("prior %s ready", name)
            except Exception as err:  # noqa: BLE001 - reported to the person at their first run
                log.warning("could not preload prior %s: %s", name, err)

    thread = threading.Thread(target=work, name="preload-priors", daemon=True)
    thread.start()
    return thread


class _Outputs:
    """Builds the updates of a tab's outputs. Each yield sends only what changed; the last one sends every output,
    so an API client's final result is complete."""

    def __init__(self, tab: Tab):
        self.t = tab
        self.state: dict = {}
        self.folder: Path | None = None  # the job folder, once there is one: previews are written there

    def _image(self, arr):
        """A preview as a PNG file in the job folder, named by its content and written once, atomically.
        Gradio caches a numpy image by rewriting the same file on every send, and the final yield re-sends the
        preview: a browser still fetching the previous send then got a truncated, broken image."""
        if self.folder is None or not isinstance(arr, np.ndarray):
            return arr
        data = np.ascontiguousarray(arr)
        path = self.folder / "previews" / f"{hashlib.sha1(data.tobytes() + str(data.shape).encode()).hexdigest()[:20]}.png"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            Image.fromarray(data).save(tmp, format="PNG")
            os.replace(tmp, path)
        return str(path)

    def _set(self, upd: dict) -> dict:
        self.state.update(upd)
        return upd

    def reset(self, compare: bool) -> dict:
        t = self.t
        upd = {t.caption_a: "**Method**", t.preview_a: None, t.caption_b: "**Baseline**", t.preview_b: None,
               t.files_a: None, t.files_b: None, t.report: "", t.cli: "", t.details: None}
        for m in t.media_a + t.media_b:
            upd[m] = "" if isinstance(m, gr.HTML) else None
        return self._set(upd)

    def status(self, text: str) -> dict:
        return self._set({self.t.status: text})

    def progress(self, side: str, label: str, key: str, p: Progress, note: str) -> dict:
        loss = f" · loss {p.loss:.4g}" if p.loss is not None else ""
        metrics = "".join(f" · {k} {v:.3g}" for k, v in p.metrics.items() if k != "bad_steps"
                          and isinstance(v, (int, float)))
        text = f"**{label}** `{key}`: step **{p.step}/{p.total}**{loss}{metrics} · {p.elapsed:.1f} s{note}"
        if p.message:
            text += f"  \n{p.message}"
        upd = {self.t.status: text}
        if p.preview is not None:
            upd[self.t.preview_a if side == "a" else self.t.preview_b] = self._image(p.preview)
            upd[self.t.caption_a if side == "a" else self.t.caption_b] = (
                f"**{label}** `{key}` · step {p.step}/{p.total}{note}")
        return self._set(upd)

    def result(self, side: str, label: str, key: str, r: Result, files: dict[str, str], meta: dict,
               folder: Path) -> dict:
        t = self.t
        note = f" ({TINY_NOTE})" if meta.get("prior_is_tiny") else ""
        took = (meta.get("timings") or {}).get("total_s")
        caption = f"**{label}** `{key}`" + (f" · {took:.1f} s" if isinstance(took, (int, float)) else "") + note
        caption_w, preview, media, file_w = ((t.caption_a, t.preview_a, t.media_a, t.files_a) if side == "a"
                                             else (t.caption_b, t.preview_b, t.media_b, t.files_b))
        upd = {file_w: list(files.values()), caption_w: caption}
        if r.preview is not None:
            upd[preview] = self._image(r.preview)
        for kind, widget in zip(t.spec.media, media):
            upd[widget] = media_value(kind, files, folder)
        return self._set(upd)

    def final(self, status: str, report: str | None, cli: str | None, details: dict | None) -> dict:
        t = self.t
        upd = {t.status: status}
        if report is not None:
            upd.update({t.report: report, t.cli: cli, t.details: details})
        self._set(upd)
        return {c: self.state.get(c, gr.update()) for c in t.outputs}


# ---------------------------------------------------------------------------------------------------------------
# page-level pieces


CSS = """
.run-status {min-height: 2.6em; padding: 6px 10px; border-radius: 8px; background: var(--block-background-fill);}
.tab-intro p {margin: 0.2em 0;}
.progress-slot {min-height: 44px;}
#env-banner {border-left: 4px solid #e0a100; padding: 4px 12px; background: var(--block-background-fill);}
#env-banner.ok {border-left-color: #2e9d4c;}
.svg-result {display: flex; flex-direction: column; align-items: center; margin: 0; padding: 8px;}
.svg-result img {width: 100%; max-width: 320px; height: auto; background: white; border: 1px solid #ddd;}
.svg-result figcaption {font-size: 0.8em; opacity: 0.7;}
.preview img {width: 100%; height: 100%; object-fit: contain;}
#image-preview-a img, #image-preview-b img {image-rendering: pixelated;}
"""


def banner_widget(env: environment.Environment):
    from backends.registry import plugin_errors

    ok = all(env.uses_real(k) for k in env.facts["kinds"])
    text = environment.banner(env) + "".join(f"\n\nPlugin `{n}` failed to load: {e}" for n, e in plugin_errors.items())
    return gr.Markdown(text, elem_id="env-banner", elem_classes=["ok"] if ok else [])
