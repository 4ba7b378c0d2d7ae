"""One press of Run, server side: the `<tab>_run` handler streams a run (and its baseline) to the tab's outputs;
the real priors are warmed before their first run so a download shows as its own status line. No widgets are
built here.

Flow: request JSON --parse/bounds--> plan (backend, prior, settings, inputs per side) --> backends.run through
jobs.drive, one progress report at a time under the device lock --> previews, then files, notices and a report.
Stop (`<tab>_stop`) flags this session's runs in this tab; they end at the next progress report.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import gradio as gr
import numpy as np
from PIL import Image

import backends
from backends.core.errors import DistillError, InputError, RunError
from backends import free_memory, preload
from backends.measures.clip import default_clip
from backends.core.types import Progress, Result

from . import environment
from .jobs import JOBS, Job, Stopped, acquire, device_lock, drive, publish, safe_stem, session_of
from .requests import (cli_line, defaults_of, inputs_for, parse_request, resolve_prior,
                       setting_differences)
from .widgets import TINY_NOTE, media_value, notices_markdown, report_markdown

if TYPE_CHECKING:  # runs.py drives a Tab (for the annotations only: tab.py imports this module)
    from .tab import Tab

log = logging.getLogger("distill_studio.app")


def download_stem(task: str, backend: str, seed, taken: set[str]) -> str:
    """`<method>-<task>-seed<N>`, the name a download starts with; `baseline-<...>` when the method already took it
    (two settings of one backend, same seed). The files box shortens a long name from its end, so what tells the
    method's files from the baseline's comes first."""
    stem = safe_stem(f"{backend}-{task}-seed{seed}")
    return f"baseline-{stem}" if stem in taken else stem


def make_runner(tab: Tab, n_inputs: int):
    """The `<tab>_run` handler with exactly one parameter per input widget (Gradio maps them by position)."""

    def run0(request_json, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [], request, progress)

    def run1(request_json, input_1, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [input_1], request, progress)

    def run2(request_json, input_1, input_2, request: gr.Request, progress=gr.Progress(track_tqdm=True)):
        yield from run_request(tab, request_json, [input_1, input_2], request, progress)

    fn = {0: run0, 1: run1, 2: run2}[n_inputs]
    fn.__name__ = f"{tab.spec.name}_run"
    fn.__doc__ = (f"Run the {tab.spec.title} tab: request_json is the settings JSON "
                  '({"backend", "prior", "settings", optional "compare"}); then its input files.')
    return fn


@dataclass
class Press:
    """One press of Run while it goes: what its error handlers and its clean-up read."""

    job: Job
    out: "_Outputs"
    t0: float = field(default_factory=time.perf_counter)
    outcome: str = "stopped"  # "stopped" also covers Gradio closing the generator (Stop, a closed page)
    it: Iterator | None = None  # the side's run being driven, closed at the end
    last_preview: tuple | None = None  # (side, label, backend key, Progress) of the last report with a preview


def run_request(tab: Tab, request_json: str, input_values: list, request: gr.Request | None, progress):
    """Run the method (and the baseline when asked) and stream what happens to the tab's outputs."""
    spec = tab.spec
    press = Press(JOBS.start(session_of(request), spec.name), _Outputs(tab))
    tab.offered.pop(session_of(request), None)
    log.info("job %d (%s) started", press.job.id, spec.name)
    try:
        yield from run_sides(tab, press, request_json, input_values, progress)
    except Stopped:
        yield stopped_update(press)
    except DistillError as err:
        press.outcome = "failed"
        kind = "Input problem" if isinstance(err, InputError) else "Run failed"
        gr.Warning(str(err))
        tab.offered[session_of(request)] = tuple(getattr(err, "suggestions", ()))
        yield press.out.final(f"**{kind}:** {err}", None, None, None)
    except Exception as err:  # a bug: log it, show one line, never a traceback
        press.outcome = "failed"
        log.exception("run failed in tab %s", spec.name)
        msg = f"internal error ({type(err).__name__}: {str(err)[:200]}); the server log has the details"
        gr.Warning(msg)
        yield press.out.final(f"**Run failed:** {msg}", None, None, None)
    finally:
        if press.it is not None:
            press.it.close()  # ends the backend's loop now, not whenever the garbage collector gets to it
        free_memory()
        JOBS.finish(press.job, press.outcome)
        log.info("job %d (%s) %s after %.2f s at step %d/%d", press.job.id, spec.name, press.outcome,
                 time.perf_counter() - press.t0, press.job.step, press.job.total)


def plan_sides(tab: Tab, request_json: str, input_values: list) -> list[tuple]:
    """The request JSON, checked, as one (label, backend class, prior, settings, input files) per side: the method,
    then the baseline when asked. Every side's backend is of this tab's task."""
    req = parse_request(request_json)
    sides = [("Method", req)] + ([("Baseline", req["compare"])] if req.get("compare") else [])
    plan = []
    for label, side in sides:
        cls = backends.get(side["backend"])
        if cls.task != tab.spec.task:
            raise InputError(f"{cls.key} is not a {tab.spec.title} backend; choose one of {', '.join(tab.keys)}")
        settings = dict(side.get("settings") or {})
        plan.append((label, cls, resolve_prior(cls, side.get("prior"), tab.env), settings,
                     inputs_for([slot.kind for slot in tab.spec.inputs], cls, input_values)))
    return plan


def run_sides(tab: Tab, press: Press, request_json: str, input_values: list, progress):
    """The run of each side in turn, then the final update: files, report, CLI lines, notices."""
    from backends.core.files import JobDir, cleanup_expired

    cfg = tab.config
    cleanup_expired(cfg.job_ttl_s, root=cfg.job_root)
    plan = plan_sides(tab, request_json, input_values)
    job_dir = JobDir(cfg.job_root, prefix=safe_stem(tab.spec.name).replace("-", "")[:16] or "job")
    press.out.folder = job_dir.path
    yield press.out.reset(compare=len(plan) > 1)
    rows, cli_lines, details, stems = [], [], {}, set()
    tells = setting_differences([p[3] for p in plan])
    for i, (label, cls, prior, settings, inputs) in enumerate(plan):
        side = "ab"[i]
        result = yield from run_side(tab, press, job_dir, side, label, cls, prior, settings, inputs, progress)
        stem = download_stem(cls.task, cls.name, result.metadata.get("seed", settings.get("seed", 0)), stems)
        stems.add(stem)
        files = publish(result.files, job_dir.path, stem)
        meta = result.metadata
        rows.append((label, meta))
        details[label.lower()] = meta
        cli_lines.append(f"# {label.lower()}\n" + cli_line(cls.key, prior, meta.get("settings", settings),
                                                              defaults_of(cls), inputs))
        yield press.out.result(side, label, cls.key, result, files, meta, job_dir.path, tell=tells[i])
    took = time.perf_counter() - press.t0
    status = f"**Done** in {took:.1f} s." + prior_sentence([m for _, m in rows])
    press.outcome = "done"
    yield press.out.final(status, report_markdown(rows), "\n".join(cli_lines), details, notices_markdown(rows))


def run_side(tab: Tab, press: Press, job_dir, side: str, label: str, cls, prior: str | None, settings: dict,
             inputs: list[str], progress):
    """One side's run ("a": the method, "b": the baseline): its prior warmed first under a status line of its own,
    then `backends.run` driven one progress report at a time under the device lock; returns its Result."""
    env, cfg = tab.env, tab.config
    note = f" ({TINY_NOTE})" if env.is_tiny(prior) else ""
    loading = prior_loading_message(prior, env)
    yield press.out.status(f"**{label}** `{cls.key}`: {loading or 'preparing'}{note}...")
    warm_prior(prior, env)
    side_dir = job_dir.path / side
    side_dir.mkdir()
    lock = device_lock(env.device, cfg.cpu_slots)
    press.it = drive(press.job, cls.key, settings, prior=prior, inputs=inputs, out_dir=side_dir,
                     device=env.run_device(), memory=env.memory_mode, threads=cfg.threads, cpu_share=cfg.cpu_slots)
    result = None
    while True:
        acquire(lock, press.job)
        try:
            item = next(press.it, None)
        finally:
            lock.release()
        if item is None:
            press.it = None
            break
        if isinstance(item, Result):
            result = item
            continue
        job_dir.touch()
        progress((item.step, item.total), desc=f"{label}: step")
        if item.preview is not None:
            press.last_preview = (side, label, cls.key, item)
        yield press.out.progress(side, label, cls.key, item, note)
    if result is None:
        raise RunError(f"{cls.key} finished without a result")
    return result


def stopped_update(press: Press) -> dict:
    """The final update of a stopped run: where it stopped and how soon after Stop; the stopped side's last
    preview offered as a file, marked partial."""
    job, out = press.job, press.out
    latency = time.monotonic() - job.stop_requested_at if job.stop_requested_at else 0.0
    where = f"at step {job.step} of {job.total}" if job.total else "before the first step"
    kept = ""
    if press.last_preview is not None and out.folder is not None and press.it is not None:  # the side stopped
        out.partial(*press.last_preview)
        kept = " Its last preview is offered as a file, marked partial."
    return out.final(f"**Stopped** {where} ({latency:.1f} s after Stop).{kept} The next run starts fresh.",
                     None, None, None)


def prior_sentence(metas: list[dict]) -> str:
    """' Made with `icons`: <what it is>.' for the priors a run used (none for prior-less backends)."""
    seen = {}
    for m in metas:
        if m.get("prior"):
            seen.setdefault(m["prior"], (m.get("prior_description") or "", m.get("prior_is_tiny")))
    parts = [f"`{name}` ({TINY_NOTE})" if tiny else f"`{name}`: {desc}" for name, (desc, tiny) in seen.items()]
    return f" Made with {'; '.join(parts)}." if parts else ""


_warmed: set[tuple[str, str]] = set()
_warm_lock = threading.Lock()


def _needs_warming(prior: str | None, env: environment.Environment) -> bool:
    """Only the real models take long to load (and may download): they get their own status line first."""
    return bool(prior) and prior in {k["real"] for k in env.facts["kinds"].values()}


def prior_loading_message(prior: str | None, env: environment.Environment) -> str | None:
    """What the status says while a real prior loads for the first time (a download on a fresh machine)."""
    if not _needs_warming(prior, env) or (prior, str(env.run_device())) in _warmed:
        return None
    k = next(k for k in env.facts["kinds"].values() if k["real"] == prior)
    what = f"{k['real_label']} weights `{k['weights']['source']}`"
    if k["weights"]["downloads"]:
        return f"downloading {what} from the Hugging Face Hub (first use only, a few GB)"
    return f"loading {what} (first use only, up to a minute)"


def warm_prior(prior: str | None, env: environment.Environment) -> None:
    """Load a real prior before the run (it stays cached), so a download or load shows as its own status line.
    The runner loads it with the same device and memory profile the run will ask for."""
    if not _needs_warming(prior, env):
        return
    key = (prior, str(env.run_device()))
    with _warm_lock:
        if key in _warmed:
            return
        preload(prior, env.run_device(), env.memory_mode)  # raises ModelUnavailableError with a how-to sentence
        _warmed.add(key)


def warm_in_background(env: environment.Environment) -> threading.Thread:
    """Start what a first run would otherwise wait for, without delaying start-up: loading (downloading) the real
    priors this machine will use, loading the offline ones, and the CLIP scorer every run reports with (importing
    open_clip alone takes ~8 s on a 2-core CPU: half of a first Text to SVG run's time). The first run then waits
    for this load instead of starting its own. Failures are logged; the run reports them again."""
    real = [k["real"] for kind, k in env.facts["kinds"].items() if env.uses_real(kind)]
    offline = [env.prior_for(kind) for kind in env.facts["kinds"] if not env.uses_real(kind)]

    def work():
        for name in real:
            try:
                warm_prior(name, env)
                log.info("prior %s ready", name)
            except Exception as err:  # noqa: BLE001 - reported to the person at their first run
                log.warning("could not preload prior %s: %s", name, err)
        try:
            for name in offline:
                preload(name, env.run_device(), env.memory_mode)
            default_clip(env.run_device())
            log.info("offline priors and the CLIP scorer ready")
        except Exception as err:  # noqa: BLE001 - the first run loads them itself and reports any failure
            log.warning("could not preload the offline priors or the CLIP scorer: %s", err)

    thread = threading.Thread(target=work, name="preload-priors", daemon=True)
    thread.start()
    return thread


def eta_text(step: int, total: int, elapsed: float) -> str:
    """" · about 12 s left": the steps still to go at the run's own pace so far (its rate on this machine, busy or
    not); nothing before the first step or after the last."""
    if step <= 0 or total <= step or elapsed <= 0:
        return ""
    left = elapsed / step * (total - step)
    return f" · about {left:.0f} s left" if left < 120 else f" · about {left / 60:.0f} min left"


class _Outputs:
    """Builds the updates of a tab's outputs. Each yield sends only what changed; the last one sends every output,
    so an API client's final result is complete."""

    def __init__(self, tab: Tab):
        self.t = tab
        self.state: dict = {}
        self.folder: Path | None = None  # the job folder, once there is one: previews are written there

    def _image(self, arr):
        """A preview as a PNG file in the job folder, named by its content and written once, atomically.
        Gradio caches a numpy image by rewriting the same file on every send, and the final yield re-sends the
        preview: a browser still fetching the previous send then got a truncated, broken image."""
        if self.folder is None or not isinstance(arr, np.ndarray):
            return arr
        data = np.ascontiguousarray(arr)
        path = self.folder / "previews" / f"{hashlib.sha1(data.tobytes() + str(data.shape).encode()).hexdigest()[:20]}.png"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            Image.fromarray(data).save(tmp, format="PNG")
            os.replace(tmp, path)
        return str(path)

    def _set(self, upd: dict) -> dict:
        self.state.update(upd)
        return upd

    def reset(self, compare: bool) -> dict:
        t = self.t
        upd = {t.caption_a: "**Method**", t.preview_a: None, t.caption_b: "**Baseline**", t.preview_b: None,
               t.files_a: None, t.files_b: None, t.notices: "", t.report: "", t.cli: "", t.details: None}
        for kind, a, b in zip(t.spec.media, t.media_a, t.media_b):
            upd[a] = upd[b] = media_value(kind, {}, self.folder)  # each kind's empty value
        return self._set(upd)

    def status(self, text: str) -> dict:
        return self._set({self.t.status: text})

    def progress(self, side: str, label: str, key: str, p: Progress, note: str) -> dict:
        """Plain words on the status line ("step 54 of 200 · 12.3 s · about 30 s left"); the loss and the other
        per-step figures belong to the run's report, not to a visitor's status."""
        text = (f"**{label}** `{key}`: step **{p.step}** of {p.total} · {p.elapsed:.1f} s"
                f"{eta_text(p.step, p.total, p.elapsed)}{note}")
        if p.message:
            text += f"  \n{p.message}"
        upd = {self.t.status: text}
        if p.preview is not None:
            upd[self.t.preview_a if side == "a" else self.t.preview_b] = self._image(p.preview)
            upd[self.t.caption_a if side == "a" else self.t.caption_b] = (
                f"**{label}** `{key}` · step {p.step}/{p.total}{note}")
        return self._set(upd)

    def result(self, side: str, label: str, key: str, r: Result, files: dict[str, str], meta: dict,
               folder: Path, tell: str = "") -> dict:
        """The side's result; `tell`: the settings that set it apart from the other side ("lr 0.01")."""
        t = self.t
        note = f" ({TINY_NOTE})" if meta.get("prior_is_tiny") else ""
        took = (meta.get("timings") or {}).get("total_s")
        caption = (f"**{label}** `{key}`" + (f" · {tell}" if tell else "")
                   + (f" · {took:.1f} s" if isinstance(took, (int, float)) else "") + note)
        caption_w, preview, media, file_w = ((t.caption_a, t.preview_a, t.media_a, t.files_a) if side == "a"
                                             else (t.caption_b, t.preview_b, t.media_b, t.files_b))
        upd = {file_w: list(files.values()), caption_w: caption}
        if r.preview is not None:
            upd[preview] = self._image(r.preview)
        for kind, widget in zip(t.spec.media, media):
            upd[widget] = media_value(kind, files, folder)
        return self._set(upd)

    def partial(self, side: str, label: str, key: str, p: Progress) -> dict:
        """What a stopped run made so far: its last preview, saved as a file of the side marked partial."""
        t = self.t
        folder = self.folder / side
        folder.mkdir(exist_ok=True)
        path = folder / f"{safe_stem(key.replace('/', '_'))}_partial_step{p.step}_of_{p.total}.png"
        Image.fromarray(np.ascontiguousarray(p.preview)).save(path, format="PNG")
        caption_w, file_w = (t.caption_a, t.files_a) if side == "a" else (t.caption_b, t.files_b)
        return self._set({file_w: [str(path)],
                          caption_w: f"**{label}** `{key}` · partial: stopped at step {p.step} of {p.total}"})

    def final(self, status: str, report: str | None, cli: str | None, details: dict | None,
              notices: str = "") -> dict:
        t = self.t
        upd = {t.status: status}
        if report is not None:
            upd.update({t.notices: notices, t.report: report, t.cli: cli, t.details: details})
        self._set(upd)
        return {c: self.state.get(c, gr.update()) for c in t.outputs}


