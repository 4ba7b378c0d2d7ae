"""What this machine runs, as the app shows it: built once at start-up from `backends.describe_machine()`, the one
owner of machine and model facts (device, memory profile, which prior "auto" means for each kind, where the real
weights stand). Nothing here looks at models or the network itself; it only words the facts for people.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from backends import MEMORY_MODES as BACKEND_MEMORY_MODES
from backends import describe_machine, on_zero_gpu

PRIOR_MODES = ("auto", "tiny", "real")
MEMORY_MODES = BACKEND_MEMORY_MODES
KIND_TABS = {"text": "Text to SVG", "instruct": "the editing tabs"}


@dataclass
class Environment:
    """The facts the app is built from (detected once at start-up)."""

    device: str  # "cuda", "cuda:1", "cpu"
    prior_mode: str = "auto"  # as asked: auto | tiny | real
    memory_mode: str = "auto"  # as asked; the resolved profile is in facts["memory"]
    facts: dict = field(default_factory=dict)

    @property
    def has_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def zero_gpu(self) -> bool:
        return bool(self.facts.get("zero_gpu"))

    @property
    def memory(self) -> str:
        return self.facts.get("memory", "none")

    def prior_for(self, kind: str) -> str:
        """The prior "auto" means for a backend of `kind` ("text" / "instruct")."""
        return self.facts["kinds"][kind]["prior"]

    def uses_real(self, kind: str) -> bool:
        k = self.facts["kinds"][kind]
        return k["prior"] == k["real"]

    def prior_names(self, kind: str) -> list[str]:
        """Every prior of `kind` a person may pick here (the server's own catalog: no paths, no hub ids)."""
        return [n for n, p in self.facts["priors"].items() if p["kind"] == kind]

    def run_device(self) -> str | None:
        """The device handed to backends.run (None lets the backend pick, as on ZeroGPU)."""
        return None if self.zero_gpu else self.device

    def summary(self) -> dict:
        return dict(self.facts, prior_mode=self.prior_mode)


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
    facts = describe_machine("cpu" if zero and not torch.cuda.is_available() else device, prior_mode, memory)
    return Environment(device=device, prior_mode=prior_mode, memory_mode=memory, facts=facts)


def headline(env: Environment) -> str:
    """One short line for the top of the page: real or try-out, and the prior each kind of tab uses."""
    f, kinds = env.facts, env.facts["kinds"]
    where = f"GPU ({f['gpu']})" if f.get("gpu") else "ZeroGPU" if env.zero_gpu else "GPU" if env.has_gpu else "CPU"
    offline = [k for k in kinds if not env.uses_real(k)]
    if not offline:
        return f"Running on **{where}** with {' and '.join(kinds[k]['real_label'] for k in kinds)}."
    used = "; ".join(f"{KIND_TABS[k]}: `{kinds[k]['prior']}`" for k in offline)
    return (f"**Try-out mode** on {where}: no {' or '.join(kinds[k]['real_label'] for k in offline)} here, so the "
            f"tabs use offline priors ({used}). Results name their prior.")


def banner(env: Environment) -> str:
    """Markdown for the top of the page: what runs, what is missing and how to provide it."""
    f = env.facts
    where = (f"GPU ({f['gpu']}, {f['gpu_mem_gb']:.0f} GB)" if f.get("gpu") else
             "ZeroGPU" if env.zero_gpu else "GPU" if env.has_gpu else "CPU")
    kinds = f["kinds"]
    real = [k for k in kinds if env.uses_real(k)]
    offline = [k for k in kinds if not env.uses_real(k)]
    lines = []
    if not offline:
        lines.append(f"Running on **{where}** with {' and '.join(kinds[k]['real_label'] for k in real)}.")
    else:
        used = "; ".join(f"{KIND_TABS[k]} use{'s' if k == 'text' else ''} `{kinds[k]['prior']}`: "
                         f"{kinds[k]['summary']}" for k in offline)
        lines.append(f"**Try-out mode** on {where}: no {' or '.join(kinds[k]['real_label'] for k in offline)} here, "
                     f"so {used}. Results name their prior; they are not Stable Diffusion's.")
        missing = []
        if not env.has_gpu and env.prior_mode == "auto":
            missing.append("a CUDA GPU")
        for k in offline:
            w = kinds[k]["weights"]
            if env.prior_mode != "tiny" and w["state"] not in ("local", "cached", "download"):
                missing.append(f"{kinds[k]['real_label']} weights `{w['source']}` ({w['detail']})")
        if env.prior_mode == "tiny":
            missing.append("nothing: tiny priors were asked for (`--prior tiny` / `DISTILL_PRIOR=tiny`)")
        if missing:
            lines.append("Missing for the real models: " + "; ".join(missing) + ".")
        lines.append("For the real models, on a machine with a GPU: `hf download <hub id>` once, or set "
                     + " / ".join(f"`{kinds[k]['env']}`" for k in kinds)
                     + " to a local diffusers folder or another hub id; then restart.")
    downloads = [f"`{kinds[k]['weights']['source']}`" for k in real if kinds[k]["weights"]["state"] == "download"]
    if downloads:
        lines.append(f"{', '.join(downloads)} will be downloaded on first use (a few GB, once).")
    if env.has_gpu and f["memory_switches"]:
        lines.append(f"Memory profile **{f['memory']}**: {', '.join(s.replace('_', ' ') for s in f['memory_switches'])} "
                     "on (`--memory none` turns it off).")
    for name, err in (f.get("plugin_errors") or {}).items():
        lines.append(f"Prior plugin `{name}` failed to load: {err}")
    return "\n\n".join(lines)


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
