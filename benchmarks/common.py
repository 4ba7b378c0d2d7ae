"""Helpers every benchmark uses: what machine this is, timing, and writing results down.

`append_results(bench, table_md, rows)` appends a dated section naming the device, torch version and git
commit to benchmarks/RESULTS.md (the human record) and one JSON line per row to benchmarks/results.jsonl
(bench, device, metric, value, unit, date, commit: the machine record).
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path
from typing import Callable

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
