"""Diffusion priors by name: real weights (`sd`, `ip2p`), tiny random-weight stand-ins (`tiny-sd`,
`tiny-ip2p`) and the closed-form `analytic` prior. `load_prior(name)` is the one way in.

A name may also be a hub id or local directory, prefixed by its kind: `sd:path/or/hub-id`, `ip2p:...`.
"""
from __future__ import annotations

import os
import socket
import threading

import torch

from ...errors import InputError
from .analytic import AnalyticPrior
from .base import Cond, Prior

PRIORS = {
    "sd": "Stable Diffusion (text); weights from DISTILL_SD_MODEL or the default hub id",
    "ip2p": "InstructPix2Pix (text + image); weights from DISTILL_IP2P_MODEL or timbrooks/instruct-pix2pix",
    "tiny-sd": "tiny random-weight Stable Diffusion, built in code: for trying the flow offline, not for results",
    "tiny-ip2p": "tiny random-weight InstructPix2Pix, built in code: for trying the flow offline, not for results",
    "analytic": "Gaussian (mixture) around the given target(s) with exact noise prediction: for measuring the engine",
}
KIND = {"sd": "text", "tiny-sd": "text", "ip2p": "instruct", "tiny-ip2p": "instruct", "analytic": "analytic"}

_cache: dict[tuple, Prior] = {}
_lock = threading.Lock()
_hub_state: bool | None = None
_we_went_offline = False  # True when HF_HUB_OFFLINE was set by hub_reachable, not by the person


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def prior_kind(name: str) -> str:
    """"text", "instruct" or "analytic" for a prior name (incl. "sd:<source>" / "ip2p:<source>")."""
    base = name.split(":", 1)[0]
    if base not in KIND:
        raise InputError(f"unknown prior {name!r}: choose one of {', '.join(PRIORS)} (or sd:<hub id or folder>, ip2p:<...>)")
    return KIND[base]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers at all (one TCP connect, cached for the process). When it does not,
    HF_HUB_OFFLINE is set so that loading fails at once with a clear message instead of retrying for minutes."""
    global _hub_state
    if os.environ.get("HF_HUB_OFFLINE", "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
        return False
    if _hub_state is None:
        host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
        try:
            socket.create_connection((host, 443), timeout=timeout).close()
            _hub_state = True
        except OSError:
            global _we_went_offline
            _hub_state, _we_went_offline = False, True
            os.environ["HF_HUB_OFFLINE"] = "1"
    return _hub_state


def offline_reason() -> str:
    """Why the hub is not used, in words that are true: the person's HF_HUB_OFFLINE, or our own failed check."""
    if _we_went_offline:
        host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
        return f"the Hugging Face Hub ({host}) could not be reached from this machine"
    return "HF_HUB_OFFLINE is set"


def load_prior(name: str, device: torch.device | str | None = None) -> Prior:
    """Load (once per process, then cached) the prior called `name` on `device` (default: CUDA if present).

    The analytic prior is not cached: it is built per run around that run's targets (`AnalyticPrior.with_means`).
    """
    kind = prior_kind(name)
    dev = torch.device(device) if device is not None else default_device()
    if kind == "analytic":
        return AnalyticPrior(device=dev)
    key = (name, str(dev))
    with _lock:
        if key not in _cache:
            from .diffusers_prior import default_source, load_diffusers_prior

            base, _, source = name.partition(":")
            if not base.startswith("tiny-"):
                hub_reachable()
            model_kind = "sd" if kind == "text" else "ip2p"
            if base.startswith("tiny-"):
                from .tiny import ensure_tiny

                _cache[key] = load_diffusers_prior(str(ensure_tiny(model_kind)), model_kind, device=dev, tiny=True, name=name)
            else:
                _cache[key] = load_diffusers_prior(source or default_source(model_kind), model_kind, device=dev, name=name)
            accel = os.environ.get("DISTILL_ACCELERATE", "auto")
            _cache[key].accelerate(accel)
        return _cache[key]


def unload_all() -> None:
    """Drop every cached prior (frees GPU memory; the next load reads the weights again)."""
    with _lock:
        _cache.clear()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


__all__ = ["AnalyticPrior", "Cond", "Prior", "PRIORS", "load_prior", "prior_kind", "unload_all", "default_device", "hub_reachable"]
