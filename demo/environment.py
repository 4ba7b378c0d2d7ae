"""What this machine runs, as the app shows it: built once at start-up from `backends.describe_machine()`, the one
owner of machine and model facts (device, memory profile, which prior "auto" means for each kind, where the real
weights stand). Nothing here looks at models or the network itself; it only words the facts for people.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

from backends import describe_machine, on_zero_gpu


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
        return self.facts["kinds"][kind]["uses_real"]

    def prior_names(self, kind: str) -> list[str]:
        """The priors of `kind` a person may pick here (the server's own catalog, no paths or hub ids; only those
        that can run here, see `backends.priors.describe`)."""
        return [n for n, p in self.facts["priors"].items() if p["kind"] == kind and p["offered"]]

    def is_tiny(self, prior: str | None) -> bool:
        """A random-weight prior, whose pictures mean nothing."""
        return bool(prior) and self.facts["priors"].get(prior.split(":", 1)[0], {}).get("tiny", False)

    def run_device(self) -> str | None:
        """The device handed to backends.run (None lets the backend pick, as on ZeroGPU)."""
        return None if self.zero_gpu else self.device

    def summary(self) -> dict:
        return dict(self.facts, prior_mode=self.prior_mode)


def detect(prior_mode: str = "auto", device: str = "auto", memory: str = "auto") -> Environment:
    """Look at this machine once: device, GPU memory, weights on disk; decide each tab's prior (an unknown prior or
    memory mode is a ValueError from `describe_machine`)."""
    import torch

    zero = on_zero_gpu()
    if device in ("", "auto"):
        device = "cuda" if (zero or torch.cuda.is_available()) else "cpu"
    if device.startswith("cuda") and not (zero or torch.cuda.is_available()):
        raise ValueError(f"--device {device} was asked for, but this machine has no usable CUDA GPU "
                         "(use --device auto or cpu)")
    facts = describe_machine("cpu" if zero and not torch.cuda.is_available() else device, prior_mode, memory)
    return Environment(device=device, prior_mode=prior_mode, memory_mode=memory, facts=facts)


def _where(env: Environment, memory: bool = False) -> str:
    f = env.facts
    if f.get("gpu"):
        return f"GPU ({f['gpu']}, {f['gpu_mem_gb']:.0f} GB)" if memory else f"GPU ({f['gpu']})"
    return "ZeroGPU" if env.zero_gpu else "GPU" if env.has_gpu else "CPU"


def _offline(env: Environment) -> list[dict]:
    return [k for k in env.facts["kinds"].values() if not k["uses_real"]]


def headline(env: Environment) -> str:
    """One short line for the top of the page: real or try-out, and the prior each kind of tab uses."""
    kinds, offline = env.facts["kinds"].values(), _offline(env)
    if not offline:
        return f"Running on **{_where(env)}** with {' and '.join(k['real_label'] for k in kinds)}."
    used = "; ".join(f"{k['for']}: `{k['prior']}`" for k in offline)
    return (f"**Try-out mode** on {_where(env)}: no {' or '.join(k['real_label'] for k in offline)} here, so the "
            f"tabs use offline priors ({used}). Results name their prior.")


def banner(env: Environment) -> str:
    """Markdown for the top of the page: what runs, what is missing and how to provide it."""
    f, offline = env.facts, _offline(env)
    kinds = f["kinds"].values()
    lines = []
    if not offline:
        lines.append(f"Running on **{_where(env, memory=True)}** with {' and '.join(k['real_label'] for k in kinds)}.")
    else:
        used = "; ".join(f"the {k['for']} tabs use `{k['prior']}`: {k['summary']}" for k in offline)
        lines.append(f"**Try-out mode** on {_where(env, memory=True)}: no "
                     f"{' or '.join(k['real_label'] for k in offline)} here, so {used}. Results name their prior; "
                     "they are not Stable Diffusion's.")
        missing = list(dict.fromkeys(why for k in offline for why in k["missing"]))
        if f["tiny_asked"]:
            lines.append("Tiny random-weight priors were asked for (`--prior tiny` / `DISTILL_PRIOR=tiny`).")
        elif missing:
            lines.append("Missing for the real models: " + "; ".join(missing) + ".")
        lines.append("For the real models, on a machine with a GPU: `hf download <hub id>` once, or set "
                     + " / ".join(f"`{k['env']}`" for k in kinds)
                     + " to a local diffusers folder or another hub id; then restart.")
    downloads = [f"`{k['weights']['source']}`" for k in kinds if k["uses_real"] and k["weights"]["downloads"]]
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
