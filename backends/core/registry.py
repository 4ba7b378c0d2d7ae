"""The backend registry: `@register(task, name)` on a class, `get("task/name")` to find it.

A backend is one readable module: a class with a `Settings` dataclass (paper defaults, declared with
`backends.core.settings.option`) and a `run(settings, *, prior, inputs, out_dir)` generator that yields
`Progress` and finally one `Result`. Class attributes say what it needs:
  description: one line for the UI and `python -m backends list`;
  prior: "text" (Stable Diffusion-like), "instruct" (InstructPix2Pix-like) or "none"; priors centred on target
         images (`needs_target`, the analytic prior) are accepted by a backend that sets `analytic_ok = True`;
  inputs: "none", "image", "images", "video", "svg", or "image?" (optional image);
  requires_prompt: True when an empty `prompt` setting is an error (checked before the prior loads);
  scorer: "clip" when the backend ranks its results with CLIP (the runner loads the scorer with the prior), else None;
  estimate(settings, input_paths, budget_facts): optional, the cheap checks and `budget.Work` of a run;
  total_steps(settings): optional, the steps a run takes when that is not its `steps` setting (svg/vectorize:
         stages x iterations).
Registering builds the backend's typed, frozen contract from these, `cls.spec` (a `types.BackendSpec`): what the
runner, the CLI, the budget and the app read.
Third-party packages add backends through the entry point group `distill_studio.backends`: each entry point
names a module (importing it registers its classes) or a class (registered under its `task` and `name`).
"""
from __future__ import annotations

import importlib
import importlib.util
import threading

from .errors import InputError
from .plugins import load_entry_points
from .types import BackendSpec, Inputs

ENTRY_POINT_GROUP = "distill_studio.backends"
BUILTIN_MODULES = (
    "backends.image",
    "backends.svg.builtin_backends",
    "backends.csd_edit.panorama",
    "backends.csd_edit.video",
    "backends.csd_edit.views3d",
    "backends.csd_edit.views3d_mesh",
)

# The class attributes a backend may declare (see the module docstring), and what an undeclared one means.
# Registering sets the missing ones, so every registered class has them all.
DECLARED = {"description": "", "prior": "none", "inputs": "none", "analytic_ok": False, "requires_prompt": False,
            "scorer": None, "estimate": None, "total_steps": None}

_registry: dict[str, type] = {}
_loaded = False
_load_lock = threading.RLock()
plugin_errors: dict[str, str] = {}


def register(task: str, name: str):
    """Class decorator: make the backend available as "task/name"."""

    def deco(cls):
        key = f"{task}/{name}"
        existing = _registry.get(key)
        if existing is not None and existing.__qualname__ != cls.__qualname__:
            raise ValueError(f"backend {key} is registered twice ({existing.__module__} and {cls.__module__})")
        cls.task, cls.name, cls.key = task, name, key
        for attr, default in DECLARED.items():
            if not hasattr(cls, attr):
                setattr(cls, attr, default)
        if not hasattr(cls, "Settings"):
            raise TypeError(f"backend {key} needs a Settings dataclass")
        cls.spec = BackendSpec(key=key, description=cls.description, prior=cls.prior, inputs=Inputs.parse(cls.inputs),
                               prompt_required=cls.requires_prompt, analytic_ok=cls.analytic_ok,
                               scorer=cls.scorer, estimate=cls.estimate,
                               **({"steps": cls.total_steps} if cls.total_steps is not None else {}))
        _registry[key] = cls
        return cls

    return deco


def _load() -> None:
    global _loaded
    with _load_lock:
        if _loaded:
            return
        for mod in BUILTIN_MODULES:
            if importlib.util.find_spec(mod.rsplit(".", 1)[0]) is not None and importlib.util.find_spec(mod) is not None:
                importlib.import_module(mod)
        load_entry_points(ENTRY_POINT_GROUP, _register_plugin, plugin_errors)
        _loaded = True


def _register_plugin(obj) -> None:
    """An entry point's object: a module registered its classes when imported; a class not yet registered is
    registered under its own `task` and `name`."""
    if isinstance(obj, type) and hasattr(obj, "task") and hasattr(obj, "name") and not hasattr(obj, "key"):
        register(obj.task, obj.name)(obj)


def reload_plugins() -> None:
    """Look at the entry points again (after installing a plugin in a running process)."""
    global _loaded
    with _load_lock:
        _loaded = False
        _load()


def available() -> dict[str, list[str]]:
    """{task: [backend names]} of everything installed (built-ins and plugins)."""
    _load()
    out: dict[str, list[str]] = {}
    for key in sorted(_registry):
        task, name = key.split("/", 1)
        out.setdefault(task, []).append(name)
    return out


def get(key: str, name: str | None = None) -> type:
    """The backend class for "task/name" (or get(task, name))."""
    _load()
    if name is not None:
        key = f"{key}/{name}"
    if key not in _registry:
        raise InputError(f"There is no backend {str(key)[:60]!r}; installed: {', '.join(sorted(_registry)) or 'none'}.")
    return _registry[key]
