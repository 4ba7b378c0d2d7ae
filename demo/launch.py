"""Build and start the app: one place that `python app.py`, a Space and the tests all go through.

Every flag has an environment variable of the same meaning (a Space sets variables, not flags):
  --host DISTILL_HOST (GRADIO_SERVER_NAME)   --port DISTILL_PORT (GRADIO_SERVER_PORT)   --share DISTILL_SHARE
  --prior DISTILL_PRIOR: auto | tiny | real  --device DISTILL_DEVICE: auto | cpu | cuda | cuda:N
  --memory DISTILL_MEMORY: auto | none | 24gb | 16gb   --queue-size DISTILL_QUEUE_SIZE
  --concurrency DISTILL_CONCURRENCY   --threads DISTILL_THREADS (CPU threads of every run; default: chosen per run)
  --job-ttl DISTILL_JOB_TTL (seconds a finished job's files are kept)
  --preload DISTILL_PRELOAD (load/download the real models in the background at start-up; default on a Space)
"""
from __future__ import annotations

import argparse
import logging
import os
import time
import urllib.request
from dataclasses import dataclass

import gradio as gr

import backends
from backends.inputs import media, validate
from backends.core.settings import truthy

from . import compare_tab, environment
from .runs import warm_in_background
from .style import CSS
from .tab import RunConfig, Tab, TabSpec
from .tab import tab_specs as specs_for_registry
from .widgets import banner_widget

TITLE = "Distill Studio"


@dataclass
class AppConfig:
    host: str = "127.0.0.1"
    port: int | None = None
    share: bool = False
    prior: str = "auto"
    device: str = "auto"
    memory: str = "auto"
    queue_size: int = 64
    concurrency: int = 1
    threads: int | None = None  # every run's CPU threads; None: chosen per run (`backends.core.devices.choose_threads`)
    job_ttl: float = 2 * 3600
    job_root: str | None = None
    preload: bool = False  # start loading the real priors in the background at start-up


def _env(name: str, *fallbacks: str, default=None):
    for key in (name, *fallbacks):
        if os.environ.get(key):
            return os.environ[key]
    return default


def parse_args(argv: list[str] | None = None) -> AppConfig:
    """Flags over environment variables over defaults."""
    on_space = backends.on_space()
    p = argparse.ArgumentParser(prog="python app.py", description="Distill Studio: score distillation in a browser tab")
    p.add_argument("--host", default=_env("DISTILL_HOST", "GRADIO_SERVER_NAME",
                                          default="0.0.0.0" if on_space else "127.0.0.1"),
                   help="address to serve on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=int(_env("DISTILL_PORT", "GRADIO_SERVER_PORT", default=0)) or None,
                   help="port (default: Gradio's, 7860 or the next free one)")
    p.add_argument("--share", action=argparse.BooleanOptionalAction,
                   default=truthy(_env("DISTILL_SHARE", default="")),
                   help="also serve through a public gradio.live link")
    p.add_argument("--prior", choices=backends.PRIOR_MODES, default=_env("DISTILL_PRIOR", default="auto"),
                   help="auto: real models when a GPU and their weights are there, else the tiny built-in ones")
    p.add_argument("--device", default=_env("DISTILL_DEVICE", default="auto"), help="auto, cpu, cuda, cuda:1")
    p.add_argument("--memory", choices=backends.MEMORY_MODES, default=_env("DISTILL_MEMORY", default="auto"),
                   help="memory savers for 24 GB / 16 GB GPUs (auto: from the GPU's size)")
    p.add_argument("--queue-size", type=int, default=int(_env("DISTILL_QUEUE_SIZE", default=64)),
                   help="jobs that may wait in the queue before new ones are refused")
    p.add_argument("--concurrency", type=int, default=int(_env("DISTILL_CONCURRENCY", default=1)),
                   help="jobs running at once on the device (on a CPU each gets its share of the cores)")
    p.add_argument("--threads", type=int, default=None,
                   help="CPU threads of every run (default: DISTILL_THREADS or OMP_NUM_THREADS when set, else chosen "
                        "per run from the free cores and the run's size)")
    p.add_argument("--job-ttl", type=float, default=float(_env("DISTILL_JOB_TTL", default=2 * 3600)),
                   help="seconds a job's result files are kept")
    p.add_argument("--preload", action=argparse.BooleanOptionalAction,
                   default=truthy(_env("DISTILL_PRELOAD", default="1" if on_space else "")),
                   help="load (download) the real models in the background at start-up (default on a Space)")
    a = p.parse_args(argv)
    if a.threads is not None and a.threads < 1:
        p.error(f"--threads must be 1 or more, not {a.threads}")
    return AppConfig(host=a.host, port=a.port, share=a.share, prior=a.prior, device=a.device, memory=a.memory,
                     queue_size=a.queue_size, concurrency=a.concurrency, threads=a.threads, job_ttl=a.job_ttl,
                     preload=a.preload)


def theme():
    # System fonts only: the default theme's web fonts would be fetched from the internet on every page load.
    fonts = ["ui-sans-serif", "system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"]
    mono = ["ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"]
    return gr.themes.Soft(primary_hue="orange", font=fonts, font_mono=mono)


def tab_specs() -> list[TabSpec]:
    """One tab per registered task: the five known tasks keep their own TabSpec modules (in this order), and any
    other task a plugin registers gets a generic tab."""
    from . import image_tab, panorama_tab, svg_tab, video_tab, views3d_tab

    return specs_for_registry([svg_tab.SPEC, panorama_tab.SPEC, video_tab.SPEC, views3d_tab.SPEC, image_tab.SPEC])


def build_app(config: AppConfig | None = None, env: environment.Environment | None = None) -> gr.Blocks:
    """The whole app as one gr.Blocks (not launched). `demo.tabs` maps tab names to their `Tab` objects."""
    config = config or AppConfig()
    env = env or environment.detect(config.prior, config.device, config.memory)
    from backends.core.files import cleanup_expired

    run_config = RunConfig(env=env, queue_id=f"device-{env.device}", concurrency=max(1, config.concurrency),
                           job_ttl_s=config.job_ttl, job_root=config.job_root, threads=config.threads)
    cleanup_expired(config.job_ttl, root=config.job_root)
    tabs: dict[str, Tab] = {}
    # No analytics: the app must start and run with no network, and sends nothing anywhere.
    with gr.Blocks(title=TITLE, delete_cache=(1800, int(max(config.job_ttl, 3600))), analytics_enabled=False) as demo:
        gr.Markdown(f"# {TITLE}\nTurn a frozen text-to-image diffusion model into a tool for vector graphics and "
                    "consistent editing, by score distillation.", elem_id="title")
        banner_widget(env)
        with gr.Tabs():
            for spec in tab_specs():
                with gr.Tab(spec.title, id=spec.name, elem_id=f"tab-{spec.name}"):
                    tab = Tab(spec, run_config)
                    tab.build()
                    tabs[spec.name] = tab
            with gr.Tab("Compare", id=compare_tab.NAME, elem_id=f"tab-{compare_tab.NAME}"):
                compare = compare_tab.CompareTab(run_config)
                compare.build()
        def environment_info() -> dict:
            """What this machine runs: device, the prior each kind uses, where each model's weights stand."""
            return env.summary()

        gr.api(environment_info, api_name="environment")
    demo.queue(max_size=config.queue_size, default_concurrency_limit=max(1, config.concurrency))
    if config.preload:
        warm_in_background(env)
    demo.tabs_by_name = tabs
    demo.compare_tab = compare
    demo.environment = env
    return demo


def quiet_libraries() -> None:
    """Library noise off: httpx logs every request Gradio makes to itself at INFO."""
    for name in ("httpx", "httpcore", "urllib3"):
        logging.getLogger(name).setLevel(logging.WARNING)


def startup_block(url: str, share_url: str | None, env: environment.Environment, took_s: float) -> str:
    """What start-up prints, once: where to open the app, the mode (real or try-out, and why), the priors found."""
    kinds = env.facts["kinds"].values()
    if all(k["uses_real"] for k in kinds):
        mode = "real models (" + ", ".join(k["real_label"] for k in kinds) + ")"
    else:
        missing = list(dict.fromkeys(w for k in kinds for w in k["missing"]))
        why = ("tiny priors were asked for" if env.facts["tiny_asked"] else
               "missing " + "; ".join(missing) if missing else "offline priors")
        mode = f"try-out ({why})"
    used = ", ".join(f"{k['for']}: {k['prior']}" for k in kinds)
    lines = [f"Distill Studio is serving at {url}" + (f" and {share_url}" if share_url else ""),
             f"  mode:    {mode}",
             f"  priors:  {used}; offered: {', '.join(n for n, p in env.facts['priors'].items() if p['offered'])}",
             f"  device:  {env.device}; started in {took_s:.1f} s"]
    return "\n".join(lines)


# Gradio's own cap on an upload: the largest file any validator accepts, so a larger upload is refused as it
# arrives instead of being stored whole for a validator to refuse.
UPLOAD_LIMIT_BYTES = max(media.MAX_IMAGE_BYTES, media.MAX_ZIP_BYTES, media.MAX_VIDEO_BYTES, validate.MAX_SVG_BYTES)


SERVED_WAIT_S = 120.0  # how long start-up waits for its own page before it says so


def served(url: str, wait_s: float = SERVED_WAIT_S) -> bool:
    """Whether the page at `url` answers within `wait_s` seconds (each try may take its time on a busy machine)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=max(1.0, deadline - time.monotonic())) as r:
                return r.status == 200
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def launch(config: AppConfig, *, block: bool = True, quiet: bool = False):
    """Build and serve. Returns (demo, local_url); with block=False the server runs in a thread."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    quiet_libraries()
    t0 = time.perf_counter()
    try:
        demo = build_app(config)
    except ValueError as err:  # a flag that cannot work on this machine: one line, no traceback
        raise SystemExit(f"error: {err}") from None
    from backends.core.files import default_root

    root = config.job_root or str(default_root())
    # quiet=True: Gradio's own lines (and its "set share=True" hint: the app has --share) give way to one block.
    # _frontend=False skips Gradio's check that the page answers within 3 s of starting, which raises (and ends the
    # app) on a CPU that other processes keep busy; `served` waits for the page as long as a busy machine needs.
    _, url, share_url = demo.launch(server_name=config.host, server_port=config.port, share=config.share,
                                    prevent_thread_lock=True, quiet=True, css=CSS,
                                    allowed_paths=[root], footer_links=["api", "gradio"],
                                    theme=theme(), show_error=False, max_file_size=UPLOAD_LIMIT_BYTES,
                                    _frontend=False)
    if not served(url):
        print(f"warning: {url} did not answer within {SERVED_WAIT_S:.0f} s; if localhost cannot be reached here "
              "(a notebook, a proxy), start with --share", flush=True)
    if not quiet:
        print(startup_block(url, share_url, demo.environment, time.perf_counter() - t0), flush=True)
    if block:
        demo.block_thread()
    return demo, url
