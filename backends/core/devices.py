"""The run's device facts: moving host tensors to the device without making the host wait (the one pinned copy
every module uses), and how many CPU threads a run gets (the one thread policy the runner, the app, the CLI and
the benchmarks share)."""
from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import torch

from .settings import truthy

# A run whose peak memory is under this gains nothing from a second thread: torch keeps ops under 32768 elements
# on one thread (its grain size) and a run of a few MB has few above it, while each parallel region still wakes
# the second thread. The offline priors' default runs all hold 60-140 MB and are decided by the load instead.
SMALL_WORK_BYTES = 16 * 2**20
LOAD_SAMPLE_S = 0.1  # how long the cores' load is sampled before a run: 10 clock ticks of 10 ms per core
THREAD_SETTINGS = ("DISTILL_THREADS", "OMP_NUM_THREADS")  # explicit settings, the first set wins


def on_zero_gpu() -> bool:
    """A Hugging Face ZeroGPU Space: the GPU is attached per call by the `spaces` package."""
    return truthy(os.environ.get("SPACES_ZERO_GPU"))


def on_space() -> bool:
    return bool(os.environ.get("SPACE_ID"))


def to_device(x: torch.Tensor, device) -> torch.Tensor:
    """A host tensor on `device` without blocking the host: on CUDA a plain `.to()` from pageable memory waits for
    the GPU to finish all queued work (a host sync every step); a pinned copy with non_blocking does not, and the
    caching host allocator keeps the pinned block alive until the copy is done. Elsewhere: `.to(device)`."""
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)


# ------------------------------------------------------------------------------------------------ CPU threads

@dataclass(frozen=True)
class Threads:
    """The intra-op threads a run uses and why, in words, and the process's niceness, which decides its share of
    cores that other processes want too (recorded in result.json as {"threads", "why", "nice"})."""

    threads: int
    why: str
    nice: int = field(default_factory=lambda: os.nice(0))

    def as_dict(self) -> dict:
        return {"threads": self.threads, "why": self.why, "nice": self.nice}


def parse_cpu_max(text: str) -> float | None:
    """CPUs allowed by a cgroup v2 `cpu.max` ("max 100000" or "<quota> <period>", microseconds); None: no limit."""
    parts = text.split()
    if not parts or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1]) if len(parts) > 1 else 100000
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def parse_cfs(quota_text: str, period_text: str) -> float | None:
    """CPUs allowed by cgroup v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`; None: no limit (quota -1)."""
    try:
        quota, period = int(quota_text.strip()), int(period_text.strip())
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _cgroup_dirs(proc: Path) -> list[tuple[str, Path]]:
    """("v1" | "v2", folder) of this process's CPU cgroups, innermost first, then each parent up to its mount:
    a limit on any of them binds. Mounts come from /proc/self/mountinfo (a container may mount them anywhere)."""
    mounts: list[tuple[str, str, Path]] = []  # (version, root inside the hierarchy, mount point)
    for line in (_read(proc / "self" / "mountinfo") or "").splitlines():
        left, _, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or not tail:
            continue
        if tail[0] == "cgroup2":
            mounts.append(("v2", fields[3], Path(fields[4])))
        elif tail[0] == "cgroup" and len(tail) >= 3 and "cpu" in tail[2].split(","):
            mounts.append(("v1", fields[3], Path(fields[4])))
    found: list[tuple[str, Path]] = []
    for line in (_read(proc / "self" / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        version = "v2" if controllers == "" else "v1" if "cpu" in controllers.split(",") else None
        for mv, root, point in mounts:
            if mv != version:
                continue
            # a path under the mount's root maps into the mount; a cgroup namespace shows "/" for the mount itself
            rel = os.path.relpath(path, root) if path.startswith(root) else path.lstrip("/")
            folder = (point / rel).resolve() if rel not in ("", ".") else point
            if not folder.is_dir():
                folder = point
            while True:
                found.append((version, folder))
                if folder == point or point not in folder.parents:
                    break
                folder = folder.parent
    return found


def cgroup_cpus(proc: Path = Path("/proc")) -> float | None:
    """The CPUs a cgroup quota gives this process (v1 cfs quota or v2 cpu.max, the tightest along its cgroup's
    path), as a fraction of CPUs (1.5: one and a half); None where no quota applies. `proc` is /proc (a test
    passes a folder it wrote)."""
    limits = []
    for version, folder in _cgroup_dirs(proc):
        if version == "v2":
            text = _read(folder / "cpu.max")
            limit = parse_cpu_max(text) if text is not None else None
        else:
            quota, period = _read(folder / "cpu.cfs_quota_us"), _read(folder / "cpu.cfs_period_us")
            limit = parse_cfs(quota, period) if quota is not None and period is not None else None
        if limit is not None:
            limits.append(limit)
    return min(limits) if limits else None


def usable_cores(proc: Path = Path("/proc")) -> tuple[int, str]:
    """The cores this process may use: its affinity mask, capped by a cgroup quota (rounded up: a quota of 1.5 CPUs
    keeps two threads busy half the time, rounded down it would leave half a core unused). Returns (cores, why)."""
    try:
        affinity = len(os.sched_getaffinity(0))
        why = f"{affinity} cores in its affinity mask"
    except (AttributeError, OSError):  # not Linux
        affinity = os.cpu_count() or 1
        why = f"{affinity} cores"
    quota = cgroup_cpus(proc)
    if quota is not None and math.ceil(quota) < affinity:
        return max(1, math.ceil(quota)), f"{why}, a cgroup quota of {quota:g} CPUs"
    return affinity, why


def _cpu_ticks(cpus: set[int] | None) -> tuple[int, int]:
    """(busy, total) clock ticks of the given CPUs (None: all) since boot, from /proc/stat. Steal counts as busy:
    in a virtual machine it is the time other guests held the core."""
    busy = total = 0
    for line in (_read(Path("/proc/stat")) or "").splitlines():
        if not line.startswith("cpu") or line.startswith("cpu "):
            continue
        name, *values = line.split()
        if cpus is not None and int(name[3:]) not in cpus:
            continue
        ticks = [int(v) for v in values[:8]]
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)  # idle + iowait
        busy += sum(ticks) - idle
        total += sum(ticks)
    return busy, total


def others_load(window_s: float = LOAD_SAMPLE_S) -> float | None:
    """How many of this process's cores other processes kept busy over the last `window_s` seconds (0.0-cores),
    measured on the cores of its affinity mask from /proc/stat, less this process's own CPU time in the same window
    (its own other jobs are divided by the app, not counted as load). None where /proc/stat cannot be read.

    Sampled now rather than the load average: the load average trails by a minute and counts this process's own
    threads; a 0.1 s sample costs 0.1 s once per run and sees a process that started a second ago."""
    try:
        cpus = os.sched_getaffinity(0)
    except (AttributeError, OSError):
        cpus = None
    busy0, total0 = _cpu_ticks(cpus)
    if total0 == 0:
        return None
    own0, t0 = time.process_time(), time.perf_counter()
    time.sleep(window_s)
    busy1, total1 = _cpu_ticks(cpus)
    own1, t1 = time.process_time(), time.perf_counter()
    n = len(cpus) if cpus else (os.cpu_count() or 1)
    if total1 <= total0:
        return None
    busy_cores = (busy1 - busy0) / (total1 - total0) * n
    return max(0.0, busy_cores - (own1 - own0) / max(t1 - t0, 1e-6))


def explicit_threads(asked: int | str | None = None, env: Mapping[str, str] | None = None) -> Threads | None:
    """The threads a person set: `asked` (the CLI's --threads, the API's threads=), else DISTILL_THREADS, else
    OMP_NUM_THREADS; None when none is set. Raises ValueError for a setting that is not a whole number >= 1."""
    env = os.environ if env is None else env
    for name, value in (("--threads", asked), *((n, env.get(n)) for n in THREAD_SETTINGS)):
        if value is None or str(value).strip() == "":
            continue
        text = str(value).strip().split(",")[0]  # OMP_NUM_THREADS may list one number per nesting level
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{name} must be a whole number of threads, 1 or more, not {str(value)[:20]!r}")
        return Threads(int(text), f"{name}={int(text)} was set")
    return None


def choose_threads(work_bytes: int | None = None, *, share: int = 1, asked: int | str | None = None,
                   env: Mapping[str, str] | None = None, proc: Path = Path("/proc"),
                   load: float | None | str = "measure") -> Threads:
    """The intra-op threads for one run, and why.

    An explicit setting wins (`explicit_threads`). Otherwise: the cores this process may use (`usable_cores`:
    affinity, cgroup quota), divided among the `share` runs the process runs at once (the app's --concurrency),
    less the cores other processes keep busy (`others_load`, rounded: a core more than half taken is taken; one
    busy process beside two threads made runs 8-24x slower, since each parallel region waits for the descheduled
    thread), and 1 for work under SMALL_WORK_BYTES of peak memory (work_bytes: the run's `budget.Work.bytes`; None:
    unknown, not capped). Never fewer than 1. `load`: "measure" samples it now (only where it can change the
    answer); a number (cores) or None (unknown) is used as given (tests).
    """
    chosen = explicit_threads(asked, env)
    if chosen is not None:
        return chosen
    cores, why = usable_cores(proc)
    share = max(1, int(share))
    if share > 1:
        per_run = max(1, cores // share)
        why += f", shared by {share} concurrent runs"
    else:
        per_run = cores
    if per_run > 1 and work_bytes is not None and work_bytes < SMALL_WORK_BYTES:
        return Threads(1, f"{why}; a small run ({work_bytes / 2**20:.1f} MB at its peak) gains nothing from a "
                          f"second thread")
    if per_run > 1:
        others = others_load() if load == "measure" else load
        if others is not None and others >= 0.5:
            free = max(1, (cores - round(others)) // share)
            if free < per_run:
                return Threads(free, f"{why}; other processes keep {others:.1f} of them busy")
            why += f"; other processes keep {others:.1f} of them busy"
    return Threads(per_run, why)


def apply_threads(chosen: Threads) -> Threads:
    """Set torch's intra-op threads to `chosen` (in the calling thread, where OpenMP keeps the setting, and as the
    process's default for threads started later)."""
    if torch.get_num_threads() != chosen.threads:
        torch.set_num_threads(chosen.threads)
    return chosen
