"""What this machine can do: GPU or not, which model weights are on disk, which priors each tab uses.

Everything here is decided from local facts only (CUDA, environment variables, the local Hugging Face cache),
so the app starts in seconds with no network: a missing model is reported in the banner and the tabs fall
back to the tiny built-in priors. A hub model that is not cached but may be downloaded (online, with a GPU)
is fetched on first use, inside the run, with a message in the status box.
"""
from __future__ import annotations

import gc
import os
from dataclasses import dataclass, field
from pathlib import Path

# Which prior each prior kind uses in "real" mode and in "tiny" (try-the-flow) mode.
REAL = {"text": "sd", "instruct": "ip2p"}
TINY = {"text": "tiny-sd", "instruct": "tiny-ip2p"}
ENV_VAR = {"text": "DISTILL_SD_MODEL", "instruct": "DISTILL_IP2P_MODEL"}
DEFAULT_ID = {"text": "stable-diffusion-v1-5/stable-diffusion-v1-5", "instruct": "timbrooks/instruct-pix2pix"}
LABEL = {"text": "Stable Diffusion", "instruct": "InstructPix2Pix"}
PRIOR_MODES = ("auto", "tiny", "real")
MEMORY_MODES = ("auto", "none", "24gb", "16gb")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "on", "yes", "true"}


def hub_offline() -> bool:
    return _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE"))


def on_zero_gpu() -> bool:
    """True on a Hugging Face ZeroGPU Space (the GPU is attached per call by the `spaces` package)."""
    return _truthy(os.environ.get("SPACES_ZERO_GPU"))


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def model_source(kind: str) -> str:
    """The hub id or folder the real prior of `kind` ("text"/"instruct") loads from."""
    return os.environ.get(ENV_VAR[kind]) or DEFAULT_ID[kind]


def _looks_like_path(source: str) -> bool:
    return os.path.isabs(source) or source.startswith(("~", ".")) or source.count("/") > 1


_WEIGHT_FILES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                 "diffusion_pytorch_model.fp16.safetensors")


@dataclass
class Weights:
    """Where the weights of one prior kind stand: source, and "local" / "cached" / "download" / "missing"."""

    kind: str
    source: str
    state: str
    detail: str = ""

    @property
    def usable(self) -> bool:
        return self.state in ("local", "cached", "download")


def find_weights(kind: str, *, offline: bool | None = None) -> Weights:
    """Check, without touching the network, whether the real `kind` model can be loaded.

    A folder must hold a diffusers pipeline (model_index.json + unet weights). A hub id must be in the local
    Hugging Face cache (`try_to_load_from_cache` reads files on disk only); if it is not, it counts as
    "download" when the hub may be used (HF_HUB_OFFLINE unset) and "missing" otherwise.
    """
    source = model_source(kind)
    offline = hub_offline() if offline is None else offline
    if _looks_like_path(source):
        folder = Path(source).expanduser()
        ok = (folder / "model_index.json").is_file() and any((folder / "unet" / f).is_file() for f in _WEIGHT_FILES)
        return Weights(kind, source, "local" if ok else "missing",
                       "" if ok else f"no diffusers model folder at {folder}")
    try:
        from huggingface_hub import try_to_load_from_cache

        index = try_to_load_from_cache(source, "model_index.json")
        unet = [try_to_load_from_cache(source, f"unet/{f}") for f in _WEIGHT_FILES]
        cached = isinstance(index, str) and any(isinstance(u, str) for u in unet)
    except Exception:  # a malformed id or an unreadable cache: treat as not cached
        cached = False
    if cached:
        return Weights(kind, source, "cached")
    if offline:
        return Weights(kind, source, "missing", "not in the local cache; offline")
    return Weights(kind, source, "download", "not in the local cache yet: downloaded on first use")


@dataclass
class Environment:
    """The facts the app is built from (detected once at startup)."""

    device: str  # "cuda", "cuda:1", "cpu"
    gpu_name: str = ""
    gpu_mem_gb: float = 0.0
    zero_gpu: bool = False
    prior_mode: str = "auto"  # as asked: auto | tiny | real
    memory: str = "none"  # resolved memory profile: none | 24gb | 16gb
    weights: dict[str, Weights] = field(default_factory=dict)
    use_real: dict[str, bool] = field(default_factory=dict)  # per prior kind

    @property
    def has_gpu(self) -> bool:
        return self.device.startswith("cuda")

    def prior_for(self, kind: str) -> str:
        """The default prior name for a backend whose prior kind is "text" / "instruct"."""
        return REAL[kind] if self.use_real.get(kind) else TINY[kind]

    def run_device(self) -> str | None:
        """The device handed to backends.run (None lets the backend pick, as on ZeroGPU)."""
        return None if self.zero_gpu else self.device

    def summary(self) -> dict:
        return {
            "device": self.device, "gpu": self.gpu_name, "gpu_mem_gb": round(self.gpu_mem_gb, 1),
            "zero_gpu": self.zero_gpu, "prior_mode": self.prior_mode, "memory": self.memory,
            "priors": {k: self.prior_for(k) for k in REAL},
            "weights": {k: {"source": w.source, "state": w.state, "detail": w.detail} for k, w in self.weights.items()},
        }


def _cuda_facts(device: str) -> tuple[str, float]:
    import torch

    idx = torch.device(device).index or 0
    props = torch.cuda.get_device_properties(idx)
    return props.name, props.total_memory / 2**30


def detect(prior_mode: str = "auto", device: str = "auto", memory: str = "auto") -> Environment:
    """Look at this machine once: device, GPU memory, weights on disk; decide each tab's prior."""
    if prior_mode not in PRIOR_MODES:
        raise ValueError(f"prior mode must be one of {', '.join(PRIOR_MODES)}, not {prior_mode!r}")
    if memory not in MEMORY_MODES:
        raise ValueError(f"memory mode must be one of {', '.join(MEMORY_MODES)}, not {memory!r}")
    import torch

    zero = on_zero_gpu()
    if device in ("", "auto"):
        device = "cuda" if (zero or torch.cuda.is_available()) else "cpu"
    if device.startswith("cuda") and not (zero or torch.cuda.is_available()):
        raise ValueError(f"--device {device} was asked for, but this machine has no usable CUDA GPU "
                         "(use --device auto or cpu)")
    env = Environment(device=device, zero_gpu=zero, prior_mode=prior_mode)
    if env.has_gpu and not zero and torch.cuda.is_available():
        env.gpu_name, env.gpu_mem_gb = _cuda_facts(device)
    if memory == "auto":
        if env.has_gpu and 0 < env.gpu_mem_gb <= 17:
            memory = "16gb"
        elif env.has_gpu and 0 < env.gpu_mem_gb <= 25:
            memory = "24gb"
        else:
            memory = "none"
    env.memory = memory
    for kind in REAL:
        w = find_weights(kind)
        env.weights[kind] = w
        if prior_mode == "tiny":
            env.use_real[kind] = False
        elif prior_mode == "real":
            env.use_real[kind] = True
        else:
            env.use_real[kind] = env.has_gpu and w.usable
    return env


def banner(env: Environment, plugin_errors: dict[str, str] | None = None) -> str:
    """Markdown for the top of the page: what runs, what is missing and how to provide it."""
    lines = []
    real = [LABEL[k] for k in REAL if env.use_real.get(k)]
    tiny = [k for k in REAL if not env.use_real.get(k)]
    where = f"GPU ({env.gpu_name}, {env.gpu_mem_gb:.0f} GB)" if env.gpu_name else ("ZeroGPU" if env.zero_gpu else
                                                                                  ("GPU" if env.has_gpu else "CPU"))
    if not tiny:
        lines.append(f"Running on **{where}** with {', '.join(real)}.")
    else:
        used = ", ".join(f"`{TINY[k]}`" for k in tiny)
        lines.append(f"**Try-out mode** on {where}: tabs that need {' and '.join(LABEL[k] for k in tiny)} use the "
                     f"tiny built-in priors ({used}): the whole flow runs in seconds, but the pictures show the flow, "
                     "not the method's quality (results say *tiny prior*).")
        missing = []
        if not env.has_gpu and env.prior_mode == "auto":
            missing.append("a CUDA GPU")
        for k in tiny:
            w = env.weights.get(k)
            if w is None or w.usable or env.prior_mode == "tiny":
                continue
            missing.append(f"{LABEL[k]} weights `{w.source}` ({w.detail})")
        if env.prior_mode == "tiny":
            missing.append("nothing: tiny priors were asked for (`--prior tiny` / `DISTILL_PRIOR=tiny`)")
        if missing:
            lines.append("Missing: " + "; ".join(missing) + ".")
        lines.append("For the real models, on a machine with a GPU: `hf download <hub id>` once, or set "
                     "`DISTILL_SD_MODEL` / `DISTILL_IP2P_MODEL` to a local diffusers folder or another hub id; "
                     "then restart.")
    downloads = [f"`{w.source}`" for k, w in env.weights.items() if env.use_real.get(k) and w.state == "download"]
    if downloads:
        lines.append(f"{', '.join(downloads)} will be downloaded on first use (a few GB, once).")
    if env.has_gpu and env.memory != "none":
        lines.append(f"Memory profile **{env.memory}**: attention slicing"
                     f"{' and VAE slicing/tiling' if env.memory == '16gb' else ''} on (`--memory none` turns it off).")
    for name, err in (plugin_errors or {}).items():
        lines.append(f"Plugin `{name}` failed to load: {err}")
    return "\n\n".join(lines)


def apply_memory_profile(prior, memory: str) -> None:
    """Switch on the prior's memory savers for a 24 GB ("24gb") or 16 GB ("16gb") GPU; "none" leaves it as is."""
    if memory == "none" or prior is None or getattr(prior, "analytic", False):
        return
    for method, profiles in (("enable_attention_slicing", ("24gb", "16gb")), ("enable_vae_slicing", ("16gb",)),
                             ("enable_vae_tiling", ("16gb",))):
        fn = getattr(prior, method, None)
        if fn is not None and memory in profiles:
            fn()


def free_memory() -> None:
    """Give cached GPU memory back after a run ends or is stopped (the priors themselves stay loaded).

    A full garbage collection (tensors caught in reference cycles) takes ~0.4 s in this process, so it runs only
    where it pays: with CUDA, before returning the allocator's cache. On the CPU, closing the run frees its tensors.
    """
    import torch

    if torch.cuda.is_available():
        gc.collect()
        torch.cuda.empty_cache()


def gpu_call(fn):
    """On a ZeroGPU Space, wrap a handler with `spaces.GPU` (the GPU is attached for each call); elsewhere, and
    when `spaces` is not installed, return it unchanged. DISTILL_GPU_SECONDS sets the per-call GPU budget."""
    if not on_zero_gpu():
        return fn
    try:
        import spaces
    except ImportError:
        return fn
    return spaces.GPU(duration=int(os.environ.get("DISTILL_GPU_SECONDS", "120")))(fn)
