"""Errors that carry one clear sentence for the person who caused them.

`InputError` is for bad input (a malformed SVG, an empty prompt, an out-of-range setting): the UI shows its
message, the CLI prints it on one line and exits with code 2. `RunError` is for a run that failed on good input
(NaN that would not go away, out of GPU memory, missing weights): same treatment, exit code 1.
"""


class DistillError(Exception):
    """Base class: `str(err)` is a complete sentence meant for the user."""


class InputError(DistillError, ValueError):
    """The input (file, prompt, setting) is not acceptable; nothing was run."""


class RunError(DistillError, RuntimeError):
    """The run could not finish (diverged, out of memory, model unavailable)."""


class ModelUnavailableError(RunError):
    """Weights for a prior could not be found or downloaded."""
