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

from ..core.devices import on_zero_gpu
from ..core.errors import InputError
from . import catalog, machine
from .analytic import AnalyticEditPrior, AnalyticPrior
from .base import Cond, Prior
from .catalog import Entry, register

# What a person may ask of the priors: "auto" (real where a GPU and weights are there, else offline), or the
# real / tiny role of every kind.
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


def loaded_prior(name: str, device: torch.device | str | None = None, memory: str = "auto") -> Prior | None:
    """The prior `load_prior` would return if this process has loaded it already, else None (nothing loads)."""
    key = (name, str(resolve_device(device)), machine.memory_profile(resolve_device(device), memory))
    with _lock:
        return _cache.get(key)


def unload_all() -> None:
    """Drop every cached prior (frees GPU memory; the next load reads the weights again)."""
    with _lock:
        _cache.clear()
    machine.free_memory()


def auto_prior(kind: str, mode: str = "auto", device: torch.device | str | None = None) -> str:
    """The prior "auto" means for a backend of `kind` ("text" / "instruct"): the real model where a GPU and its
    weights are there (mode "auto"), else the catalog's first offline prior of that kind (the closed-form one), else
    its tiny one."""
    if mode not in MODES:
        raise ValueError(f"prior mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == "real" or (mode == "auto" and resolve_device(device).type == "cuda" and real_weights(kind).usable):
        return catalog.first(kind, "real")
    return (mode == "auto" and catalog.first(kind, "offline")) or catalog.first(kind, "tiny")


def vocabulary(name: str) -> tuple[str, ...] | None:
    """The prompts prior `name` knows when its vocabulary is closed (icon names, edit instructions), else None."""
    return catalog.entry(name).words()


def real_weights(kind: str) -> machine.Weights:
    """Where the weights of the real model of `kind` stand (local facts only)."""
    return machine.find_weights(catalog.real(kind).source())


def _offered(e: Entry, mode: str, weights: machine.Weights, on_gpu: bool) -> bool:
    """Whether a person may pick `e` here: a real model where its weights are there (a GPU too, unless real models
    were asked for), a tiny one only when tiny priors were asked for, every closed-form one."""
    if e.role == "real":
        return weights.usable and (on_gpu or mode == "real")
    return e.role != "tiny" or mode == "tiny"


def describe(device: torch.device | str | None = None, mode: str = "auto", memory: str = "auto") -> dict:
    """Everything the app words about this machine, already decided: device, memory profile; per kind the prior
    "auto" means, whether it is the real model, and if not what the real one lacks here (`missing`), where the real weights stand; per
    prior what it is, whether it is tiny and whether it is offered here."""
    dev = resolve_device(device)
    on_gpu = dev.type == "cuda"
    profile = machine.memory_profile(dev, memory)
    facts = {"device": str(dev), "gpu": torch.cuda.get_device_name(dev) if on_gpu else "",
             "gpu_mem_gb": round(machine.gpu_memory_gb(dev), 1), "zero_gpu": on_zero_gpu(),
             "memory": profile, "mode": mode, "tiny_asked": mode == "tiny", "memory_switches": list(machine.MEMORY_SWITCHES[profile]),
             "hub_offline": machine.hub_offline(), "kinds": {}, "priors": {}, "plugin_errors": catalog.plugin_errors}
    weights = {}
    for kind in catalog.KINDS:
        name, real = auto_prior(kind, mode, dev), catalog.real(kind)
        w = weights[kind] = real_weights(kind)
        missing = ([] if name == real.name or mode == "tiny" else
                   (["a CUDA GPU"] if not on_gpu and mode == "auto" else [])
                   + ([f"{real.label} weights `{w.source}` ({w.detail or w.state})"] if not w.usable else []))
        facts["kinds"][kind] = {"for": catalog.KIND_LABELS[kind], "prior": name, "label": catalog.entry(name).label,
                                "summary": catalog.entry(name).summary, "uses_real": name == real.name,
                                "missing": missing, "real": real.name, "real_label": real.label, "env": real.env,
                                "weights": {"source": w.source, "state": w.state, "detail": w.detail,
                                            "usable": w.usable, "downloads": w.state == "download"}}
    facts["priors"] = {n: {"kind": e.kind, "role": e.role, "label": e.label, "summary": e.summary,
                           "profile": e.profile, "tiny": e.tiny, "needs_target": e.needs_target,
                           "offered": _offered(e, mode, weights[e.kind], on_gpu),
                           "vocabulary": e.vocabulary is not None}
                       for n, e in catalog.entries().items()}
    return facts


__all__ = ["AnalyticEditPrior", "AnalyticPrior", "Cond", "Entry", "Prior", "auto_prior", "catalog", "describe",
           "load_prior", "machine", "MODES", "real_weights", "register", "resolve_device", "unload_all",
           "vocabulary"]
