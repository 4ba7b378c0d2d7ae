"""The line beside Run: how long a run of the tab's current values takes on this machine (`ExpectedTime`), from
`backends.expect` (the recorded runs of this machine, else the budget's rule)."""
from __future__ import annotations

import json
from typing import TYPE_CHECKING

import gradio as gr

import backends
from backends.core.errors import InputError
from backends.core.timing import SOURCES, duration

from .requests import paths_of

if TYPE_CHECKING:  # the expected time of a built Tab (for the annotations only: tab.py imports this module)
    from .tab import Tab

NOT_MEASURED = ("Expected time: not measured yet for these settings here; the status line shows the time left once "
                "the run starts.")


class ExpectedTime:
    """The expected-time line of one tab; it follows every field that changes it, and is worked out again once a
    run has ended (that run is then among the records)."""

    def __init__(self, tab: Tab):
        self.tab = tab

    def expect_text(self, backend_key, prior="auto", seed=0, compare=False, compare_key=None, compare_json="{}",
                    *rest) -> str:
        """The line beside Run: how long a run of the fields' current values takes here (`backends.expect`).
        rest: the prompt (if the tab has one), the settings widgets' values, then the input widgets' values."""
        t = self.tab
        n = len(t.panel_fields) + (t.prompt is not None)
        fields, files = rest[:n], rest[n:]
        try:
            if fields:
                req = json.loads(t.form.collect(backend_key, prior, seed, compare, compare_key, compare_json,
                                                *fields)[0])
            else:  # the page's first draw: the method at its defaults
                req = json.loads(t.form.defaults(backend_key))
        except (gr.Error, InputError):
            return ""  # Run says what is wrong with the fields
        sides = [req] + ([req["compare"]] if req.get("compare") else [])
        seconds, sources, example_sized = [], set(), False
        for side in sides:
            users = [paths_of(v) for slot, v in zip(t.spec.inputs, files) if side["backend"] in t.slot_users(slot)]
            paths = [p for group in users for p in group]
            example_sized |= t.classes[side["backend"]].spec.inputs.min > 0 and not paths
            try:
                found = backends.expect(side["backend"], side["settings"], prior=side.get("prior") or "auto",
                                        inputs=paths, device=t.env.run_device())
            except InputError:
                return ""
            if found is None:
                return NOT_MEASURED
            seconds.append(found.seconds)
            sources.add(found.source)
        total = f"about {duration(sum(seconds))}" + (f" (method {duration(seconds[0])}, baseline "
                                                      f"{duration(seconds[1])})" if len(seconds) > 1 else "")
        basis = " and ".join(SOURCES[k] for k in sorted(sources))
        sized = " for an input the size of the example's" if example_sized else ""
        return f"Expected time: **{total}**{sized} ({basis})."
