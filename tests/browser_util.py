"""Driving the app in Debian's headless Chromium with Playwright (never a downloaded browser)."""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import NamedTuple

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@contextlib.contextmanager
def chromium():
    """Debian's headless Chromium under Playwright, closed on the way out (a module fixture's body)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = launch_browser(p)
        try:
            yield browser
        finally:
            browser.close()


PAGE_HANG_S = 300  # a page still not drawn after this has hung: under load (10 on 2 cores) one took over 30 s
# Waits for the page poll every POLL_MS, not on animation frames (Playwright's default): the outcome waited for
# does not depend on the page drawing frames, which a page on a busy machine may not.
POLL_MS = 250


def open_page(browser, url: str, width: int = 1400, height: int = 1000, errors: list | None = None):
    """A fresh page of the app at `url`, once its banner is there; console errors go to `errors` if given."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#env-banner", timeout=PAGE_HANG_S * 1000)
    return page


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()


def click_example(page, tab: str, label: str) -> None:
    page.locator(f"#tab-{tab}").get_by_text(label, exact=True).click()


def load_example(page, tab: str, example) -> None:
    """Click `example` (a `demo.examples.Example`) and wait until its values are on the page. One update brings them all
    (method, prompt, inputs, compare switch, settings): the prompt in its box, or for an example without one its
    image in the input box, stands for the rest. On a busy machine the update lands seconds after the click."""
    click_example(page, tab, example.label)
    if example.prompt:
        page.wait_for_function("([id, want]) => { const box = document.querySelector(`#${id} textarea`);"
                               " return box !== null && box.value === want; }",
                               arg=[f"{tab}-prompt", example.prompt], polling=POLL_MS, timeout=PAGE_HANG_S * 1000)
    else:
        name = Path(next(iter(example.inputs.values()))).name
        page.wait_for_function("([id, name]) => [...document.querySelectorAll(`#${id} img`)]"
                               ".some(img => decodeURIComponent(img.src).endsWith('/' + name))",
                               arg=[f"{tab}-input", name], polling=POLL_MS, timeout=PAGE_HANG_S * 1000)


def wait_text(page, elem_id: str, text: str) -> None:
    """Wait until the element's text shows `text` (an upload's file name in a file box, say), whatever line breaks
    the layout puts in it (a file box draws a name's stem and extension as two boxes)."""
    page.wait_for_function("([id, text]) => { const el = document.getElementById(id);"
                           " const flat = (s) => s.replace(/\\s+/g, '');"
                           " return el !== null && flat(el.innerText).includes(flat(text)); }",
                           arg=[elem_id, text], polling=POLL_MS, timeout=PAGE_HANG_S * 1000)


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(str(value))
    box.press("Tab")


# Gradio draws its own timer ("processing | 0.9s", "queue: 1/1 | 0.5s") over a component it updates; it can still
# be there when the status sentence arrives.
GRADIO_TIMER = re.compile(r"\s*(processing|pending|queue[^|]*)\s*\|[^\n]*\n?", re.I)


def status_text(page, tab: str) -> str:
    """The tab's status sentence, without Gradio's timer over it."""
    return GRADIO_TIMER.sub("", page.locator(f"#{tab}-status").inner_text()).strip()


def wait_status(page, tab: str, words: tuple[str, ...], timeout_s: float) -> str:
    """Wait until the tab's status box contains one of `words`; returns its text."""
    deadline = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < deadline:
        text = status_text(page, tab)
        if any(w in text for w in words):
            return text
        time.sleep(0.1)
    raise TimeoutError(f"status of {tab} never showed {words}; last: {text!r}")


# The figure of a tab's "Expected time: about 68 s (...)" line, as backends.core.timing.duration words it.
EXPECTED_TIME = re.compile(r"about (\d+(?:\.\d+)?) (s|min|hours)\b")
UNIT_SECONDS = {"s": 1, "min": 60, "hours": 3600}


class Expected(NamedTuple):
    words: str  # "about 68 s"
    seconds: float


def expected_time(text: str) -> Expected:
    """The total a tab's expected-time line states (its first figure: the method and baseline split follows)."""
    m = EXPECTED_TIME.search(text)
    assert m, f"no expected time in {text!r}"
    return Expected(m.group(0), float(m.group(1)) * UNIT_SECONDS[m.group(2)])


def screenshot(page, path: Path) -> None:
    """The whole page. Gradio's images load lazily: the ones outside the window are brought into view first, so
    the picture shows what a person scrolling down sees. Only the shown ones: an image of another tab can never come
    into view, and each such one waited out its 2 s."""
    path.parent.mkdir(parents=True, exist_ok=True)
    images = page.locator("img:visible")
    for i in range(images.count()):
        with contextlib.suppress(Exception):
            images.nth(i).scroll_into_view_if_needed(timeout=2000)
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    page.screenshot(path=str(path), full_page=True)


@contextlib.contextmanager
def shot(page, path: Path):
    """Screenshot the page to `path` on the way out, whether the block passed (to look at) or failed (to see why)."""
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            screenshot(page, path)


def downloads(page, tab: str, side: str = "a") -> dict[str, bytes]:
    """The files a run offers on one side ("a" method, "b" baseline), fetched as the browser would: name -> bytes."""
    links = page.locator(f"#{tab}-files-{side} a[download]")
    out = {}
    for i in range(links.count()):
        link = links.nth(i)
        out[link.get_attribute("download")] = page.request.get(link.get_attribute("href")).body()
    return out


# How a narrow page goes wrong: a word broken across lines anywhere but after a hyphen (a table column squeezed
# to a few letters), content wider than the window, the results drawn over the settings. Returns the problems found, in words.
LAYOUT_PROBLEMS = r"""(sel) => {
  const problems = [];
  const doc = document.documentElement;
  if (doc.scrollWidth > window.innerWidth + 1) problems.push(`the page is ${doc.scrollWidth} px wide in a ${window.innerWidth} px window`);
  for (const cell of document.querySelectorAll(sel)) {
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.textContent.matchAll(/[^\s-]+-?/g)) {  // a line may break after a hyphen
        const range = document.createRange();
        range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
        const lines = new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top)));
        if (lines.size > 1) problems.push(`"${m[0]}" is broken across ${lines.size} lines`);
      }
    }
  }
  const cols = [...document.querySelectorAll('.tab-body')].filter(b => b.offsetParent !== null)
    .map(b => [...b.children].filter(c => c.classList.contains('column')).map(c => c.getBoundingClientRect()));
  for (const [left, right] of cols) {
    if (left && right && right.left < left.right - 1 && right.top < left.bottom - 1)
      problems.push('the results column overlaps the settings column');
  }
  return problems;
}"""


def layout_problems(page, tab: str) -> list[str]:
    """What reads badly on the page as it is now (see LAYOUT_PROBLEMS), for the tab's report and notices."""
    return page.evaluate(LAYOUT_PROBLEMS, f"#{tab}-report td, #{tab}-report th, #{tab}-notices li")
