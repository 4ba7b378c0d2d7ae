"""How long a run will take on this machine, said before it starts (each tab shows it beside Run).

A run, once its prior is loaded (`backends.core.runner.warm_up` included: the libraries a first run would import),
is a setup (sampling and tracing an init, building particles, encoding inputs), `steps` steps, and a finish (the
outputs: files, videos, scores). `backends.run` measures all three for every run that reaches its end and records
them here (`record`); `expect` then predicts a run from the latest record of the same backend, prior and device:

    seconds = (setup_s + steps * step_s + finish_s - extra_ref) * (fixed + (1 - fixed) * work / work_ref) + extra

where `work` is the budget's estimate of the run's work (`cls.estimate`'s `Work.units`: bytes, which grow with
paths, canvas size, particles and input size, or the backend's own `effort` where memory is not what its time
follows, e.g. raster-then-vectorize's k x sample_steps) and `work_ref` the recorded run's. Every stage scales with
the work: the setup encodes or samples every particle, the finish writes every frame or candidate. `fixed` is the
share of the recorded run's time that does not grow with the work (a step's Python and kernel-launch overhead,
tracing, ranking, writing files: on a CPU at the offline priors' small sizes often most of it), fitted by
`benchmarks.calibrate_time` from a second run at a larger size; a run measured here keeps the reference's share.
A run recorded without steps (all setup) is scaled whole. `extra` is the work's own seconds (`Work.seconds`, e.g. a
mesh's texture, whose cost grows with its texels however many steps run), added as estimated; `extra_ref` the
recorded run's, taken out of its time before scaling.
The runner's time budget check uses this same expectation. Before any run on this machine, the records are
those `python -m benchmarks.calibrate_time` measured on the reference machine (a 2-core CPU; `REFERENCE`), and the
expectation says so. Without any record, the budget's own rule (steps x work / throughput) gives a rough figure.
The model is linear in steps and in work: it is a guide for a person deciding whether to wait, not a promise (the
progress line's ETA, at the run's own pace, is the precise one).
"""
from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from . import budget
from ..priors import resolve_device

REFERENCE = Path(__file__).parents[1] / "data" / "timings_cpu.json"
SOURCES = {"here": "measured on this machine", "reference": "measured on a 2-core reference CPU",
           "rough": "a rough figure from the work estimate"}


@dataclass(frozen=True)
class Timing:
    """One measured run. setup_s: seconds from the start (prior loaded) to the first step's report, less that
    step's share; step_s: seconds per step after it; steps: the steps the run took; work: the budget's estimate of
    its work (`Work.units`; 0: the backend has none); finish_s: seconds from the last step's report to the result
    (writing the outputs; 0 in records older than it); fixed: the share of the time that does not grow with
    the work (0..1; 0 where not fitted); extra_s: the run's `Work.seconds` as estimated (0: none)."""

    setup_s: float
    step_s: float
    steps: int
    work: int = 0
    finish_s: float = 0.0
    fixed: float = 0.0
    extra_s: float = 0.0

    @classmethod
    def of(cls, timings: dict[str, Any]) -> "Timing":
        """The Timing in a result.json's "timings" (which also holds load_s and total_s)."""
        return cls(**{f: timings[f] for f in cls.__dataclass_fields__ if f in timings})


@dataclass(frozen=True)
class Expectation:
    seconds: float
    steps: int
    source: str  # a key of SOURCES

    def text(self) -> str:
        """"about 9 s (measured on this machine)"."""
        return f"about {duration(self.seconds)} ({SOURCES[self.source]})"


def duration(seconds: float) -> str:
    """"9 s", "2 min", "1.5 hours": the words a person reads a wait in."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} hours"


def from_reports(started: float, first: tuple[float, int], last: tuple[float, int], work: int = 0,
                 ended: float | None = None, extra_s: float = 0.0) -> Timing | None:
    """A Timing from a run's clock: its start, the (time, step) of its first and last progress reports with
    step >= 1, and its end (the result; None: at the last report). None when the run never reported a step."""
    (t1, s1), (tn, sn) = first, last
    if s1 < 1 or sn < s1:
        return None
    step_s = (tn - t1) / (sn - s1) if sn > s1 else (t1 - started) / s1
    return Timing(setup_s=max(0.0, t1 - started - s1 * step_s), step_s=max(0.0, step_s), steps=sn, work=int(work),
                  finish_s=max(0.0, (ended if ended is not None else tn) - tn), extra_s=float(extra_s))


class Records:
    """The latest Timing per (backend key, prior name, device type): this process's own runs, over the reference
    machine's (read once from `path`)."""

    def __init__(self, path: Path = REFERENCE):
        self.path = path
        self._here: dict[str, Timing] = {}
        self._reference: dict[str, Timing] | None = None
        self._lock = threading.Lock()

    @staticmethod
    def name(key: str, prior: str | None, device_type: str) -> str:
        return f"{key}|{prior or '-'}|{device_type}"

    def reference(self) -> dict[str, Timing]:
        if self._reference is None:
            try:
                rows = json.loads(self.path.read_text())["runs"]
                self._reference = {name: Timing(**row) for name, row in rows.items()}
            except (OSError, ValueError, KeyError, TypeError):
                self._reference = {}  # no reference table: runs measured here, or the rough rule
        return self._reference

    def add(self, key: str, prior: str | None, device_type: str, timing: Timing) -> None:
        with self._lock:
            self._here[self.name(key, prior, device_type)] = timing

    def get(self, key: str, prior: str | None, device_type: str) -> tuple[Timing, str] | None:
        name = self.name(key, prior, device_type)
        with self._lock:
            here = self._here.get(name)
        if here is not None:  # one run tells no fixed share: the reference's, unless the record has its own
            ref = self.reference().get(name)
            return (replace(here, fixed=ref.fixed) if ref is not None and not here.fixed else here), "here"
        if name in self.reference():
            return self.reference()[name], "reference"
        return None

    def clear(self) -> None:
        with self._lock:
            self._here.clear()


RECORDS = Records()


def record(key: str, prior: str | None, device: Any, timing: Timing | None) -> None:
    """Remember a finished run's timing for the next `expect` of the same backend, prior and device type."""
    if timing is not None:
        RECORDS.add(key, prior, _device_type(device), timing)


def expect(key: str, prior: str | None, device: Any, steps: int | None, work: int | None,
           extra_s: float = 0.0) -> Expectation | None:
    """The expected seconds of a run of `steps` steps (None: as many as the recorded run took) over `work` bytes
    (None: the recorded run's), plus `extra_s` (`Work.seconds`), from the latest record; else the budget's rough
    rule; None when neither applies.
    `backends.core.runner.expect` resolves a request's settings, prior and inputs into these."""
    kind = _device_type(device)
    found = RECORDS.get(key, prior, kind)
    if found is None:
        if not work or not steps:
            return None
        return Expectation(steps * work / budget.THROUGHPUT[kind] + extra_s, steps, "rough")
    timing, source = found
    ratio = work / timing.work if work and timing.work else 1.0
    scale = timing.fixed + (1 - timing.fixed) * ratio
    # a run recorded without steps (raster-then-vectorize's samples and trace) is all setup, scaled by its effort
    steps = int(steps or timing.steps) if timing.steps else 0
    total = timing.setup_s + steps * timing.step_s + timing.finish_s
    # the recorded run's own extra seconds are not scaled by the work (at most half its time is taken out)
    return Expectation(max(total / 2, total - timing.extra_s) * scale + extra_s, steps, source)


def write_reference(rows: dict[str, Timing], machine: str, path: Path = REFERENCE) -> None:
    """The reference table (`benchmarks.calibrate_time` writes it): the measured runs by `Records.name`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine, "runs": {k: asdict(v) for k, v in sorted(rows.items())}},
                               indent=1) + "\n")


def _device_type(device: Any) -> str:
    return "cuda" if resolve_device(device).type == "cuda" else "cpu"
