"""Shared test settings (never reach the network, keep torch to this machine's two cores) and the browser tests'
shared fixtures: `browser` (one headless Chromium per module) and `page` (a fresh page of the module's own `server`
fixture, the app it starts)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

# one thread: the suite is many small ops, and two OpenMP threads spin against the app servers the tests start
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def browser():
    from browser_util import chromium

    with chromium() as b:
        yield b


@pytest.fixture
def page(server, browser):
    from browser_util import open_page

    page = open_page(browser, server.url)
    yield page
    page.close()
