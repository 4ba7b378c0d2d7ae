"""The input gate: every hostile upload is refused fast with one clear sentence, good uploads come through."""
from __future__ import annotations

import dataclasses
import io
import os
import re
import subprocess
import sys
import time
import unicodedata
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import hostile
from backends.inputs import media, validate
from backends.core.errors import InputError

FAST = settings(max_examples=60, deadline=2000, suppress_health_check=[HealthCheck.function_scoped_fixture])
VALIDATOR = {"svg": validate.svg_bytes, "image": media.image, "images": media.images, "video": media.video}
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def assert_one_sentence(message: str) -> None:
    assert message and "\n" not in message and "\r" not in message, message
    assert "Traceback" not in message and "File \"" not in message and "Error:" not in message, message
    assert message[0].isupper() and message.endswith("."), message
    assert re.search(r"[.!?] [A-Z]", message) is None, f"more than one sentence: {message}"
    assert len(message) < 300, message


def refused(fn, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert_one_sentence(message)
    return message


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    return hostile.make_corpus(tmp_path_factory.mktemp("hostile"))


@pytest.fixture(scope="session")
def good(tmp_path_factory):
    return hostile.make_good(tmp_path_factory.mktemp("good"))


def png_bytes(width=32, height=24, mode="RGB", color=(10, 200, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (width, height), color).save(buf, "PNG")
    return buf.getvalue()


# ----------------------------------------------------------------------------------------------- hostile corpus

@pytest.mark.parametrize("name", [n for n, (_, expect) in hostile.CORPUS.items() if expect == "reject"])
def test_each_hostile_file_is_refused_with_one_sentence_within_2s(corpus, name):
    kind, _ = hostile.CORPUS[name]
    path = corpus[name]
    source = path if kind != "svg" else Path(path)
    start = time.process_time()  # this process's CPU seconds: other work on the machine does not count
    with pytest.raises(InputError) as info:
        VALIDATOR[kind](source)
    elapsed = time.process_time() - start
    assert elapsed < 2.0, f"{name} took {elapsed:.2f} CPU seconds"
    assert_one_sentence(str(info.value))
    assert str(path.parent) not in str(info.value)  # messages name the file, never the server's folders


@pytest.mark.parametrize("name", [n for n, (_, expect) in hostile.CORPUS.items() if expect == "accept"])
def test_each_odd_but_valid_file_is_read_within_2s(corpus, name):
    kind, _ = hostile.CORPUS[name]
    start = time.process_time()
    VALIDATOR[kind](corpus[name])
    assert time.process_time() - start < 2.0


def test_hostile_svg_bytes_are_refused_before_any_parsing(corpus):
    assert "entities" in refused(validate.svg_bytes, corpus["billion_laughs.svg"].read_bytes())
    message = refused(validate.svg_bytes, corpus["xxe.svg"].read_text())
    assert hostile.SECRET_TEXT not in message
    assert "20,000" in refused(validate.svg_bytes, corpus["many_elements.svg"].read_bytes())


def test_png_named_jpg_is_read_by_its_content_and_the_mismatch_reported(corpus):
    out = media.image(corpus["png_named.jpg"])
    assert out.mode == "RGB" and out.size == (32, 24)
    assert out.info["format"] == "PNG"
    assert_one_sentence(out.info["notice"])
    assert ".jpg" in out.info["notice"] and "PNG" in out.info["notice"]


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_declared_size_is_refused_from_the_header_and_pillow_guard_is_restored(corpus):
    before = Image.MAX_IMAGE_PIXELS
    message = refused(media.image, corpus["huge_declared.png"])
    assert "10,000,000,000 pixels" in message and "16,777,216" in message
    refused(media.image, hostile.png_with_declared_size(5000, 5000))  # 25 Mpx: between 1x and 2x the limit
    assert Image.MAX_IMAGE_PIXELS == before


def test_a_fifo_or_folder_is_refused_without_blocking(tmp_path):
    refused(media.image, tmp_path)
    if hasattr(os, "mkfifo"):
        fifo = tmp_path / "upload.png"
        os.mkfifo(fifo)
        start = time.perf_counter()
        assert "regular file" in refused(media.image, fifo)
        assert "regular file" in refused(media.video, fifo)
        assert time.perf_counter() - start < 2.0
    assert "does not exist" in refused(media.image, tmp_path / "missing.png")
    refused(media.image, "bad\x00name.png")


def test_checks_stay_under_500_mb_of_extra_memory(corpus, good, tmp_path):
    # A fresh process, so the peak resident size is this check's own: every hostile file, then a maximal
    # legitimate image (4096x4096 RGBA, the most pixels allowed) and a view set at its total-pixel limit.
    big = tmp_path / "big.png"
    Image.new("RGBA", (4096, 4096), (1, 2, 3, 128)).save(big, compress_level=1)
    names = [n for n, (k, e) in hostile.CORPUS.items() if e == "reject"]
    script = f"""
import resource, sys
sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(Path(__file__).parent.parent)!r}]
import hostile
from pathlib import Path
from backends.inputs import media, validate
from backends.core.errors import InputError
import PIL.Image
fns = {{"svg": validate.svg_bytes, "image": media.image, "images": media.images, "video": media.video}}
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
for name in {names!r}:
    try:
        fns[hostile.CORPUS[name][0]](Path({str(next(iter(corpus.values())).parent)!r}) / name)
    except InputError:
        pass
media.image({str(big)!r})
media.images([{str(good["views.zip"])!r}])
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) / 1024)
"""
    if sys.platform != "linux":
        pytest.skip("ru_maxrss is in KiB on Linux only")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    extra_mb = float(result.stdout.strip().splitlines()[-1])
    assert extra_mb < 500, f"{extra_mb:.0f} MB"


# ----------------------------------------------------------------------------------------------- text

def test_prompt_is_stripped_nfc_normalized_with_unix_newlines():
    assert validate.prompt("  a cat\r\nin a hat\t ") == "a cat\nin a hat"
    assert validate.prompt("cafe\u0301") == "caf\u00e9"
    assert validate.prompt(b"a dog") == "a dog"
    assert validate.prompt(None, required=False) == ""
    assert validate.prompt("   ", required=False) == ""


@pytest.mark.parametrize("text, words", [
    ("", "empty"), ("  \n\t ", "empty"), ("x" * 1001, "1,001"), ("x" * 100_000, "at most 1,000"),
    ("bell\x07", "U+0007"), ("esc\x1b[31m", "U+001B"), ("del\x7f", "U+007F"), ("c1\x85x", "U+0085"),
    ("\ud800lone", "surrogate"), (42, "must be text"), (b"\xff\xfe", "UTF-8"),
])
def test_prompt_refuses_with_what_is_allowed(text, words):
    assert words in refused(validate.prompt, text)


def test_prompt_length_is_counted_after_normalization():
    assert validate.prompt("e\u0301" * 10, max_chars=10) == "\u00e9" * 10
    assert "negative prompt" in refused(validate.prompt, "x" * 11, name="negative prompt", max_chars=10)


@FAST
@given(st.text(max_size=300) | st.binary(max_size=100) | st.none() | st.integers())
def test_prompt_returns_clean_text_or_input_error(value):
    try:
        out = validate.prompt(value, max_chars=200)
    except InputError as err:
        assert_one_sentence(str(err))
        return
    assert isinstance(out, str) and 0 < len(out) <= 200
    assert CONTROL.search(out.replace("\n", "").replace("\t", "")) is None
    assert out == out.strip() and unicodedata.is_normalized("NFC", out)


# ----------------------------------------------------------------------------------------------- numbers

def test_number_parses_cli_text_and_numbers():
    assert validate.number("steps", "500", lo=1, hi=5000, integer=True) == 500
    assert validate.number("steps", " 4.0 ", lo=1, hi=5000, integer=True) == 4
    assert validate.number("guidance", "7.5", lo=0, hi=50) == 7.5
    assert validate.number("guidance", 7, lo=0, hi=50) == 7.0 and isinstance(validate.number("g", 7, lo=0, hi=9), float)
    assert validate.number("lr", "1e-3", lo=0, hi=1) == 1e-3
    assert validate.number("seed", np.int64(3), lo=0, hi=2**32, integer=True) == 3


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", float("nan"), float("inf"), "abc", "", "1,5", True,
                                   None, [1], "2.5", 2.5, 10**400, "9" * 100, 0, 5001])
def test_number_refuses_non_finite_non_whole_or_out_of_range(value):
    message = refused(validate.number, "steps", value, lo=1, hi=5000, integer=True)
    assert "from 1 to 5000" in message


@FAST
@given(st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(min_value=-10**30, max_value=10**30),
                 st.text(max_size=40), st.booleans(), st.none()),
       st.booleans())
def test_number_returns_in_range_value_or_input_error(value, integer):
    try:
        out = validate.number("scale", value, lo=-5, hi=5, integer=integer)
    except InputError as err:
        assert_one_sentence(str(err))
        return
    assert -5 <= out <= 5
    assert type(out) is (int if integer else float)


def test_choice_matches_exactly_or_ignoring_case_and_lists_the_options():
    assert validate.choice("style", "icon", ["icon", "pixel art", "sketch"]) == "icon"
    assert validate.choice("style", " Pixel Art ", ["icon", "pixel art", "sketch"]) == "pixel art"
    assert validate.choice("paths", 16, [8, 16, 32]) == 16
    message = refused(validate.choice, "style", "oil\npainting", ["icon", "pixel art", "sketch"])
    assert "icon, pixel art, sketch" in message
    refused(validate.choice, "paths", np.array([1, 2]), [8, 16])


# ----------------------------------------------------------------------------------------------- images

def test_good_images_come_back_rgb(good):
    for name in ("photo.png", "photo.jpg", "anim.gif"):
        out = media.image(good[name])
        assert out.mode == "RGB" and min(out.size) >= 8, name
        assert "notice" not in out.info
    assert media.image(good["photo.png"]).size == (48, 32)
    assert media.image(good["photo.jpg"]).info["format"] == "JPEG"


def test_transparency_is_composited_on_white(good):
    arr = np.asarray(media.image(good["alpha.png"]))
    assert tuple(arr[0, 0]) == (255, 255, 255) and tuple(arr[16, 16]) == (255, 0, 0)
    la = np.zeros((10, 10, 4), np.float32)
    assert (np.asarray(media.image(la)) == 255).all()  # fully transparent float RGBA -> white


def test_animation_gives_its_first_frame(good):
    first = Image.open(good["anim.gif"]).convert("RGB")
    assert np.array_equal(np.asarray(media.image(good["anim.gif"])), np.asarray(first))


def test_image_accepts_bytes_file_objects_pil_and_arrays(good):
    data = good["photo.png"].read_bytes()
    assert media.image(data).size == (48, 32)
    assert media.image(io.BytesIO(data)).size == (48, 32)
    assert media.image(Image.open(io.BytesIO(data))).size == (48, 32)
    assert media.image(Image.new("P", (9, 9))).mode == "RGB"
    assert media.image(np.zeros((10, 12), np.uint8)).size == (12, 10)
    assert media.image(np.ones((10, 12, 1), np.float64)).getpixel((0, 0)) == (255, 255, 255)
    assert media.image(np.zeros((10, 12, 3), bool)).size == (12, 10)
    assert media.image(np.full((8, 8), 65535, np.uint16)).getpixel((0, 0)) == (255, 255, 255)


@pytest.mark.parametrize("array, words", [
    (np.full((10, 10, 3), np.nan, np.float32), "NaN"), (np.full((10, 10, 3), 2.0), "0..1"),
    (np.zeros((10, 10, 2), np.uint8), "shape"), (np.zeros((10,), np.uint8), "shape"),
    (np.zeros((4, 100, 3), np.uint8), "at least 8"), (np.zeros((10, 10, 3), complex), "dtype"),
    (np.full((10, 10), 300, np.int32), "0..255"),
])
def test_bad_arrays_are_refused(array, words):
    assert words in refused(media.image, array)


def test_image_limits_are_configurable(good):
    data = good["photo.png"].read_bytes()
    with pytest.warns(Image.DecompressionBombWarning):  # 1x..2x the limit: Pillow warns, we refuse
        assert "at most 1,000 pixels" in refused(media.image, data, max_pixels=1000)
    assert "at most 100 bytes is allowed" in refused(media.image, data, max_bytes=100)
    assert "at least 40" in refused(media.image, data, min_side=40)
    assert "use JPEG" in refused(media.image, data, formats=("JPEG",))
    assert "at most 1,000 pixels" in refused(media.image, Image.new("RGB", (100, 100)), max_pixels=1000)


@FAST
@given(st.binary(max_size=2048))
def test_image_on_random_bytes_never_raises_anything_but_input_error(data):
    try:
        out = media.image(data)
    except InputError as err:
        assert_one_sentence(str(err))
        return
    assert out.mode == "RGB"


def _valid_samples() -> list[bytes]:
    rng = np.random.default_rng(7)
    im = Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
    out = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
        buf = io.BytesIO()
        im.save(buf, fmt)
        out.append(buf.getvalue())
    return out


SAMPLES = _valid_samples()


@FAST
@given(st.sampled_from(SAMPLES), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), max_size=8),
       st.integers(0, 10**6))
def test_image_on_mutated_real_files_never_raises_anything_but_input_error(sample, flips, cut):
    data = bytearray(sample)
    for at, value in flips:
        data[at % len(data)] = value
    data = bytes(data[: max(1, cut % (len(data) + 1))])
    try:
        out = media.image(data)
    except InputError as err:
        assert_one_sentence(str(err))
        return
    assert out.mode == "RGB"


# ----------------------------------------------------------------------------------------------- view sets

def test_zip_of_views_comes_in_natural_order_without_archiver_junk(good):
    views = media.images(good["views.zip"])
    with zipfile.ZipFile(good["views.zip"]) as zf:
        expect = [np.asarray(Image.open(zf.open(f"views/view{i}.png")).convert("RGB")) for i in (1, 2, 10)]
    assert len(views) == 3
    for got, want in zip(views, expect):
        assert np.array_equal(np.asarray(got), want)
    assert len(media.images(good["views.zip"].read_bytes())) == 3


def test_images_mixes_files_arrays_and_zips(good):
    out = media.images([good["photo.png"], np.zeros((16, 16, 3), np.uint8), good["views.zip"]])
    assert [im.size for im in out] == [(48, 32), (16, 16)] + [(32, 32)] * 3


def test_images_count_and_total_pixel_limits(good):
    tile = np.zeros((16, 16, 3), np.uint8)
    assert "at most 32" in refused(media.images, [tile] * 33)
    assert "at most 2" in refused(media.images, [good["views.zip"]], max_count=2)
    assert "1,000 pixels" in refused(media.images, [tile] * 4, max_total_pixels=1000)
    assert "between 1 and 32" in refused(media.images, [])
    assert "unpacks to more than" in refused(media.images, good["views.zip"], max_zip_uncompressed=1000)


def test_zip_with_encrypted_or_bzip2_members_is_refused(tmp_path):
    path = tmp_path / "bz.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_BZIP2) as zf:
        zf.writestr("v.png", png_bytes())
    assert "compression" in refused(media.images, path)
    data = bytearray((tmp_path / "bz.zip").read_bytes())
    path2 = tmp_path / "enc.zip"
    with zipfile.ZipFile(path2, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("v.png", png_bytes())
    data = bytearray(path2.read_bytes())
    for sig in (b"PK\x03\x04", b"PK\x01\x02"):  # set the "encrypted" flag in both headers
        at = data.find(sig)
        data[at + (6 if sig == b"PK\x03\x04" else 8)] |= 1
    path2.write_bytes(bytes(data))
    assert "password" in refused(media.images, path2)


# ----------------------------------------------------------------------------------------------- video

def test_good_videos_decode_with_their_frame_rate(good):
    for name in ("clip.mp4", "clip.webm"):
        frames, fps = media.video(good[name])
        assert frames.shape == (12, 32, 48, 3) and frames.dtype == np.uint8, name
        assert fps == pytest.approx(12.0)
    frames, fps = media.video(good["anim.gif"])
    assert frames.shape == (6, 32, 32, 3) and fps == pytest.approx(10.0)


def test_sample_keeps_evenly_spread_frames_and_the_duration(good):
    every, fps = media.video(good["clip.mp4"])
    some, fps4 = media.video(good["clip.mp4"], sample=4)
    assert some.shape[0] == 4
    assert np.array_equal(some[0], every[0]) and np.array_equal(some[-1], every[-1])
    assert some.shape[0] / fps4 == pytest.approx(every.shape[0] / fps)
    gif4, _ = media.video(good["anim.gif"], sample=3)
    assert gif4.shape[0] == 3
    assert f"from 1 to {media.MAX_VIDEO_FRAMES}" in refused(media.video, good["clip.mp4"], sample=0)
    assert "file path" in refused(media.video, good["clip.mp4"].read_bytes())


def test_video_limits_are_checked_from_metadata(good):
    assert "at most 0.5 s" in refused(media.video, good["clip.mp4"], max_seconds=0.5)
    assert "at most 5 are allowed" in refused(media.video, good["clip.mp4"], max_frames=5)
    assert "from 8 to 40 pixels" in refused(media.video, good["clip.mp4"], max_side=40)
    assert "at most 10 frames" in refused(media.video, good["clip.mp4"], max_kept_bytes=48 * 32 * 3 * 10)
    assert media.video(good["clip.mp4"], sample=10, max_kept_bytes=48 * 32 * 3 * 10)[0].shape[0] == 10
    assert "can be decoded" in refused(media.video, good["clip.mp4"], max_decode_pixels=48 * 32 * 5)
    assert "at most 2 are allowed" in refused(media.video, good["anim.gif"], max_frames=2)


def test_rotation_metadata_is_applied_like_ffmpeg_autorotate(good, tmp_path):
    import imageio.v2 as iio

    upright, _ = media.video(good["clip.mp4"])
    for degrees, turns in ((90, 1), (-90, 3), (180, 2)):
        rotated = tmp_path / f"rot{degrees}.mp4"
        hostile.with_display_rotation(good["clip.mp4"], rotated, degrees)
        frames, fps = media.video(rotated)
        assert np.array_equal(frames, np.rot90(upright, turns, axes=(1, 2))) and fps == pytest.approx(12.0)
    with iio.get_reader(rotated, format="FFMPEG") as reader:  # ffmpeg's own autorotation agrees
        assert np.array_equal(np.stack([np.asarray(f) for f in reader]), frames)


def test_metadata_that_imitates_ffmpeg_lines_does_not_change_the_probe(good, tmp_path):
    spoofed = tmp_path / "spoofed.mp4"
    hostile.with_spoofed_metadata(good["clip.mp4"], spoofed)
    assert "48x32" in refused(media.video, spoofed, max_side=40)  # the tags claim 8x8
    frames, fps = media.video(spoofed)
    assert frames.shape == (12, 32, 48, 3) and fps == pytest.approx(12.0)


def test_the_budget_sizes_a_clip_with_the_decoders_probe_and_never_guesses_a_format(good, tmp_path):
    from backends.core import budget

    spoofed = tmp_path / "spoofed.mp4"
    hostile.with_spoofed_metadata(good["clip.mp4"], spoofed)
    assert budget.video_size(str(spoofed)) == (48, 32)  # the tags' fake "Video: ..., 8x8" line is not read
    secret = tmp_path / "secret.mp4"  # a playlist naming another local file: that file is never opened
    secret.write_bytes(good["clip.mp4"].read_bytes())
    playlist = tmp_path / "list.mp4"
    playlist.write_text(f"#EXTM3U\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n")
    assert media.video_frame_size(str(playlist)) is None
    with pytest.raises(InputError, match="not a video in an allowed format"):
        budget.video_size(str(playlist))


def _stream_webm(tmp_path, frames: int) -> Path:
    """A WEBM written to a pipe, so it has no duration in its header (as browser recordings often do)."""
    import imageio_ffmpeg

    path = tmp_path / "live.webm"
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
           f"testsrc=size=32x24:rate=10:duration={frames / 10}", "-c:v", "libvpx", "-f", "webm", "pipe:1"]
    path.write_bytes(subprocess.run(cmd, check=True, capture_output=True, timeout=60).stdout)
    return path


def test_video_without_a_duration_is_still_bounded(tmp_path):
    path = _stream_webm(tmp_path, 30)
    frames, fps = media.video(path)
    assert frames.shape == (30, 24, 32, 3) and fps == pytest.approx(10.0)
    some, fps4 = media.video(path, sample=4)
    assert np.array_equal(some[0], frames[0]) and np.array_equal(some[-1], frames[-1]) and len(some) == 4
    assert "at most 10 are allowed" in refused(media.video, path, max_frames=10)
    assert "longer than 2 s" in refused(media.video, path, max_seconds=2)
    assert "once decoded" in refused(media.video, path, max_kept_bytes=32 * 24 * 3 * 5)
    # streamed, the same caps cut it off mid-stream (the header gave nothing to refuse it by)
    assert "at most 10 are allowed" in refused(lambda: list(media.video_frames(path, max_frames=10)))
    assert "longer than 2 s" in refused(lambda: list(media.video_frames(path, max_seconds=2)))


def test_keyframes_are_the_spread_frames_of_the_true_count_and_the_stream_is_every_frame(good, tmp_path):
    """video_keyframes keeps exactly `spread_frames(count, want)` (first and last included) and video_frames yields
    every frame, both as `video` decodes them: an mp4, a GIF, and a WEBM whose header gives no frame count."""
    for path in (good["clip.mp4"], good["anim.gif"], _stream_webm(tmp_path, 30)):
        every, fps = media.video(path)
        keys = media.video_keyframes(path, 4)
        assert keys.count == len(every) and keys.fps == pytest.approx(fps), path.name
        assert list(keys.indices) == list(media.spread_frames(len(every), 4))
        assert keys.indices[0] == 0 and keys.indices[-1] == len(every) - 1
        assert np.array_equal(keys.frames, every[keys.indices])
        streamed = media.video_frames(path)
        assert np.array_equal(np.stack(list(streamed)), every)
    assert list(media.spread_frames(3, 8)) == [0, 1, 2]  # a clip with fewer frames than wanted: all of them


def test_a_header_that_understates_the_length_is_cut_off_mid_stream_and_keyframes_are_reread(good, monkeypatch):
    """The header says 3 frames, the clip decodes to 12: the stream stops at the frame cap with the cap's sentence
    after yielding no more than it allows, and the keyframes are those of the 12 frames, not of the 3 said."""
    from backends.inputs.media import video_files

    probe = video_files._probe_clip

    def lying(*args):
        clip = probe(*args)
        return dataclasses.replace(clip, duration=clip.duration / 4)

    monkeypatch.setattr(video_files, "_probe_clip", lying)
    every, _ = media.video(good["clip.mp4"])
    keys = media.video_keyframes(good["clip.mp4"], 4)
    assert keys.count == 12 and list(keys.indices) == [0, 4, 7, 11]
    assert np.array_equal(keys.frames, every[[0, 4, 7, 11]])
    got = []
    with pytest.raises(InputError, match="more than 5 frames; at most 5 are allowed"):
        got.extend(media.video_frames(good["clip.mp4"], max_frames=5))
    assert len(got) == 5
    got.clear()
    with pytest.raises(InputError, match="longer than 0.25 s"):  # 12 fps, 0.5 s of slack: cut at the 10th frame
        got.extend(media.video_frames(good["clip.mp4"], max_seconds=0.25))
    assert len(got) == 9


@pytest.mark.parametrize("name", [n for n, (kind, expect) in hostile.CORPUS.items()
                                  if kind == "video" and expect == "reject"])
def test_each_hostile_clip_is_refused_by_the_keyframes_and_the_stream_before_a_frame(corpus, name):
    for read in (lambda path: media.video_keyframes(path, 4), lambda path: next(media.video_frames(path))):
        start = time.process_time()
        message = refused(read, corpus[name])
        assert time.process_time() - start < 2.0
        assert message == refused(media.video, corpus[name])  # the same check, the same sentence


def test_the_streams_decode_deadline_does_not_count_the_consumers_time(good):
    """0.6 s of decoding allowed; the consumer spends 0.1 s on each of 12 frames (1.2 s), and every frame comes."""
    frames = []
    for frame in media.video_frames(good["clip.mp4"], max_decode_seconds=0.6):
        time.sleep(0.1)
        frames.append(frame)
    assert len(frames) == 12


def test_video_path_with_odd_name_is_never_read_as_ffmpeg_options(good, tmp_path):
    odd = tmp_path / "-i concat:x|y.mp4"
    odd.write_bytes(good["clip.mp4"].read_bytes())
    assert media.video(odd)[0].shape[0] == 12


# ----------------------------------------------------------------------------------------------- SVG

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/></svg>'


def test_svg_precheck_passes_good_svg_through_unchanged(tmp_path):
    assert validate.svg_bytes(SVG) == SVG
    assert validate.svg_bytes(SVG.decode()) == SVG
    path = tmp_path / "a.svg"
    path.write_bytes(SVG)
    assert validate.svg_bytes(path) == SVG
    doctype = b'<?xml version="1.0"?><!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" "x.dtd">' + SVG
    assert validate.svg_bytes(doctype) == doctype
    utf16 = "\ufeff".encode("utf-16-le") + SVG.decode().encode("utf-16-le")
    assert validate.svg_bytes(b"\xff\xfe" + utf16[2:]) == b"\xff\xfe" + utf16[2:]
    latin = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + SVG.replace(b"</svg>", b"<text>\xe9</text></svg>")
    assert validate.svg_bytes(latin) == latin


@pytest.mark.parametrize("data, words", [
    (b"", "empty"), (b"\xff\xfe\x00", "UTF-16"), (b"<svg>\xff</svg>", "UTF-8"), (b"<html></html>", "<svg>"),
    (b'<?xml version="1.0" encoding="EBCDIC-X"?><svg/>', "encoding"), (SVG + b" " * (2 * 1024 * 1024), "2 MB"),
    (12, "text, bytes or a file path"),
])
def test_svg_precheck_refuses(data, words):
    assert words in refused(validate.svg_bytes, data)


@FAST
@given(st.binary(max_size=512) | st.text(max_size=200))
def test_svg_precheck_never_raises_anything_but_input_error(data):
    try:
        out = validate.svg_bytes(data)
    except InputError as err:
        assert_one_sentence(str(err))
        return
    assert isinstance(out, bytes)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_a_photo_with_a_large_icc_profile_is_read_and_sized(tmp_path, fmt):
    # an ICC profile (or APP13 block) past the 256 KB header read, full of FF DA pairs: once refused as "no
    # readable header" and, for a JPEG, as "more than 100 scans"
    from backends.core import budget

    path = tmp_path / f"photo.{fmt.lower()}"
    pixels = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path, format=fmt, icc_profile=b"\xff\xda" * 200_000)
    assert path.stat().st_size > media.HEADER_BYTES
    assert media.image(str(path)).size == (64, 48)
    assert budget.image_size(str(path)) == (64, 48)
    if fmt == "JPEG":
        assert media.jpeg_scans(path.read_bytes()) == 1  # the one real scan; the profile's FF DA pairs are skipped


def test_a_sound_only_file_is_said_to_have_no_pictures_not_to_be_damaged(tmp_path):
    import imageio_ffmpeg

    path = tmp_path / "voice.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=frequency=440:duration=1", "-c:a", "aac", str(path)], check=True, capture_output=True,
                   timeout=60)
    assert "holds only sound, no pictures" in refused(media.video, path)


def test_a_long_path_in_a_message_keeps_its_file_name_and_a_short_one_is_whole():
    deep = "/tmp/" + "a-long-folder-name/" * 10 + "none.toml"
    shown = validate.quote_path(deep)
    assert shown.endswith("/none.toml'") and shown.startswith("'...") and len(shown) == 82, shown
    assert validate.quote_path(Path("/tmp/spec.toml")) == "'/tmp/spec.toml'"
    assert validate.quote_path("/tmp/bad\nname") == "'/tmp/bad?name'"  # one line, whatever the name holds


@pytest.mark.parametrize("name, junk", [
    ("__MACOSX/views/._front.png", True), ("views/._front.png", True), (".DS_Store", True), ("views/Thumbs.db", True),
    ("Desktop.ini", True), ("views\\._front.png", True),
    ("front.png", False), (".front.png", False), ("views/.side.png", False), ("macosx/front.png", False),
])
def test_archiver_junk_is_macos_and_file_browser_files_not_every_dotfile(name, junk):
    assert media.is_archiver_junk(name) is junk


def test_the_view_validator_and_the_budget_count_the_same_zip_members(tmp_path):
    """The budget reads the sizes of the members the validator will decode (one junk rule): a dotfile view counts
    in both, the archiver's files in neither."""
    from backends.core import budget

    def png(w, h):
        buf = io.BytesIO()
        Image.new("RGB", (w, h), "red").save(buf, "PNG")
        return buf.getvalue()

    path = tmp_path / "views.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("view1.png", png(64, 48))
        zf.writestr(".view2.png", png(80, 48))
        zf.writestr("__MACOSX/._view1.png", b"junk")
        zf.writestr("._view1.png", png(32, 32))
        zf.writestr(".DS_Store", b"junk")
    views = media.images(str(path))
    assert sorted(im.size for im in views) == sorted(budget.zip_sizes(str(path), limit=10)) == [(64, 48), (80, 48)]
