"""Distill Studio backends: score distillation from frozen diffusion models, one plugin per method.

    import backends
    backends.available()                      # {"svg": ["vectorfusion", ...], ...}
    for item in backends.run("image/sds", {"steps": 200}, prior="analytic", inputs=["t.png"], out_dir="out"):
        ...                                   # Progress reports, then one Result
"""
from .errors import DistillError, InputError, RunError
from .registry import available, get, register, reload_plugins
from .runner import run, run_to_end
from .types import Progress, Result

__all__ = ["DistillError", "InputError", "RunError", "available", "get", "register", "reload_plugins", "run",
           "run_to_end", "Progress", "Result"]
