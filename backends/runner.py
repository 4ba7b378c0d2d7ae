"""Run a backend by name: the one code path the CLI, the UI and the Python API share.

It builds the settings from overrides, validates the inputs, loads the prior, drives the backend's
generator, times it, and writes `result.json` next to the result files.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from . import registry, validate
from .engine.priors import PRIORS, load_prior, prior_kind
from .errors import InputError, RunError
from .settings import make_settings, to_dict
from .types import Progress, Result

OOM_MESSAGE = "out of GPU memory: try fewer particles / paths, a smaller size, or the memory-saving options"


def check_prior(backend_cls, prior_name: str | None) -> str | None:
    """The prior name to use, or an InputError saying which priors fit this backend."""
    needs = backend_cls.prior
    if needs == "none":
        return None
    if prior_name is None:
        prior_name = {"text": "sd", "instruct": "ip2p"}[needs]
    kind = prior_kind(prior_name)
    if kind == "analytic" and backend_cls.analytic_ok:
        return prior_name
    if kind != needs:
        fits = [n for n in PRIORS if prior_kind(n) == needs] + (["analytic"] if backend_cls.analytic_ok else [])
        raise InputError(f"{backend_cls.key} needs a {needs} prior; choose one of {', '.join(fits)}")
    return prior_name


def run(
    key: str,
    settings: dict[str, Any] | Any = None,
    *,
    prior: str | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    out_dir: str | os.PathLike,
    device: str | torch.device | None = None,
) -> Iterator[Progress | Result]:
    """Yield the backend's Progress reports and finally its Result (with result.json written).

    settings: a dict of overrides (CLI strings are fine) or a ready Settings object.
    Raises InputError for bad settings / inputs, RunError when the run fails (incl. out of GPU memory).
    """
    cls = registry.get(key)
    if not isinstance(settings, cls.Settings):
        settings = make_settings(cls.Settings, settings, where=key)
    prior_name = check_prior(cls, prior)
    if getattr(cls, "requires_prompt", False) and prior_kind(prior_name or "") != "analytic":
        validate.prompt(getattr(settings, "prompt", ""))  # say so before minutes of loading weights
    inputs = [str(p) for p in inputs]
    if cls.inputs in ("image", "video", "svg") and len(inputs) != 1:
        raise InputError(f"{key} takes exactly one --input ({cls.inputs}), got {len(inputs)}")
    if cls.inputs == "images" and not inputs:
        raise InputError(f"{key} needs --input files (several views, or one zip / video)")
    if cls.inputs == "none" and inputs:
        raise InputError(f"{key} takes no --input")
    for p in inputs:
        if not Path(p).is_file():
            raise InputError(f"input file not found: {p}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        prior_obj = load_prior(prior_name, device) if prior_name else None
        t_load = time.perf_counter() - t0
        backend = cls()
        result = None
        for item in backend.run(settings, prior=prior_obj, inputs=inputs, out_dir=out):
            if isinstance(item, Result):
                result = item
            else:
                yield item
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise RunError(OOM_MESSAGE) from None
    if result is None:
        raise RunError(f"{key} finished without a result")
    meta = {
        "backend": key,
        "settings": to_dict(settings),
        "seed": getattr(settings, "seed", None),
        "prior": prior_name,
        "prior_is_tiny": bool(prior_obj is not None and getattr(prior_obj, "tiny", False)),
        "device": str(getattr(prior_obj, "device", device or "cpu")),
        "inputs": [Path(p).name for p in inputs],
        "timings": {"load_s": round(t_load, 3), "total_s": round(time.perf_counter() - t0, 3)},
        **result.metadata,
    }
    if meta["prior_is_tiny"]:
        meta["note"] = "made with a tiny random-weight prior: shows the flow, not the method's quality"
    result.metadata = meta
    (out / "result.json").write_text(json.dumps(meta, indent=2, default=_json_default))
    result.files.setdefault("json", str(out / "result.json"))
    yield result


def run_to_end(key: str, settings=None, **kwargs) -> Result:
    """Run and return only the Result (for scripts and tests)."""
    result = None
    for item in run(key, settings, **kwargs):
        if isinstance(item, Result):
            result = item
    return result


def _json_default(obj):
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
