"""How the page reads, in headless Chromium (Debian's): at 1400 and at 800 px wide, each tab's first input and its
Run button are above the fold; after a default run of a person's own input on the offline priors, at 800 px (the
stacked layout), every metric shown has a caption and the page reads (`browser_util.layout_problems`: no word broken
across lines, nothing wider than the window, no column over another). Screenshots: tests/artifacts/page-<tab>.png
(docs/screenshots/ holds copies that were looked at).
"""
from __future__ import annotations

import json
import os
import time

import pytest

import backends
from app_server import ARTIFACTS
from browser_util import (CHROMIUM, POLL_MS, downloads, layout_problems, open_page, open_tab, screenshot, set_number,
                          status_text, wait_status)
from demo.jobs import safe_stem
from demo.launch import tab_specs
from test_first_contact import own_clip, own_views_zip, own_wide_image

pytestmark = pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is not installed")
FOLD_PX = 900  # a laptop's visible height
SPECS = [s for s in tab_specs() if backends.available().get(s.task)]
WORDS = {"svg": "a slice of pizza", "panorama": "make it a sunset", "video": "make it winter",
         "views3d": "turn it black and white"}


def new_page(browser, server, width: int):
    errors: list[str] = []
    return open_page(browser, server.url, width, FOLD_PX, errors), errors


def first_input(page, name: str):
    """The first thing a visitor fills: the prompt, else the first visible upload."""
    for sel in (f"#{name}-prompt", f"#{name}-input"):
        loc = page.locator(sel).first
        if loc.count() and loc.is_visible():
            return loc
    raise AssertionError(f"tab {name} shows neither a prompt nor an input")


@pytest.mark.parametrize("width", [1400, 800])
def test_each_tabs_first_input_and_run_button_are_above_the_fold(browser, server, width):
    page, errors = new_page(browser, server, width)
    try:
        for spec in SPECS:
            open_tab(page, spec.title)
            page.wait_for_timeout(300)
            page.evaluate("window.scrollTo(0, 0)")
            for what, loc in (("first input", first_input(page, spec.name)),
                              ("Run", page.locator(f"#{spec.name}-run"))):
                box = loc.bounding_box()
                assert box is not None, f"{spec.name}: {what} is not laid out"
                print(f"{width} px: {spec.name} {what} ends at {box['y'] + box['height']:.0f} px")
                assert box["y"] + box["height"] <= FOLD_PX, f"{spec.name}: {what} is below the fold at {width} px"
        screenshot(page, ARTIFACTS / f"page-fold-{width}.png")
    finally:
        page.close()
    print(f"browser console errors at {width} px: {errors}")


def steps_field(spec) -> str | None:
    """The elem_id of the Steps box of the tab's default method (the first of its preferred methods installed)."""
    names = backends.available().get(spec.task, [])
    name = next((m for m in spec.method if m in names), names[0] if names else None)
    fields = backends.get(f"{spec.task}/{name}").Settings.__dataclass_fields__ if name else {}
    return f"{spec.name}-{safe_stem(name)}-steps" if "steps" in fields else None


def test_after_a_run_at_800_px_every_metric_has_a_caption_and_the_page_reads(browser, server, tmp_path):
    """Every default but 5 steps: the report shows the same metrics as after the default run (the examples and the
    first-contact tests pay for default runs), in a fraction of its time."""
    own = {"panorama": own_wide_image(tmp_path / "wide.png"), "video": own_clip(tmp_path / "clip.mp4"),
           "views3d": own_views_zip(tmp_path / "views.zip"), "image": own_wide_image(tmp_path / "t.png", (96, 64))}
    page, errors = new_page(browser, server, 800)
    try:
        for spec in SPECS:
            open_tab(page, spec.title)
            if spec.name in WORDS:
                page.locator(f"#{spec.name}-prompt textarea").fill(WORDS[spec.name])
            if spec.name in own:
                page.locator(f"#{spec.name}-input input[type=file]").first.set_input_files(str(own[spec.name]))
                page.wait_for_timeout(1500)
            if steps_field(spec):  # a number box, or a text box where the setting may read "auto"
                box = page.locator(f"#{steps_field(spec)} input, #{steps_field(spec)} textarea").first
                box.fill("5")
                box.press("Tab")
            page.locator(f"#{spec.name}-run").click()
            text = wait_status(page, spec.name, ("Done", "failed", "problem"), 600)  # the outcome, not a clock
            assert text.startswith("Done"), text
            page.wait_for_timeout(500)
            rows = page.locator(f"#{spec.name}-report table tbody tr")
            assert rows.count() >= 4, f"{spec.name}: no report table"
            for i in range(rows.count()):
                cells = [c.strip() for c in rows.nth(i).locator("td").all_inner_texts()]
                if cells[0] in ("backend", "seed"):
                    continue  # facts, not metrics
                assert cells[-1], f"{spec.name}: {cells[0]!r} is shown without a caption"
            problems = layout_problems(page, spec.name)
            assert not problems, (spec.name, problems)
            screenshot(page, ARTIFACTS / f"page-{spec.name}.png")
    finally:
        page.close()
    print(f"browser console errors: {errors}")
    assert not [e for e in errors if "distill" in e.lower() or "/gradio_api/" in e], errors


IN_VIEW = """(id) => { const box = document.getElementById(id).getBoundingClientRect();
                       return box.top >= 0 && box.top < window.innerHeight; }"""


def test_at_800_px_pressing_run_brings_the_status_into_view(browser, server):
    page, _ = new_page(browser, server, 800)
    try:
        open_tab(page, "Text to SVG")
        page.locator("#svg-prompt textarea").fill("a rocket")
        set_number(page, "svg-vectorfusion-steps", 5)
        page.evaluate("window.scrollTo(0, 0)")
        assert not page.evaluate(IN_VIEW, "svg-status"), "the status is in view before Run: nothing to prove here"
        t0 = time.monotonic()
        page.locator("#svg-run").click()
        # the wait is for the outcome, not a clock (a busy browser draws late); the delay is reported
        page.wait_for_function(IN_VIEW, arg="svg-status", polling=POLL_MS, timeout=30_000)
        print(f"status in view {time.monotonic() - t0:.2f} s after the press")
        page.screenshot(path=str(ARTIFACTS / "run-press-800.png"))  # the window as the person sees it then
        assert wait_status(page, "svg", ("Done", "failed", "problem"), 600).startswith("Done")
        assert page.evaluate(IN_VIEW, "svg-status")  # the finished run's status is still where the person looks
        screenshot(page, ARTIFACTS / "page-run-800.png")
    finally:
        page.close()


def test_a_second_run_press_during_a_run_is_refused_by_a_disabled_button_then_runs_the_new_prompt(browser, server):
    page, _ = new_page(browser, server, 800)
    try:
        open_tab(page, "Text to SVG")
        page.locator("#svg-prompt textarea").fill("a rocket")
        set_number(page, "svg-vectorfusion-steps", 2000)
        run = page.locator("#svg-run")
        run.click()
        wait_status(page, "svg", ("step",), 600)
        assert run.is_disabled(), "Run is still enabled while its run goes"
        page.locator("#svg-prompt textarea").fill("a fish")
        run.click(force=True)  # the second press: a disabled button takes no click
        assert "step" in status_text(page, "svg") and run.is_disabled()
        run.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "run-disabled-800.png"))
        page.locator("#svg-stop").click()
        assert wait_status(page, "svg", ("Stopped", "Done"), 600).startswith("Stopped")
        page.wait_for_function("(id) => !document.getElementById(id).disabled", arg="svg-run", polling=POLL_MS,
                               timeout=30_000)
        set_number(page, "svg-vectorfusion-steps", 5)
        run.click()  # enabled again: this press runs the prompt the field now holds
        assert wait_status(page, "svg", ("Done", "failed", "problem"), 600).startswith("Done")
        page.locator("#svg-files-a a[download$='.json']").first.wait_for()  # the files land with the final update
        (meta,) = [json.loads(data) for name, data in downloads(page, "svg").items() if name.endswith(".json")]
        assert meta["settings"]["prompt"] == "a fish", meta["settings"]
    finally:
        page.close()
