"""Distill Studio backends: score distillation from frozen diffusion models, one plugin per method.

    import backends
    backends.available()                      # {"svg": ["vectorfusion", ...], ...}
    for item in backends.run("image/sds", {"steps": 200}, prior="analytic", inputs=["t.png"], out_dir="out"):
        ...                                   # Progress reports, then one Result
    backends.expect("image/sds", {"steps": 200}, prior="analytic", inputs=["t.png"])  # its seconds, roughly
"""
from .core import interrupts

if interrupts.started_as_cli():  # `python -m backends[.svg]`: Ctrl-C while torch imports is one line, not 13
    interrupts.guard()
    interrupts.torch_or_exit()

from .core.errors import DistillError, InputError, RunError
from .priors import MODES as PRIOR_MODES
from .priors import describe as describe_machine
from .priors import vocabulary
from .core.devices import on_space, on_zero_gpu
from .priors.machine import MEMORY_MODES, free_memory
from .core.registry import available, get, register, reload_plugins
from .core.runner import expect, preload, resolved_settings, run, run_to_end
from .core.types import Progress, Result

__all__ = ["DistillError", "InputError", "RunError", "available", "get", "register", "reload_plugins", "run",
           "run_to_end", "expect", "preload", "resolved_settings", "Progress", "Result", "describe_machine", "free_memory", "on_space", "on_zero_gpu",
           "MEMORY_MODES", "PRIOR_MODES", "vocabulary"]
