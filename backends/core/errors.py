"""Errors that carry one clear sentence for the person who caused them.

`InputError` is for bad input (a malformed SVG, an empty prompt, an out-of-range setting): the UI shows its
message, the CLI prints it on one line and exits with code 2. `RunError` is for a run that failed on good input
(NaN that would not go away, out of GPU memory, missing weights): same treatment, exit code 1.
"""


class DistillError(Exception):
    """Base class: `str(err)` is a complete sentence meant for the user."""


class InputError(DistillError, ValueError):
    """The input (file, prompt, setting) is not acceptable; nothing was run.

    suggestions: ready-to-use replacements for the refused prompt (the closest things a retrieval prior knows), in
    order; the app offers them as choices a visitor can click, the CLI's sentence already names them."""

    def __init__(self, message: str, *, suggestions: tuple[str, ...] | list[str] = ()):
        super().__init__(message)
        self.suggestions = tuple(suggestions)


class RunError(DistillError, RuntimeError):
    """The run could not finish (diverged, out of memory, model unavailable)."""


class ModelUnavailableError(RunError):
    """Weights for a prior could not be found or downloaded."""


def report_cli_error(err: DistillError) -> int:
    """Print `err` as the CLIs do (one line on stderr, no traceback) and return the exit code: 2 for bad input,
    1 for a failed run. With DISTILL_DEBUG set, re-raise instead, for the traceback."""
    import os
    import sys

    if os.environ.get("DISTILL_DEBUG"):
        raise err
    print(f"error: {err}", file=sys.stderr)
    return 2 if isinstance(err, InputError) else 1
