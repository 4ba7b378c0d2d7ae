"""A built tab's events (`wire`): what each widget's change does, and Run, Stop and the `<tab>_run`,
`<tab>_defaults` and `<tab>_stop` endpoints. The handlers live with their concern: the menus' in `Tab`, the request
JSON in `RequestForm`, the expected time in `ExpectedTime`, the run in `runs`, Stop in `Stopper`.

Events are registered in the order below; the API's endpoints and their inputs and outputs by position are part of
the app's contract (API clients read the outputs of `<tab>_run` by index).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import gradio as gr

from . import environment
from .runs import make_runner

if TYPE_CHECKING:  # the events of a built Tab (for the annotations only: tab.py imports this module)
    from .tab import Tab

# Scrolls the tab's status line to the top of the window when it is out of view (argument: its element id).
SHOW_STATUS_JS = """() => {
  const el = document.getElementById('%s');
  if (!el) return;
  const box = el.getBoundingClientRect();
  if (box.top < 0 || box.bottom > window.innerHeight) el.scrollIntoView({block: 'start'});
}"""
HIDDEN = {"api_visibility": "private", "queue": False, "show_progress": "hidden"}  # page-only, instant updates


def wire(tab: Tab) -> None:
    """Every event of a built tab."""
    wire_choices(tab)
    tab.examples.wire_uploads()
    wire_prompt_helpers(tab)
    tab.prior.change(tab.field_info_updates, tab.prior, [w for _, _, w in tab.panel_fields], **HIDDEN)
    inputs = collect_inputs(tab)
    tab.outputs = run_outputs(tab)
    wire_run(tab, inputs)
    wire_expected_time(tab, inputs)
    wire_stop(tab)


def collect_inputs(tab: Tab) -> list:
    """The widgets `RequestForm.collect` reads, in the order of its parameters."""
    inputs = [tab.backend, tab.prior, tab.seed, tab.compare, tab.compare_backend, tab.compare_json]
    inputs += [tab.prompt] if tab.prompt is not None else []
    return inputs + [w for _, _, w in tab.panel_fields]


def run_outputs(tab: Tab) -> list:
    """The outputs of `<tab>_run`, by position: notices last, so API clients that read the outputs by position
    keep their indices."""
    outputs = [tab.status, tab.caption_a, tab.preview_a, tab.caption_b, tab.preview_b]
    outputs += tab.media_a + tab.media_b
    return outputs + [tab.files_a, tab.files_b, tab.report, tab.cli, tab.details, tab.notices]


def wire_choices(tab: Tab) -> None:
    """What a pick changes: the method's panel, note, inputs and baseline; an upload's 3D view; the baseline's
    column with the compare switch."""
    panel_list = [tab.panels[k] for k in tab.keys]
    viewers = [v for v in tab.input_viewers if v is not None]
    tab.backend.change(tab.method_changed, [tab.backend, tab.compare_backend] + tab.input_widgets,
                       panel_list + [tab.method_note] + tab.input_widgets + viewers + [tab.compare_backend],
                       api_visibility="private", queue=False)
    for slot, widget, shows in zip(tab.spec.inputs, tab.input_widgets, tab.input_viewers):
        if shows is not None:
            widget.change(lambda v, slot=slot: tab.show_upload(slot, v), widget, shows,
                          api_visibility="private", show_progress="hidden")
    tab.compare.change(lambda on: gr.update(visible=on), tab.compare, tab.col_b, api_visibility="private",
                       queue=False)


def wire_prompt_helpers(tab: Tab) -> None:
    """A "Did you mean" pick and a vocabulary pick each put their prompt in the prompt box."""
    if tab.suggest is not None:
        tab.suggest.input(lambda v: (v, gr.update(visible=False, choices=[], value=None)), tab.suggest,
                          [tab.prompt, tab.suggest], api_visibility="private", queue=False)
    if tab.vocabulary is not None:
        tab.vocabulary.input(lambda v: v or gr.update(), tab.vocabulary, tab.prompt, api_visibility="private",
                             queue=False)


def wire_run(tab: Tab, inputs: list) -> None:
    """Run (widgets -> request JSON -> `<tab>_run`), "Run this JSON", and the `<tab>_defaults` endpoint."""
    s, cfg = tab.spec, tab.config
    # Widgets -> request JSON is UI plumbing (private); the API's way in is `<tab>_defaults` then `<tab>_run`.
    # Run stays disabled while its run goes: a second click would otherwise be dropped without a word (a
    # click's trigger is ignored while its event is pending). Stop, or the run's end, enables it again.
    collect = tab.run_btn.click(tab.form.start, inputs, [tab.request, tab.status, tab.run_btn],
                                api_visibility="private", concurrency_id="ui", concurrency_limit=None,
                                show_progress="hidden")
    # In the stacked layout of a narrow window the status sits a screen or more below Run: bring it (and the
    # preview under it) into view, so the press is seen to start something.
    tab.run_btn.click(None, None, None, js=SHOW_STATUS_JS % f"{s.name}-status")
    runner = environment.gpu_call(make_runner(tab, len(tab.input_widgets)))
    tab.events["run"] = collect.success(
        runner, [tab.request] + tab.input_widgets, tab.outputs, api_name=f"{s.name}_run",
        concurrency_id=cfg.queue_id, concurrency_limit=cfg.concurrency,
        show_progress="full", show_progress_on=[tab.progress_slot])
    # The same handler on a pasted JSON (same queue); the API has it as `<tab>_run` already.
    tab.events["run_json"] = tab.run_json_btn.click(
        runner, [tab.request] + tab.input_widgets, tab.outputs, api_visibility="private",
        concurrency_id=cfg.queue_id, concurrency_limit=cfg.concurrency,
        show_progress="full", show_progress_on=[tab.progress_slot])
    gr.api(tab.form.defaults, api_name=f"{s.name}_defaults", api_description=(
        f"The request JSON for `{s.name}_run` with every setting of one {s.title} backend at its default "
        f"(backend: one of {', '.join(tab.keys)}; empty for {tab.method_key}). Edit it, then call "
        f"`{s.name}_run` with it and the input file(s)."))


def wire_expected_time(tab: Tab, inputs: list) -> None:
    """The expected time follows every field that changes it, and is measured again once a run has ended; the
    "Did you mean" choices follow a run (they are not an output of `<tab>_run`: API clients read its outputs by
    position)."""
    expect_inputs = inputs + tab.input_widgets
    for widget in expect_inputs:
        widget.change(tab.expected.expect_text, expect_inputs, tab.expect, **HIDDEN)
    for event in ("run", "run_json"):
        tab.events[event].then(tab.expected.expect_text, expect_inputs, tab.expect, **HIDDEN)
        if tab.suggest is not None:
            tab.events[event].then(tab.offer, None, tab.suggest, **HIDDEN)


def wire_stop(tab: Tab) -> None:
    """Stop (`<tab>_stop`) cancels the run's events and says where it stopped; Run is enabled again after a run
    and after Stop (a cancelled run's own .then does not fire)."""
    tab.events["stop"] = tab.stop_btn.click(tab.stopper.stop, None, tab.status, api_name=f"{tab.spec.name}_stop",
                                            concurrency_id="ui", concurrency_limit=None,
                                            cancels=[tab.events["run"], tab.events["run_json"]],
                                            show_progress="hidden")
    for event in ("run", "stop"):
        tab.events[event].then(lambda: gr.update(interactive=True), None, tab.run_btn, **HIDDEN)
