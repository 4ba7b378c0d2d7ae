"""One tab: what it is (`TabSpec`, with its `InputSlot`s and `demo.examples.Example`s) and its widgets (`Tab`).
A known task's tab module declares a TabSpec; any other registered task (a plugin's) gets `generic_spec(task)`.
A built tab's other concerns have modules of their own: its examples table (`examples`), the request JSON
(`request_form`), the expected time (`expected_time`), its events (`wiring`), Stop (`stop`) and a run (`runs`).

Top to bottom, a tab is laid out in the order a visitor acts: the prompt and input (an input only some methods
use is shown only with them), method and prior, Run and Stop with the examples beside them, then the settings
(the advanced ones folded). The results column stays in view while a run goes on.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable

import gradio as gr

import backends
from backends.inputs import media
from backends.core.errors import InputError
from backends.core.files import JobDir
from backends.core.types import INPUT_KINDS

from . import environment
from .examples import Example, TabExamples
from .expected_time import ExpectedTime
from .jobs import safe_stem, session_of
from .request_form import RequestForm
from .requests import paths_of, resolve_prior, ui_default
from .stop import Stopper
from .widgets import NO_MODEL, field_info, field_widget, media_widget, ui_fields, viewer, viewer_update
from .wiring import wire

UPLOAD_NOUNS = {"image": "an image (PNG, JPEG, WebP, BMP or GIF)", "images": "images or one .zip of images",
                "video": "a video (MP4, WebM)", "svg": "an SVG file",
                "mesh": "a textured mesh (.glb, .gltf, or a .zip of .obj, .mtl and texture)"}
MESH_TYPES = [".glb", ".gltf", ".zip"]


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
    """Builds one tab's widgets inside the current gr.Blocks and holds references to them (for its parts and the
    tests), with what its menus offer and what a pick changes. Its other concerns are parts of their own:
    `examples` (`demo.examples.TabExamples`), `form` (the request JSON, `demo.request_form.RequestForm`),
    `expected` (the time beside Run, `demo.expected_time.ExpectedTime`), `stopper` (Stop, `demo.stop.Stopper`);
    `demo.wiring.wire` connects the events, and `demo.runs` runs a press of Run."""

    def __init__(self, spec: TabSpec, config: RunConfig):
        self.spec, self.config, self.env = spec, config, config.env
        names = backends.available().get(spec.task, [])
        self.keys = [f"{spec.task}/{n}" for n in names]
        self.classes = {k: backends.get(k) for k in self.keys}
        self.events: dict[str, Any] = {}
        self.panel_fields: list[tuple[str, str, Any]] = []  # (backend key, field name, widget)
        # per session, a refused prompt's closest known ones (InputError.suggestions), until the next run
        self.offered: dict[str, tuple[str, ...]] = {}
        self.form = RequestForm(self)
        self.expected = ExpectedTime(self)
        self.stopper = Stopper(spec.name)

    # -- what the menus offer, and what a pick changes
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
                if any(self.prior_fits(key, name) for key, c in self.classes.items() if c.spec.prior == kind):
                    out.append((name, name))
        return out

    def prior_fits(self, key: str, prior: str) -> bool:
        """Whether backend `key` runs on the prior named `prior` (`backends.core.runner.check_prior`)."""
        from backends.core.runner import check_prior

        try:
            check_prior(self.classes[key], prior)
            return True
        except InputError:
            return False

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

    def offer(self, request: gr.Request):
        """The "Did you mean" choices after a run: the refused prompt's closest known ones, or hidden."""
        prompts = self.offered.get(session_of(request), ())
        return gr.update(visible=bool(prompts), choices=list(prompts), value=None)

    def known_prompts(self) -> tuple[str, tuple[str, ...]] | None:
        """(prior, the prompts it accepts) when the prior "auto" runs here for this tab has a closed vocabulary."""
        if self.prompt is None:
            return None
        for kind in sorted({c.spec.prior for c in self.classes.values() if c.spec.prior != "none"}):
            name = self.env.prior_for(kind)
            if self.env.facts["priors"][name]["vocabulary"]:
                return name, backends.vocabulary(name)
        return None

    # -- layout, top to bottom
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
        self.examples = TabExamples(self)
        with gr.Row(equal_height=False, elem_classes=["tab-body"]):
            with gr.Column(scale=2, min_width=320):
                self._build_inputs()
                self._build_method_and_run()
                self._build_settings()
                self._build_compare()
            with gr.Column(scale=3, min_width=360, elem_classes=["results-col"]):
                self._build_results()
        with self.examples_slot:
            self.examples.build()
        wire(self)

    def _build_inputs(self) -> None:
        """1. what to give: the words first, then the file(s); a slot only some methods read shows with them."""
        s = self.spec
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

    def _build_method_and_run(self) -> None:
        """2. method and prior; 3. Run and Stop, the expected time, the method's note, the examples' slot and the
        prior's vocabulary right below them."""
        s = self.spec
        with gr.Row():
            self.backend = gr.Dropdown(
                choices=[(f"{k.split('/', 1)[1]}", k) for k in self.keys], value=self.method_key,
                label="Method", elem_id=f"{s.name}-backend")
            self.prior = gr.Dropdown(choices=self.prior_choices(), value=s.default_prior, label="Prior",
                                     elem_id=f"{s.name}-prior")
        with gr.Row(elem_classes=["run-row"]):
            self.run_btn = gr.Button("Run", variant="primary", elem_id=f"{s.name}-run", min_width=120)
            self.stop_btn = gr.Button("Stop", variant="stop", elem_id=f"{s.name}-stop", min_width=120)
        # how long Run takes at these settings on this machine: updated as they change, and worked out
        # again for each page that opens (a value, not a function, is fixed when the app starts, and a fresh
        # page showed that figure while its first change of a field drew one from this machine's runs)
        self.expect = gr.Markdown(lambda: self.expected.expect_text(self.method_key), elem_id=f"{s.name}-expect",
                                  elem_classes=["expect"])
        # what the chosen method does: below Run, so the description never pushes Run below the fold
        self.method_note = gr.Markdown(self._method_note(self.method_key), elem_id=f"{s.name}-method-note",
                                       elem_classes=["method-note"])
        # the examples sit here; they are made once the widgets they set exist (at the end of build)
        self.examples_slot = gr.Column(min_width=0)
        self._vocabulary()

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

    def _build_settings(self) -> None:
        """4. the settings: the seed, then one panel per backend (shown with its method), its advanced fields
        folded."""
        s = self.spec
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

    def _build_compare(self) -> None:
        """The baseline, folded: the compare switch, the baseline backend and its JSON overrides."""
        s = self.spec
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

    def _build_results(self) -> None:
        """The results column: status, the method's and the baseline's results side by side, notices, report,
        and the settings to copy."""
        s = self.spec
        self.status = gr.Markdown("Ready.", elem_id=f"{s.name}-status", elem_classes=["run-status"])
        # Gradio draws the progress bar and the queue position over this (empty) slot, not over the status.
        self.progress_slot = gr.HTML("", elem_id=f"{s.name}-progress", elem_classes=["progress-slot"])
        with gr.Row(equal_height=False):
            with gr.Column(min_width=240):
                self.caption_a, self.preview_a, self.media_a, self.files_a = self._result_side("Method", "a")
            with gr.Column(visible=self.compare.value, min_width=240) as self.col_b:
                self.caption_b, self.preview_b, self.media_b, self.files_b = self._result_side("Baseline", "b")
        self.notices = gr.Markdown(elem_id=f"{s.name}-notices", elem_classes=["run-notices"])
        self.report = gr.Markdown(elem_id=f"{s.name}-report")
        with gr.Accordion("Copy settings: JSON for the API, command line for the CLI", open=False):
            self.request = gr.Code(language="json", label="Settings JSON (what Run sends; paste one to repeat "
                                   "a run)", lines=6, interactive=True, elem_id=f"{s.name}-request")
            self.run_json_btn = gr.Button("Run this JSON", size="sm", elem_id=f"{s.name}-run-json")
            self.cli = gr.Code(language="shell", label="Repeat with the CLI", lines=2, interactive=False,
                               elem_id=f"{s.name}-cli")
            self.details = gr.JSON(label="Run details (result.json)", elem_id=f"{s.name}-details")

    def _result_side(self, label: str, side: str) -> tuple:
        """(caption, preview, media widgets, files) of one side ("a": the method, "b": the baseline)."""
        s = self.spec
        caption = gr.Markdown(f"**{label}**", elem_id=f"{s.name}-caption-{side}")
        preview = gr.Image(label=f"{label} preview", show_label=False, interactive=False,
                           elem_id=f"{s.name}-preview-{side}", elem_classes=["preview"], height=300, format="png")
        media = [media_widget(k, f"{label}: {s.media_labels.get(k, k)}", f"{s.name}-{k}-{side}") for k in s.media]
        files = gr.File(label=f"{label} files", file_count="multiple", interactive=False,
                        elem_id=f"{s.name}-files-{side}", elem_classes=["files"])
        return caption, preview, media, files



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
