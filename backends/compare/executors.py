"""Where a grid's cells run: here (one worker per device) or on Ray (an actor per device).

Every cell is one `backends.run` into its folder (`cell_events`), whoever runs it; an executor only decides where.
Its `run(cells)` yields (kind, cell, payload): ("start", cell, None), ("progress", cell, Progress), then ("done",
cell, the result.json it wrote) or ("failed", cell, one sentence). Closing that generator stops the cells still
running: each run's own cleanup (`runner.run`) takes away what it had written.

local  One worker per device: one per GPU, else `workers` on the CPU (default 1). A single worker runs the cells in
       this process, in order (the app's and the CLI's priors stay loaded between cells and runs; previews pass
       through). Several run as spawned processes, each loading its priors once and keeping them for its next
       cells; processes, not threads, because a run seeds the process's one torch generator (`seed_everything`),
       so two runs in one process would draw from each other's stream and a seed would no longer fix the numbers.
ray    `--ray` or RAY_ADDRESS: an actor per GPU of the cluster (num_gpus=1 each), else `workers` CPU actors
       (num_cpus=1 each, default 1); each loads its priors once and runs the cells it is handed one at a time,
       streaming its progress back (a generator method). The cells' folders must be on storage every node sees.
"""
from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import queue
import signal
import threading
import time
from collections import deque
from dataclasses import replace
from typing import Any, Iterator, Sequence

from ..core.errors import DistillError, InputError
from ..core.types import Progress
from .plan import check_cells
from .spec import Cell

KINDS = ("local", "ray")
RAY_INSTALL = ("--ray needs Ray, which is not installed here: pip install -r requirements-ray.txt "
               "(or pip install -e '.[ray]')")


class Failure(str):
    """A failed cell's sentence, with the prompts a retrieval prior offers in place of the refused one
    (`InputError.suggestions`; empty for other failures): the app offers them as the prompt tabs do."""

    suggestions: tuple[str, ...]

    def __new__(cls, text: str, suggestions=()):
        self = super().__new__(cls, text)
        self.suggestions = tuple(suggestions)
        return self

    def __reduce__(self):  # to a worker process and back
        return Failure, (str(self), self.suggestions)


def cell_events(cell: Cell, device, memory: str = "auto", *, previews: bool = True,
                cpu_share: int = 1) -> Iterator[tuple[str, Any]]:
    """Run one cell: ("progress", Progress) ..., then ("done", its result.json) or ("failed", one sentence). A run
    that fails says why in the table and the grid goes on; with DISTILL_DEBUG set it raises, for the traceback.
    previews=False drops the Progress previews (what crosses to another process stays small); cpu_share: how many
    workers divide this machine's cores (`devices.choose_threads`)."""
    from ..core.runner import run

    try:
        for item in run(cell.backend, cell.settings, prior=cell.prior, inputs=list(cell.inputs),
                        out_dir=cell.folder, device=device, memory=memory, cpu_share=cpu_share):
            if isinstance(item, Progress):
                yield "progress", item if previews else replace(item, preview=None)
        yield "done", json.loads((cell.folder / "result.json").read_text(encoding="utf-8"))
    except DistillError as err:
        if os.environ.get("DISTILL_DEBUG"):
            raise
        yield "failed", Failure(str(err), getattr(err, "suggestions", ()))
    except Exception as err:  # a bug in one backend must not end the other cells; its line names the type
        if os.environ.get("DISTILL_DEBUG"):
            raise
        yield "failed", f"{type(err).__name__}: {str(err).splitlines()[0][:300] if str(err) else 'no message'}"


def make(kind: str, *, device=None, workers: int | None = None, memory: str = "auto"):
    """The executor called `kind` ("local" or "ray"); InputError for an unknown one or a missing Ray."""
    if kind == "local":
        return LocalExecutor(device=device, workers=workers, memory=memory)
    if kind == "ray":
        return RayExecutor(workers=workers, memory=memory)
    raise InputError(f"The executor must be one of {', '.join(KINDS)}, not {str(kind)[:40]!r}.")


def local_devices(device=None, workers: int | None = None) -> list[str]:
    """The local workers' devices: `device` x workers when named; one per GPU when there are GPUs; else workers x
    "cpu" (default one)."""
    import torch

    from ..priors import resolve_device

    if device not in (None, "", "auto"):
        resolve_device(device)  # an InputError for a device this machine lacks
        if str(device).split(":")[0] == "cpu":
            check_cpu_workers(workers or 1)
        return [str(device)] * (workers or 1)
    if torch.cuda.is_available():
        return [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    check_cpu_workers(workers or 1)
    return ["cpu"] * (workers or 1)


def check_cpu_workers(workers: int) -> None:
    """Refuse more CPU workers than the cores this process may use: each is a process running torch, and more of
    them than cores only share the cores slower (and each holds a cell's memory; `plan.check_cells` counts that)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    if workers > cores:
        raise InputError(f"{workers:,} workers is more than the {cores} CPU core{'s' if cores != 1 else ''} this "
                         f"process may use; give --workers (or workers) of at most {cores}.")


class LocalExecutor:
    """Cells on this machine: one worker per device (see the module docstring)."""

    kind = "local"

    def __init__(self, *, device=None, workers: int | None = None, memory: str = "auto"):
        self.devices = local_devices(device, workers)
        self.memory = memory
        self.slots = len(self.devices)
        self.where = f"{self.slots} local worker{'s' if self.slots > 1 else ''} ({', '.join(dict.fromkeys(self.devices))})"

    def check(self, cells: Sequence[Cell]) -> list[float]:
        return check_cells(cells, self.devices[0], self.slots)

    def run(self, cells: Sequence[Cell]) -> Iterator[tuple[str, Cell, Any]]:
        if self.slots == 1:
            for cell in cells:
                yield "start", cell, None
                for kind, payload in cell_events(cell, self.devices[0], self.memory):
                    yield kind, cell, payload
            return
        yield from self._processes(cells)

    def close(self) -> None:
        pass

    def _processes(self, cells: Sequence[Cell]) -> Iterator[tuple[str, Cell, Any]]:
        ctx = multiprocessing.get_context("spawn")  # a fork of a process with torch's threads can hang
        cpu_workers = sum(d == "cpu" for d in self.devices)
        procs = []
        try:
            tasks, events = ctx.Queue(), ctx.Queue()
            for cell in cells:
                tasks.put(cell)  # starts the queue's feeder thread
            for _ in self.devices:
                tasks.put(None)
            procs = [ctx.Process(target=_local_worker, args=(i, d, self.memory, max(1, cpu_workers), tasks, events),
                                 daemon=True, name=f"compare-worker-{i}") for i, d in enumerate(self.devices)]
            # The workers start with Ctrl-C ignored (inherited): the terminal sends it to the whole process group,
            # and a worker hit while importing torch would print a traceback; this process stops them (SIGTERM).
            with _sigint_ignored():
                for p in procs:
                    p.start()
        except (OSError, RuntimeError) as err:  # a process cap (ulimit -u, a cgroup's pids.max): EAGAIN, or a
            # thread that cannot start ("can't start new thread"): threads count against the same cap
            for started in procs:
                if started.pid is not None:
                    started.kill()
                    started.join(timeout=5)
            why = getattr(err, "strerror", None) or str(err) or type(err).__name__
            raise InputError(f"Could not start {len(self.devices)} worker processes ({why}: this machine's process "
                             "limit); give fewer --workers.") from None
        pending = {c.id: c for c in cells}
        running: dict[int, str] = {}
        try:
            while pending:
                try:
                    index, kind, cell_id, payload = events.get(timeout=0.5)
                except queue.Empty:
                    for i, p in enumerate(procs):  # a worker killed (out of memory): its cell failed
                        if not p.is_alive() and i in running:
                            cell = pending.pop(running.pop(i))
                            yield "failed", cell, (f"the worker on {self.devices[i]} ended (exit code {p.exitcode}) "
                                                   "during this run")
                    if pending and not any(p.is_alive() for p in procs):
                        for cell_id in list(pending):
                            yield "failed", pending.pop(cell_id), "no worker was left to run it"
                    continue
                cell = pending[cell_id]
                if kind == "start":
                    running[index] = cell_id
                elif kind in ("done", "failed"):
                    running.pop(index, None)
                    pending.pop(cell_id)
                yield kind, cell, payload
        finally:
            for p in procs:
                if p.is_alive():
                    p.terminate()  # SIGTERM: the run in it raises Terminated and takes its files away
            for p in procs:
                p.join(timeout=60)
                if p.is_alive():
                    p.kill()
                    p.join(timeout=5)
            tasks.cancel_join_thread()
            events.cancel_join_thread()


@contextlib.contextmanager
def _sigint_ignored():
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old)


def _local_worker(index: int, device: str, memory: str, cpu_share: int, tasks, events) -> None:
    """A spawned worker: cells from `tasks` until None, each one's events to `events`, tagged with its index; each
    run's threads are chosen for its share of the cores (`cpu_share` CPU workers run at once)."""
    from ..core import interrupts

    interrupts.raise_on_signals()  # SIGTERM from the parent raises Terminated where the run is
    try:
        while (cell := tasks.get()) is not None:
            events.put((index, "start", cell.id, None))
            for kind, payload in cell_events(cell, device, memory, previews=False, cpu_share=cpu_share):
                events.put((index, kind, cell.id, payload))
    except KeyboardInterrupt:  # Terminated: stopped by the parent, the run's files already taken away
        pass


# ------------------------------------------------------------------------------------------------------ Ray

def import_ray():
    """The ray module, or the InputError that says how to install it."""
    try:
        import ray
    except ImportError:
        raise InputError(RAY_INSTALL) from None
    return ray


class CellWorker:
    """A Ray actor: the cells it is handed, one at a time, on its device; the priors it loads stay in its process
    for its next cells (`backends.priors.load_prior`'s cache)."""

    def __init__(self, device: str, memory: str):
        self.device, self.memory = device, memory

    def check(self, cells: list[Cell], parallel: int) -> tuple[str, Any]:
        """("ok", each cell's expected seconds) or ("refused", the sentence): the budget checked on this worker's
        machine and device, where the cells will run."""
        try:
            return "ok", check_cells(cells, self.device, parallel)
        except InputError as err:
            return "refused", str(err)

    def run(self, cell: Cell):
        for kind, payload in cell_events(cell, self.device, self.memory, previews=False):
            yield kind, payload


_remote_worker = None
# Ray starts its workers at nice 15, so that its own daemons stay responsive. A cell is the whole of the work, and
# at nice 15 any busy process beside it takes nearly all of its core: a grid beside one ran 25x slower on Ray than
# on the local worker. Its job supervisor sets the same for its own actor.
AT_DRIVER_PRIORITY = {"env_vars": {"RAY_worker_niceness": "0"}}


@contextlib.contextmanager
def _own_signal_handlers():
    """Keep this process's SIGINT / SIGTERM handlers across ray.init, which installs its own: its SIGTERM handler
    aborts the driver (exit 134, a stack dump), where ours raises Terminated so that the grid stops its cells and
    writes its report."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            if handler is not None:  # None: a handler not set from Python, which Python cannot put back
                signal.signal(sig, handler)


class RayExecutor:
    """Cells as Ray actor tasks (see the module docstring). Connects to RAY_ADDRESS's cluster, to a Ray already
    initialized in this process (a test's local one), or starts a local Ray, which it shuts down on close."""

    kind = "ray"

    def __init__(self, *, workers: int | None = None, memory: str = "auto"):
        global _remote_worker
        ray = self.ray = import_ray()
        self.started = False
        if not ray.is_initialized():
            with _own_signal_handlers():
                if os.environ.get("RAY_ADDRESS"):
                    ray.init()  # the cluster's own settings; it has its dashboard or not
                else:
                    ray.init(include_dashboard=False)
            self.started = True
        if _remote_worker is None:
            _remote_worker = ray.remote(CellWorker)
        gpus = int(ray.cluster_resources().get("GPU", 0))
        device, count, resources = ("cuda", gpus, {"num_gpus": 1}) if gpus else ("cpu", workers or 1, {"num_cpus": 1})
        self.actors = [_remote_worker.options(**resources, runtime_env=AT_DRIVER_PRIORITY).remote(device, memory)
                       for _ in range(count)]
        self.slots = len(self.actors)
        self.where = (f"{self.slots} Ray actor{'s' if self.slots > 1 else ''} "
                      f"({'one per GPU' if gpus else 'CPU'})")

    def check(self, cells: Sequence[Cell]) -> list[float]:
        verdict, value = self.ray.get(self.actors[0].check.remote(list(cells), self.slots))
        if verdict == "refused":
            raise InputError(value)
        return value

    def run(self, cells: Sequence[Cell]) -> Iterator[tuple[str, Cell, Any]]:
        ray = self.ray
        todo, free = deque(cells), deque(self.actors)
        running: dict[Any, tuple[Any, Cell]] = {}  # the cell's stream of events -> (its actor, the cell)
        try:
            while todo or running:
                while todo and free:
                    actor, cell = free.popleft(), todo.popleft()
                    running[actor.run.remote(cell)] = (actor, cell)
                    yield "start", cell, None
                ready, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
                for stream in ready:
                    actor, cell = running[stream]
                    try:
                        kind, payload = ray.get(next(stream))
                    except StopIteration:
                        running.pop(stream)
                        free.append(actor)
                        continue
                    except ray.exceptions.RayError as err:  # the actor died (killed for memory) or a Ray failure
                        running.pop(stream)
                        yield "failed", cell, f"the Ray worker failed: {str(err).strip().splitlines()[0][:300]}"
                        if isinstance(err, ray.exceptions.RayActorError):
                            self.actors.remove(actor)
                            if not self.actors:
                                while todo:
                                    yield "failed", todo.popleft(), "no Ray worker was left to run it"
                        else:
                            free.append(actor)
                        continue
                    yield kind, cell, payload
        finally:
            if running:  # stopped: cancel the cells in flight (KeyboardInterrupt in the actor: the runner cleans)
                for stream in running:
                    with contextlib.suppress(Exception):
                        ray.cancel(stream)
                deadline = time.monotonic() + 30  # each run's own cleanup, waited for a while
                for stream in list(running):
                    with contextlib.suppress(Exception):
                        while ray.wait([stream], timeout=max(0.0, deadline - time.monotonic()))[0]:
                            ray.get(next(stream))
            # a cell interrupted before its next report leaves nothing behind either: the driver removes its folder

    def close(self) -> None:
        for actor in self.actors:
            with contextlib.suppress(Exception):
                self.ray.kill(actor)
        if self.started:
            with contextlib.suppress(Exception):
                self.ray.shutdown()
