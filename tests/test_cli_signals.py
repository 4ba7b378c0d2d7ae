"""Ctrl-C and SIGTERM end both CLIs with one line (exit 130, 143) whenever they come: while the package imports
torch (seconds before any CLI code runs; a 13-38 line KeyboardInterrupt traceback, or a silent exit -15, before),
during the work, or after it.

The moments are not timed against the child's progress: each is "so long after the child started loading a
library of site-packages" (which only the package's imports do, after `backends.core.interrupts.guard` is in place),
and the outcome must be one of the allowed ones whichever stage the signal lands in. Python's own start-up
before that (~30 ms, before any project code) is out of the project's reach and not sampled."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.core.interrupts import _main_module

ROOT = Path(__file__).resolve().parents[1]
SVG = ('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64">'
       '<rect width="30" height="30" fill="red"/></svg>')


def _start(args, cwd, ignore_sigint=False):
    # as from a terminal: SIGINT at its default (a suite started in the background runs with it ignored)
    handler = signal.SIG_IGN if ignore_sigint else signal.SIG_DFL
    return subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, handler))


def _loading_libraries(proc) -> bool:
    """True once the child has mapped a shared library from site-packages (numpy's or torch's: the package's
    imports), or has ended."""
    if proc.poll() is not None:
        return True
    try:
        with open(f"/proc/{proc.pid}/maps") as fh:
            return any("site-packages/" in line and ".so" in line for line in fh)
    except OSError:  # ended meanwhile
        return True


def _signal_after(args, cwd, sig, delay, ignore_sigint=False):
    proc = _start(args, cwd, ignore_sigint)
    t0 = time.monotonic()
    while not _loading_libraries(proc):
        assert time.monotonic() - t0 < 120, "the child never started importing"
        time.sleep(0.002)
    time.sleep(delay)
    proc.send_signal(sig)  # a no-op once the child has been reaped
    out, err = proc.communicate(timeout=300)
    return proc.returncode, out, err


def _assert_allowed(rc, out, err, sig, line, finished):
    """One line and 128+sig; or the work finished first: exit 0 without a word, or (the signal landing in the
    interpreter's teardown, after Python has put the default handlers back) killed by it silently with the
    complete output already written, which a shell shows as 128+sig."""
    lines = err.strip().splitlines()
    if rc == 128 + sig:
        assert len(lines) == 1 and lines[0].startswith(line), err  # main() may add what it removed
    elif rc in (0, -sig):
        assert lines == [] and finished(out), (rc, out[-300:], err)
    else:
        raise AssertionError(f"exit {rc}: {err[-2000:]}")


DELAYS = [0.0, 0.05, 0.3, 1.0, 2.0, 3.5]


@pytest.mark.parametrize("sig, line", [(signal.SIGINT, "error: interrupted"),
                                       (signal.SIGTERM, "error: terminated (SIGTERM)")])
def test_list_ends_with_one_line_on_a_signal_at_any_moment(sig, line):
    seen = set()
    for delay in DELAYS:
        rc, out, err = _signal_after(["backends", "list"], ROOT, sig, delay)
        _assert_allowed(rc, out, err, sig, line, lambda out: "priors:" in out)
        seen.add(rc)
    assert 128 + sig in seen  # the early moments (during the imports) did interrupt


@pytest.mark.parametrize("sig, line", [(signal.SIGINT, "error: interrupted"),
                                       (signal.SIGTERM, "error: terminated (SIGTERM)")])
def test_svg_render_ends_with_one_line_on_a_signal_at_any_moment_and_leaves_no_file(tmp_path, sig, line):
    (tmp_path / "in.svg").write_text(SVG)
    seen = set()
    for delay in DELAYS[::2]:
        rc, out, err = _signal_after(["backends.svg", "render", "in.svg", "out.png"], tmp_path, sig, delay)
        _assert_allowed(rc, out, err, sig, line, lambda out: out.startswith("out.png: 64x64"))
        assert not [p.name for p in tmp_path.iterdir() if ".part" in p.name]
        assert (tmp_path / "out.png").exists() == (rc != 128 + sig)
        (tmp_path / "out.png").unlink(missing_ok=True)
        seen.add(rc)
    assert 128 + sig in seen


def test_an_ignored_sigint_stays_ignored_as_for_a_background_job():
    rc, out, err = _signal_after(["backends", "list"], ROOT, signal.SIGINT, 0.0, ignore_sigint=True)
    assert rc == 0 and "priors:" in out and not err.strip(), err


@pytest.mark.parametrize("argv, module", [
    (["python", "-m", "backends", "list"], "backends"),
    (["python", "-mbackends.svg", "render"], "backends.svg"),
    (["python", "-X", "dev", "-W", "ignore", "-Bm", "backends"], "backends"),
    (["python", "-c", "import backends", "-m", "backends"], None),
    (["python", "script.py", "-m", "backends"], None),
])
def test_the_cli_guard_recognises_only_python_dash_m_backends(argv, module):
    assert _main_module(argv) == module


def test_a_ctrl_c_caught_after_it_left_a_string_exec_still_ends_with_the_code_main_chose(tmp_path):
    """torch and dataclasses build methods with a string `exec`; a Ctrl-C landing in one is marked unhandled by
    CPython even once main has caught it and returned 130, and `python -m` then ended with SIGINT (exit -2: CI
    saw it once in the sampled moments above). Made certain here rather than left to a moment."""
    (tmp_path / "caught_in_exec.py").write_text(
        "from backends.core import interrupts\n\n"
        "def main():\n"
        "    try:\n"
        "        exec('raise KeyboardInterrupt', {})\n"
        "    except KeyboardInterrupt:\n"
        "        print(interrupts.INTERRUPTED, file=__import__('sys').stderr)\n"
        "        return 130\n\n"
        "interrupts.exit_with(main)\n")
    proc = subprocess.run([sys.executable, "-m", "caught_in_exec"], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)
    assert (proc.returncode, proc.stderr) == (130, "error: interrupted\n")
