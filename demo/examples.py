"""A tab's examples: what one is (`Example`, declared by a tab module) and the examples table of a built tab
(`TabExamples`), whose one click sets every value a run reads.

A click must bring everything in one update: a second, chained update left a window in which Run, pressed on a busy
server before it landed, ran the defaults without the baseline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr

from .requests import paths_of, ui_default, without_example_files
from .widgets import ui_fields

if TYPE_CHECKING:  # the examples of a built Tab (for the annotations only: tab.py imports this module)
    from .tab import Tab


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


class TabExamples:
    """The examples of one built tab: the rows its installed backends can run (`rows`), and the gr.Examples that
    sets, in one update, the method, prompt and inputs, the compare switch, baseline and its JSON, and each field of
    the settings panels the examples use (`table`, made by `build` inside the tab's examples slot)."""

    def __init__(self, tab: Tab):
        self.tab = tab
        self.rows = [e for e in tab.spec.examples() if f"{tab.spec.task}/{e.backend}" in tab.classes and e.available()]
        self.table: gr.Examples | None = None

    def build(self) -> None:
        """The examples table (once every widget it sets exists): the example's backend at its settings, the other
        panels' fields at their defaults."""
        if not self.rows:
            return
        t = self.tab
        comps = [t.backend] + ([t.prompt] if t.prompt is not None else []) + t.input_widgets
        shown = list(range(len(comps)))  # what the examples table holds; the rest travels with each row
        comps += [t.compare, t.compare_backend, t.compare_json]
        comps += [w for key, _, w in self.fields()]
        self.table = gr.Examples([self.values(e) for e in self.rows], comps, visible_columns=shown,
                                 label="Examples (one click loads them; then press Run)",
                                 example_labels=[e.label for e in self.rows], examples_per_page=8)

    def values(self, e: Example) -> list:
        """The values one example row gives the components of `build`, in their order."""
        t = self.tab
        key = f"{t.spec.task}/{e.backend}"
        values = [key] + ([e.prompt] if t.prompt is not None else [])
        values += [e.inputs.get(slot.kind) for slot in t.spec.inputs]
        values += [bool(e.compare), t.baseline_for(key), json.dumps(e.compare_settings or {})]
        defaults = self.field_defaults()
        for panel, name, _ in self.fields():
            default = defaults[panel, name]
            values.append(e.settings.get(name, default) if panel == key else default)
        return values

    def field_defaults(self) -> dict[tuple[str, str], Any]:
        """Each field's value at its default, by (backend key, name), for the backends the examples use."""
        t = self.tab
        used = {key for key, _, _ in self.fields()}
        return {(key, d["name"]): ui_default(d, t.env.device) for key in used for d in ui_fields(t.classes[key])}

    def fields(self) -> list[tuple[str, str, Any]]:
        """The panel fields an example sets: those of the backends the examples use."""
        used = {f"{self.tab.spec.task}/{e.backend}" for e in self.rows}
        return [f for f in self.tab.panel_fields if f[0] in used]

    def wire_uploads(self) -> None:
        """A multi-file input keeps what it holds and adds an upload to it: after an example, a person's own upload
        must replace the example's files, not join them."""
        for widget in self.tab.input_widgets:
            if isinstance(widget, gr.File) and widget.file_count == "multiple":
                from_example = gr.State([])
                if self.table is not None:
                    self.table.load_input_event.then(lambda v: paths_of(v), widget, from_example,
                                                     api_visibility="private", queue=False)
                widget.upload(without_example_files, [widget, from_example], [widget, from_example],
                              api_visibility="private", queue=False)
