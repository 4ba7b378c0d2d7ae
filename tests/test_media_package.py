"""backends.inputs.media by kind: every name its importers use is still there, each module is small, the budget's header
reads and the decoders refuse a file by one rule with one sentence, and a zip's junk is one rule for both."""
from __future__ import annotations

import ast
import os
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from backends.core import budget
from backends.inputs import media
from backends.core.errors import InputError

ROOT = Path(__file__).resolve().parent.parent

# What backends/, demo/, benchmarks/, scripts/ and the tests read from backends.inputs.media (and mesh/io.py imports).
USED = ("image", "images", "video", "video_frame_size", "add_audio", "jpeg_scans", "is_archiver_junk",
        "central_directory", "pillow_pixel_limit", "read_head", "header_size", "HEADER_BYTES", "MIN_SIDE",
        "IMAGE_FORMATS", "MAX_IMAGE_BYTES", "MAX_IMAGE_PIXELS", "MAX_VIEWS", "MAX_ZIP_BYTES", "MAX_ZIP_ENTRIES",
        "MAX_VIDEO_BYTES", "MAX_VIDEO_FRAMES", "MAX_VIDEO_KEPT_BYTES")


def test_every_name_its_importers_use_comes_from_backends_media():
    missing = [name for name in USED if not hasattr(media, name)]
    assert not missing
    assert set(media.__all__) >= set(USED)


def test_each_media_module_is_at_most_700_lines_and_each_function_at_most_80():
    for path in sorted((ROOT / "backends" / "inputs" / "media").glob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert len(text.splitlines()) <= 700, path.name
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno - node.lineno + 1 <= 80, f"{path.name}: {node.name}"


def refusal(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    return str(info.value)


@pytest.fixture
def png(tmp_path):
    path = tmp_path / "photo.png"
    Image.new("RGB", (40, 30), (10, 120, 200)).save(path)
    return path


def test_the_budget_and_the_decoder_refuse_an_empty_image_with_one_sentence(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    said = refusal(media.image, str(empty))
    assert said == "The image 'empty.png' is empty (0 bytes)."
    assert refusal(budget.image_size, str(empty)) == said


def test_the_budget_and_the_decoder_refuse_an_oversized_file_with_one_sentence(png, monkeypatch):
    limit = png.stat().st_size - 1
    said = refusal(media.image, str(png), max_bytes=limit)
    monkeypatch.setattr(media, "MAX_IMAGE_BYTES", limit)  # the limit the budget reads, lowered to this file
    assert refusal(budget.image_size, str(png)) == said
    assert said.startswith("The image 'photo.png' is ") and said.endswith(f"at most {limit} bytes is allowed.")


def test_the_budget_and_the_decoder_refuse_an_oversized_video_and_zip_alike(png, tmp_path, monkeypatch):
    clip = tmp_path / "clip.gif"
    Image.new("RGB", (16, 16)).save(clip)
    views = tmp_path / "views.zip"
    with zipfile.ZipFile(views, "w") as zf:
        zf.write(png, "view1.png")
    video_said = refusal(media.video, str(clip), max_bytes=10)
    zip_said = refusal(media.images, str(views), max_zip_bytes=10)
    monkeypatch.setattr(media, "MAX_VIDEO_BYTES", 10)
    monkeypatch.setattr(media, "MAX_ZIP_BYTES", 10)
    assert refusal(budget.video_size, str(clip)) == video_said
    assert refusal(budget.zip_sizes, str(views), limit=4) == zip_said


def test_a_fifo_is_refused_by_the_header_read_without_blocking(tmp_path):
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    assert "regular file" in refusal(media.read_head, str(fifo), "image", media.MAX_IMAGE_BYTES)


def test_the_budget_counts_the_members_the_decoder_reads_skipping_the_same_junk(png, tmp_path):
    views = tmp_path / "views.zip"
    with zipfile.ZipFile(views, "w") as zf:
        for name in ("view10.png", "view2.png", ".front.png"):
            zf.write(png, name)
        for junk in ("__MACOSX/._view2.png", "._view10.png", ".DS_Store", "Thumbs.db"):
            zf.writestr(junk, b"not an image")
    decoded = media.images(str(views))
    assert len(budget.zip_sizes(str(views), limit=10)) == len(decoded) == 3
    assert all(im.size == (40, 30) for im in decoded)
