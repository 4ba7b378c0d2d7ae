"""Hostile but plausible runs through `python -m backends run`, under an 8 GB address-space cap (a small machine).

Every case of `hostile.RUN_CASES` (known hostile inputs, variants of each class, and the upload corpus
run whole) must end in exit 2 with one line on stderr naming the problem, or in a correct result: exit 0, a
result.json, nothing on stderr with --quiet. The driver runs under `prlimit --as=8000000000`, so
the budget reads that cap as a person's capped process would; it imports torch once and forks a child per case
(`tests.forked`). DEADLINE_S only stops a hang; the driver's table shows each case's time (the target is 5 s a
refusal): `python tests/test_run_bounds.py [WORK_DIR]`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.forked import run_forked
from tests.hostile import RUN_CASES, RunCase, make_run_inputs

ROOT = Path(__file__).resolve().parents[1]
CAP = 8_000_000_000  # bytes: `prlimit --as`, a small machine's memory
DEADLINE_S = 300.0   # a hang guard, not a timing: a case that runs this long has failed whatever it ends with


def argv(case: RunCase, files: dict[str, Path], out: str) -> list[str]:
    args = ["run", case.backend, "--out", out, "--quiet", "--device", "cpu"]
    if case.prior:
        args += ["--prior", case.prior]
    for key, value in case.settings.items():
        args += ["--set", f"{key}={value}"]
    for name in case.inputs:
        args += ["--input", str(files[name])]
    return args


def _out_folder(case: RunCase, work: Path) -> str:
    if case.out == "EMPTY":
        return ""
    folder = work / "out" / case.name
    if case.out == "RESULT_JSON_DIR":
        (folder / "result.json").mkdir(parents=True)
    return str(folder)


def run_cases(work: Path) -> list[dict]:
    import torch

    torch.set_num_threads(1)
    import backends.core.runner  # noqa: F401  (imported once here, not in every child)
    from backends.__main__ import main

    files = make_run_inputs(work / "inputs")
    results = []
    for case in RUN_CASES:
        out = _out_folder(case, work)

        def call(args, env=case.env):
            os.environ.update(env)  # the child's own environment; the driver's is untouched
            return main(args)

        res = run_forked(call, argv(case, files, out), work / f"{case.name}.stderr", deadline_s=DEADLINE_S)
        results.append({"name": case.name, **res, "out": out})
    return results


def check(case: RunCase, res: dict) -> str | None:
    """None when the result is what the case expects, else why not."""
    lines, rc = res["stderr"], res["rc"]
    if rc == -9:
        return f"still running after {DEADLINE_S:.0f} s"
    if case.expect:
        if rc != 2:
            return f"exit code {rc}, stderr {lines[-3:]}"
        if len(lines) != 1 or not lines[0].startswith("error: ") or not lines[0].rstrip().endswith((".", ")")):
            return f"stderr is not one sentence on one line: {lines[-3:]}"
        if case.expect.lower() not in lines[0].lower():
            return f"message lacks {case.expect!r}: {lines[0]}"
        if len(lines[0]) > 400:
            return f"message of {len(lines[0])} characters"
        if res["out"] and os.path.exists(os.path.join(res["out"], "result.json")) and case.out != "RESULT_JSON_DIR":
            return "a result was written"
        return None
    if rc != 0 or lines:
        return f"exit code {rc}, stderr {lines[-3:]}"
    if not os.path.isfile(os.path.join(res["out"], "result.json")):
        return "no result.json"
    return None


@pytest.fixture(scope="module")
def driven(tmp_path_factory):
    """All of RUN_CASES, run by one driver under the 8 GB cap (a fresh interpreter, as the CLI starts)."""
    work = tmp_path_factory.mktemp("run-bounds")
    proc = subprocess.run(["prlimit", f"--as={CAP}", sys.executable, str(Path(__file__).resolve()), str(work)],
                          cwd=ROOT, capture_output=True, text=True, timeout=3000,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {r["name"]: r for r in json.loads((work / "results.json").read_text())}


@pytest.mark.parametrize("case", RUN_CASES, ids=lambda c: c.name)
def test_hostile_run_is_refused_in_one_line_or_gives_a_correct_result_under_an_8_gb_cap(case, driven):
    problem = check(case, driven[case.name])
    assert problem is None, f"{case.name}: {problem}"


if __name__ == "__main__":
    # The driver: `python tests/test_run_bounds.py [WORK_DIR]` runs RUN_CASES and writes WORK_DIR/results.json.
    sys.path.insert(0, str(ROOT))
    work_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="run-bounds-"))
    results = run_cases(work_dir)
    (work_dir / "results.json").write_text(json.dumps(results))
    for case, res in zip(RUN_CASES, results):
        print(f"{res['name']:42s} rc={res['rc']:3d} {res['seconds']:6.2f} s {res['extra_rss'] / 2 ** 20:7.0f} MB  "
              f"{check(case, res) or 'ok'}  {(res['stderr'] or [''])[-1][:150]}", flush=True)
