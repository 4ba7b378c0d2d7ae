"""How third-party code joins in, with no edit of this repository: Python entry points (nerfstudio's way), read by
the backend registry (`distill_studio.backends`) and the prior catalog (`distill_studio.priors`), and the
"module:attribute" strings with which a catalog entry names its loader."""
from __future__ import annotations

import importlib
from importlib.metadata import entry_points
from typing import Any, Callable


def load_entry_points(group: str, add: Callable[[Any], None], errors: dict[str, str]) -> None:
    """Load every entry point of `group` and hand what it names to `add`. A plugin that fails to import or to
    register is recorded in `errors` (entry point name -> "Type: message", shown by `list` and the app) instead of
    raising: a broken plugin must not take the app down."""
    for ep in entry_points(group=group):
        try:
            add(ep.load())
        except Exception as err:
            errors[ep.name] = f"{type(err).__name__}: {err}"


def resolve(ref: str) -> Any:
    """The object that "module:attribute" names, imported on first use."""
    module, _, name = ref.partition(":")
    return getattr(importlib.import_module(module), name)
