"""`python -m backends compare` against round 4's hostile specs: each is one line (exit 2) naming its key, read
without following a device, a pipe or a system file, before any value is turned into text and before any cell is
built; --workers is bounded by the cores and a process cap is one line."""
from __future__ import annotations

import contextlib
import io
import multiprocessing.context
import os

import pytest

from backends.__main__ import main
from backends.compare import load_spec, run_grid

from backends.core.errors import InputError

BASE = 'prompts = ["a fox"]\n[[backends]]\nname = "svg/vectorfusion"\nsettings = { steps = 5, k = 1 }\n'
EDIT = 'prompts = ["make it night"]\n[[backends]]\nname = "panorama/csd-edit"\n'


def yaml_alias_bomb(levels: int = 9) -> str:
    """A YAML of a few hundred bytes whose last anchor stands for 9**levels strings."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


SPECS = {
    "devzero_input.toml": ('out = "o"\ninputs = ["/dev/zero"]\n' + EDIT, "inputs[1]", "not a regular file"),
    "fifo_input.toml": ('out = "o"\ninputs = ["fifo"]\n' + EDIT, "inputs[1]", "not a regular file"),
    "proc_input.toml": ('out = "o"\ninputs = ["/proc/self"]\n' + EDIT, "inputs[1]", "not a regular file"),
    "devzero_prompts.toml": ('out = "o"\nprompts_file = "/dev/zero"\n[[backends]]\nname = "svg/vectorfusion"\n',
                             "prompts_file", "system folder"),
    "fifo_prompts.toml": ('out = "o"\nprompts_file = "fifo"\n[[backends]]\nname = "svg/vectorfusion"\n',
                          "prompts_file", "not a regular file"),
    "big_prompts.toml": ('out = "o"\nprompts_file = "big.txt"\n[[backends]]\nname = "svg/vectorfusion"\n',
                         "prompts_file", "larger than"),
    "bomb_out.yaml": (yaml_alias_bomb() + "out: *a8\nbackends: [{name: svg/vectorfusion}]\n", "grid", "values"),
    "bomb_label.yaml": (yaml_alias_bomb() + "out: o\nprompts: [a]\nbackends: [{name: svg/vectorfusion, label: *a8}]\n",
                        "grid", "values"),
    "list_label.yaml": ("out: o\nprompts: [a]\nbackends: [{name: svg/vectorfusion, label: [a, b]}]\n",
                        "backends[1].label", "short text"),
    "table_out.toml": ('out = { a = 1 }\n' + BASE, "out", "must be named"),
    "digits.toml": ('out = "o"\nseeds = [' + "9" * 5000 + "]\n" + BASE, "grid", "number too long"),
    "digits.yaml": ("out: o\nseeds: [" + "9" * 5000 + "]\nprompts: [a]\nbackends: [{name: svg/vectorfusion}]\n",
                    "grid", "number too long"),
    "big_seed.toml": ('out = "o"\nseeds = [' + "9" * 200 + "]\n" + BASE, "seeds[1]", "whole number from 0"),
    "deep.toml": ('out = "o"\nx = ' + "[" * 20_000 + "]" * 20_000 + "\n" + BASE, "grid", "too deep"),
    "deep.yaml": ("out: o\nx: " + "[" * 20_000 + "]" * 20_000 + "\n", "grid", "too deep"),
    "nested.yaml": ("out: o\nx: " + "[" * 40 + "]" * 40 + "\n", "grid", "nested more than"),
    "out_file.toml": ('out = "out_file.toml"\n' + BASE, "out", "is a file"),
    "out_null.toml": ('out = "/dev/null"\n' + BASE, "out", "system folder"),
    "out_proc.toml": ('out = "/proc/self/x"\n' + BASE, "out", "system folder"),
    "seeds.toml": ('out = "o"\nseeds = [' + ", ".join(map(str, range(99_999))) + "]\n" + BASE,
                   "backends[1]", "99,999 cells"),
}


def cli(*argv: str) -> tuple[int, list[str]]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        rc = main(list(argv))
    return rc, err.getvalue().splitlines()


@pytest.mark.parametrize("name", sorted(SPECS))
def test_a_hostile_spec_is_one_line_naming_its_key_and_runs_nothing(tmp_path, name, monkeypatch):
    text, key, words = SPECS[name]
    os.mkfifo(tmp_path / "fifo")  # a reader of it would wait for a writer forever
    (tmp_path / "big.txt").write_text("a fox\n" * 400_000)
    spec = tmp_path / name
    spec.write_text(text)
    monkeypatch.chdir(tmp_path)
    rc, err = cli("compare", str(spec))
    assert rc == 2 and len(err) == 1, err
    assert err[0].startswith(f"error: {name}: ") and words in err[0], err[0]
    if key != "grid":
        assert f": {key}: " in err[0], err[0]
    assert not (tmp_path / "o").exists()


def test_workers_beyond_the_cores_or_the_cap_are_one_line(tmp_path):
    from backends.compare.executors import check_cpu_workers

    spec = tmp_path / "grid.toml"
    spec.write_text('out = "o"\n' + BASE)
    rc, err = cli("compare", str(spec), "--workers", "1000000")
    assert rc == 2 and err == ["error: --workers must be at most 64, not 1,000,000."]
    cores = len(os.sched_getaffinity(0))
    with pytest.raises(InputError, match=rf"more than the {cores} CPU core"):
        check_cpu_workers(cores + 1)
    check_cpu_workers(cores)


@pytest.mark.parametrize("fails", ["process", "thread"])
def test_workers_that_cannot_be_started_under_a_process_cap_are_one_sentence(tmp_path, monkeypatch, fails):
    """BlockingIOError from fork/spawn (EAGAIN under ulimit -u or a cgroup's pids.max), or a queue's thread that
    cannot start under the same cap, is an InputError."""
    import multiprocessing.queues

    spec_path = tmp_path / "grid.toml"
    spec_path.write_text('out = "o"\nprompts = ["a fox", "a red apple"]\npriors = ["icons"]\n[[backends]]\n'
                         'name = "svg/vectorfusion"\nsettings = { steps = 2, k = 1 }\n')

    def refuse(self):
        raise BlockingIOError(11, "Resource temporarily unavailable")

    def no_thread(self):
        raise RuntimeError("can't start new thread")

    if fails == "process":
        monkeypatch.setattr(multiprocessing.context.SpawnProcess, "start", refuse)
    else:
        monkeypatch.setattr(multiprocessing.queues.Queue, "_start_thread", no_thread)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    with pytest.raises(InputError, match=r"^Could not start 2 worker processes .*fewer --workers\.$"):
        for _ in run_grid(load_spec(spec_path), workers=2):
            pass


def test_a_grid_on_several_cpu_workers_counts_one_cell_of_memory_per_worker(tmp_path, monkeypatch):
    from backends.core import budget
    from backends.compare.plan import check_cells

    spec_path = tmp_path / "grid.toml"
    spec_path.write_text('out = "o"\nprompts = ["a fox"]\npriors = ["icons"]\n[[backends]]\n'
                         'name = "svg/vectorfusion"\nsettings = { steps = 2, k = 1 }\n')
    cells = load_spec(spec_path).cells
    check_cells(cells, "cpu", 1)
    one = []
    real_check = budget.check
    monkeypatch.setattr(budget, "check", lambda work, *a, **kw: (one.append(work.bytes), real_check(work, *a, **kw)))
    check_cells(cells, "cpu", 3)
    assert max(one) == 3 * one[0]


def test_the_compare_tab_says_a_method_ticked_twice_in_the_page_s_words():
    from demo.compare_tab import grid_data

    with pytest.raises(InputError) as err:
        grid_data(["a fox"], ["svg/vectorfusion", "svg/vectorfusion"], [0], run_config=None)
    assert str(err.value) == "Methods: 'svg/vectorfusion' is chosen twice; choose each method once."


def test_the_compare_tab_s_line_for_a_failed_run_says_why_with_the_prior_s_closest_prompts(tmp_path):
    from backends.compare import GridEvent
    from demo.compare_tab import CompareTab

    spec_path = tmp_path / "grid.toml"
    spec_path.write_text('out = "o"\nprompts = ["a zzyzx"]\npriors = ["icons"]\n[[backends]]\n'
                         'name = "svg/vectorfusion"\n')
    cell = load_spec(spec_path).cells[0]
    why = "No icon matches the prompt 'a zzyzx'; the icons prior knows emoji names, the closest are 'zebra'."
    line = CompareTab._status(GridEvent("failed", 1, 0, 1, 0, 1, cell=cell, index=1, message=why), 0.0)
    assert why in line and "failed: svg/vectorfusion · a zzyzx" in line


def test_a_cell_refused_for_its_prompt_carries_the_prior_s_choices_and_the_tab_offers_them(tmp_path):
    import pickle
    from types import SimpleNamespace

    from backends.compare.executors import cell_events
    from demo.compare_tab import CompareTab

    spec_path = tmp_path / "grid.toml"
    spec_path.write_text('out = "o"\nprompts = ["a fox", "an elephnat"]\npriors = ["icons"]\n[[backends]]\n'
                         'name = "svg/vectorfusion"\nsettings = { steps = 2, k = 1 }\n')
    cell = next(c for c in load_spec(spec_path).cells if c.prompt == "an elephnat")
    kind, message = list(cell_events(cell, "cpu"))[-1]
    assert kind == "failed" and "elephant" in message.suggestions
    assert pickle.loads(pickle.dumps(message)).suggestions == message.suggestions  # from a worker process

    tab = CompareTab.__new__(CompareTab)
    tab.offered = {"s1": (cell.prompt, message.suggestions)}
    request = SimpleNamespace(session_hash="s1")
    shown = tab.offer(request)
    assert shown["visible"] and shown["choices"] == list(message.suggestions)
    prompts, hidden = tab.use_suggestion("elephant", "a fox\nan elephnat\n", request)
    assert prompts == "a fox\nelephant" and hidden["visible"] is False and "s1" not in tab.offered
