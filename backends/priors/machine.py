"""What this machine offers the priors, decided from local facts only (no network unless asked):
GPU or not, ZeroGPU, whether the Hugging Face Hub is used, which weights are on disk, the memory profile and the
speed switches. The one owner of these facts: the runner, the CLI and the app all read them from here.
"""
from __future__ import annotations

import ctypes
import functools
import gc
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..core.settings import truthy

MEMORY_MODES = ("auto", "none", "24gb", "16gb")
# The switches each memory profile turns on, in the order they are applied.
MEMORY_SWITCHES = {"none": (), "24gb": ("attention_slicing",),
                   "16gb": ("attention_slicing", "vae_slicing", "vae_tiling")}
WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                "diffusion_pytorch_model.fp16.safetensors")

_hub_state: bool | None = None
_we_went_offline = False  # True when HF_HUB_OFFLINE was set by hub_reachable, not by the person


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def hub_offline() -> bool:
    """Whether the hub must not be used (read per call: huggingface_hub reads it once, at import)."""
    return truthy(os.environ.get("HF_HUB_OFFLINE")) or truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def _hub_host() -> str:
    return os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face Hub answers at all (one TCP connect, cached for the process). When it does not,
    HF_HUB_OFFLINE is set so that loading fails at once with a clear message instead of retrying for minutes."""
    global _hub_state, _we_went_offline
    if hub_offline():
        return False
    if _hub_state is None:
        try:
            socket.create_connection((_hub_host(), 443), timeout=timeout).close()
            _hub_state = True
        except OSError:
            _hub_state, _we_went_offline = False, True
            os.environ["HF_HUB_OFFLINE"] = "1"
    return _hub_state


def offline_reason() -> str:
    """Why the hub is not used, in words that are true: the person's HF_HUB_OFFLINE, or our own failed check."""
    if _we_went_offline:
        return f"the Hugging Face Hub ({_hub_host()}) could not be reached from this machine"
    return "HF_HUB_OFFLINE is set"


def looks_like_path(source: str) -> bool:
    """A hub id is "name" or "owner/name"; anything else (absolute, ~, ./, deeper nesting) is meant as a folder."""
    return (os.path.isabs(source) or source.startswith(("~", ".")) or source.count("/") > 1
            or (os.sep != "/" and os.sep in source))


def cache_dir(name: str) -> Path:
    """Where a model built in code is kept: $DISTILL_CACHE/<name> (default ~/.cache/distill_studio/<name>)."""
    root = os.environ.get("DISTILL_CACHE") or Path.home() / ".cache" / "distill_studio"
    return Path(root).expanduser() / name


def build_once(name: str, build: Callable[[Path], object], marker: str) -> Path:
    """The folder `cache_dir(name)`, built by `build(folder)` the first time (done when it holds `marker`).

    Safe when several processes race: each builds into its own temporary folder beside the target and renames it
    into place; the first rename wins, the others discard their copy. A folder at the target is always complete.
    """
    final = cache_dir(name)
    if (final / marker).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / marker).is_file():
                raise  # not a lost race: a real failure
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # no-op after a successful rename
    return final


@dataclass
class Weights:
    """Where the weights of one model stand: source, and "local" / "cached" / "download" / "missing"."""

    source: str
    state: str
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.state in ("local", "cached", "download")


def find_weights(source: str, *, offline: bool | None = None) -> Weights:
    """Check, without touching the network, whether a diffusers pipeline at `source` (hub id or folder) can load.

    A folder must hold model_index.json and UNet weights. A hub id must be in the local Hugging Face cache
    (`try_to_load_from_cache` reads files on disk only); if it is not, it counts as "download" when the hub may be
    used and "missing" otherwise.
    """
    offline = hub_offline() if offline is None else offline
    if looks_like_path(source):
        folder = Path(source).expanduser()
        ok = (folder / "model_index.json").is_file() and any((folder / "unet" / f).is_file() for f in WEIGHT_FILES)
        return Weights(source, "local" if ok else "missing", "" if ok else f"no diffusers model folder at {folder}")
    try:
        from huggingface_hub import try_to_load_from_cache

        index = try_to_load_from_cache(source, "model_index.json")
        unet = [try_to_load_from_cache(source, f"unet/{f}") for f in WEIGHT_FILES]
        cached = isinstance(index, str) and any(isinstance(u, str) for u in unet)
    except Exception:  # a malformed id or an unreadable cache: treat as not cached
        cached = False
    if cached:
        return Weights(source, "cached")
    if offline:
        return Weights(source, "missing", "not in the local cache; offline")
    return Weights(source, "download", "not in the local cache yet: downloaded on first use")


def gpu_memory_gb(device: torch.device | str) -> float:
    device = torch.device(device)
    if device.type != "cuda" or not torch.cuda.is_available():
        return 0.0
    return torch.cuda.get_device_properties(device.index or 0).total_memory / 2**30


def memory_profile(device: torch.device | str, memory: str = "auto") -> str:
    """The memory profile for `device`: "auto" picks 16gb / 24gb from the GPU's size, "none" on a CPU or a big GPU."""
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MEMORY_MODES)}, not {memory!r}")
    if memory != "auto":
        return memory
    gb = gpu_memory_gb(device)
    if 0 < gb <= 17:
        return "16gb"
    if 0 < gb <= 25:
        return "24gb"
    return "none"


def auto_accelerate(device: torch.device | str) -> str:
    """What "auto" means for the speed switches on `device`: "graph" (the UNet call captured as a CUDA graph: ~2.5x
    faster at batch 2 on an H200, seconds to capture) on CUDA, except on ZeroGPU (its per-call workers cannot keep
    graphs) and with DISTILL_CUDA_GRAPHS=0; "eager" otherwise. torch.compile is never automatic (40-50 s of
    warm-up before the first step): ask for it with DISTILL_ACCELERATE=compile."""
    from .cuda_graph import disabled_reason

    return "graph" if disabled_reason(device) is None else "eager"


def accelerate_mode(device: torch.device | str, asked: str | None = None) -> str:
    """The speed switches a prior gets on `device`: `asked` or DISTILL_ACCELERATE when set (eager, channels_last,
    graph, compile), else "auto", resolved by `auto_accelerate`."""
    mode = asked or os.environ.get("DISTILL_ACCELERATE", "auto") or "auto"
    return auto_accelerate(device) if mode == "auto" else mode


def free_memory() -> None:
    """Give a finished run's memory back after it ends or is stopped (the priors themselves stay loaded): the GPU
    allocator's cache, and the C heap's free pages.

    A full garbage collection (tensors caught in reference cycles) takes ~0.4 s in this process, so it runs only
    where it pays: with CUDA, before returning the allocator's cache. On the CPU, closing the run frees its tensors,
    but glibc keeps freed blocks under its mmap threshold (which rises to 32 MB after the first large free): the
    app held 0.2-0.5 GB of finished runs until a later run reused it. `malloc_trim` hands those pages back.
    """
    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
