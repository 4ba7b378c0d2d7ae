"""Diffusion priors: the one owner of models and machines.

    base.py      the `Prior` protocol every backend lives on, and the batched `Cond`
    catalog.py   the one table of names, kinds, environment variables and hub ids (plugins add entries)
    machine.py   GPU / ZeroGPU / hub / weights-on-disk facts, memory profiles, speed switches
    diffusers_prior.py, tiny.py, analytic.py   the priors themselves

`load_prior(name, device, memory=...)` is the one way in (the runner calls it); `auto_prior(kind)` says which prior
"auto" means on this machine; `describe()` gives the app its banner facts. A name may also be a hub id or a local
directory after the prior's name: `sd:path/or/hub-id`, `ip2p:...`.
"""
from __future__ import annotations

import threading

import torch

from ..errors import InputError
from . import catalog, machine
from .analytic import AnalyticEditPrior, AnalyticPrior
from .base import Cond, Prior
from .catalog import Entry, register

# What "auto" falls back to without real weights (or a GPU), per kind: the first one in the catalog wins.
OFFLINE_DEFAULTS = {"text": ("icons", "tiny-sd"), "instruct": ("edits", "tiny-ip2p")}
REAL = {"text": "sd", "instruct": "ip2p"}
TINY = {"text": "tiny-sd", "instruct": "tiny-ip2p"}
MODES = ("auto", "tiny", "real")

_cache: dict[tuple, Prior] = {}
_lock = threading.Lock()


def resolve_device(device: torch.device | str | None = None) -> torch.device:
    """The device to run on: "auto"/None picks CUDA when present; anything else must exist on this machine."""
    if device in (None, "", "auto"):
        return machine.default_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"The device {str(device)[:40]!r} is not one of auto, cpu, cuda or cuda:N.") from None
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"The device {str(device)[:40]!r} is not one of auto, cpu, cuda or cuda:N.")
    if dev.type == "cuda" and not (torch.cuda.is_available() and (dev.index or 0) < torch.cuda.device_count()):
        raise InputError(f"The device {str(device)!r} was asked for, but this machine has no such CUDA GPU; use "
                         "cpu or auto.")
    return dev


def load_prior(name: str, device: torch.device | str | None = None, memory: str = "auto") -> Prior:
    """Load (once per process per device and memory profile, then cached) the prior called `name`.

    device: default CUDA when present. memory: "auto" (from the GPU's size), "none", "24gb" or "16gb": the same
    switches whoever calls (CLI, app, API). Target-centred priors (analytic) are built per run, not cached.
    """
    e = catalog.entry(name)
    dev = resolve_device(device)
    source = name.split(":", 1)[1] if ":" in name else None
    if e.needs_target:
        return e.loader()(source, device=dev, memory=memory)
    key = (name, str(dev), machine.memory_profile(dev, memory))
    with _lock:
        if key not in _cache:
            _cache[key] = e.loader()(source, device=dev, memory=memory)
        return _cache[key]


def unload_all() -> None:
    """Drop every cached prior (frees GPU memory; the next load reads the weights again)."""
    with _lock:
        _cache.clear()
    machine.free_memory()


def auto_prior(kind: str, mode: str = "auto", device: torch.device | str | None = None) -> str:
    """The prior "auto" means for a backend of `kind` ("text" / "instruct"): the real model where a GPU and its
    weights are there (mode "auto"), else the offline default (the closed-form prior, or the tiny one)."""
    if mode not in MODES:
        raise ValueError(f"prior mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "real":
        return REAL[kind]
    if mode == "auto" and resolve_device(device).type == "cuda" and real_weights(kind).usable:
        return REAL[kind]
    if mode == "tiny":
        return TINY[kind]
    known = catalog.entries()
    return next(n for n in OFFLINE_DEFAULTS[kind] if n in known)


def real_weights(kind: str) -> machine.Weights:
    """Where the weights of the real model of `kind` stand (local facts only)."""
    return machine.find_weights(catalog.entry(REAL[kind]).source())


def describe(device: torch.device | str | None = None, mode: str = "auto", memory: str = "auto") -> dict:
    """The facts the app's banner shows: device, memory profile, the prior each kind uses and why, weights."""
    dev = resolve_device(device)
    facts = {"device": str(dev), "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "",
             "gpu_mem_gb": round(machine.gpu_memory_gb(dev), 1), "zero_gpu": machine.on_zero_gpu(),
             "memory": machine.memory_profile(dev, memory), "mode": mode,
             "memory_switches": list(machine.MEMORY_SWITCHES[machine.memory_profile(dev, memory)]),
             "hub_offline": machine.hub_offline(), "kinds": {}, "priors": {}, "plugin_errors": catalog.plugin_errors}
    for kind in catalog.KINDS:
        name = auto_prior(kind, mode, dev)
        e = catalog.entry(name)
        w = real_weights(kind)
        facts["kinds"][kind] = {"prior": name, "label": e.label, "summary": e.summary, "profile": e.profile,
                                "real": REAL[kind], "real_label": catalog.entry(REAL[kind]).label,
                                "env": catalog.entry(REAL[kind]).env,
                                "weights": {"source": w.source, "state": w.state, "detail": w.detail}}
    facts["priors"] = {n: {"kind": e.kind, "label": e.label, "summary": e.summary, "profile": e.profile,
                           "needs_target": e.needs_target}
                       for n, e in catalog.entries().items()}
    return facts


__all__ = ["AnalyticEditPrior", "AnalyticPrior", "Cond", "Entry", "Prior", "auto_prior", "catalog", "describe",
           "load_prior", "machine", "real_weights", "register", "resolve_device", "unload_all"]
