"""A tab's widgets -> the request JSON that `<tab>_run` takes (`RequestForm`): what Run sends, what the person can
copy, and the `<tab>_defaults` endpoint's JSON for API clients. A field that is wrong is one sentence naming it."""
from __future__ import annotations

import dataclasses
import json
from typing import TYPE_CHECKING, Any

import gradio as gr

from backends.core import settings as bsettings
from backends.core.errors import InputError

from .requests import baseline_settings, ui_default

if TYPE_CHECKING:  # the form of a built Tab (for the annotations only: tab.py imports this module)
    from .tab import Tab

WAITING = "Waiting for the device (the queue position shows below)..."


class RequestForm:
    """The request JSON of one tab, from its widgets' values (`collect`) or at a backend's defaults (`defaults`)."""

    def __init__(self, tab: Tab):
        self.tab = tab

    def start(self, *fields):
        """Run's first step: the request JSON and the waiting line (`collect`), with Run disabled until the run
        ends. A field that is wrong raises before Run is touched, so it stays enabled."""
        return *self.collect(*fields), gr.update(interactive=False)

    def collect(self, backend_key, prior, seed, compare, compare_key, compare_json, *rest):
        """Widgets -> the request JSON that `<tab>_run` takes (also what the person can copy).
        rest: the prompt (if the tab has one), then the settings widgets' values in `tab.panel_fields` order."""
        t = self.tab
        prompt = None
        if t.prompt is not None:
            prompt, rest = rest[0], rest[1:]
        if backend_key not in t.classes:
            raise gr.Error(f"Choose a method for this tab (installed: {', '.join(t.keys)}).", print_exception=False)
        settings = {name: value for (key, name, _), value in zip(t.panel_fields, rest) if key == backend_key}
        shared = {"seed": int(seed or 0)}
        if prompt is not None:
            shared["prompt"] = prompt
        req: dict[str, Any] = {"backend": backend_key, "prior": prior or "auto",
                               "settings": self.fit(backend_key, {**settings, **shared})}
        if compare:
            req["compare"] = self.baseline(req, prior, compare_key, compare_json)
        for side in [req] + ([req["compare"]] if compare else []):
            try:
                bsettings.make_settings(t.classes[side["backend"]].Settings, side["settings"], where=side["backend"])
            except InputError as err:
                raise gr.Error(str(err), print_exception=False)
        return json.dumps(req, indent=1, default=str), WAITING

    def baseline(self, req: dict, prior, compare_key, compare_json) -> dict:
        """The request's "compare" side: the baseline backend, the method's prior where it fits the baseline (else
        auto), the settings both share (`baseline_settings`) under the baseline JSON's overrides."""
        t = self.tab
        if compare_key not in t.classes:
            raise gr.Error("Choose a baseline to compare with.", print_exception=False)
        try:
            extra = json.loads(compare_json or "{}")
        except json.JSONDecodeError as err:
            raise gr.Error(f"The baseline settings are not valid JSON ({err.msg}).", print_exception=False)
        if not isinstance(extra, dict):
            raise gr.Error('The baseline settings must be a JSON object, e.g. {"steps": 100}.',
                           print_exception=False)
        b_prior = prior if prior in (None, "auto") or t.prior_fits(compare_key, prior) else "auto"
        base = baseline_settings(t.classes[req["backend"]], t.classes[compare_key], req["settings"])
        return {"backend": compare_key, "prior": b_prior or "auto", "settings": {**base, **extra}}

    def fit(self, key: str, values: dict) -> dict:
        """`values` less the names backend `key` has no setting for (the prompt, for a backend without one)."""
        names = {f.name for f in dataclasses.fields(self.tab.classes[key].Settings)}
        return {k: v for k, v in values.items() if k in names}

    def defaults(self, backend: str = "") -> str:
        """A request JSON with every setting of `backend` at its default; compare with the baseline left out."""
        t = self.tab
        key = backend or t.method_key
        if key not in t.classes:
            raise gr.Error(f"Unknown backend {key!r} for this tab; choose one of {', '.join(t.keys)}.",
                           print_exception=False)
        settings = {d["name"]: ui_default(d, t.env.device) for d in bsettings.describe(t.classes[key].Settings)}
        return json.dumps({"backend": key, "prior": "auto", "settings": settings, "compare": None}, indent=1,
                          default=str)
