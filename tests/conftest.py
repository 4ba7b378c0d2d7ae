"""Shared test settings (never reach the network, keep torch to this machine's two cores) and the browser tests'
shared fixtures: `browser` (one headless Chromium for the session), `server` (one app for the session, unless a
module starts its own) and `page` (a fresh page of `server`)."""
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

# One thread for every run of the suite, in this process and the app servers and CLI children it starts (they
# inherit it): the suite runs pytest, the apps and Chromium at once on a few cores, many small runs, where two
# OpenMP threads spin against each other; and a run with the setting skips the policy's 0.1 s load sample.
# test_threads clears it where the policy itself is under test.
os.environ.setdefault("DISTILL_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# Modules that start an app, a browser or a child process, or run whole default runs: marked `slow`, so that
# `bash scripts/test.sh -m "not slow"` runs the core suite quickly while developing. CI runs everything.
SLOW_MODULES = {"test_browser", "test_first_contact", "test_page_layout", "test_text_to_svg_browser", "test_client",
                "test_fresh_install", "test_gpu_check", "test_gpu_speed", "test_eval_icons", "test_eval_text_to_svg",
                "test_eval_csd_edit", "test_cli", "test_svg_bounds", "test_trace", "test_run_bounds", "test_cli_signals",
                "test_examples_browser"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__.rpartition(".")[2] in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny tensors: one thread for a module's tests (two OpenMP threads spin-wait on each other when a two-core
    machine is busy, and every small op is 10x slower), whatever an earlier module set; restored after it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the session (each test opens its own fresh page in it)."""
    from browser_util import chromium

    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def server():
    """One app (`python app.py`, offline, on the CPU) for every module that drives it only through its page or API
    (each test opens a fresh page, or its own job): starting one costs 10-30 s of a busy 2-core machine. A module
    that needs an app of its own (other flags, or the state of a fresh one) defines its own `server` fixture."""
    from app_server import AppServer

    with AppServer("suite") as app:
        yield app


@pytest.fixture
def page(server, browser):
    from browser_util import open_page

    page = open_page(browser, server.url)
    yield page
    page.close()
