"""Helpers every benchmark uses: what machine this is, timing, and writing results down.

`append_results(bench, table_md, rows)` appends a dated section naming the device, torch version and git
commit to benchmarks/RESULTS.md (the human record) and one JSON line per row to benchmarks/results.jsonl
(bench, device, metric, value, unit, date, commit: the machine record).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import torch

from backends.priors.machine import default_device

HERE = Path(__file__).resolve().parent
RESULTS_MD = HERE / "RESULTS.md"
RESULTS_JSONL = HERE / "results.jsonl"


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: str | torch.device | None = None) -> str:
    """A short description of the device: "NVIDIA H100 80GB HBM3" or "CPU <model> (2 cores)" (benchmarks say
    how many threads they used in their own tables)."""
    dev = torch.device(device) if device is not None else default_device()
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return f"CPU {cpu_name()} ({os.cpu_count()} cores)"


def torch_version() -> str:
    cuda = f", CUDA {torch.version.cuda}" if torch.cuda.is_available() else ""
    return f"torch {torch.__version__}{cuda}"


def today() -> str:
    """UTC date and time, minutes, ISO 8601."""
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%MZ")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def load_note() -> str:
    """The machine's load average: benchmarks on a shared machine should say how busy it was."""
    try:
        one, five, _ = os.getloadavg()
        return f"load average {one:.2f} (1 min), {five:.2f} (5 min)"
    except OSError:
        return "load average unknown"


def sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def measure(fn: Callable[[], object], *, device: str | torch.device = "cpu", warmup: int = 1,
            repeats: int = 5) -> list[float]:
    """Wall-clock seconds of `repeats` calls of fn after `warmup` untimed ones (CUDA synchronized)."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def median_ms(times: list[float]) -> float:
    return 1000.0 * statistics.median(times)


def append_results(bench: str, table_md: str, rows: list[dict], *, device: str | None = None,
                   notes: list[str] | None = None) -> None:
    """Append a section to RESULTS.md and rows to results.jsonl.

    rows: dicts with at least metric, value, unit (bench, device, date, commit are filled in when missing;
    other keys are kept). device: names the device in the section header (default: each row's "device",
    else this machine's default device).
    """
    date, commit = today(), git_commit()
    devices = sorted({str(r["device"]) for r in rows if r.get("device")})
    header_device = device or (", ".join(devices) if devices else device_name())
    lines = [f"\n## {bench}, {date}", "",
             f"Device: {header_device}. {torch_version()}, Python {platform.python_version()}, commit {commit}, "
             f"{load_note()}.", ""]
    lines += [f"{n}" for n in (notes or [])]
    if notes:
        lines.append("")
    lines += [table_md.rstrip(), ""]
    if not RESULTS_MD.exists():
        RESULTS_MD.write_text("# Benchmark results\n\nAppended by the scripts in benchmarks/ (newest last); "
                              "machine-readable rows are in results.jsonl.\n", encoding="utf-8")
    with RESULTS_MD.open("a", encoding="utf-8") as f:
        f.write("\n".join(lines))
    with RESULTS_JSONL.open("a", encoding="utf-8") as f:
        for r in rows:
            rec = {"bench": bench.split(" ")[0], "device": header_device, "metric": None, "value": None, "unit": None,
                   "date": date, "commit": commit}
            rec.update({k: v for k, v in r.items() if v is not None})
            f.write(json.dumps(rec) + "\n")


# ------------------------------------------------------------------------------------------------ CPU conditions

@contextlib.contextmanager
def busy_processes(n: int) -> Iterator[list[subprocess.Popen]]:
    """`n` processes that each keep one core busy (a Python busy loop at normal priority, as another person's job
    would), stopped on the way out. They are given a moment to start, so a run started inside sees them."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        time.sleep(0.5 if n else 0)
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()


def _cgroup_mounts() -> list[tuple[str, Path]]:
    out = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or not tail:
            continue
        if tail[0] == "cgroup2":
            out.append(("v2", Path(fields[4])))
        elif tail[0] == "cgroup" and len(tail) >= 3 and "cpu" in tail[2].split(","):
            out.append(("v1", Path(fields[4])))
    return out


@contextlib.contextmanager
def cpu_quota_cgroup(cpus: float) -> Iterator[tuple[Path | None, str]]:
    """A fresh cgroup limited to `cpus` CPUs (v1 `cpu.cfs_quota_us`, else v2 `cpu.max`), as (its cgroup.procs
    file, "") or (None, why not) where this machine allows none (not root, no writable CPU controller). A child
    joins it before it execs: `Popen(..., preexec_fn=lambda: procs.write_text(str(os.getpid())))`. Removed on
    the way out (its processes must have ended)."""
    if os.geteuid() != 0:
        yield None, "a cgroup quota needs root"
        return
    period = 100000
    made = None
    why = "no cgroup v1 cpu controller or cgroup v2 with cpu enabled is mounted"
    try:
        for version, point in sorted(_cgroup_mounts()):  # v1 first: where both exist, v1's cpu is the live one
            if version == "v2" and "cpu" not in (point / "cgroup.subtree_control").read_text().split():
                why = f"cgroup v2 at {point} does not delegate the cpu controller"
                continue
            folder = point / f"distill-quota-{os.getpid()}-{time.monotonic_ns()}"
            try:
                folder.mkdir()
                if version == "v1":
                    (folder / "cpu.cfs_period_us").write_text(str(period))
                    (folder / "cpu.cfs_quota_us").write_text(str(int(cpus * period)))
                else:
                    (folder / "cpu.max").write_text(f"{int(cpus * period)} {period}")
            except OSError as err:
                why = f"cannot make a cgroup at {point}: {err.strerror or err}"
                with contextlib.suppress(OSError):
                    folder.rmdir()
                continue
            made = folder
            break
    except OSError as err:
        why = f"cannot read the cgroup mounts: {err}"
    if made is None:
        yield None, why
        return
    try:
        yield made / "cgroup.procs", ""
    finally:
        for _ in range(50):  # a child just killed leaves the cgroup a moment later
            try:
                made.rmdir()
                break
            except OSError:
                time.sleep(0.1)
