"""One tab: what it is (`TabSpec`, with its `InputSlot`s and `Example`s) and its widgets and events (`Tab`).
A known task's tab module declares a TabSpec; any other registered task (a plugin's) gets `generic_spec(task)`.

Top to bottom, a tab is laid out in the order a visitor acts: the prompt and input (an input only some methods
use is shown only with them), method and prior, Run and Stop with the examples beside them, then the settings
(the advanced ones folded). The results column stays in view while a run goes on.
"""
from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import gradio as gr

import backends
from backends import media, settings as bsettings
from backends.errors import InputError
from backends.files import JobDir
from backends.timing import SOURCES, duration
from backends.types import INPUT_KINDS

from . import environment
from .jobs import JOBS, safe_stem, session_of
from .requests import baseline_settings, paths_of, resolve_prior, ui_default, without_example_files
from .runs import make_runner
from .widgets import NO_MODEL, field_info, field_widget, media_widget, ui_fields, viewer, viewer_update

STOP_WAIT_S = 10.0  # how long the Stop handler waits for the run to end before answering
UPLOAD_NOUNS = {"image": "an image (PNG, JPEG, WebP, BMP or GIF)", "images": "images or one .zip of images",
                "video": "a video (MP4, WebM)", "svg": "an SVG file",
                "mesh": "a textured mesh (.glb, .gltf, or a .zip of .obj, .mtl and texture)"}
MESH_TYPES = [".glb", ".gltf", ".zip"]
# Scrolls the tab's status line to the top of the window when it is out of view (argument: its element id).
SHOW_STATUS_JS = """() => {
  const el = document.getElementById('%s');
  if (!el) return;
  const box = el.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({block: 'start'});
}"""


def guard_upload(widget, slot: "InputSlot"):
    """Make Gradio's own preprocessing of an upload (gr.Image decodes it before any handler runs) fail with a
    sentence that names the input and says what it takes, instead of the client's generic "Error"."""
    inner = widget.preprocess

    def preprocess(payload):
        try:
            return inner(payload)
        except gr.Error:
            raise
        except Exception:  # noqa: BLE001 - any decoder failure: the file is not what the slot takes
            raise gr.Error(f"{slot.label}: {_why_unreadable(payload, slot)}", print_exception=False) from None

    widget.preprocess = preprocess
    return widget


def _why_unreadable(payload, slot: "InputSlot") -> str:
    """The sentence for an upload Gradio could not decode: the image validator's, which says what is wrong (a
    declared 100,000 x 100,000 pixels, not an image, empty), else one that says what the slot takes."""
    path = getattr(payload, "path", None)
    if slot.kind == "image" and path:
        try:
            media.image(path)
        except InputError as err:
            return str(err)
        except Exception:  # noqa: BLE001 - the validator's own failure: fall back to the plain sentence
            pass
    name = getattr(payload, "orig_name", None) or "the uploaded file"
    return f"{name!s:.80} could not be read; upload {UPLOAD_NOUNS.get(slot.kind, 'a file of the kind asked for')}."


@dataclass
class InputSlot:
    """One input widget of a tab. kind: what backends call it ("image", "images", "video", "svg", "mesh").
    viewer: for a 3D upload, the file Gradio's 3D viewer shows of it, fn(uploaded path, job root) -> path (an
    InputError leaves the viewer hidden: Run says what is wrong)."""

    kind: str
    label: str
    make: Callable[[], gr.components.Component]
    viewer: Callable[[str, str | None], str] | None = None


@dataclass
class Example:
    """One row of gr.Examples: backend, prompt, input files by slot kind, settings for that backend.

    shows: what its label promises the result shows, checked by the browser test with the project's judges
    (`benchmarks.judges`): the object an SVG draws ("fox"), the edit an edited input shows ("winter"), or "input"
    for a result that must look like its input (a vectorized image, a reconstructed target)."""

    label: str
    backend: str
    prompt: str = ""
    inputs: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    compare: bool = False
    compare_settings: dict[str, Any] = field(default_factory=dict)
    shows: str = ""

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
    threads: int | None = None  # --threads: every run's CPU threads (None: chosen per run)

    @property
    def cpu_slots(self) -> int:
        """Jobs that compute at once: --concurrency on a CPU (each on its share of the cores), one on a GPU."""
        return max(1, self.concurrency) if str(self.env.device) == "cpu" else 1


class Tab:
    """Builds one tab's widgets and events inside the current gr.Blocks and holds references for tests."""

    def __init__(self, spec: TabSpec, config: RunConfig):
        self.spec, self.config, self.env = spec, config, config.env
        names = backends.available().get(spec.task, [])
        self.keys = [f"{spec.task}/{n}" for n in names]
        self.classes = {k: backends.get(k) for k in self.keys}
        self.events: dict[str, Any] = {}
        self.panel_fields: list[tuple[str, str, Any]] = []  # (backend key, field name, widget)
        # per session, a refused prompt's closest known ones (InputError.suggestions), until the next run
        self.offered: dict[str, tuple[str, ...]] = {}

    # -- defaults
    def _pick(self, prefs: tuple[str, ...], avoid: str | None = None) -> str | None:
        for name in prefs:
            key = f"{self.spec.task}/{name}"
            if key in self.classes and key != avoid:
                return key
        rest = [k for k in self.keys if k != avoid]
        return rest[0] if rest else (self.keys[0] if self.keys else None)

    def prior_choices(self) -> list[tuple[str, str]]:
        kinds = {c.spec.prior for c in self.classes.values() if c.spec.prior != "none"}
        out = [(f"auto ({', '.join(self.env.prior_for(k) for k in sorted(kinds))})" if kinds else "auto", "auto")]
        for kind in sorted(kinds):
            for name in self.env.prior_names(kind):
                if any(self._prior_fits(key, name) for key, c in self.classes.items() if c.spec.prior == kind):
                    out.append((name, name))
        return out

    def _method_note(self, key: str | None) -> str:
        cls = self.classes.get(key)
        return f"`{key.split('/', 1)[1]}`: {cls.description}" if cls is not None and cls.description else ""

    def has_field(self, name: str) -> bool:
        return any(name in {f.name for f in dataclasses.fields(c.Settings)} for c in self.classes.values())

    def slot_users(self, slot: InputSlot) -> set[str]:
        """The backends of this tab that read input slot `slot` (an "image" slot also serves "images" and back)."""
        return {k for k, c in self.classes.items() if c.spec.inputs.accepts(slot.kind)}

    def slot_visible(self, slot: InputSlot, key: str | None) -> bool:
        users = self.slot_users(slot)
        return not users or key in users

    def baseline_for(self, key: str | None, current: str | None = None) -> str | None:
        """The baseline beside method `key`: `current` if it takes the same kind of input, else the tab's first
        preferred baseline that does (views3d/csd-edit-mesh: per-view-mesh), else any other backend that does."""
        if key not in self.classes:
            return current or self._pick(self.spec.baseline, avoid=key)
        kind = self.classes[key].spec.inputs.kind
        fits = [k for k in self.keys if k != key and self.classes[k].spec.inputs.kind == kind]
        if current in fits:
            return current
        preferred = [f"{self.spec.task}/{name}" for name in self.spec.baseline]
        return next((k for k in preferred if k in fits), fits[0] if fits else self._pick(self.spec.baseline,
                                                                                           avoid=key))

    def method_changed(self, key: str, current_baseline: str | None, *uploads) -> list:
        """The page after the Method menu changes: that method's settings panel and note, the inputs it reads
        (a 3D viewer shows with its input, once something is uploaded), the baseline that takes the same input."""
        shown = [self.slot_visible(slot, key) for slot in self.spec.inputs]
        return ([gr.update(visible=k == key) for k in self.keys] + [self._method_note(key)]
                + [gr.update(visible=v) for v in shown]
                + [gr.update(elem_classes=[] if v and paths_of(up) else [NO_MODEL])
                   for v, up, view in zip(shown, uploads, self.input_viewers) if view is not None]
                + [gr.update(value=self.baseline_for(key, current_baseline))])

    def show_upload(self, slot: InputSlot, value) -> dict:
        """The 3D viewer of an upload: the file `slot.viewer` makes of it, or hidden (no file, or one Run refuses)."""
        paths = paths_of(value)
        if not paths:
            return viewer_update(None)
        try:
            return viewer_update(slot.viewer(paths[0], self.config.job_root),
                                 JobDir(self.config.job_root, prefix="view").path)
        except InputError:
            return viewer_update(None)

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
        self.baseline_key = self.baseline_for(self.method_key)
        with gr.Row(equal_height=False, elem_classes=["tab-body"]):
            with gr.Column(scale=2, min_width=320):
                # 1. what to give: the words first, then the file(s); a slot only some methods read shows with them
                self.prompt = (gr.Textbox(label=s.prompt_label, lines=2, elem_id=f"{s.name}-prompt")
                               if self.has_field("prompt") else None)
                # a refused prompt's closest known ones, one click away (filled in by a run's InputError)
                self.suggest = (gr.Radio(choices=[], value=None, label="Did you mean (click one to use it)",
                                         visible=False, elem_id=f"{s.name}-suggest")
                                if self.prompt is not None else None)
                self.input_widgets, self.input_viewers = [], []
                for slot in s.inputs:
                    widget = guard_upload(slot.make(), slot)
                    widget.visible = self.slot_visible(slot, self.method_key)
                    self.input_widgets.append(widget)
                    self.input_viewers.append(None if slot.viewer is None else viewer(
                        f"{slot.label}: your upload", f"{s.name}-{slot.kind}-view", height=220))
                # 2. method and prior
                with gr.Row():
                    self.backend = gr.Dropdown(
                        choices=[(f"{k.split('/', 1)[1]}", k) for k in self.keys], value=self.method_key,
                        label="Method", elem_id=f"{s.name}-backend")
                    self.prior = gr.Dropdown(choices=self.prior_choices(), value=s.default_prior, label="Prior",
                                             elem_id=f"{s.name}-prior")
                # 3. Run and Stop, the examples right below them
                with gr.Row(elem_classes=["run-row"]):
                    self.run_btn = gr.Button("Run", variant="primary", elem_id=f"{s.name}-run", min_width=120)
                    self.stop_btn = gr.Button("Stop", variant="stop", elem_id=f"{s.name}-stop", min_width=120)
                # how long Run takes at these settings on this machine: updated as they change, and worked out
                # again for each page that opens (a value, not a function, is fixed when the app starts, and a fresh
                # page showed that figure while its first change of a field drew one from this machine's runs)
                self.expect = gr.Markdown(lambda: self.expect_text(self.method_key), elem_id=f"{s.name}-expect",
                                          elem_classes=["expect"])
                # what the chosen method does: below Run, so the description never pushes Run below the fold
                self.method_note = gr.Markdown(self._method_note(self.method_key), elem_id=f"{s.name}-method-note",
                                               elem_classes=["method-note"])
                # the examples sit here; they are made once the widgets they set exist (at the end of build)
                self.examples_slot = gr.Column(min_width=0)
                self._vocabulary()
                # 4. the settings: the everyday ones, then the advanced ones folded
                with gr.Accordion("Settings", open=True, elem_id=f"{s.name}-settings"):
                    self.seed = gr.Number(value=0, precision=0, minimum=0, label="Seed (shared by method and baseline)",
                                          elem_id=f"{s.name}-seed")
                    self.panels = {}
                    for key, cls in self.classes.items():
                        with gr.Group(visible=key == self.method_key) as panel:
                            basic = [d for d in ui_fields(cls) if not d["advanced"]]
                            adv = [d for d in ui_fields(cls) if d["advanced"]]
                            stem = f"{s.name}-{safe_stem(key.split('/', 1)[1])}"
                            infos = self.field_infos(key, s.default_prior)
                            for d in basic:
                                self.panel_fields.append((key, d["name"], field_widget(
                                    d, f"{stem}-{d['name']}", ui_default(d, self.env.device), infos[d["name"]])))
                            if adv:
                                with gr.Accordion(f"Advanced settings: {key.split('/', 1)[1]}", open=False):
                                    for d in adv:
                                        self.panel_fields.append((key, d["name"], field_widget(
                                            d, f"{stem}-{d['name']}", ui_default(d, self.env.device),
                                            infos[d["name"]])))
                        self.panels[key] = panel
                with gr.Accordion("Compare with a baseline", open=False):
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
            with gr.Column(scale=3, min_width=360, elem_classes=["results-col"]):
                self.status = gr.Markdown("Ready.", elem_id=f"{s.name}-status", elem_classes=["run-status"])
                # Gradio draws the progress bar and the queue position over this (empty) slot, not over the status.
                self.progress_slot = gr.HTML("", elem_id=f"{s.name}-progress", elem_classes=["progress-slot"])
                with gr.Row(equal_height=False):
                    with gr.Column(min_width=240):
                        self.caption_a = gr.Markdown("**Method**", elem_id=f"{s.name}-caption-a")
                        self.preview_a = gr.Image(label="Method preview", show_label=False, interactive=False,
                                                  elem_id=f"{s.name}-preview-a", elem_classes=["preview"],
                                                  height=300, format="png")
                        self.media_a = [media_widget(k, f"Method: {s.media_labels.get(k, k)}", f"{s.name}-{k}-a")
                                        for k in s.media]
                        self.files_a = gr.File(label="Method files", file_count="multiple", interactive=False,
                                               elem_id=f"{s.name}-files-a", elem_classes=["files"])
                    with gr.Column(visible=self.compare.value, min_width=240) as self.col_b:
                        self.caption_b = gr.Markdown("**Baseline**", elem_id=f"{s.name}-caption-b")
                        self.preview_b = gr.Image(label="Baseline preview", show_label=False, interactive=False,
                                                  elem_id=f"{s.name}-preview-b", elem_classes=["preview"],
                                                  height=300, format="png")
                        self.media_b = [media_widget(k, f"Baseline: {s.media_labels.get(k, k)}",
                                                     f"{s.name}-{k}-b") for k in s.media]
                        self.files_b = gr.File(label="Baseline files", file_count="multiple", interactive=False,
                                               elem_id=f"{s.name}-files-b", elem_classes=["files"])
                self.notices = gr.Markdown(elem_id=f"{s.name}-notices", elem_classes=["run-notices"])
                self.report = gr.Markdown(elem_id=f"{s.name}-report")
                with gr.Accordion("Copy settings: JSON for the API, command line for the CLI", open=False):
                    self.request = gr.Code(language="json", label="Settings JSON (what Run sends; paste one to repeat "
                                           "a run)", lines=6, interactive=True, elem_id=f"{s.name}-request")
                    self.run_json_btn = gr.Button("Run this JSON", size="sm", elem_id=f"{s.name}-run-json")
                    self.cli = gr.Code(language="shell", label="Repeat with the CLI", lines=2, interactive=False,
                                       elem_id=f"{s.name}-cli")
                    self.details = gr.JSON(label="Run details (result.json)", elem_id=f"{s.name}-details")
        with self.examples_slot:
            self._examples()
        self._wire()

    def _examples(self) -> None:
        """One click on an example sets every value a run reads in one update: the method, prompt and inputs, the
        compare switch, baseline and its JSON, and each field of the settings panels the examples use (the
        example's backend at its settings, the rest at their defaults). A second, chained update left a window in
        which Run on a busy server ran the defaults without the baseline."""
        rows = [e for e in self.spec.examples() if f"{self.spec.task}/{e.backend}" in self.classes and e.available()]
        self.example_rows = rows
        if not rows:
            return
        comps = [self.backend] + ([self.prompt] if self.prompt is not None else []) + self.input_widgets
        shown = list(range(len(comps)))  # what the examples table holds; the rest travels with each row
        comps += [self.compare, self.compare_backend, self.compare_json]
        comps += [w for key, _, w in self.example_fields()]
        self.examples = gr.Examples([self.example_values(e) for e in rows], comps, visible_columns=shown,
                                    label="Examples (one click loads them; then press Run)",
                                    example_labels=[e.label for e in rows], examples_per_page=8)

    def example_values(self, e: Example) -> list:
        """The values one example row gives the components of `_examples`, in their order."""
        key = f"{self.spec.task}/{e.backend}"
        values = [key] + ([e.prompt] if self.prompt is not None else [])
        values += [e.inputs.get(slot.kind) for slot in self.spec.inputs]
        values += [bool(e.compare), self.baseline_for(key), json.dumps(e.compare_settings or {})]
        for panel, name, _ in self.example_fields():
            d = next(d for d in ui_fields(self.classes[panel]) if d["name"] == name)
            default = ui_default(d, self.env.device)
            values.append(e.settings.get(name, default) if panel == key else default)
        return values

    def example_fields(self) -> list[tuple[str, str, Any]]:
        """The panel fields an example sets: those of the backends the examples use."""
        used = {f"{self.spec.task}/{e.backend}" for e in self.example_rows}
        return [f for f in self.panel_fields if f[0] in used]

    def known_prompts(self) -> tuple[str, tuple[str, ...]] | None:
        """(prior, the prompts it accepts) when the prior "auto" runs here for this tab has a closed vocabulary."""
        if self.prompt is None:
            return None
        for kind in sorted({c.spec.prior for c in self.classes.values() if c.spec.prior != "none"}):
            name = self.env.prior_for(kind)
            if self.env.facts["priors"][name]["vocabulary"]:
                return name, backends.vocabulary(name)
        return None

    def _vocabulary(self) -> None:
        """A folded, searchable list of what the offline prior knows; picking one puts it in the prompt."""
        self.vocabulary = None
        known = self.known_prompts()
        if known is None:
            return
        name, words = known
        with gr.Accordion(f"What `{name}` knows: {len(words):,} prompts it accepts", open=False,
                          elem_id=f"{self.spec.name}-vocabulary-box"):
            self.vocabulary = gr.Dropdown(choices=list(words), value=None, filterable=True,
                                          label="Type to search; pick one to use it as the prompt",
                                          elem_id=f"{self.spec.name}-vocabulary")

    # -- events
    def _wire(self) -> None:
        s = self.spec
        panel_list = [self.panels[k] for k in self.keys]
        viewers = [v for v in self.input_viewers if v is not None]
        self.backend.change(self.method_changed, [self.backend, self.compare_backend] + self.input_widgets,
                            panel_list + [self.method_note] + self.input_widgets + viewers + [self.compare_backend],
                            api_visibility="private", queue=False)
        for slot, widget, shows in zip(s.inputs, self.input_widgets, self.input_viewers):
            if shows is not None:
                widget.change(lambda v, slot=slot: self.show_upload(slot, v), widget, shows,
                              api_visibility="private", show_progress="hidden")
        self.compare.change(lambda on: gr.update(visible=on), self.compare, self.col_b, api_visibility="private",
                            queue=False)
        widgets = [w for _, _, w in self.panel_fields]
        # A multi-file input keeps what it holds and adds an upload to it: after an example, a person's own upload
        # must replace the example's files, not join them.
        for slot, widget in zip(s.inputs, self.input_widgets):
            if isinstance(widget, gr.File) and widget.file_count == "multiple":
                from_example = gr.State([])
                if self.example_rows:
                    self.examples.load_input_event.then(lambda v: paths_of(v), widget, from_example,
                                                        api_visibility="private", queue=False)
                widget.upload(without_example_files, [widget, from_example], [widget, from_example],
                              api_visibility="private", queue=False)
        if self.suggest is not None:
            self.suggest.input(lambda v: (v, gr.update(visible=False, choices=[], value=None)), self.suggest,
                               [self.prompt, self.suggest], api_visibility="private", queue=False)
        if self.vocabulary is not None:
            self.vocabulary.input(lambda v: v or gr.update(), self.vocabulary, self.prompt, api_visibility="private",
                                  queue=False)
        self.prior.change(self.field_info_updates, self.prior, [w for _, _, w in self.panel_fields],
                          api_visibility="private", queue=False, show_progress="hidden")
        collect_inputs = [self.backend, self.prior, self.seed, self.compare, self.compare_backend, self.compare_json]
        collect_inputs += [self.prompt] if self.prompt is not None else []
        collect_inputs += widgets
        outputs = [self.status, self.caption_a, self.preview_a, self.caption_b, self.preview_b]
        outputs += self.media_a + self.media_b
        # notices last: API clients that read the outputs by position keep their indices
        outputs += [self.files_a, self.files_b, self.report, self.cli, self.details, self.notices]
        self.outputs = outputs
        # Widgets -> request JSON is UI plumbing (private); the API's way in is `<tab>_defaults` then `<tab>_run`.
        # Run stays disabled while its run goes: a second click would otherwise be dropped without a word (a
        # click's trigger is ignored while its event is pending). Stop, or the run's end, enables it again.
        collect = self.run_btn.click(self.start, collect_inputs, [self.request, self.status, self.run_btn],
                                     api_visibility="private", concurrency_id="ui", concurrency_limit=None,
                                     show_progress="hidden")
        # In the stacked layout of a narrow window the status sits a screen or more below Run: bring it (and the
        # preview under it) into view, so the press is seen to start something.
        self.run_btn.click(None, None, None, js=SHOW_STATUS_JS % f"{s.name}-status")
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
        # The expected time follows every field that changes it, and is measured here once a run has ended.
        expect_inputs = collect_inputs + self.input_widgets
        for widget in expect_inputs:
            widget.change(self.expect_text, expect_inputs, self.expect, api_visibility="private", queue=False,
                          show_progress="hidden")
        for event in ("run", "run_json"):
            self.events[event].then(self.expect_text, expect_inputs, self.expect, api_visibility="private",
                                    queue=False, show_progress="hidden")
            # the choices are not an output of `<tab>_run`: API clients read its outputs by position
            if self.suggest is not None:
                self.events[event].then(self.offer, None, self.suggest, api_visibility="private", queue=False,
                                        show_progress="hidden")
        self.events["stop"] = self.stop_btn.click(self.stop, None, self.status, api_name=f"{s.name}_stop",
                                                  concurrency_id="ui", concurrency_limit=None,
                                                  cancels=[self.events["run"], self.events["run_json"]],
                                                  show_progress="hidden")
        for event in ("run", "stop"):  # a cancelled run's own .then does not fire: Stop enables Run too
            self.events[event].then(lambda: gr.update(interactive=True), None, self.run_btn,
                                    api_visibility="private", queue=False, show_progress="hidden")

    def defaults(self, backend: str = "") -> str:
        """A request JSON with every setting of `backend` at its default; compare with the baseline left out."""
        key = backend or self.method_key
        if key not in self.classes:
            raise gr.Error(f"Unknown backend {key!r} for this tab; choose one of {', '.join(self.keys)}.",
                           print_exception=False)
        settings = {d["name"]: ui_default(d, self.env.device) for d in bsettings.describe(self.classes[key].Settings)}
        return json.dumps({"backend": key, "prior": "auto", "settings": settings, "compare": None}, indent=1,
                          default=str)

    def expect_text(self, backend_key, prior="auto", seed=0, compare=False, compare_key=None, compare_json="{}",
                    *rest) -> str:
        """The line beside Run: how long a run of the fields' current values takes here (`backends.expect`).
        rest: the prompt (if the tab has one), the settings widgets' values, then the input widgets' values."""
        n = len(self.panel_fields) + (self.prompt is not None)
        fields, files = rest[:n], rest[n:]
        try:
            if fields:
                req = json.loads(self.collect(backend_key, prior, seed, compare, compare_key, compare_json, *fields)[0])
            else:  # the page's first draw: the method at its defaults
                req = json.loads(self.defaults(backend_key))
        except (gr.Error, InputError):
            return ""  # Run says what is wrong with the fields
        sides = [req] + ([req["compare"]] if req.get("compare") else [])
        seconds, sources, example_sized = [], set(), False
        for side in sides:
            users = [paths_of(v) for slot, v in zip(self.spec.inputs, files) if side["backend"] in self.slot_users(slot)]
            paths = [p for group in users for p in group]
            example_sized |= self.classes[side["backend"]].spec.inputs.min > 0 and not paths
            try:
                found = backends.expect(side["backend"], side["settings"], prior=side.get("prior") or "auto",
                                        inputs=paths, device=self.env.run_device())
            except InputError:
                return ""
            if found is None:
                return ("Expected time: not measured yet for these settings here; the status line shows the time left "
                        "once the run starts.")
            seconds.append(found.seconds)
            sources.add(found.source)
        total = f"about {duration(sum(seconds))}" + (f" (method {duration(seconds[0])}, baseline "
                                                      f"{duration(seconds[1])})" if len(seconds) > 1 else "")
        basis = " and ".join(SOURCES[k] for k in sorted(sources))
        sized = " for an input the size of the example's" if example_sized else ""
        return f"Expected time: **{total}**{sized} ({basis})."

    def field_infos(self, key: str, prior: str = "auto") -> dict[str, str]:
        """{field name: its help line} for backend `key` with `prior` picked: an "auto" field's line says what it
        becomes in a run here (`backends.resolved_settings`), or only what it is when the run would refuse."""
        cls = self.classes[key]
        auto, prior_name = {}, None
        try:
            prior_name = resolve_prior(cls, prior, self.env)
            auto = backends.resolved_settings(key, prior=prior_name, device=self.env.run_device())
        except InputError:
            pass
        return {d["name"]: field_info(d, auto.get(d["name"]), prior_name) if auto else d["help"]
                for d in ui_fields(cls)}

    def field_info_updates(self, prior: str) -> list:
        """The help lines of every panel's fields, once the person picks another prior."""
        infos = {key: self.field_infos(key, prior) for key in self.classes}
        return [gr.update(info=infos[key][name]) for key, name, _ in self.panel_fields]

    def start(self, *fields):
        """Run's first step: the request JSON and the waiting line (`collect`), with Run disabled until the run
        ends. A field that is wrong raises before Run is touched, so it stays enabled."""
        return *self.collect(*fields), gr.update(interactive=False)

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

    def offer(self, request: gr.Request):
        """The "Did you mean" choices after a run: the refused prompt's closest known ones, or hidden."""
        prompts = self.offered.get(session_of(request), ())
        return gr.update(visible=bool(prompts), choices=list(prompts), value=None)

    def stop(self, request: gr.Request):
        """Stop this session's run in this tab (Gradio also cancels the queued or streaming event) and report when
        it has really ended: the optimization stops at its next progress report and the device is free."""
        t0 = time.monotonic()
        session = session_of(request)
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





# ---------------------------------------------------------------------------------------------------------------
# a tab for any registered task (a plugin's new task included)

def input_slot(kind: str, elem_id: str) -> InputSlot:
    """The upload widget for one input kind, as backends name them ("image", "images", "video", "svg", "mesh")."""
    makers = {
        "image": lambda: gr.Image(type="filepath", label="Image", sources=["upload"], height=200, elem_id=elem_id),
        "images": lambda: gr.File(label="Images (several, or one .zip)", file_count="multiple",
                                  file_types=["image", ".zip"], height=160, elem_id=elem_id),
        "video": lambda: gr.Video(label="Video", sources=["upload"], height=200, elem_id=elem_id),
        "svg": lambda: gr.File(label="SVG file", file_types=[".svg"], height=120, elem_id=elem_id),
        "mesh": lambda: gr.File(label="Textured mesh (.glb, .gltf, or a zipped .obj)", file_types=MESH_TYPES,
                                height=120, elem_id=elem_id),
    }
    if kind not in makers:
        raise ValueError(f"unknown input kind {kind!r}; backends take one of {', '.join(INPUT_KINDS)}")
    return InputSlot(kind, kind, makers[kind])


def generic_spec(task: str) -> TabSpec:
    """A TabSpec for a task no tab module knows: titled by the task, one input slot per input kind its backends
    take ("image" and "images" share one multi-file slot when both are asked for)."""
    name = safe_stem(task) or "task"
    kinds = set()
    for backend in backends.available().get(task, []):
        kind = backends.get(f"{task}/{backend}").spec.inputs.kind
        if kind != "none":
            kinds.add(kind)
    if {"image", "images"} <= kinds:
        kinds.discard("image")
    title = task.replace("_", " ").replace("-", " ").capitalize()
    slots = [input_slot(k, f"{name}-input" if i == 0 else f"{name}-input-{i + 1}")
             for i, k in enumerate(sorted(kinds, key=INPUT_KINDS.index))][:2]  # the run handler takes up to 2
    return TabSpec(name=name, task=task, title=title, inputs=slots,
                   intro=f"**{title}.** Backends registered under the task `{task}` (installed as a plugin).")


def tab_specs(known: list[TabSpec]) -> list[TabSpec]:
    """One spec per registered task: the known tabs first (in their order, only when their task has backends or is
    built in), then every other task, by name."""
    tasks = backends.available()
    seen = {s.task for s in known}
    return list(known) + [generic_spec(t) for t in sorted(tasks) if t not in seen]
