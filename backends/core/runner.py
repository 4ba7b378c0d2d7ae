"""Run a backend by name: the one code path the CLI, the UI and the Python API share.

It builds the settings from overrides, validates the inputs, loads the prior, drives the backend's
generator, times it, and writes `result.json` next to the result files.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch

from . import budget, registry, timing
from ..inputs import validate
from .devices import apply_threads, choose_threads, explicit_threads
from .errors import InputError, RunError
from .files import atomic_path, recording_writes
from ..inputs.validate import quote_path
from ..priors import auto_prior, catalog, load_prior, loaded_prior, resolve_device
from ..priors.machine import MEMORY_MODES, find_weights
from ..priors.base import PromptReader, StartNotice, suggested_settings
from .settings import field_value, make_settings, resolve_auto, to_dict
from .types import Progress, Result

QUIET_LIBRARIES = False  # the CLI sets it: see quiet_libraries
OOM_MESSAGE = "out of GPU memory: try fewer particles / paths, a smaller size, or the memory-saving options"


def check_prior(backend_cls, prior_name: str | None, device=None) -> str | None:
    """The prior name to use ("auto" or None: this machine's default for the backend's kind), or an InputError
    saying which priors fit this backend."""
    needs = backend_cls.spec.prior
    if needs == "none":
        return None
    if prior_name in (None, "", "auto"):
        return auto_prior(needs, "auto", device)
    if not prior_fits(backend_cls, catalog.entry(prior_name)):
        names = [n for n, x in catalog.entries().items() if prior_fits(backend_cls, x)]
        raise InputError(f"{backend_cls.key} needs a {needs} prior; choose one of {', '.join(names)}")
    return prior_name


def prior_fits(backend_cls, entry: catalog.Entry) -> bool:
    """Whether a backend can run on a prior: the kind it needs, and a prior centred on target images (the
    analytic one) only for a backend that gives it targets (`analytic_ok`)."""
    spec = backend_cls.spec
    return entry.kind == spec.prior and (not entry.needs_target or spec.analytic_ok)


def run_profile(prior_name: str | None, device) -> str:
    """"full" (the paper's settings) for real diffusion models, and for prior-less backends on a GPU; "quick"
    (CPU-sized) for the tiny and closed-form priors, and for prior-less backends on a CPU."""
    if prior_name is None:
        return "full" if resolve_device(device).type == "cuda" else "quick"
    return catalog.entry(prior_name).profile


@dataclass
class RunCall:
    """A run's arguments once every check that needs no model has passed: what the stages after loading read."""

    key: str
    cls: type
    settings: Any  # the backend's Settings, "auto" fields still None
    prior_name: str | None
    entry: catalog.Entry | None
    inputs: list[str]
    out: Path
    created: bool  # `out` does not exist yet: made by this run, taken away again if the run leaves nothing in it
    profile: str


@dataclass
class RunTrace:
    """What a run has done so far, for the clean-up of a run that does not complete and its out-of-memory message."""

    written: list[Path] = field(default_factory=list)  # the files this run put in `out`, in the order written
    result: Result | None = None
    work: budget.Work | None = None
    complete: bool = False


def run(
    key: str,
    settings: dict[str, Any] | Any = None,
    *,
    prior: str | None = None,
    inputs: Sequence[str | os.PathLike] = (),
    out_dir: str | os.PathLike,
    device: str | torch.device | None = None,
    memory: str = "auto",
    threads: int | None = None,
    cpu_share: int = 1,
) -> Iterator[Progress | Result]:
    """Yield the backend's Progress reports and finally its Result (with result.json written).

    settings: a dict of overrides (CLI strings are fine) or a ready Settings object; "auto" (None) fields are
    filled in from the prior's suggestions and the run's profile (see `backends.core.settings`).
    prior: a catalog name, "name:<hub id or folder>", or None / "auto" for this machine's default.
    memory: the prior's memory profile ("auto", "none", "24gb", "16gb"), the same whoever calls.
    threads: torch's intra-op CPU threads for this run (None: DISTILL_THREADS / OMP_NUM_THREADS when set, else
    chosen from the cores free for it: `devices.choose_threads`); cpu_share: how many runs this process runs at
    once (the app's --concurrency), which divide its cores. result.json records {"threads": n, "why": "..."}.
    Every check that needs no model runs before any model loads. Raises InputError for bad settings / inputs,
    RunError when the run fails (incl. out of GPU memory). A run that fails, is interrupted or is closed before
    its result.json is written removes the files it wrote: `out_dir` holds a whole result set or none.

    Stages: `check_call` (no model), `load_for_run`, `prepare_backend` (auto settings, budget, threads),
    `drive_backend`, `result_metadata` and `write_result_json`.
    """
    call = check_call(key, settings, prior, inputs, out_dir, device, memory, threads)
    trace = RunTrace()
    threads_before = torch.get_num_threads()
    try:
        result = yield from run_checked(call, trace, device, memory, threads, cpu_share)
    except torch.cuda.OutOfMemoryError:
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        raise RunError(OOM_MESSAGE) from None
    except (MemoryError, RuntimeError) as err:  # the CPU's out-of-memory: torch's allocator raises RuntimeError
        if isinstance(err, RuntimeError) and "can't allocate memory" not in str(err):
            raise
        lower = trace.work.lower if trace.work is not None else "its size settings"
        raise InputError(f"{key} ran out of memory on the CPU (more than this process may use); lower {lower}.") \
            from None
    finally:
        if not trace.complete:  # failed, interrupted or cancelled: its result set is not left half written
            _remove_run_files(call.out, trace.written, trace.result)
            if call.created:
                with contextlib.suppress(OSError):
                    call.out.rmdir()  # only when empty
        if torch.get_num_threads() != threads_before:  # a caller's own setting outlives the run
            torch.set_num_threads(threads_before)
    result.files.setdefault("json", str(call.out / "result.json"))
    yield result


def check_call(key: str, settings, prior: str | None, inputs, out_dir, device, memory: str,
               threads: int | None) -> RunCall:
    """Every check of a run that needs no model, in the order they are made: the settings, the prior
    (and a real one's weights), the arguments, the input files, the output folder, then the work budget."""
    cls = registry.get(key)
    spec = cls.spec
    settings = make_settings(cls.Settings, settings, where=key)
    prior_name = check_prior(cls, prior, device)
    entry = catalog.entry(prior_name) if prior_name else None
    if spec.prompt_required and not (entry and entry.needs_target):
        validate.prompt(settings.prompt)  # parsed already; only its emptiness is new: said before loading weights
    if entry is not None and entry.role == "real":
        check_real_weights(prior_name, entry, device)
    inputs = check_arguments(inputs, memory, threads)
    spec.inputs.check(key, len(inputs))
    for p in inputs:
        if not Path(p).is_file():
            raise InputError(f"input file not found: {p}")
    out = _writable_folder(out_dir)
    call = RunCall(key=key, cls=cls, settings=settings, prior_name=prior_name, entry=entry, inputs=inputs, out=out,
                   created=not out.exists(), profile=run_profile(prior_name, device))
    # The inputs' headers, counts and aspect, and the work budget with "auto" settings at the profile's values and
    # the catalog's facts of the prior (its image size), before the prior loads; again below once the prior's own
    # suggestions are known. Time is checked with the steps the person set, or the paper's at most: the prior may
    # suggest more than the profile's value, and a refusal after a minute of loading is the waste this check exists
    # to avoid. An offline prior loads in about a second, so with steps left to it its time waits for its own
    # suggestion (icons: svg/csd takes 200 steps, and 2000 would refuse a run that fits).
    steps = spec.steps(settings)
    check_work(cls, resolve_auto(settings, call.profile)[0], inputs, entry, device, steps, prior_name,
               timed=steps is not None or entry is None or not entry.offline)
    return call


def check_arguments(inputs, memory: str, threads: int | None) -> list[str]:
    """The input paths as strings, after the checks of the call's plain arguments (inputs, memory, threads)."""
    if isinstance(inputs, (str, os.PathLike)) or not isinstance(inputs, (list, tuple)) \
            or not all(isinstance(p, (str, os.PathLike)) for p in inputs):
        raise InputError(f"inputs must be a list of file paths, not {type(inputs).__name__} {str(inputs)[:40]!r}.")
    if memory not in MEMORY_MODES:
        raise InputError(f"memory must be one of {', '.join(MEMORY_MODES)}, not {str(memory)[:40]!r}.")
    try:
        explicit_threads(threads)  # a bad setting is said before any work, not after the prior loads
    except ValueError as err:
        raise InputError(f"{err}.") from None
    return [str(p) for p in inputs]


def run_checked(call: RunCall, trace: RunTrace, device, memory: str, threads: int | None,
                cpu_share: int) -> Iterator[Progress]:
    """The run after its checks: load, prepare, drive the backend, write result.json; returns the Result.
    `trace` records what it did as it goes, for `run`'s clean-up."""
    t0 = time.perf_counter()
    prior_obj = yield from load_for_run(call, device, memory)
    t_load = time.perf_counter() - t0
    settings, filled, chosen = yield from prepare_backend(call, trace, prior_obj, device, threads, cpu_share)
    clock = _StepClock()
    result = yield from drive_backend(call, settings, prior_obj, clock, chosen, trace)
    work = trace.work
    measured = clock.timing(work.units if work is not None else 0, work.seconds if work is not None else 0.0)
    where = prior_obj.device if prior_obj is not None else resolve_device(device)
    timing.record(call.key, call.prior_name, where, measured)
    meta = result_metadata(call, settings, filled, prior_obj, where, chosen, measured, result, t0, t_load)
    result.metadata = meta
    write_result_json(call.out, meta)
    trace.complete = True
    return result


def load_for_run(call: RunCall, device, memory: str) -> Iterator[Progress]:
    """Load the run's prior (a status line first for one that reads gigabytes) and warm the process up; returns
    the prior (None for a prior-less backend). A prompt a retrieval prior cannot draw is refused here."""
    entry, prior_name = call.entry, call.prior_name
    if entry is not None and not entry.offline:
        yield Progress(step=0, total=0, message=f"loading {entry.label} ({prior_name}); the first load reads "
                                                 "a few GB from disk and can take a minute")
    if QUIET_LIBRARIES and entry is not None and not entry.offline:
        quiet_libraries()  # imports diffusers / transformers (2 s): only for a prior that loads with them
    prior_obj = load_prior(prior_name, device, memory) if prior_name else None
    if call.cls.spec.prompt_required and isinstance(prior_obj, PromptReader):
        prior_obj.read(call.settings.prompt)  # a prompt a retrieval prior cannot draw is refused now, not after warm-up
    warm_up(call.cls, prior_obj.device if prior_obj is not None else resolve_device(device))
    return prior_obj


def prepare_backend(call: RunCall, trace: RunTrace, prior_obj, device, threads: int | None, cpu_share: int):
    """With the prior loaded: "auto" filled in from its suggestions, the budget checked again (the work goes to
    `trace`), the run's CPU threads chosen, the prior's start notice said, the output folder made and its previous
    result set removed. Returns (settings, {name: value} filled, the chosen threads)."""
    cls = call.cls
    settings, filled = fill_auto(cls, call.settings, call.prior_name, prior_obj, device)
    trace.work = check_work(cls, settings, call.inputs, prior_obj, device, cls.spec.steps(settings), call.prior_name)
    chosen = apply_threads(choose_threads(trace.work.bytes if trace.work is not None else None, share=cpu_share,
                                          asked=threads))
    notice = prior_obj.start_notice() if isinstance(prior_obj, StartNotice) else None
    if notice:
        yield Progress(step=0, total=0, message=notice)
    call.out.mkdir(parents=True, exist_ok=True)  # every check passed: a refused run leaves no folder behind
    clear_previous_result(call.out)  # and the folder's last result set goes as a whole
    return settings, filled, chosen


def drive_backend(call: RunCall, settings, prior_obj, clock: "_StepClock", chosen, trace: RunTrace
                  ) -> Iterator[Progress]:
    """Drive the backend's generator, passing its progress on and timing its steps; returns its Result. Every
    file it writes is recorded in `trace.written`."""
    backend = call.cls()
    clock.start()
    for item in recording_writes(backend.run(settings, prior=prior_obj, inputs=call.inputs, out_dir=call.out),
                                 trace.written):
        if isinstance(item, Result):
            trace.result = item
        else:
            clock.report(item.step)
            yield item
            # resumed, maybe on another OS thread (the app's worker pool): OpenMP keeps the count per thread
            apply_threads(chosen)
    if trace.result is None:
        raise RunError(f"{call.key} finished without a result")
    return trace.result


def result_metadata(call: RunCall, settings, filled: dict, prior_obj, where, chosen, measured,
                    result: Result, t0: float, t_load: float) -> dict:
    """What result.json holds: the run (backend, settings, prior, device, threads, inputs, timings) under the
    backend's own metadata, the result set's file names, and a note for a tiny prior. t0: the run's start after its
    checks (`time.perf_counter`); t_load: the seconds its loading took."""
    meta = {
        "backend": call.key,
        "settings": to_dict(settings),
        "auto": filled,
        "profile": call.profile,
        "seed": field_value(settings, "seed"),
        "prior": call.prior_name,
        "prior_description": prior_obj.description if prior_obj is not None else None,
        "prior_is_tiny": bool(prior_obj is not None and prior_obj.tiny),
        "switches": list(prior_obj.switches) if prior_obj is not None else [],
        "device": str(where),
        "threads": chosen.as_dict(),  # torch's intra-op CPU threads, and why (`devices.choose_threads`)
        "inputs": [Path(p).name for p in call.inputs],
        # what the inputs held, so a rerun (`python -m backends compare`) can tell this result is of these files
        "input_sha256": [file_sha256(p) for p in call.inputs],
        # load and total seconds, and the run's timing model (`backends.core.timing.Timing`: setup_s, step_s, ...)
        "timings": {"load_s": round(t_load, 3), "total_s": round(time.perf_counter() - t0, 3),
                    **(asdict(measured) if measured else {})},
        **result.metadata,
    }
    meta.setdefault("warnings", [])
    # the result set, by name in the folder: what the next run into this folder removes first
    meta["files"] = {role: Path(p).name for role, p in result.files.items() if Path(p).parent == call.out}
    if meta["prior_is_tiny"]:
        meta["note"] = "made with a tiny random-weight prior: shows the flow, not the method's quality"
    return meta


def write_result_json(out: Path, meta: dict) -> None:
    """result.json, written whole or not at all: its presence marks a complete result set."""
    with atomic_path(out / "result.json") as tmp:
        tmp.write_text(json.dumps(meta, indent=2, default=_json_default))


def quiet_libraries() -> None:
    """No library progress bars or INFO lines on the CLI's stderr for loads from disk ("Loading weights: 100%",
    "Writing model shards", "Loading pipeline components"); hub downloads keep theirs, since they are real
    progress a person waits for (transformers' own switch would silence those too, hence the tqdm hook)."""
    try:
        import diffusers.utils.logging as dlog

        dlog.disable_progress_bar()
        dlog.set_verbosity_error()
    except Exception:  # diffusers missing or changed: its bars are cosmetic
        pass
    try:
        import transformers.utils.logging as tlog

        tlog.set_verbosity_error()
        tlog.set_tqdm_hook(lambda factory, args, kwargs: tlog.EmptyTqdm(*args, **kwargs))
    except Exception:  # transformers missing or older than its tqdm hook
        pass


def warm_up(cls, device) -> None:
    """Load what a run would otherwise load on its first call in this process, as part of loading (the app's start
    does the same, `demo.runs`): torch.optim's first optimizer imports torch._dynamo (2-5 s on a 2-core CPU), and a
    backend that ranks its results with CLIP (`spec.scorer == "clip"`) loads the scorer (importing
    open_clip: 3-8 s more). The expected time (`backends.core.timing`) is of the run after loading; counted in the run,
    these would make a fresh process's first run take 3-25x the expectation. Later runs find both loaded."""
    import torch._dynamo  # noqa: F401  (what torch.optim imports lazily)

    if cls.spec.scorer == "clip":
        from ..measures.clip import default_clip

        default_clip(device)


def work_of(cls, settings, inputs: list[str], prior_obj) -> budget.Work | None:
    """The backend's cheap checks and work estimate (`cls.estimate`, headers only; an InputError for what no budget
    could fix), or None for a backend without one (plugins). prior_obj: the loaded prior, or before it loads its
    catalog entry (or None)."""
    estimate = cls.spec.estimate
    return None if estimate is None else estimate(settings, inputs, budget.facts(prior_obj))


def check_work(cls, settings, inputs: list[str], prior_obj, device, steps: int | None,
               prior_name: str | None = None, *, timed: bool = True) -> budget.Work | None:
    """`work_of` against the budget: an InputError naming the setting to lower; the work, for the run's timing.
    Before the prior loads (prior_obj its catalog entry) the memory the prior will hold (`Entry.memory`) is added.
    steps: for the time estimate (None: the backend decides, at most the paper's 2000). Time is the expectation
    shown beside Run (`timing.expect`, from the recorded runs) where there is a record, else the budget's rule;
    timed=False checks memory only."""
    work = work_of(cls, settings, inputs, prior_obj)
    if work is not None:
        loaded = prior_obj is not None and not isinstance(prior_obj, catalog.Entry)
        where = prior_obj.device if loaded else resolve_device(device)
        work = _with_prior_memory(work, prior_obj)
        if not timed:
            budget.check(work, where, where=cls.key)
            return work
        expected = timing.expect(cls.key, prior_name, where, steps or 2000, work.units, work.seconds)
        seconds = expected.seconds if expected is not None and expected.source != "rough" else None
        budget.check(work, where, where=cls.key, steps=expected.steps if seconds is not None else steps or 2000,
                     seconds=seconds)  # a record without steps (all setup) names no steps
    return work


def _with_prior_memory(work: budget.Work, prior_obj) -> budget.Work:
    """`work` plus the memory a prior not yet loaded will hold (its catalog entry's `memory`; 0 once loaded: the
    process holds it already)."""
    held = prior_obj.memory if isinstance(prior_obj, catalog.Entry) else 0
    return replace(work, bytes=work.bytes + held, what=f"{work.what} with the {prior_obj.name} prior") if held else work


def expect(key: str, settings: dict[str, Any] | None = None, *, prior: str | None = "auto",
           inputs: Sequence[str | os.PathLike] = (), device=None) -> timing.Expectation | None:
    """How long `run(key, settings, prior=prior, inputs=inputs, device=device)` should take once its prior is
    loaded (`backends.core.timing`), or None when nothing is known to base it on. Raises InputError for settings or a
    prior the run would refuse; inputs that are missing or unreadable are left out (the run says what is wrong)."""
    return estimate(key, settings, prior=prior, inputs=inputs, device=device)[1]


def estimate(key: str, settings: dict[str, Any] | None = None, *, prior: str | None = "auto",
             inputs: Sequence[str | os.PathLike] = (), device=None
             ) -> tuple[budget.Work | None, timing.Expectation | None]:
    """What `run` with these arguments is checked against before it starts: its work (`budget.Work`: peak bytes,
    counting what the prior will hold once loaded) and its expected seconds once the prior is loaded (`expect`);
    either is None where not known. A grid of runs (`backends.compare`) sums these and puts the total to the same
    `budget.check` a single run meets."""
    cls = registry.get(key)
    resolved, prior_name, loaded = _resolve(cls, settings, prior, device)
    entry = catalog.entry(prior_name) if prior_name else None
    paths = [str(p) for p in inputs if Path(p).is_file()]
    try:
        work = work_of(cls, resolved, paths, entry) if paths or cls.spec.inputs.min == 0 else None
    except InputError:
        work = None
    # the steps of the resolved settings, not the record's
    expected = timing.expect(key, prior_name, device, cls.spec.steps(resolved), work.units if work else None,
                             work.seconds if work else 0.0)
    if work is not None and entry is not None and loaded is None:
        work = _with_prior_memory(work, entry)
    return work, expected


def resolved_settings(key: str, settings: dict[str, Any] | None = None, *, prior: str | None = "auto",
                      device=None) -> dict[str, Any]:
    """The settings `run(key, settings, prior=prior, device=device)` takes, with "auto" filled in as the run fills
    it (what its result.json records): the page's help texts say what "auto" becomes from here."""
    return to_dict(_resolve(registry.get(key), settings, prior, device)[0])


def _resolve(cls, settings, prior, device):
    """(resolved Settings, prior name, the prior if loaded): what "auto" becomes in the run is the profile's values
    under the prior's own suggestions (icons: 200 steps, not the profile's 60), known from the prior in this
    process's cache, or loaded for an offline one (about a second)."""
    settings = make_settings(cls.Settings, settings, where=cls.key)
    prior_name = check_prior(cls, prior, device)
    entry = catalog.entry(prior_name) if prior_name else None
    loaded = None
    if entry is not None and not entry.needs_target:
        loaded = loaded_prior(prior_name, device) or (load_prior(prior_name, device) if entry.offline else None)
    return fill_auto(cls, settings, prior_name, loaded, device)[0], prior_name, loaded


def fill_auto(cls, settings, prior_name: str | None, prior, device):
    """(settings with "auto" filled in, {name: value} filled): the run profile's values under the prior's own
    suggestions (`prior`: the loaded prior, or None when it is not loaded). A run and `resolved_settings` both
    resolve here."""
    return resolve_auto(settings, run_profile(prior_name, device), suggested_settings(prior, cls.task))


class _StepClock:
    """The times of a run's first and last progress reports with a step, for `timing.from_reports`."""

    def __init__(self):
        self.started = self.first = self.last = None

    def start(self) -> None:
        self.started = time.perf_counter()

    def report(self, step: int) -> None:
        if step >= 1:
            now = (time.perf_counter(), step)
            self.first = self.first or now
            self.last = now

    def timing(self, work: int, extra_s: float = 0.0) -> timing.Timing | None:
        """The run's Timing; one that reported no step is all setup."""
        if self.started is None:
            return None
        if self.first is None:
            return timing.Timing(setup_s=time.perf_counter() - self.started, step_s=0.0, steps=0, work=work,
                                 extra_s=extra_s)
        return timing.from_reports(self.started, self.first, self.last, work, ended=time.perf_counter(),
                                   extra_s=extra_s)


def clear_previous_result(out: Path) -> None:
    """Remove the result set a previous run left in `out` (its result.json first, then the files it lists), so a
    run into the same folder never leaves one run's files beside another's result.json, even when interrupted.
    Only names directly in `out` are removed; a result.json that cannot be read is removed alone."""
    previous = out / "result.json"
    if not previous.is_file():
        return
    try:
        listed = json.loads(previous.read_text()).get("files") or {}
    except (OSError, ValueError, AttributeError):
        listed = {}
    previous.unlink(missing_ok=True)
    for name in listed.values() if isinstance(listed, dict) else ():
        path = out / str(name)
        if path.parent == out and path.is_file():
            path.unlink(missing_ok=True)


def _remove_run_files(out: Path, written: list[Path], result: Result | None) -> None:
    """Remove what a run that did not complete put directly in `out`: the files it wrote (`recording_writes`) and
    those its Result names (a plugin's own writers), so no part of its result set outlives it; the previous set
    went before it started (`clear_previous_result`). A file that cannot be removed (the disk failing) stays."""
    named = [Path(p) for p in result.files.values()] if result is not None else []
    for path in {*written, *named}:
        if path.parent == out and path.is_file():
            with contextlib.suppress(OSError):
                path.unlink()


def check_real_weights(prior_name: str, entry: catalog.Entry, device) -> None:
    """Refuse a real model whose weights are not on this machine before any work, naming what is missing (the
    weights, and a CUDA GPU where there is none); without this a CPU machine heard only how long the run would
    take there."""
    source = prior_name.split(":", 1)[1] if ":" in prior_name else entry.source()
    weights = find_weights(source)
    if weights.usable:
        return
    gpu = ("" if resolve_device(device).type == "cuda" else "; it also needs a CUDA GPU, which this machine lacks"
           if not torch.cuda.is_available() else "; it also needs a CUDA GPU, and this run is on the CPU")
    where = f"set {entry.env} to the folder of a downloaded model, or" if entry.env else ""
    raise InputError(f"The prior {prior_name.split(':', 1)[0]} needs the {entry.label} weights {source!r}, which are "
                     f"not on this machine ({weights.detail or weights.state}): {where} allow downloads from the "
                     f"Hugging Face Hub{gpu}.")


def _writable_folder(out_dir) -> Path:
    """The output folder, after checking files can be written there (before any work is done). It is made only
    once every check has passed (`run`), so a refused run leaves none behind."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        # an empty name would write into the current folder; None or a number is not a folder at all
        raise InputError(f"The output folder must be named (a path), not {str(out_dir)[:40]!r}.")
    out = Path(out_dir)
    if (out / "result.json").is_dir():
        raise InputError(f"The output folder {quote_path(out)} holds a folder named result.json, where the run "
                         f"writes its result: choose another folder.")
    existing = next(p for p in (out, *out.absolute().parents) if p.exists())  # where the first file would go
    try:
        if not existing.is_dir():
            raise NotADirectoryError(20, "a file is in the way") if existing != out else FileExistsError(
                17, "it is a file")
        with tempfile.NamedTemporaryFile(dir=existing, prefix=".write-check-"):
            pass
    except OSError as err:
        raise InputError(f"The output folder {quote_path(out)} cannot be written: {err.strerror or err}.") from None
    return out


def preload(prior: str, device=None, memory: str = "auto") -> None:
    """Load (download, on first use) a prior into the process's cache before a run needs it (the app's start-up
    and its first-use status line); the next run with the same prior, device and memory profile reuses it."""
    load_prior(prior, device, memory)


def run_to_end(key: str, settings=None, **kwargs) -> Result:
    """Run and return only the Result (for scripts and tests)."""
    result = None
    for item in run(key, settings, **kwargs):
        if isinstance(item, Result):
            result = item
    return result


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, hex (read in 1 MB blocks: inputs run to hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _json_default(obj):
    if isinstance(obj, (Path,)):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    return str(obj)
