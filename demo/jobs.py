"""Running backends for the UI: who is running what, how Stop reaches a run, one device at a time.

Gradio-free on purpose, so the stop and lock logic is tested without a browser. A run is a plain generator
over `backends.run`; Stop sets the job's flag and the run ends at the backend's next progress report (the
optimization loop only yields between steps, so that is the earliest safe point), closes the backend's
generator (which stops its loop) and gives the device to the next job.
"""
from __future__ import annotations

import itertools
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import backends
from backends.core.types import Progress, Result


class Stopped(Exception):
    """The person pressed Stop (or the job was cancelled); not an error."""


@dataclass
class Job:
    """One press of Run: its owner (session, tab), its stop flag and what it is doing now."""

    id: int
    session: str
    tab: str
    stop_flag: threading.Event = field(default_factory=threading.Event)
    started: float = field(default_factory=time.monotonic)
    stop_requested_at: float | None = None
    ended_at: float | None = None
    outcome: str = "running"  # running | done | stopped | failed
    step: int = 0
    total: int = 0

    @property
    def stopping(self) -> bool:
        return self.stop_flag.is_set()

    def stop(self) -> None:
        if not self.stop_flag.is_set():
            self.stop_requested_at = time.monotonic()
            self.stop_flag.set()


class JobTable:
    """The running jobs of every session, so a Stop press finds the runs it belongs to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[int, Job] = {}
        self._last: dict[tuple[str, str], Job] = {}
        self._ids = itertools.count(1)

    def start(self, session: str, tab: str) -> Job:
        with self._lock:
            job = Job(next(self._ids), session, tab)
            self._jobs[job.id] = job
            return job

    def finish(self, job: Job, outcome: str) -> None:
        with self._lock:
            job.ended_at, job.outcome = time.monotonic(), outcome
            self._jobs.pop(job.id, None)
            self._last[(job.session, job.tab)] = job

    def active(self, session: str, tab: str) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.session == session and j.tab == tab]

    def last(self, session: str, tab: str) -> Job | None:
        """The most recently ended job of this session in this tab."""
        with self._lock:
            return self._last.get((session, tab))

    def wait_stopped(self, session: str, tab: str, timeout_s: float) -> bool:
        """Wait until no job of this session in this tab is running; False if one still is after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while self.active(session, tab):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)
        return True

    def stop(self, session: str, tab: str) -> list[Job]:
        """Flag every running job of this session in this tab; returns them."""
        hits = self.active(session, tab)
        for job in hits:
            job.stop()
        return hits

    def running(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())


JOBS = JobTable()


def session_of(request) -> str:
    """The key of a browser session's jobs: Gradio's session hash, or "local" where a call has no request (the
    Python client, tests)."""
    return getattr(request, "session_hash", None) or "local"
_device_locks: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_device_locks_guard = threading.Lock()


def device_lock(device: str | None, slots: int = 1) -> threading.BoundedSemaphore:
    """The device's run slots, held by a job for each step: one on a GPU (a stopped run still finishing its last
    step keeps the next one off the GPU's memory); on a CPU the app's --concurrency, each job running on its share
    of the cores (`backends.core.devices.choose_threads`, cpu_share) rather than all jobs taking turns on all of
    them."""
    with _device_locks_guard:
        key = (str(device or "default"), max(1, int(slots)))
        return _device_locks.setdefault(key, threading.BoundedSemaphore(key[1]))


def acquire(lock: threading.Semaphore, job: Job, poll_s: float = 0.1) -> None:
    """Wait for the device, giving up (Stopped) if the job is stopped while it waits."""
    while not lock.acquire(timeout=poll_s):
        if job.stopping:
            raise Stopped()


def drive(job: Job, key: str, settings: dict[str, Any], *, prior: str | None, inputs: list[str], out_dir: Path,
          device: str | None, memory: str = "auto", threads: int | None = None,
          cpu_share: int = 1) -> Iterator[Progress | Result]:
    """`backends.run`, ended at the first report after the job's stop flag goes up (raises Stopped then).

    The backend's generator is always closed on the way out, which ends its optimization loop and drops its
    tensors, whatever the reason we leave (Stop, error, the consumer closing us).
    """
    if job.stopping:
        raise Stopped()
    gen = backends.run(key, settings, prior=prior, inputs=inputs, out_dir=out_dir, device=device, memory=memory,
                       threads=threads, cpu_share=cpu_share)
    try:
        for item in gen:
            if isinstance(item, Progress):
                job.step, job.total = item.step, item.total
            if job.stopping and not isinstance(item, Result):
                raise Stopped()
            yield item
    finally:
        gen.close()


_SAFE = re.compile(r"[^a-z0-9]+")


def safe_stem(text: str) -> str:
    """A file-name stem made from code-chosen text (a backend name): lowercase letters, digits, dashes."""
    return _SAFE.sub("-", text.lower()).strip("-")[:40] or "result"


def publish(files: dict[str, str], folder: Path, stem: str) -> dict[str, str]:
    """Copy a run's files to `folder` under readable, distinct names (<stem>-<role>.<ext>) for downloading.

    Method and baseline both write result.png; the copies say which is which. Roles come from backends (code),
    but are still reduced to safe characters.
    """
    out: dict[str, str] = {}
    done: dict[Path, str] = {}  # one copy per file, even when two roles name it (the best of K is also "svg")
    for role, path in files.items():
        src = Path(path)
        if src in done:
            out[role] = done[src]
            continue
        if not src.is_file():
            continue
        ext = src.suffix.lower()
        name = f"{stem}{ext}" if role == ext.lstrip(".") else f"{stem}-{safe_stem(role)}{ext}"
        dst = folder / name
        if dst.exists():
            dst = folder / f"{stem}-{safe_stem(role)}-{len(out)}{ext}"
        try:
            shutil.copy2(src, dst)
        except OSError:
            continue
        out[role] = done[src] = str(dst)
    return out
