"""The compare gallery (`backends.compare.report.gallery`) opens from disk (file://, no server) in Debian's Chromium
and draws every cell's picture. Screenshot: tests/artifacts/compare-gallery.png (docs/screenshots/ holds the copy
that was looked at)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from backends.__main__ import main

pytestmark = pytest.mark.slow  # a browser, and a grid run
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
SPEC = """out = "out"
prompts = ["a fox", "a red apple", "a rocket"]
seeds = [0, 1]
priors = ["icons"]

[[backends]]
name = "svg/vectorfusion"
settings = { steps = 20, k = 1, sample_steps = 8 }

[[backends]]
name = "svg/raster-then-vectorize"
settings = { k = 1, sample_steps = 8 }
"""


def test_the_gallery_opens_from_disk_and_draws_every_cell(tmp_path, browser):
    (tmp_path / "grid.toml").write_text(SPEC)
    with contextlib.redirect_stderr(io.StringIO()) as err, contextlib.redirect_stdout(io.StringIO()):
        rc = main(["compare", str(tmp_path / "grid.toml"), "--quiet"])
    assert rc == 0, err.getvalue()
    out = tmp_path / "out"
    cells = [json.loads(line)["cell"] for line in (out / "table.jsonl").read_text().splitlines()]
    errors: list[str] = []
    # the session's Chromium (conftest): a second Playwright cannot start in a process beside it
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto((out / "index.html").as_uri())
    page.wait_for_load_state("load")
    pictures = page.evaluate("""() => Array.from(document.images).map(i => ({
        cell: i.closest('figure').id, src: i.src, loaded: i.complete && i.naturalWidth > 0}))""")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "compare-gallery.png"), full_page=True)
    page.close()
    assert sorted(p["cell"] for p in pictures) == sorted(cells) and len(cells) == 12
    assert all(p["loaded"] and p["src"].startswith(out.as_uri() + "/") for p in pictures), pictures
    assert not errors, errors
