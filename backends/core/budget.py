"""The work budget: what a run would cost, estimated from its settings and its inputs' headers, checked against
what the machine has before any work starts (and before any model loads).

Each backend class has a classmethod `estimate(settings, inputs, facts) -> Work`: it reads only headers (image
size, video frame size, zip member headers), refuses what no budget could fix (aspect, counts) with an
InputError, and returns the peak memory it expects, naming the setting that lowers it. The runner calls it twice:
before the prior loads, with the prior's facts from its catalog entry (its native size: the icons prior's 64 px,
not a 512 px guess; "auto" settings at the profile's value) plus the memory the prior will hold (`Entry.memory`:
the icons bank at 64 px, 172 MB), and once the prior is loaded and every "auto" setting is resolved, still before
any work.

The budget: $DISTILL_MEMORY_BUDGET ("8gb", "512mb", "2.5GiB", a byte count), else what the device has free (a GPU's
free memory; on a CPU the tightest of the RAM the kernel reports as available, the container's limit and the
process's address-space limit: `memory_limit`). Time: the expectation shown beside Run (`backends.core.timing`: the
recorded setup, steps and finish of the backend, each scaled by the work's `units`) where there is a record, else
a rough rule, steps x bytes / THROUGHPUT (what one step of these backends moves through memory, measured loosely:
~1 GB/s on a CPU, ~100 GB/s on a GPU); $DISTILL_TIME_BUDGET (seconds, default an hour) refuses what would run far
longer than anyone waits, e.g. pixel art of 1024 x 1024 squares at 2048 px.

The estimates are deliberately plain: bytes per working pixel times pixels, from what the code allocates (float32
images are 12 bytes a pixel and the edit backends hold about six of them at the working size). They are upper
bounds of the pixel-space arrays, not of a UNet's activations (those are bounded by `chunk` and the GPU's
out-of-memory fallback).
"""
from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Sequence

from .errors import InputError

MAX_ASPECT = 16  # frames, views and panoramas alike: 16:1 (512 x 8192 at InstructPix2Pix's size)

# Per working pixel of the CSD-Edit backends' particles (frames, views): the source as float32 (12 B), its decode
# and the edited decode (24 B), their uint8 copies and Lanczos resizes (~12 B), the metric windows (~24 B), and the
# prior's activations, forward and backward, for target and source in one call, which dominate. Measured (peak RSS
# of video/csd-edit with the edits prior on a 2-core CPU, 2 steps, benchmarks/estimates.py): 517 B a working pixel
# from 8 to 16 frames of 344x256, 541 B from 8 frames of 344x256 to 8 of 688x512; 600 keeps it an upper bound.
# A 64-frame clip at short_side=512 is then ~10 GB: counted at 80 B a pixel it would pass an 8 GB cap and run out
# of memory after half a minute instead of being refused before it starts.
EDIT_BYTES_PER_PIXEL = 600
# The panorama's working image, beside its particles (windows of it, each costing EDIT_BYTES_PER_PIXEL: the
# panorama's estimate adds them): peak RSS of panorama/csd-edit with the edits prior rose 195 B a working pixel from
# short_side=128 to 256 on the example (benchmarks/estimates.py); a run that failed at 5.4 GB with 67 M working
# pixels puts the floor at 80, so 240 is above both.
PANORAMA_BYTES_PER_PIXEL = 240
# Per output pixel at the input's size (uint8 frames, their resizes, the GIF's palette images, the figure).
OUTPUT_BYTES_PER_PIXEL = 16


@dataclass(frozen=True)
class Work:
    """What a run would take: peak bytes, and the setting to lower (and how it is called) when it is too much.

    bytes: estimated peak memory in bytes; what: a short phrase for the message ("a 2048x32768 working image");
    lower: the setting or input to lower, as the message names it ("short_side"); effort: the run's compute in
    units its time is proportional to (`backends.core.timing` scales a recorded run by it), 0 where that is `bytes`:
    raster-then-vectorize's samples cost k x sample_steps prior calls whatever their memory; seconds: time the run
    spends beyond that, which no recorded run's scale predicts (a mesh's texture: its fits and files grow with
    its texels, not with the views' work), in seconds of the 2-core reference CPU, added to the expectation.
    """

    bytes: int
    what: str
    lower: str
    effort: int = 0
    seconds: float = 0.0

    @property
    def units(self) -> int:
        """What the time scales with: `effort`, else `bytes`."""
        return int(self.effort or self.bytes)


@dataclass(frozen=True)
class Facts:
    """What an estimate needs to know about the prior (a guess before it loads, exact after)."""

    latent_scale: int = 8
    size_multiple: int = 8
    native_size: int = 512


def facts(prior: Any = None) -> Facts:
    """The facts of a loaded prior or of its catalog entry (which declares them), or the defaults of a Stable
    Diffusion-sized prior when there is neither."""
    if prior is None:
        return Facts()
    return Facts(int(prior.latent_scale), int(prior.size_multiple), int(prior.native_size))


# ------------------------------------------------------------------------------------------------ the budget

_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b?)", re.I)  # on the stripped text: no run of spaces to split


def parse_size(text: str) -> int:
    """Bytes from "8gb", "512MB", "2.5GiB", "1000000" (binary units: 1 gb = 2**30 bytes)."""
    m = _SIZE.fullmatch(str(text).strip())
    value = float(m.group(1)) * 1024 ** " kmgt".index((m.group(2) or " ").lower()) if m else 0.0
    if not 0 < value < 2**62:  # a 400-digit size once ended in a 22-line OverflowError
        raise InputError(f"DISTILL_MEMORY_BUDGET must be a size like 8gb or 512mb, got {str(text)[:40]!r}.")
    return int(value)


NO_LIMIT = 1 << 62


def memory_limit(device: Any = None) -> tuple[int, str]:
    """(bytes the run may use, what sets that): $DISTILL_MEMORY_BUDGET, else the GPU's free memory on CUDA, else
    the tightest of the machine's available memory, the container's limit (cgroup memory.max) and the process's
    address-space limit (ulimit -v): a process capped at 8 GB on a 24 GB machine must be refused at 8."""
    env = os.environ.get("DISTILL_MEMORY_BUDGET")
    if env:
        return parse_size(env), "DISTILL_MEMORY_BUDGET"
    if device is not None and str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info(torch.device(device))
            return int(free), "the GPU's free memory"
    return min(_ram_limits(), key=lambda pair: pair[0])


def _read_int(path: str) -> int | None:
    try:
        with open(path) as fh:
            text = fh.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max": no limit


def _proc_kb(path: str, field: str) -> int | None:
    try:
        with open(path) as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ram_limits() -> list[tuple[int, str]]:
    """Each limit on this process's memory that can be read here, as (bytes left under it, its name)."""
    found = []
    avail = _proc_kb("/proc/meminfo", "MemAvailable")
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = NO_LIMIT  # no way to know: no limit but $DISTILL_MEMORY_BUDGET
    found.append((avail, "the memory available"))
    for limit_path, used_path in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),  # cgroup v2
                                  ("/sys/fs/cgroup/memory/memory.limit_in_bytes",  # cgroup v1
                                   "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit = _read_int(limit_path)
        if limit is not None and limit < NO_LIMIT:
            found.append((max(0, limit - (_read_int(used_path) or 0)), "the container's memory limit"))
            break
    try:
        import resource

        soft, _hard = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            used = _proc_kb("/proc/self/status", "VmSize") or 0
            found.append((max(0, soft - used), "the process's address-space limit (ulimit -v)"))
    except (ImportError, ValueError, OSError):
        pass
    return found


THROUGHPUT = {"cpu": 1e9, "cuda": 1e11}  # bytes of working set a second, per device type
DEFAULT_TIME_BUDGET_S = 3600.0


def time_budget_s() -> float:
    raw = os.environ.get("DISTILL_TIME_BUDGET", "").strip()
    if not raw:
        return DEFAULT_TIME_BUDGET_S
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"DISTILL_TIME_BUDGET must be a number of seconds, got {raw[:40]!r}.")
    return value


def check(work: Work, device: Any = None, *, where: str = "", steps: int | None = None,
          seconds: float | None = None) -> None:
    """Refuse (InputError, one sentence naming the setting to lower) a run whose estimate exceeds the budget:
    its peak memory, or (with `steps`) its time: `seconds` when given (the runner passes `backends.core.timing`'s
    expectation, the figure shown beside Run), else the rough rule steps x bytes / THROUGHPUT."""
    limit, source = memory_limit(device)
    head = where + ": " if where else ""
    if work.bytes > limit:
        raise InputError(f"{head}{work.what} would need about {_gb(work.bytes)} of memory, "
                         f"more than {source} ({_gb(limit)}); lower {work.lower}.")
    kind = "cuda" if str(device or "cpu").startswith("cuda") else "cpu"
    if seconds is None:
        seconds = (steps or 0) * work.bytes / THROUGHPUT[kind]
    if seconds > time_budget_s():
        raise InputError(f"{head}{f'{steps} steps over ' if steps else ''}{work.what} would take about "
                         f"{seconds / 3600:.1f} hours on this "
                         f"{'GPU' if kind == 'cuda' else 'CPU'}, more than DISTILL_TIME_BUDGET "
                         f"({time_budget_s():.0f} s); lower {work.lower} or steps.")


def _gb(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{max(1, round(n / 2**20))} MB"


# ------------------------------------------------------------------------------------------------ headers
# Each reads at most a header's bytes through `media.read_head`, the decoders' own bounded read: an empty,
# oversized or irregular file is refused here with the sentence the decoder would give.

def image_size(path: str) -> tuple[int, int]:
    """(width, height) of an image file from its header alone (nothing decoded); the full validator's own message
    for a file whose header does not parse."""
    from ..inputs import media

    size = media.header_size(media.read_head(path, "image", media.MAX_IMAGE_BYTES))
    if size is None:  # e.g. a JPEG whose ICC or APP13 blocks run past the first 256 KB: the validator decides
        return tuple(media.image(path).size)  # or raises its sentence (format, truncation, ...)
    return size


def video_size(path: str) -> tuple[int, int]:
    """(width, height) of a clip's frames from its container header (GIF: Pillow; others: ffmpeg's header probe,
    no frame decoded); the full validator's own message for a file that is not a readable video."""
    from ..inputs import media

    head = media.read_head(path, "video", media.MAX_VIDEO_BYTES)
    size = media.header_size(head) if head[:6] in (b"GIF87a", b"GIF89a") else media.video_frame_size(path)
    if size is None:
        media.video(path, sample=1)  # raises the validator's sentence
        raise InputError(f"The video {os.path.basename(path)[:60]!r} has an unreadable header.")
    return size


def zip_sizes(path: str, limit: int) -> list[tuple[int, int]]:
    """(width, height) of the images in a zip, from each member's first bytes (at most `limit` members read)."""
    from ..inputs import media
    from ..inputs.validate import open_bounded

    fh, _real, _size, _shown = open_bounded(path, "zip", media.MAX_ZIP_BYTES)
    sizes = []
    with fh:
        try:
            with zipfile.ZipFile(fh) as zf:
                for info in zf.infolist()[: media.MAX_ZIP_ENTRIES]:
                    if info.is_dir() or not os.path.basename(info.filename) or media.is_archiver_junk(info.filename):
                        continue
                    with zf.open(info) as member:
                        size = media.header_size(member.read(media.HEADER_BYTES))
                    if size is not None:
                        sizes.append(size)
                    if len(sizes) >= limit:
                        break
        except (zipfile.BadZipFile, OSError, RuntimeError, NotImplementedError, EOFError):
            return []  # the full validator says what is wrong with it
    return sizes


def check_aspect(size: tuple[int, int], noun: str) -> None:
    """Refuse a frame / view / panorama longer than MAX_ASPECT times its short side (its working size would be)."""
    w, h = size
    if max(w, h) > MAX_ASPECT * max(1, min(w, h)):
        raise InputError(f"The {noun} is {w}x{h} pixels; at most {MAX_ASPECT}:1 is supported.")


def working_size(size: tuple[int, int], short_side: int, multiple: int, long_multiple: int | None = None
                 ) -> tuple[int, int]:
    """(W, H) an image of `size` is worked on at: short side `short_side` rounded down to `multiple`, aspect kept,
    the long side rounded to `long_multiple` (default `multiple`; the panorama's window stride) and never below
    the short side. The edit backends and their estimates both use it."""
    w, h = size
    long_multiple = long_multiple or multiple
    short_px = max(multiple, short_side // multiple * multiple)
    long_px = max(short_px, int(round(short_px * max(w, h) / max(1, min(w, h)) / long_multiple)) * long_multiple)
    return (long_px, short_px) if w >= h else (short_px, long_px)


def edit_work(sizes: Sequence[tuple[int, int]], short_side: int, facts_: Facts, noun: str,
              bytes_per_pixel: int = EDIT_BYTES_PER_PIXEL) -> Work:
    """The CSD-Edit backends' pixel-space peak: items at their working size, plus their outputs at input size.

    sizes: (width, height) of each item (frames / views / the one panorama) as given; bytes_per_pixel: per
    working pixel (EDIT_BYTES_PER_PIXEL for particles, PANORAMA_BYTES_PER_PIXEL for the panorama's image)."""
    ws, hs = working_size(sizes[0], short_side, facts_.size_multiple)
    n = len(sizes)
    work = n * ws * hs * bytes_per_pixel + sum(w * h for w, h in sizes) * OUTPUT_BYTES_PER_PIXEL
    what = f"{n} {noun}{'s' if n != 1 else ''} of {ws}x{hs} working pixels" if n > 1 else f"a {ws}x{hs} working {noun}"
    return Work(int(work), what, "short_side (or particles)" if n > 1 else "short_side")
