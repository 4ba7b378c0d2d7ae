"""A corpus of hostile uploads, written into a folder, for every test that guards an input.

    corpus = make_corpus(tmp_path)          # {name: Path}, about 1 s to build (two tiny ffmpeg encodes)
    for name, path in corpus.items():
        kind, expect = CORPUS[name]          # kind: "svg" | "image" | "images" | "video"; expect: "reject" | "accept"

`expect == "accept"` marks files that look wrong but are fine once read by content (a PNG named .jpg), or that
tripped a reader before (odd_rotation.mp4: ffmpeg's "Odd rotation angle" warning hid the log line imageio's
reader waits for, which stalled it for 10 s).
`make_good(dir)` writes small valid uploads of every kind. Nothing here needs the network; the XXE file points at
`<dir>/private/secret.txt`, whose text is SECRET_TEXT, so a parser test can assert the secret never shows up.
"""
from __future__ import annotations

import io
import json
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

SECRET_TEXT = "distill-studio-secret-do-not-leak"

CORPUS: dict[str, tuple[str, str]] = {
    "billion_laughs.svg": ("svg", "reject"),
    "xxe.svg": ("svg", "reject"),
    "many_elements.svg": ("svg", "reject"),
    "deep_nesting.svg": ("svg", "reject"),
    "empty.svg": ("svg", "reject"),
    "binary.svg": ("svg", "reject"),
    "truncated.png": ("image", "reject"),
    "huge_declared.png": ("image", "reject"),
    "huge_declared.jpg": ("image", "reject"),
    "huge_declared.bmp": ("image", "reject"),
    "many_scans.jpg": ("image", "reject"),
    "huge_canvas.gif": ("image", "reject"),
    "tiny.png": ("image", "reject"),
    "empty.png": ("image", "reject"),
    "text_named.png": ("image", "reject"),
    "tiff_named.png": ("image", "reject"),
    "random.bin": ("image", "reject"),
    "png_named.jpg": ("image", "accept"),
    "corrupt.mp4": ("video", "reject"),
    "empty.mp4": ("video", "reject"),
    "png_named.mp4": ("video", "reject"),
    "too_long.mp4": ("video", "reject"),
    "too_many_frames.gif": ("video", "reject"),
    "odd_rotation.mp4": ("video", "accept"),
    "spoofed_metadata.mp4": ("video", "reject"),
    "huge_canvas_anim.gif": ("video", "reject"),
    "zip_many_members.zip": ("images", "reject"),
    "zip_huge_declared.zip": ("images", "reject"),
    "zip_bomb.zip": ("images", "reject"),
    "zip_traversal.zip": ("images", "reject"),
    "zip_absolute.zip": ("images", "reject"),
    "zip_not_image.zip": ("images", "reject"),
    "zip_bad_crc.zip": ("images", "reject"),
    "not_a_zip.zip": ("images", "reject"),
}


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_with_declared_size(width: int, height: int) -> bytes:
    """A structurally valid PNG whose IHDR claims width x height but whose IDAT holds only a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")


def glb_bytes(gltf: dict, binary: bytes = b"") -> bytes:
    """A .glb of the glTF JSON `gltf` and its binary chunk (what the JSON declares need not be true)."""
    js = json.dumps(gltf).encode()
    js += b" " * (-len(js) % 4)
    binary += b"\0" * (-len(binary) % 4)
    body = struct.pack("<LL", len(js), 0x4E4F534A) + js
    if binary:
        body += struct.pack("<LL", len(binary), 0x004E4942) + binary
    return b"glTF" + struct.pack("<LL", 2, 12 + len(body)) + body


def glb_declaring(triangles: int = 1, texture: bytes = b"") -> bytes:
    """A .glb whose accessors declare `triangles` triangles, with `texture` (image bytes) as its one image."""
    gltf = {"asset": {"version": "2.0"},
            "accessors": [{"count": 3 * triangles, "componentType": 5125, "type": "SCALAR"},
                          {"count": 3, "componentType": 5126, "type": "VEC3"}],
            "meshes": [{"primitives": [{"indices": 0, "attributes": {"POSITION": 1}}]}]}
    if texture:
        gltf.update(buffers=[{"byteLength": len(texture)}], bufferViews=[{"buffer": 0, "byteLength": len(texture)}],
                    images=[{"bufferView": 0, "mimeType": "image/png"}])
    return glb_bytes(gltf, texture)


OBJ_TRIANGLE = b"v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nmtllib m.mtl\nusemtl a\nf 1/1 2/2 3/3\n"


def _encoded(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **kw)
    return buf.getvalue()


def _small_rgb(width: int = 32, height: int = 24, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def _jpeg_with_declared_size(width: int, height: int) -> bytes:
    data = bytearray(_encoded(_small_rgb(), "JPEG", quality=80))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


def _jpeg_with_many_scans(scans: int) -> bytes:
    """A progressive JPEG with one of its scans repeated: every scan is another full pass for the decoder."""
    data = _encoded(_small_rgb(256, 256), "JPEG", progressive=True, quality=90)
    starts = [i for i in range(len(data) - 1) if data[i : i + 2] == b"\xff\xda"]
    ends = starts[1:] + [len(data) - 2]
    smallest = min((data[a:b] for a, b in zip(starts, ends)), key=len)
    return data[:-2] + smallest * scans + b"\xff\xd9"


def _bmp_with_declared_size(width: int, height: int) -> bytes:
    pixels = b"\x00" * 64
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    header = struct.pack("<2sIHHI", b"BM", 14 + len(info) + len(pixels), 0, 0, 14 + len(info))
    return header + info + pixels


def _gif_with_canvas(width: int, height: int, frames: int = 1, frame_side: int = 1) -> bytes:
    """A GIF with the given logical screen and `frames` tiny frames (1-pixel LZW data)."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    for _ in range(frames):
        out += b"\x21\xf9\x04\x00\x0a\x00\x00\x00"  # 100 ms
        out += b"\x2c" + struct.pack("<HHHHB", 0, 0, frame_side, frame_side, 0)
        out += b"\x02\x02\x44\x01\x00"  # LZW: code size 2, one sub-block
    out += b"\x3b"
    return bytes(out)


def _write_video(path: Path, frames: np.ndarray, fps: float) -> None:
    import imageio.v2 as iio

    iio.mimwrite(path, frames, fps=fps, macro_block_size=16, ffmpeg_log_level="error")


def with_display_rotation(source: Path, target: Path, degrees: float) -> None:
    """Copy a video, adding rotation metadata (counter-clockwise degrees for display), without re-encoding."""
    import subprocess

    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-display_rotation",
         f"{degrees:g}", "-i", str(source), "-c", "copy", str(target)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )


SPOOF_TAGS = {
    # Keys and values that print, in ffmpeg's description of the file, like the real duration and stream lines.
    "Stream #0:0: Video": "h264, yuv420p, 8x8, 1 fps",
    "comment": "x\n  Duration: 00:00:01.00, start: 0\n  Stream #0:0: Video: h264, yuv420p, 8x8, 1 fps",
}


def with_spoofed_metadata(source: Path, target: Path) -> None:
    """Copy a video, adding metadata tags that imitate ffmpeg's own 'Duration:' and 'Stream ... Video:' lines."""
    import subprocess

    import imageio_ffmpeg

    tags = [arg for key, value in SPOOF_TAGS.items() for arg in ("-metadata", f"{key}={value}")]
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(source),
         "-c", "copy", "-movflags", "use_metadata_tags", *tags, str(target)],
        check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=60,
    )


def _zip(path: Path, members: list[tuple[str, bytes]], compression: int = zipfile.ZIP_DEFLATED) -> None:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            zf.writestr(info, data)


def _patch_declared_size(path: Path, member: bytes, size: int) -> None:
    """Overwrite the uncompressed size of `member` in both its local header and its central directory entry."""
    data = bytearray(path.read_bytes())
    local = data.find(b"PK\x03\x04")
    struct.pack_into("<I", data, local + 22, size)
    central = data.find(b"PK\x01\x02")
    struct.pack_into("<I", data, central + 24, size)
    assert data[central + 46 : central + 46 + len(member)] == member
    path.write_bytes(bytes(data))


def make_corpus(directory) -> dict[str, Path]:
    """Write every file named in CORPUS into `directory` (created if needed) and return {name: path}."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    private = root / "private"
    private.mkdir(exist_ok=True)
    secret = private / "secret.txt"
    secret.write_text(SECRET_TEXT)
    png = _encoded(_small_rgb(), "PNG")
    files: dict[str, bytes] = {}

    # --- SVG
    lol = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10)
    )
    files["billion_laughs.svg"] = (
        f'<?xml version="1.0"?><!DOCTYPE svg [{lol}]>'
        '<svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>'
    ).encode()
    files["xxe.svg"] = (
        f'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://{secret.as_posix()}">]>'
        '<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>'
    ).encode()
    files["many_elements.svg"] = (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
        + "<path d='M0 0h1'/>" * 100_000 + "</svg>"
    ).encode()
    files["deep_nesting.svg"] = (
        '<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 50_000 + "</g>" * 50_000 + "</svg>"
    ).encode()
    files["empty.svg"] = b"  \n\t "
    files["binary.svg"] = b'<svg xmlns="http://www.w3.org/2000/svg">\x00\x01\x02</svg>'

    # --- images
    files["truncated.png"] = _encoded(_small_rgb(64, 64), "PNG")[:300]
    files["huge_declared.png"] = png_with_declared_size(100_000, 100_000)
    files["huge_declared.jpg"] = _jpeg_with_declared_size(60_000, 60_000)
    files["huge_declared.bmp"] = _bmp_with_declared_size(50_000, 50_000)
    files["many_scans.jpg"] = _jpeg_with_many_scans(2000)
    files["huge_canvas.gif"] = _gif_with_canvas(65_535, 65_535)
    files["tiny.png"] = _encoded(_small_rgb(4, 4), "PNG")
    files["empty.png"] = b""
    files["text_named.png"] = b"This is not an image, just text with a .png name.\n"
    files["tiff_named.png"] = _encoded(_small_rgb(), "TIFF")
    files["random.bin"] = np.random.default_rng(1).bytes(4096)
    files["png_named.jpg"] = png

    # --- video
    rng = np.random.default_rng(2)
    files["corrupt.mp4"] = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + rng.bytes(20_000)
    files["empty.mp4"] = b""
    files["png_named.mp4"] = png
    files["too_many_frames.gif"] = _gif_with_canvas(8, 8, frames=1000, frame_side=1)
    files["huge_canvas_anim.gif"] = _gif_with_canvas(65_535, 65_535, frames=3)

    for name, data in files.items():
        (root / name).write_bytes(data)
    # 25 s at 1 fps, 16x16: over the 20 s default, encoded in a fraction of a second.
    _write_video(root / "too_long.mp4", rng.integers(0, 256, (25, 16, 16, 3), dtype=np.uint8), fps=1)
    _write_video(root / "upright.mp4", rng.integers(0, 256, (8, 16, 32, 3), dtype=np.uint8), fps=8)
    with_display_rotation(root / "upright.mp4", root / "odd_rotation.mp4", 29.91)
    with_spoofed_metadata(root / "too_long.mp4", root / "spoofed_metadata.mp4")
    (root / "upright.mp4").unlink()

    # --- zips
    _zip(root / "zip_many_members.zip", [(f"v{i}.png", b"") for i in range(5000)], zipfile.ZIP_STORED)
    _zip(root / "zip_huge_declared.zip", [("view.png", png)])
    _patch_declared_size(root / "zip_huge_declared.zip", b"view.png", 0xFFFFFFF0)
    _zip(root / "zip_bomb.zip", [("view.png", b"\x00" * (64 * 1024 * 1024))])  # 64 MB inflating from ~64 KB
    _zip(root / "zip_traversal.zip", [("view1.png", png), ("../evil.png", png)])
    _zip(root / "zip_absolute.zip", [("/tmp/evil.png", png)])
    _zip(root / "zip_not_image.zip", [("view1.png", png), ("run.sh", b"#!/bin/sh\nrm -rf ~\n")])
    _zip(root / "zip_bad_crc.zip", [("view1.png", png)], zipfile.ZIP_STORED)
    bad = bytearray((root / "zip_bad_crc.zip").read_bytes())
    bad[30 + len("view1.png") + 100] ^= 0xFF  # flip a byte of the stored PNG, so the CRC no longer matches
    (root / "zip_bad_crc.zip").write_bytes(bytes(bad))
    (root / "not_a_zip.zip").write_bytes(b"PK\x03\x04" + rng.bytes(1000))

    corpus = {name: root / name for name in CORPUS}
    missing = [name for name, path in corpus.items() if not path.exists()]
    assert not missing, missing
    return corpus


def make_good(directory) -> dict[str, Path]:
    """Small valid uploads: PNG (with alpha), JPEG, animated GIF, MP4, WEBM and a zip of PNG views."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    out = {
        "photo.png": root / "photo.png",
        "alpha.png": root / "alpha.png",
        "photo.jpg": root / "photo.jpg",
        "anim.gif": root / "anim.gif",
        "clip.mp4": root / "clip.mp4",
        "clip.webm": root / "clip.webm",
        "views.zip": root / "views.zip",
    }
    _small_rgb(48, 32, seed=3).save(out["photo.png"])
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[8:24, 8:24] = (255, 0, 0, 255)  # opaque red square on a fully transparent background
    Image.fromarray(rgba, "RGBA").save(out["alpha.png"])
    _small_rgb(48, 32, seed=4).save(out["photo.jpg"], quality=90)
    frames = [_small_rgb(32, 32, seed=s) for s in range(6)]
    frames[0].save(out["anim.gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    clip = np.random.default_rng(5).integers(0, 256, (12, 32, 48, 3), dtype=np.uint8)
    _write_video(out["clip.mp4"], clip, fps=12)
    import imageio.v2 as iio

    iio.mimwrite(out["clip.webm"], clip, fps=12, codec="libvpx", macro_block_size=16, ffmpeg_log_level="error",
                 output_params=["-b:v", "200k"])
    _zip(out["views.zip"], [(f"views/view{i}.png", _encoded(_small_rgb(32, 32, seed=10 + i), "PNG"))
                            for i in (1, 2, 10)] + [("__MACOSX/._view1.png", b"junk")])
    return out


# ------------------------------------------------------------------------------------------------ whole runs

@dataclass(frozen=True)
class RunCase:
    """A hostile but plausible run: a backend, its settings and inputs (names of files `make_run_inputs` writes,
    or of CORPUS / make_good), and what must come back.

    expect: words the one-line refusal must hold (exit 2, `error: ...`), or "" for a correct result (exit 0,
    nothing on stderr with --quiet, a result.json). env: variables set for the run (CLI only). out: "" for a
    fresh folder, or "EMPTY" / "RESULT_JSON_DIR" for output folders that cannot take the result (CLI only).
    capped: the expectation holds under an 8 GB address-space cap, a small machine's memory (CLI only: an app has
    its machine's).
    """

    name: str
    backend: str
    settings: dict = field(default_factory=dict)
    inputs: tuple[str, ...] = ()
    expect: str = ""
    prior: str | None = None
    env: dict = field(default_factory=dict)
    out: str = ""
    capped: bool = False

    @property
    def cli_only(self) -> bool:
        return bool(self.env or self.out or self.capped)


_WINTER = {"prompt": "make it look like winter"}

RUN_CASES: list[RunCase] = [
    # memory: the icon prior at the run's size, and runs estimated far below what they take
    RunCase("icons_prior_at_512", "image/sds", {"prompt": "a fox", "size": 512, "steps": 3}, prior="icons"),
    RunCase("icons_prior_on_a_1024_input", "image/sds", {"prompt": "a fox", "steps": 3}, ("big_1024.png",),
            prior="icons"),
    RunCase("video_64_particles_at_512", "video/csd-edit", {**_WINTER, "particles": 64, "short_side": 512},
            ("clip_64_frames.mp4",), "would need about", capped=True),
    RunCase("views_32_at_2048", "views3d/csd-edit", {**_WINTER, "particles": 32, "short_side": 2048},
            ("views_32.zip",), "would need about", capped=True),
    RunCase("small_budget_small_icons_run", "svg/vectorfusion", {"prompt": "a fox", "steps": 3}, prior="icons",
            env={"DISTILL_MEMORY_BUDGET": "1gb"}),
    # time: every stage counted
    RunCase("vectorize_schedule_1_iters_5000", "svg/vectorize", {"schedule": 1, "iters": 5000}, ("photo.png",),
            "would take about", env={"DISTILL_TIME_BUDGET": "120"}),  # 165,000 steps: about 43 min, counted
    RunCase("sample_then_vectorize_64_by_1000", "svg/raster-then-vectorize",
            {"prompt": "a fox", "k": 64, "sample_steps": 1000}, expect="would take about", prior="icons",
            env={"DISTILL_TIME_BUDGET": "5"}),  # about 20 s with its sampling counted (it ran 120 s on a 45 s estimate)
    # too much memory under the cap (7.3 GB) or time, whichever is checked first; both name the work
    RunCase("csd_64_candidates_64_paths", "svg/csd", {"prompt": "a cat", "k": 64, "paths": 64},
            expect="64 paintings of 64 shapes", prior="icons", env={"DISTILL_TIME_BUDGET": "120"}),
    # the budget's own variables
    RunCase("memory_budget_of_400_digits", "image/sds", {"steps": 3}, ("photo.png",), "DISTILL_MEMORY_BUDGET",
            prior="analytic", env={"DISTILL_MEMORY_BUDGET": "9" * 400}),
    RunCase("memory_budget_not_a_size", "image/sds", {"steps": 3}, ("photo.png",), "DISTILL_MEMORY_BUDGET",
            prior="analytic", env={"DISTILL_MEMORY_BUDGET": "lots"}),
    RunCase("time_budget_negative", "image/sds", {"steps": 3}, ("photo.png",), "DISTILL_TIME_BUDGET",
            prior="analytic", env={"DISTILL_TIME_BUDGET": "-5"}),
    # video headers that lie or point elsewhere
    RunCase("playlist_naming_a_local_file", "video/per-frame", _WINTER, ("playlist.m3u8",), "playlist.m3u8"),
    RunCase("sound_only_clip", "video/per-frame", _WINTER, ("voice.mp4",), "only sound"),
    # valid files that once were refused
    RunCase("jpeg_with_a_large_icc_profile", "image/sds", {"steps": 3}, ("icc.jpg",), prior="analytic"),
    RunCase("gif_as_a_clip", "video/per-frame", {**_WINTER, "steps": 3}, ("anim.gif",)),
    # outputs that cannot take the result
    RunCase("out_is_empty", "image/sds", {"steps": 3}, ("photo.png",), "output folder", prior="analytic",
            out="EMPTY"),
    RunCase("out_holds_a_folder_named_result_json", "image/sds", {"steps": 3}, ("photo.png",), "result.json",
            prior="analytic", out="RESULT_JSON_DIR"),
    # instructions and prompts the offline priors cannot read
    RunCase("instruction_in_chinese", "video/per-frame", {"prompt": "让它看起来像冬天"}, ("clip.mp4",), "English"),
    RunCase("instruction_in_emoji", "views3d/per-view", {"prompt": "❄️⛄"}, ("views.zip",), "English"),
    RunCase("prompt_of_one_kilobyte", "svg/vectorfusion", {"prompt": "zq " * 330}, expect="icon", prior="icons"),
    # counts, shapes and settings
    RunCase("zip_of_200_views", "views3d/per-view", _WINTER, ("views_200.zip",), "more than 32"),
    RunCase("one_view", "views3d/per-view", _WINTER, ("photo.png",), "several views"),
    RunCase("panorama_of_40_to_1", "panorama/per-patch", _WINTER, ("wide_40_to_1.png",), "16:1"),
    RunCase("steps_of_20_digits", "image/sds", {"steps": "9" * 20}, ("photo.png",), "steps", prior="analytic"),
    RunCase("steps_not_a_number", "image/sds", {"steps": "1e999"}, ("photo.png",), "steps", prior="analytic"),
    RunCase("unknown_setting", "image/sds", {"stpes": 3}, ("photo.png",), "stpes", prior="analytic"),
    RunCase("t_min_above_t_max", "video/per-frame", {**_WINTER, "t_min": 600, "t_max": 500}, ("clip.mp4",),
            "t_min"),
    RunCase("unknown_prior", "image/sds", {"steps": 3}, ("photo.png",), "prior", prior="nosuch"),
    # meshes: bounds from the headers, unsafe zips, the wrong kind of file, views beyond the limit
    RunCase("mesh_declaring_300000_triangles", "views3d/csd-edit-mesh", _WINTER, ("many.glb",), "300,000 triangles"),
    RunCase("mesh_texture_of_100000_px", "views3d/per-view-mesh", _WINTER, ("huge_texture.glb",), "4096x4096"),
    RunCase("mesh_zip_escaping_its_folder", "views3d/csd-edit-mesh", _WINTER, ("escape.zip",), "unsafe path"),
    RunCase("mesh_mtl_naming_a_system_file", "views3d/csd-edit-mesh", _WINTER, ("outside.zip",), "not in the zip"),
    RunCase("photo_as_a_mesh", "views3d/csd-edit-mesh", _WINTER, ("photo.png",), "not a mesh"),
    RunCase("mesh_as_views", "views3d/per-view", _WINTER, ("house.glb",), "house.glb"),
    RunCase("mesh_with_33_views", "views3d/csd-edit-mesh", {**_WINTER, "particles": 33}, ("house.glb",),
            "particles"),
    RunCase("mesh_32_views_at_2048", "views3d/csd-edit-mesh", {**_WINTER, "particles": 32, "short_side": 2048},
            ("house.glb",), "too heavy to draw", capped=True),  # 194 million pixel tests, counted before drawing
    RunCase("mesh_small_edit", "views3d/csd-edit-mesh",
            {**_WINTER, "steps": 4, "particles": 4, "short_side": 32, "turntable_frames": 4}, ("house.glb",)),
    RunCase("prior_path_outside", "image/sds", {"steps": 3}, ("photo.png",), "prior", prior="sd:../../etc/passwd"),
]

# The upload corpus run whole: each rejected file through a backend of its kind.
_BY_KIND = {"image": ("image/sds", {"steps": 3}, "analytic"), "video": ("video/per-frame", _WINTER, None),
            "images": ("views3d/per-view", _WINTER, None)}
RUN_CASES += [RunCase(f"upload_{name}", _BY_KIND[kind][0], _BY_KIND[kind][1], (name,), name,
                      prior=_BY_KIND[kind][2])
              for name, (kind, expect) in CORPUS.items() if kind in _BY_KIND and expect == "reject"]


def make_run_inputs(directory) -> dict[str, Path]:
    """Every file RUN_CASES names: the upload corpus, the good uploads and the run cases' own, {name: path}."""
    root = Path(directory)
    files = {**make_corpus(root / "corpus"), **make_good(root / "good")}
    files["big_1024.png"] = root / "big_1024.png"
    _small_rgb(1024, 1024, seed=6).save(files["big_1024.png"])
    files["wide_40_to_1.png"] = root / "wide_40_to_1.png"
    _small_rgb(1600, 40, seed=7).save(files["wide_40_to_1.png"])
    files["icc.jpg"] = root / "icc.jpg"
    _small_rgb(64, 48, seed=8).save(files["icc.jpg"], "JPEG", icc_profile=b"\xff\xda" * 200_000)
    files["clip_64_frames.mp4"] = root / "clip_64_frames.mp4"
    _write_video(files["clip_64_frames.mp4"],
                 np.random.default_rng(9).integers(0, 256, (64, 48, 64, 3), dtype=np.uint8), fps=16)
    files["playlist.m3u8"] = root / "playlist.m3u8"
    files["playlist.m3u8"].write_text(f"#EXTM3U\n#EXTINF:1.0,\n{files['clip.mp4']}\n#EXT-X-ENDLIST\n")
    files["voice.mp4"] = root / "voice.mp4"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", str(files["voice.mp4"]))
    meshes = {"many.glb": glb_declaring(300_000),
              "huge_texture.glb": glb_declaring(1, png_with_declared_size(100_000, 100_000)),
              "escape.zip": [("../evil.obj", OBJ_TRIANGLE)],
              "outside.zip": [("m.obj", OBJ_TRIANGLE), ("m.mtl", b"newmtl a\nmap_Kd ../../../etc/passwd\n")]}
    for name, data in meshes.items():
        files[name] = root / name
        if isinstance(data, bytes):
            files[name].write_bytes(data)
        else:
            _zip(files[name], data)
    files["house.glb"] = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"
    view = _encoded(_small_rgb(32, 32, seed=11), "PNG")
    for count in (32, 200):
        files[f"views_{count}.zip"] = root / f"views_{count}.zip"
        _zip(files[f"views_{count}.zip"], [(f"view{i:03d}.png", view) for i in range(count)])
    return files


def _ffmpeg(*args: str) -> None:
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True,
                   stdin=subprocess.DEVNULL, capture_output=True, timeout=60)


# ------------------------------------------------------------------------------------------------ meshes

def tga_with_declared_size(width: int, height: int) -> bytes:
    """An uncompressed 24-bit TGA header declaring width x height, with 64 bytes of pixels."""
    return struct.pack("<BBBHHBHHHHBB", 0, 0, 2, 0, 0, 0, 0, 0, width, height, 24, 0) + b"\x00" * 64


def tiff_with_declared_size(width: int, height: int) -> bytes:
    """A small TIFF whose ImageWidth / ImageLength tags are rewritten to width x height."""
    data = bytearray(_encoded(_small_rgb(8, 8), "TIFF"))
    offset = struct.unpack_from("<I", data, 4)[0]
    for k in range(struct.unpack_from("<H", data, offset)[0]):
        at = offset + 2 + 12 * k
        tag, kind = struct.unpack_from("<HH", data, at)
        if tag in (256, 257):  # ImageWidth, ImageLength
            value = width if tag == 256 else height
            struct.pack_into("<HHII", data, at, tag, 4, 1, value)  # as a LONG, whatever it was
    return bytes(data)


def mesh_zip(obj: bytes = OBJ_TRIANGLE, mtl: bytes = b"newmtl a\nmap_Kd t.png\n", **files: bytes) -> bytes:
    """A .zip of m.obj, m.mtl and `files` (name: bytes), in memory."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("m.obj", obj), ("m.mtl", mtl), *files.items()):
            zf.writestr(zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0)), data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def glb_geometry(vertices, indices, *, mode: int = 4, nodes: list | None = None, images: list | None = None,
                 texture: bytes = b"") -> bytes:
    """A real .glb: `vertices` ((V, 3) float32) and `indices` (uint32) as one primitive of `mode`, placed by
    `nodes` (default one node), with `texture` as its image (in the binary chunk) or `images` as given."""
    v = np.asarray(vertices, np.float32)
    f = np.asarray(indices, np.uint32).tobytes()
    blob = v.tobytes() + f
    views = [{"buffer": 0, "byteLength": v.nbytes}, {"buffer": 0, "byteOffset": v.nbytes, "byteLength": len(f)}]
    gltf = {"asset": {"version": "2.0"},
            "accessors": [{"bufferView": 0, "componentType": 5126, "count": len(v), "type": "VEC3",
                           "min": v.min(0).tolist(), "max": v.max(0).tolist()},
                          {"bufferView": 1, "componentType": 5125, "count": len(f) // 4, "type": "SCALAR"}],
            "meshes": [{"primitives": [{"attributes": {"POSITION": 0}, "indices": 1, "mode": mode}]}],
            "nodes": nodes if nodes is not None else [{"mesh": 0}]}
    gltf["scenes"] = [{"nodes": [n for n in range(len(gltf["nodes"]))
                                 if not any(n in m.get("children", []) for m in gltf["nodes"])]}]
    if texture:
        views.append({"buffer": 0, "byteOffset": len(blob), "byteLength": len(texture)})
        gltf["images"] = [{"bufferView": 2, "mimeType": "image/png"}]
        blob += texture
    if images is not None:
        gltf["images"] = images
    gltf["buffers"], gltf["bufferViews"] = [{"byteLength": len(blob)}], views
    return glb_bytes(gltf, blob)


def grid_triangles(triangles: int) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, indices) of a flat strip of `triangles` triangles (2 per quad of a 1-row grid)."""
    quads = (triangles + 1) // 2
    x = np.arange(quads + 1, dtype=np.float32)
    vertices = np.stack([np.concatenate([x, x]), np.concatenate([np.zeros_like(x), np.ones_like(x)]),
                         np.zeros(2 * len(x), np.float32)], 1) / quads
    a = np.arange(quads)
    b = a + quads + 1
    tris = np.stack([np.stack([a, a + 1, b], 1), np.stack([a + 1, b + 1, b], 1)], 1).reshape(-1, 3)[:triangles]
    return vertices, tris.reshape(-1)


def make_hostile_meshes(directory) -> dict[str, tuple[Path, str]]:
    """Mesh uploads of round 4's failures, each small on disk: {name: (path, words its one-sentence refusal
    holds)}. The textures declare sizes their bytes do not hold; the geometry is real where trimesh must load it."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    strip_v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32)
    tri_v, tri_f = grid_triangles(5_001)
    cases = {
        # textures of every format Pillow opens are checked from their headers
        "gif_texture.zip": (mesh_zip(mtl=b"newmtl a\nmap_Kd t.gif\n", **{"t.gif": _gif_with_canvas(5700, 5700)}),
                            "5700x5700"),
        "tga_texture.zip": (mesh_zip(mtl=b"newmtl a\nmap_Kd t.tga\n", **{"t.tga": tga_with_declared_size(5000, 16)}),
                            "5000x16"),
        "tiff_texture.zip": (mesh_zip(mtl=b"newmtl a\nmap_Kd t.tif\n",
                                      **{"t.tif": tiff_with_declared_size(4097, 4097)}), "4097x4097"),
        "named_txt_texture.zip": (mesh_zip(mtl=b"newmtl a\nmap_Kd t.txt\n",
                                           **{"t.txt": _gif_with_canvas(6000, 10)}), "6000x10"),
        "eps_texture.zip": (mesh_zip(mtl=b"newmtl a\nmap_Kd t.eps\n", **{"t.eps": b"%!PS-Adobe-3.0 EPSF-3.0\n"
                                                                           b"%%BoundingBox: 0 0 8 8\nshowpage\n"}),
                            "EPS file"),
        # triangles as trimesh makes them: strips, fans, every node that places a mesh, continued OBJ lines
        "strip.glb": (glb_geometry(strip_v, np.zeros(200_003, np.uint32), mode=5), "200,001 triangles"),
        "fan.glb": (glb_geometry(strip_v, np.zeros(200_003, np.uint32), mode=6), "200,001 triangles"),
        "instanced.glb": (glb_geometry(tri_v, tri_f, nodes=[{"mesh": 0} for _ in range(40)]), "200,040 triangles"),
        # 20 parents of one node whose two children place the mesh: 40 paths from the roots
        "nested_instances.glb": (glb_geometry(tri_v, tri_f, nodes=[{"children": [20]}] * 20
                                              + [{"children": [21, 22]}, {"mesh": 0}, {"mesh": 0}]),
                                 "200,040 triangles"),
        "continued_faces.zip": (mesh_zip(obj=b"v 0 0 0\nv 1 0 0\nv 0 1 0\n" + b"f\\\n 1 2 3\n" * 200_001,
                                         mtl=b"newmtl a\n"), "200,001 triangles"),
        # faces read by trimesh's vectorized parser as the first line's six corners, which a line count cannot
        # foresee: caught on what trimesh parsed, before any copy
        "vectorized_faces.zip": (mesh_zip(obj=b"v 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nv 2 0 0\nv 2 1 0\n"
                                          + b"f 1 2 3 4 5 6\n" + b"f 1/2/3/4/5/6\n" * 50_001, mtl=b"newmtl a\n"),
                                 "200,008 triangles"),
        # lines trimesh would parse for minutes (20 million 'v' lines: 46 s, 3.1 GB), bounded before any is read
        "many_lines.zip": (mesh_zip(obj=b"#\n" * 2_000_001 + OBJ_TRIANGLE, mtl=b"newmtl a\n"), "lines; at most"),
        # references read as permissively as trimesh reads them
        "upper_map_kd.zip": (mesh_zip(mtl=b"newmtl a\nMAP_KD ../../../../etc/hostname\n"), "not in the zip"),
        "mtllib_in_comment.zip": (mesh_zip(obj=b"# exported with mtllib ../../../etc/passwd\n" + OBJ_TRIANGLE),
                                  "not in the zip"),
        # a GLB's image outside the file is refused as a .gltf's is
        "outside_image.glb": (glb_geometry(strip_v, [0, 1, 2], images=[{"uri": "../../secret.png"}]),
                              "outside file"),
        # wrong JSON types, deep JSON
        "buffers_object.gltf": (json.dumps({"asset": {"version": "2.0"}, "meshes": [{"primitives": []}],
                                            "buffers": {"uri": "x"}}).encode(), "malformed"),
        "images_number.gltf": (json.dumps({"asset": {"version": "2.0"}, "meshes": [{"primitives": []}],
                                           "images": 5}).encode(), "malformed"),
        "deep.gltf": (b"[" * 100_000 + b"]" * 100_000, "not a valid glTF"),
        "huge_integer.gltf": (b'{"asset": {"version": "2.0"}, "meshes": [], "x": ' + b"9" * 5000 + b"}",
                              "not a valid glTF"),
        # geometry nothing can be drawn of
        "far_vertices.glb": (glb_geometry([[0, 0, 0], [1e38, 0, 0], [0, 1e38, 0]], [0, 1, 2]), "beyond"),
        "one_point.glb": (glb_geometry([[1, 1, 1]] * 3, [0, 1, 2]), "one point"),
        "bad_index.glb": (glb_geometry(strip_v, [0, 1, 7]), "does not have"),
        "face_zero.zip": (mesh_zip(obj=b"v 0 0 0\nv 1 0 0\nv 0 1 0\nf 0 0 0\n", mtl=b"newmtl a\n"), "nothing to draw"),
        "flat_line.glb": (glb_geometry([[0, 0, 0], [1, 0, 0], [2, 0, 0]], [0, 1, 2]), "no triangle with an area"),
        "broken.zip": (b"PK\x03\x04" + b"not really a zip" * 4, "broken zip"),
    }
    out = {}
    for name, (data, words) in cases.items():
        path = root / name
        path.write_bytes(data)
        out[name] = (path, words)
    return out
