"""The app's resident memory while hostile uploads of at most 200 MB land, are looked at, and run: issue 36's
target is that no upload makes the server hold more than 2 GB at any time, before or after Run.

    python -m benchmarks.upload_memory --quick      # each upload as an API client sends it
    python -m benchmarks.upload_memory              # and each through Chromium as a person's browser sends it

The real app is started (tests/app_server.py: `python app.py`, offline, CPU). Each upload goes to its tab's slot as
an API client sends it (gradio_client: the file uploaded, then `<tab>_run`) and, without --quick, as a browser
does (Playwright in Debian's Chromium: the file set on the slot's input, which runs the slot's viewer for a mesh,
then Run pressed). The server's resident memory (its process and every child, from /proc) is sampled every
SAMPLE_S. The table gives each upload's peak before Run (from the upload's start until it and what it set off
settle), its peak during Run, what the server holds once the run is done, and the run's outcome (its first line).
Prints a Markdown table and appends it to benchmarks/RESULTS.md and benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import struct
import sys
import tempfile
import threading
import time
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backends.inputs.validate import MB, human_size
from demo.launch import UPLOAD_LIMIT_BYTES

from .common import append_results, device_name, load_note

SAMPLE_S = 0.05
TARGET_BYTES = 2 * 1024 ** 3  # issue 36: never more than 2 GB held
SETTLE_S = 1.0  # the server is settled once its processes used under 5 % of a core for this long
SETTLE_LIMIT_S = 180.0
RUN_LIMIT_S = 600.0
PAGE = 4096


# ------------------------------------------------------------------------------------------------ the server's memory

def tree(pid: int) -> list[int]:
    """`pid` and every process below it, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


# a process's memory map in /proc/<pid>/stat (fields after the name): vsize, startcode, endcode, startstack
MAP_FIELDS = (20, 23, 24, 25)


def rss_and_cpu(pid: int) -> tuple[int, float]:
    """(resident bytes, CPU seconds used so far) of `pid` and its children together.

    A child whose memory map is its parent's is not counted again: one that vfork made shares its parent's memory
    until it runs its program (the server starting ffmpeg), and /proc gives it its parent's resident bytes. Summed,
    the samples that caught one read the server twice over (3.28 GB for a run whose server held 1.6)."""
    stats, tick = {}, os.sysconf("SC_CLK_TCK")
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/stat") as fh:
                stats[p] = fh.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
    rss, cpu = 0, 0.0
    for p, fields in stats.items():
        cpu += (int(fields[11]) + int(fields[12])) / tick
        parent = stats.get(int(fields[1]))
        if p != pid and parent is not None and all(fields[k] == parent[k] for k in MAP_FIELDS):
            continue
        rss += int(fields[21]) * PAGE
    return rss, cpu


class Sampler:
    """Samples the server's memory every SAMPLE_S in a thread; `peak()` since the last `mark()`."""

    def __init__(self, pid: int):
        self.pid, self.high, self.now, self.cpu = pid, 0, 0, 0.0
        self.lock, self.stop = threading.Lock(), threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self) -> None:
        while not self.stop.is_set():
            rss, cpu = rss_and_cpu(self.pid)
            with self.lock:
                self.now, self.cpu, self.high = rss, cpu, max(self.high, rss)
            time.sleep(SAMPLE_S)

    def mark(self) -> None:
        with self.lock:
            self.high = self.now

    def peak(self) -> int:
        with self.lock:
            return self.high

    def settle(self) -> None:
        """Wait until the server's processes are idle (under 5 % of a core for SETTLE_S), at most SETTLE_LIMIT_S."""
        t0 = time.monotonic()
        last_cpu, last_t = self.cpu, time.monotonic()
        while time.monotonic() - t0 < SETTLE_LIMIT_S:
            time.sleep(SETTLE_S)
            cpu, t = self.cpu, time.monotonic()
            if cpu - last_cpu < 0.05 * (t - last_t):
                return
            last_cpu, last_t = cpu, t

    def close(self) -> None:
        self.stop.set()
        self.thread.join()


# ------------------------------------------------------------------------------------------------ the uploads

def random_file(path: Path, size: int) -> Path:
    with open(path, "wb") as fh:
        for start in range(0, size, 16 * MB):
            fh.write(os.urandom(min(16 * MB, size - start)))
    return path


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_of_zeros(width: int, height: int) -> bytes:
    """A real PNG of width x height black RGB pixels (a decompression bomb: 12000x12000 is 432 MB decoded, about
    half a MB here), compressed row block by row block."""
    z, out, row = zlib.compressobj(9), [], b"\0" * (1 + 3 * width)
    for start in range(0, height, 256):
        out.append(z.compress(row * min(256, height - start)))
    out.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", b"".join(out))
            + png_chunk(b"IEND", b""))


def gif_with_canvas(width: int, height: int) -> bytes:
    """A GIF whose logical screen is width x height, holding one 1-pixel frame."""
    out = bytearray(b"GIF89a" + struct.pack("<HHBBB", width, height, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff")
    out += b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00\x3b"
    return bytes(out)


def gradient_png(side: int) -> bytes:
    import io

    import numpy as np
    from PIL import Image

    ramp = np.linspace(0, 255, side, dtype=np.float32)
    rgb = np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), -1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=9)
    return buf.getvalue()


def obj_zip_of_gifs(path: Path) -> Path:
    from tests.hostile import OBJ_TRIANGLE, mesh_zip

    gif = gif_with_canvas(5700, 5700)
    mtl = b"".join(b"newmtl m%d\nmap_Kd t%d.gif\n" % (k, k) for k in range(24))
    path.write_bytes(mesh_zip(obj=OBJ_TRIANGLE, mtl=mtl, **{f"t{k}.gif": gif for k in range(24)}))
    return path


def glb_with_texture(path: Path, png: bytes) -> Path:
    """A .glb of one textured triangle (positions, UVs, a material whose base colour is `png`)."""
    import numpy as np

    from tests.hostile import glb_bytes

    blob = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32).tobytes()
    blob += np.array([[0, 0], [1, 0], [0, 1]], np.float32).tobytes()
    views = [{"buffer": 0, "byteLength": 36}, {"buffer": 0, "byteOffset": 36, "byteLength": 24},
             {"buffer": 0, "byteOffset": 60, "byteLength": len(png)}]
    gltf = {"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
            "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "material": 0}]}],
            "accessors": [{"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3",
                           "min": [0, 0, 0], "max": [1, 1, 0]},
                          {"bufferView": 1, "componentType": 5126, "count": 3, "type": "VEC2"}],
            "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
            "textures": [{"source": 0}], "images": [{"bufferView": 2, "mimeType": "image/png"}],
            "bufferViews": views, "buffers": [{"byteLength": len(blob) + len(png)}]}
    path.write_bytes(glb_bytes(gltf, blob + png))
    return path


def written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def views_zip(path: Path, count: int, side: int) -> Path:
    png = gradient_png(side)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for k in range(count):
            zf.writestr(f"view_{k:02d}.png", png)
    return path


def long_video(path: Path, seconds: int) -> Path:
    import subprocess

    import imageio_ffmpeg

    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi",
                    "-i", f"testsrc=size=320x240:rate=30:duration={seconds}", "-c:v", "libx264", "-preset",
                    "ultrafast", "-pix_fmt", "yuv420p", str(path)], check=True, capture_output=True, timeout=600)
    return path


@dataclass
class Case:
    name: str  # the upload's file name
    tab: str
    slot: str  # the input kind of the tab's slot it goes to
    backend: str  # what Run runs on it
    make: Callable[[Path], Path]
    quick: bool = True
    settings: dict | None = None  # beside RUN_SETTINGS


RUN_SETTINGS = {"steps": 2, "short_side": 64, "particles": 2, "every": 1, "prompt": "make it night"}
CASES = [
    Case("gifs_5700.zip", "views3d", "mesh", "views3d/csd-edit-mesh", obj_zip_of_gifs),
    Case("texture_12k.glb", "views3d", "mesh", "views3d/csd-edit-mesh",
         lambda p: glb_with_texture(p, png_of_zeros(12000, 12000))),
    Case("texture_16k.glb", "views3d", "mesh", "views3d/csd-edit-mesh",
         lambda p: glb_with_texture(p, png_of_zeros(16384, 16384))),
    Case("random.glb", "views3d", "mesh", "views3d/csd-edit-mesh", lambda p: random_file(p, UPLOAD_LIMIT_BYTES)),
    Case("random.zip", "views3d", "images", "views3d/csd-edit", lambda p: random_file(p, UPLOAD_LIMIT_BYTES)),
    Case("random_mesh.zip", "views3d", "mesh", "views3d/csd-edit-mesh",
         lambda p: random_file(p, UPLOAD_LIMIT_BYTES)),
    Case("random.png", "image", "image", "image/sds", lambda p: random_file(p, UPLOAD_LIMIT_BYTES)),
    Case("random.mp4", "video", "video", "video/per-frame", lambda p: random_file(p, UPLOAD_LIMIT_BYTES)),
    Case("bomb_12k.png", "image", "image", "image/sds", lambda p: written(p, png_of_zeros(12000, 12000))),
    Case("bomb_20k.png", "image", "image", "image/sds", lambda p: written(p, png_of_zeros(20000, 20000))),
    Case("views_48x4096.zip", "views3d", "images", "views3d/csd-edit", lambda p: views_zip(p, 48, 4096),
         settings={"particles": 32}),
    Case("views_32x4096.zip", "views3d", "images", "views3d/csd-edit", lambda p: views_zip(p, 32, 4096),
         settings={"particles": 32}),
    # within every limit: the largest texture a mesh may have, run to its end
    Case("texture_4096.glb", "views3d", "mesh", "views3d/csd-edit-mesh",
         lambda p: glb_with_texture(p, gradient_png(4096))),
    Case("long_10min.mp4", "video", "video", "video/per-frame", lambda p: long_video(p, 600), quick=False),
]


# ------------------------------------------------------------------------------------------------ sending them

def request(client, case: Case) -> str:
    """The run's request JSON: the backend's defaults with the least work (prior auto: the offline tiny one)."""
    defaults = json.loads(client.predict(case.backend, api_name=f"/{case.tab}_defaults"))["settings"]
    wanted = {**RUN_SETTINGS, **(case.settings or {})}
    settings = {**defaults, **{k: v for k, v in wanted.items() if k in defaults}}
    return json.dumps({"backend": case.backend, "prior": "auto", "settings": settings})


def slots(case: Case, upload) -> list:
    from demo.launch import tab_specs

    spec = next(s for s in tab_specs() if s.name == case.tab)
    return [None if slot.kind != case.slot else [upload] if slot.kind == "images" else upload
            for slot in spec.inputs]


def through_api(client, case: Case, path: Path, sampler: Sampler) -> dict:
    """The upload (gradio_client's), then `<tab>_run`: peaks before and during Run, held after, outcome."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    req = request(client, case)
    sampler.mark()
    job = client.submit(req, *slots(case, handle_file(str(path))), api_name=f"/{case.tab}_run")
    # gradio_client uploads the file before it joins the queue: the upload's own peak is in 'during Run'
    try:
        outcome = str(job.result(timeout=RUN_LIMIT_S)[0])
    except AppError as err:
        outcome = f"refused at upload: {err}"
    except Exception as err:  # noqa: BLE001 - a timeout or a dropped connection is an outcome to record
        outcome = f"{type(err).__name__}: {err}"
    during = sampler.peak()
    sampler.settle()
    return {"before": None, "during": during, "after": sampler.now, "outcome": outcome}


OUTCOME_WORDS = ("Done", "failed", "problem", "Stopped", "Error")


def toasts(page) -> str:
    """Gradio's error toasts on the page (an upload or a request refused before the handler ran), closed once read:
    the next step's refusal is then its own."""
    text = " / ".join(" ".join(t.inner_text().split()) for t in page.locator(".toast-body").all())
    for close in page.locator(".toast-close").all():
        close.click()
    return text


def outcome(page, tab: str) -> str:
    """The run's outcome: the status sentence once it says one, or a toast Gradio showed instead."""
    from tests.browser_util import status_text

    deadline = time.monotonic() + RUN_LIMIT_S
    while time.monotonic() < deadline:
        text = status_text(page, tab)
        if any(w in text for w in OUTCOME_WORDS):
            return text
        if page.locator(".toast-body").count():
            return f"refused: {toasts(page)}"
        time.sleep(0.2)
    return f"no outcome in {RUN_LIMIT_S:.0f} s: {status_text(page, tab)}"


def through_browser(browser, url: str, case: Case, path: Path, sampler: Sampler) -> dict:
    """The file set on the tab's slot in Chromium (the slot's viewer runs on it), the upload settled, then Run."""
    from demo.launch import tab_specs
    from tests.browser_util import open_page, open_tab

    spec = next(s for s in tab_specs() if s.name == case.tab)
    page = open_page(browser, url)
    try:
        open_tab(page, spec.title)
        page.locator(f"#{case.tab}-backend input").click()
        page.get_by_role("option", name=case.backend.split("/", 1)[1], exact=True).click()
        if case.tab != "image":
            page.locator(f"#{case.tab}-prompt textarea").fill(RUN_SETTINGS["prompt"])
        elem = "views3d-mesh" if case.slot == "mesh" else f"{case.tab}-input"  # the slots' elem_ids
        sampler.mark()
        with page.expect_response(lambda r: "/gradio_api/upload" in r.url, timeout=SETTLE_LIMIT_S * 1000):
            page.locator(f"#{elem} input[type=file]").first.set_input_files(str(path))
        time.sleep(SETTLE_S)  # the slot's change event (a mesh's viewer) starts after the upload lands
        sampler.settle()
        before = sampler.peak()
        refused = toasts(page)
        sampler.mark()
        page.locator(f"#{case.tab}-run").click()
        text = outcome(page, case.tab)
        during = sampler.peak()
        sampler.settle()
        text = f"upload refused: {refused}; Run: {text}" if refused else text
        return {"before": before, "during": during, "after": sampler.now, "outcome": text}
    finally:
        page.close()


# ------------------------------------------------------------------------------------------------ the table

def gb(n: int | None) -> str:
    return "-" if n is None else f"{n / 1024 ** 3:.2f}"


def gb_flagged(n: int | None) -> str:
    return gb(n) + (" **over 2 GB**" if n is not None and n > TARGET_BYTES else "")


def first_line(text: str) -> str:
    line = next((l for l in text.strip().splitlines() if l.strip()), "")
    return line.replace("|", "/")[:160]


def table(rows: list[dict]) -> str:
    lines = ["| upload | kind | size | sent by | peak before Run, GB | peak during Run, GB | held after, GB | "
             "outcome (first line) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['upload']} | {r['kind']} | {human_size(r['size'])} | {r['via']} | "
                     f"{gb_flagged(r['before'])} | {gb_flagged(r['during'])} | {gb_flagged(r['after'])} | "
                     f"{first_line(r['outcome'])} |")
    return "\n".join(lines)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="API client only, and the cases quick to make")
    p.add_argument("--cases", default="", help="comma list of upload names (default: all)")
    p.add_argument("--note", default="", help="the machine's conditions, in words, for the record")
    p.add_argument("--no-record", action="store_true")
    args = p.parse_args(argv)
    from gradio_client import Client

    from tests.app_server import AppServer

    chosen = [c for c in CASES if (not args.quick or c.quick) and (not args.cases or c.name in args.cases.split(","))]
    start_load = load_note()
    rows = []
    with tempfile.TemporaryDirectory(prefix="distill-upload-memory-") as tmp, AppServer("upload-memory") as app:
        sampler = Sampler(app.proc.pid)
        sampler.settle()
        idle = sampler.now
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            client = Client(app.url, verbose=False)
        browser_cm = None
        if not args.quick:
            from tests.browser_util import chromium

            browser_cm = chromium()
            browser = browser_cm.__enter__()
        try:
            for case in chosen:
                path = case.make(Path(tmp) / case.name)
                vias = ["api"] + ([] if args.quick else ["browser"])
                for via in vias:
                    r = (through_api(client, case, path, sampler) if via == "api"
                         else through_browser(browser, app.url, case, path, sampler))
                    r.update(upload=case.name, kind=f"{case.tab} {case.slot}", size=path.stat().st_size, via=via,
                             backend=case.backend)
                    print(f"{case.name} ({via}): before {gb(r['before'])}, during {gb(r['during'])}, after "
                          f"{gb(r['after'])} GB: {first_line(r['outcome'])}", flush=True)
                    rows.append(r)
                path.unlink()
        finally:
            if browser_cm is not None:
                browser_cm.__exit__(None, None, None)
            sampler.close()
    md = table(rows)
    print(f"\nserver idle after start: {gb(idle)} GB\n")
    print(md)
    if not args.no_record and rows:
        record(md, rows, args, argv, idle, start_load)


def record(md: str, rows: list[dict], args, argv, idle: int, start_load: str) -> None:
    notes = [f"`python -m benchmarks.upload_memory {' '.join(argv if argv is not None else sys.argv[1:])}`: the app "
             f"(offline, CPU) and its children's resident memory from /proc every {SAMPLE_S * 1000:.0f} ms; it held "
             f"{gb(idle)} GB idle after starting. 'before Run': from the upload's start until the server settled "
             f"(a browser's upload runs the slot's viewer); an API client's upload is part of its run's request, so "
             f"its peak is in 'during Run'. Target: at most 2 GB at any time. Load when it started: {start_load}."]
    if args.note:
        notes.append(args.note)
    jsonl = []
    for r in rows:
        for phase in ("before", "during", "after"):
            if r[phase] is not None:
                jsonl.append(dict(bench="upload_memory", metric=f"{r['upload']} {r['via']} {phase} Run rss",
                                  value=round(r[phase] / MB, 1), unit="MB", kind=r["kind"], backend=r["backend"],
                                  outcome=first_line(r["outcome"])))
    append_results("upload_memory (server memory while hostile uploads land and run)", md, jsonl,
                   device=device_name("cpu"), notes=notes)


if __name__ == "__main__":
    main()
