"""The thread policy (`backends.core.devices.choose_threads`): the cores a process may use (affinity, cgroup quotas read
from files), the load other processes put on them, the size of the work, explicit settings, the app's division
among concurrent jobs; and real runs beside a busy process and inside a 1-CPU cgroup quota, judged by the threads
their result.json records (never by a time)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backends.core import devices
from backends.core.devices import Threads, cgroup_cpus, choose_threads, explicit_threads, parse_cfs, parse_cpu_max
from benchmarks.common import busy_processes, cpu_quota_cgroup

ROOT = Path(__file__).resolve().parents[1]
PANORAMA = ROOT / "examples" / "panorama" / "landscape.png"
NO_SETTING = {}  # an environment with no thread setting: the policy decides


def test_cpu_max_and_cfs_quota_parse_to_cpus_and_no_limit_to_none():
    assert parse_cpu_max("150000 100000\n") == 1.5
    assert parse_cpu_max("max 100000") is None
    assert parse_cpu_max("50000") == 0.5  # the period defaults to 100 ms
    assert parse_cpu_max("") is None and parse_cpu_max("lots of cpu") is None and parse_cpu_max("0 100000") is None
    assert parse_cfs("200000\n", "100000\n") == 2.0
    assert parse_cfs("-1", "100000") is None
    assert parse_cfs("oops", "100000") is None and parse_cfs("100000", "0") is None


def _fake_proc(tmp_path: Path, mountinfo: list[str], cgroup: list[str]) -> Path:
    proc = tmp_path / "proc"
    (proc / "self").mkdir(parents=True)
    (proc / "self" / "mountinfo").write_text("\n".join(mountinfo) + "\n")
    (proc / "self" / "cgroup").write_text("\n".join(cgroup) + "\n")
    return proc


def test_a_cgroup_v1_quota_on_a_parent_binds_the_process_in_a_child_group(tmp_path):
    mount = tmp_path / "cg" / "cpu,cpuacct"
    child = mount / "kubepods" / "pod1"
    child.mkdir(parents=True)
    (mount / "kubepods" / "cpu.cfs_quota_us").write_text("150000\n")
    (mount / "kubepods" / "cpu.cfs_period_us").write_text("100000\n")
    (child / "cpu.cfs_quota_us").write_text("-1\n")
    (child / "cpu.cfs_period_us").write_text("100000\n")
    proc = _fake_proc(tmp_path, [
        f"30 25 0:26 / {mount} rw,nosuid - cgroup cgroup rw,cpu,cpuacct",
        f"31 25 0:27 / {tmp_path / 'cg' / 'memory'} rw - cgroup cgroup rw,memory",
    ], ["5:memory:/kubepods/pod1", "3:cpu,cpuacct:/kubepods/pod1", "0::/"])
    assert cgroup_cpus(proc) == 1.5


def test_a_cgroup_v2_cpu_max_is_read_where_the_namespace_shows_its_root_as_slash(tmp_path):
    mount = tmp_path / "unified"
    mount.mkdir()
    (mount / "cpu.max").write_text("100000 100000\n")
    proc = _fake_proc(tmp_path, [f"40 25 0:30 /container/abc {mount} rw - cgroup2 cgroup2 rw"], ["0::/"])
    assert cgroup_cpus(proc) == 1.0
    (mount / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpus(proc) is None


def test_no_cgroup_files_mean_no_quota(tmp_path):
    assert cgroup_cpus(_fake_proc(tmp_path, ["garbage line", ""], ["nonsense"])) is None
    assert cgroup_cpus(tmp_path / "nowhere") is None


def test_an_explicit_setting_wins_in_order_flag_distill_threads_omp_num_threads():
    env = {"DISTILL_THREADS": "3", "OMP_NUM_THREADS": "4"}
    assert explicit_threads(2, env) == Threads(2, "--threads=2 was set")
    assert explicit_threads(None, env).threads == 3
    assert explicit_threads(None, {"OMP_NUM_THREADS": "4,2"}) == Threads(4, "OMP_NUM_THREADS=4 was set")
    assert explicit_threads(None, NO_SETTING) is None
    assert choose_threads(10**12, env={"OMP_NUM_THREADS": "1"}, load=0.0).threads == 1
    for bad in ("0", "two", "-1", "1.5"):
        with pytest.raises(ValueError, match="DISTILL_THREADS must be a whole number"):
            explicit_threads(None, {"DISTILL_THREADS": bad})


@pytest.fixture
def four_cores(monkeypatch):
    monkeypatch.setattr(devices, "usable_cores", lambda proc=None: (4, "4 cores in its affinity mask"))


def test_threads_follow_free_cores_share_and_work_size(four_cores):
    big = 10**9
    assert choose_threads(big, env=NO_SETTING, load=0.0).threads == 4
    assert choose_threads(big, env=NO_SETTING, load=None).threads == 4  # load unknown: not guessed
    busy = choose_threads(big, env=NO_SETTING, load=1.0)
    assert busy.threads == 3 and "other processes keep 1.0" in busy.why
    assert choose_threads(big, env=NO_SETTING, load=0.3).threads == 4  # a light background job takes no core
    assert choose_threads(big, env=NO_SETTING, load=9.0).threads == 1  # never fewer than one
    shared = choose_threads(big, env=NO_SETTING, share=2, load=0.0)
    assert shared.threads == 2 and "shared by 2 concurrent runs" in shared.why
    assert choose_threads(big, env=NO_SETTING, share=2, load=2.0).threads == 1
    small = choose_threads(2**20, env=NO_SETTING, load=0.0)
    assert small.threads == 1 and "small run" in small.why


def test_the_load_of_a_busy_process_is_seen():
    with busy_processes(1):
        assert devices.others_load() >= 0.5


def test_the_time_this_process_itself_spends_is_not_counted_as_load(monkeypatch):
    """2 cores busy 150 of 200 ticks in the window (1.5 cores), half a core of it this process's own: 1.0 is others'."""
    ticks = iter([(1000, 4000), (1150, 4200)])
    clock = iter([10.0, 10.1])
    own = iter([5.0, 5.05])
    monkeypatch.setattr(devices, "_cpu_ticks", lambda cpus: next(ticks))
    monkeypatch.setattr(devices.os, "sched_getaffinity", lambda pid: {0, 1})
    monkeypatch.setattr(devices.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(devices.time, "process_time", lambda: next(own))
    monkeypatch.setattr(devices.time, "sleep", lambda s: None)
    assert devices.others_load() == pytest.approx(1.0)


def _cli_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "DISTILL_THREADS")}
    return {**env, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}


def _small_run(out: Path, preexec_fn=None) -> dict:
    """A 5-step panorama edit at its default size (a 512x128 working image, over the small-work threshold, so the
    cores and their load decide): its result.json."""
    done = subprocess.run([sys.executable, "-m", "backends", "run", "panorama/csd-edit", "--set",
                           "prompt=make it winter", "--set", "steps=5", "--input", str(PANORAMA), "--out", str(out),
                           "--quiet", "--device", "cpu"], cwd=ROOT, env=_cli_env(), capture_output=True, text=True,
                          timeout=300, preexec_fn=preexec_fn)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "result.json").read_text())


@pytest.mark.slow
def test_a_run_beside_a_busy_process_leaves_it_its_core(tmp_path):
    cores, _ = devices.usable_cores()
    if cores < 2:
        pytest.skip(f"this process may use {cores} core: there is no thread to give up")
    with busy_processes(1):
        meta = _small_run(tmp_path / "out")
    assert meta["threads"]["threads"] <= cores - 1, meta["threads"]
    assert "other processes keep" in meta["threads"]["why"]


@pytest.mark.slow
def test_a_run_in_a_one_cpu_cgroup_quota_uses_one_thread(tmp_path):
    with cpu_quota_cgroup(1.0) as (procs, why):
        if procs is None:
            pytest.skip(f"no 1-CPU cgroup quota here: {why}")
        meta = _small_run(tmp_path / "out", preexec_fn=lambda: procs.write_text(str(os.getpid())))
    assert meta["threads"]["threads"] == 1, meta["threads"]
    if devices.usable_cores()[0] > 1:  # where the affinity mask already holds one core, the quota decides nothing
        assert "a cgroup quota of 1 CPUs" in meta["threads"]["why"]


def test_a_bad_threads_flag_is_one_line_and_exit_2(tmp_path):
    done = subprocess.run([sys.executable, "-m", "backends", "run", "image/sds", "--prior", "analytic", "--input",
                           str(ROOT / "examples" / "image" / "shapes.png"), "--set", "steps=2", "--threads", "none",
                           "--out", str(tmp_path)], cwd=ROOT, env=_cli_env(), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        "error: --threads must be a whole number of threads, 1 or more, not 'none'."]


def test_the_run_records_its_threads_and_gives_the_callers_count_back(tmp_path, monkeypatch):
    import torch

    import backends

    monkeypatch.delenv("DISTILL_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    result = backends.run_to_end("image/sds", {"steps": 2}, prior="analytic", out_dir=tmp_path, device="cpu",
                                 inputs=[str(ROOT / "examples" / "image" / "shapes.png")], threads=2)
    assert json.loads((tmp_path / "result.json").read_text())["threads"] == {
        "threads": 2, "why": "--threads=2 was set", "nice": os.nice(0)}
    assert result.metadata["threads"]["threads"] == 2 and torch.get_num_threads() == before


def test_the_app_gives_each_of_its_concurrent_cpu_jobs_a_share_and_a_slot(tmp_path, monkeypatch):
    from demo import jobs

    monkeypatch.delenv("DISTILL_THREADS", raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    job = jobs.JOBS.start("session", "image")
    try:
        items = list(jobs.drive(job, "image/sds", {"steps": 2}, prior="analytic", out_dir=tmp_path, device="cpu",
                                inputs=[str(ROOT / "examples" / "image" / "shapes.png")], cpu_share=2))
    finally:
        jobs.JOBS.finish(job, "done")
    assert "shared by 2 concurrent runs" in items[-1].metadata["threads"]["why"]
    slots = jobs.device_lock("cpu-test", 2)
    assert slots.acquire(timeout=0) and slots.acquire(timeout=0) and not slots.acquire(timeout=0)
    slots.release(), slots.release()


def test_the_apps_threads_flag_reaches_every_run_and_cpu_jobs_get_a_slot_each():
    from types import SimpleNamespace

    from demo.launch import parse_args
    from demo.tab import RunConfig

    assert parse_args(["--threads", "2"]).threads == 2 and parse_args([]).threads is None
    with pytest.raises(SystemExit):
        parse_args(["--threads", "0"])
    assert RunConfig(env=SimpleNamespace(device="cpu"), concurrency=3).cpu_slots == 3
    assert RunConfig(env=SimpleNamespace(device="cuda"), concurrency=3).cpu_slots == 1  # one job on a GPU at a time
