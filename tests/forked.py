"""One CLI call in a forked child of a driver that imported torch once: exit code, seconds, memory and stderr.

The bounded-input tests run dozens of CLI calls; a fresh interpreter each would spend 2-5 s importing torch on a
2-core machine, more than the calls themselves. A driver imports once and forks a child per call:

    res = run_forked(main, ["run", "image/sds", ...], work / "case.stderr", deadline_s=300, mem_cap=2 * 2**30)
    res["rc"], res["cpu_s"], res["extra_rss"], res["stderr"]   # rc -9: killed at the deadline

`deadline_s` is wall time and only ends a hang. A verdict on how long a case took reads `cpu_s`, the child's own CPU
seconds: other processes on the machine stretch the wall time (`seconds`), not the work the case did.

`mem_cap` caps the child's address space at what the driver had mapped plus that many bytes (None: the limit the
driver runs under, e.g. from `prlimit --as`). The child's stdout goes to /dev/null; a traceback escaping `main`
is written to its stderr and exits 99, so a test sees it as a failure with its cause.
"""
from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path
from typing import Callable, Sequence


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def vm_size() -> int:
    """Bytes of address space this process has mapped (what RLIMIT_AS counts)."""
    return _status_kb("VmSize")


def rss() -> int:
    return _status_kb("VmRSS")


def run_forked(main: Callable[[Sequence[str]], int], argv: Sequence[str], err_path: Path, *, deadline_s: float,
               mem_cap: int | None = None, out_path: Path | None = None) -> dict:
    """Run `main(argv)` in a forked child; {rc, seconds (wall), cpu_s (the child's user + system seconds), extra_rss
    (bytes beyond the driver's), stderr (lines)}. The child's stdout goes to `out_path` when one is given."""
    import resource

    base_vm, base_rss = vm_size(), rss()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:                                          # the child: one CLI call, then _exit
        code = 1
        try:
            if mem_cap is not None:
                resource.setrlimit(resource.RLIMIT_AS, (base_vm + mem_cap, base_vm + mem_cap))
            fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
            os.dup2(fd, 2)
            out = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if out_path else os.open(os.devnull,
                                                                                                   os.O_WRONLY)
            os.dup2(out, 1)
            code = main(list(argv))
            sys.stdout.flush()
            sys.stderr.flush()
        except BaseException:                             # a traceback is a failure the test reports
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            code = 99
        os._exit(code)
    while True:
        wpid, status, usage = os.wait4(pid, os.WNOHANG)
        if wpid == pid:
            rc = os.waitstatus_to_exitcode(status)
            break
        if time.perf_counter() - t0 > deadline_s:
            os.kill(pid, signal.SIGKILL)
            _, status, usage = os.wait4(pid, 0)
            rc = -9
            break
        time.sleep(0.01)
    seconds = time.perf_counter() - t0
    text = err_path.read_text(errors="replace") if err_path.exists() else ""
    return {"rc": rc, "seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime, "extra_rss": max(0, usage.ru_maxrss * 1024 - base_rss),
            "stderr": text.splitlines()}
