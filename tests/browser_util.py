"""Driving the app in Debian's headless Chromium with Playwright (never a downloaded browser)."""
from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path

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


def open_page(browser, url: str, width: int = 1400, height: int = 1000, errors: list | None = None):
    """A fresh page of the app at `url`, once its banner is there; console errors go to `errors` if given."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(20_000)
    if errors is not None:
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url)
    page.wait_for_selector("#env-banner", timeout=30_000)
    return page


def open_tab(page, title: str) -> None:
    page.get_by_role("tab", name=title, exact=True).click()


def click_example(page, tab: str, label: str) -> None:
    page.locator(f"#tab-{tab}").get_by_text(label, exact=True).click()


def set_number(page, elem_id: str, value) -> None:
    box = page.locator(f"#{elem_id} input").first
    box.fill(str(value))
    box.press("Tab")


def choose(page, elem_id: str, option: str) -> None:
    page.locator(f"#{elem_id} input").first.click()
    page.get_by_role("option", name=option, exact=True).click()


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


def screenshot(page, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(path), full_page=True)
