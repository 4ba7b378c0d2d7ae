"""How the CLIs end on Ctrl-C (exit 130) and SIGTERM (exit 143): one line on stderr and no traceback, whenever
the signal comes, also during the seconds of `import torch` before any CLI code runs.

`python -m backends` and `python -m backends.svg` import this package (and with it torch) before their
`__main__` runs, so the package's first lines call `guard()` when started so: until the CLI's `main` takes over
with `raise_on_signals()`, a signal prints its line and ends the process at once (nothing is being written
then). During the run the signals raise (`KeyboardInterrupt`, `Terminated`), so the atomic writers remove what
they were writing; once `main` has returned, `exit_with` puts the guard back for the interpreter's shutdown
(atexit handlers, thread joins), where a raised KeyboardInterrupt would print a traceback.

Out of reach: the ~30 ms of Python's own start-up before this package is imported. DISTILL_DEBUG=1 leaves
Python's handlers alone, for a traceback.
"""
from __future__ import annotations

import os
import signal
import sys
import threading

INTERRUPTED = "error: interrupted"
TERMINATED = "error: terminated (SIGTERM)"
CLI_MODULES = ("backends", "backends.__main__", "backends.svg", "backends.svg.__main__")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, like Ctrl-C: writes in progress are abandoned without partial files."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _end_now(signum, frame):
    """Nothing is being written (imports, shutdown): say so in one line and end without unwinding."""
    try:
        sys.stdout.flush()  # what the CLI printed before, e.g. its result lines, still reaches a pipe
    except Exception:  # a signal inside a print: the buffer is busy
        pass
    line = TERMINATED if signum != signal.SIGINT else INTERRUPTED
    try:
        os.write(2, (line + "\n").encode())
    except OSError:
        pass
    os._exit(128 + signum)


def _main_module(argv: list[str]) -> str | None:
    """The module name after -m in the interpreter's own arguments (`-m x`, `-mx`, `-Bm x`, `-X dev -m x`)."""
    k = 1
    while k < len(argv) and argv[k].startswith("-") and argv[k] != "-" and not argv[k].startswith("--"):
        flags = argv[k][1:]
        for i, flag in enumerate(flags):
            if flag in "mcWX":  # options with a value: attached, or the next argument
                value = flags[i + 1:] or (argv[k + 1] if k + 1 < len(argv) else "")
                if flag == "m":
                    return value
                if flag == "c":
                    return None
                k += 0 if flags[i + 1:] else 1
                break
        k += 1
    return None


def started_as_cli() -> bool:
    """True while runpy imports this package for `python -m backends` or `python -m backends.svg` (runpy sets
    sys.argv[0] to the module's path only once it is found; until then it is "-m")."""
    return sys.argv[:1] == ["-m"] and _main_module(list(getattr(sys, "orig_argv", []))) in CLI_MODULES


def _settable() -> bool:
    return threading.current_thread() is threading.main_thread() and not os.environ.get("DISTILL_DEBUG")


def _replace(signum: int, handler) -> None:
    # an ignored signal stays ignored: a shell starts background jobs with SIGINT ignored so that Ctrl-C at the
    # terminal leaves them running
    if signal.getsignal(signum) is not signal.SIG_IGN:
        signal.signal(signum, handler)


def torch_or_exit() -> None:
    """For a CLI: import torch now, and end with one line (exit 2) when it cannot load, naming the address-space
    limit (ulimit -v) when one is set: torch maps more than a GB of libraries, and under a small limit its import
    is an ImportError of 20 lines that never says why."""
    try:
        import torch  # noqa: F401
    except (ImportError, OSError, MemoryError) as err:
        import resource

        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
        why = (f"this process's address-space limit (ulimit -v) is {limit / 2**30:.1f} GB; raise or lift it"
               if limit != resource.RLIM_INFINITY else "reinstall it (pip install -r requirements.txt)")
        first = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
        print(f"error: torch could not be loaded ({first}); {why}", file=sys.stderr)
        sys.exit(2)


def guard() -> None:
    """Until `raise_on_signals`: SIGINT and SIGTERM print their one line and end the process (130, 143)."""
    if _settable():
        _replace(signal.SIGINT, _end_now)
        _replace(signal.SIGTERM, _end_now)


def raise_on_signals() -> None:
    """For the run: Ctrl-C raises KeyboardInterrupt and SIGTERM raises `Terminated` where the run is."""
    if threading.current_thread() is threading.main_thread():
        if signal.getsignal(signal.SIGINT) is _end_now:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        _replace(signal.SIGTERM, _raise_terminated)  # an exit -15 with .partial files left and no word


def exit_with(main) -> None:
    """`sys.exit(main())` for a CLI's `__main__`: a signal that escapes main (raised while an output closes) is
    its one line too, and the guard is back for the interpreter's shutdown."""
    try:
        code = main()
    except Terminated:
        print(TERMINATED, file=sys.stderr)
        code = 143
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    finally:  # also after argparse's own exit (--help, a usage error)
        guard()
    _forget_caught_interrupt()
    sys.exit(code)


def _forget_caught_interrupt() -> None:
    """Let the exit code `main` chose stand. CPython marks a KeyboardInterrupt that leaves a string `exec` as
    unhandled even when a caller catches it (torch and dataclasses build methods that way, so a Ctrl-C during
    their imports is one); under `python -m` the interpreter then ends by re-raising SIGINT, exit -2 instead of
    130. Every string `exec` clears that mark as it starts; called only after `main` has returned."""
    exec("pass", {})
