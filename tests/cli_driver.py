"""`python -m backends ...` calls served by one interpreter that imported the CLI once, each in a forked child.

A fresh interpreter spends 2-5 s importing torch on a 2-core machine, more than a refused run takes. The calls whose
outcome does not depend on how the interpreter starts (argument and input checks, the output folder, `list`,
`examples`) go through one driver process instead; what start-up does (signals while torch imports, the entry-point
groups read at import, the README's commands as written) keeps its own interpreter in test_cli_signals, test_cli's
plugin tests and test_fresh_install.

    driver = CliDriver()
    out = driver("run", "image/sds", "--set", "stepz=3", cwd=tmp_path)   # a subprocess.CompletedProcess
    driver.close()

Each call's child takes the driver's environment plus `env`, starts in `cwd` and ends as the CLI's main returns;
its stdout and stderr come back whole. The driver runs torch with one thread until a child's run chooses its own
(forking after OpenMP has started its threads would leave a child's parallel regions waiting on threads it lacks).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 300.0  # a hang guard, not a timing


class CliDriver:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve())], cwd=ROOT, text=True,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})

    def __call__(self, *args: str, env: dict | None = None, cwd: str | Path = ROOT) -> subprocess.CompletedProcess:
        self.proc.stdin.write(json.dumps({"argv": list(args), "env": env or {}, "cwd": str(cwd)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        assert line, f"the CLI driver ended (exit {self.proc.wait()})"
        res = json.loads(line)
        return subprocess.CompletedProcess(["python", "-m", "backends", *args], res["rc"], res["stdout"], res["stderr"])

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


def serve() -> None:
    """The driver: one JSON request a line on stdin ({argv, env, cwd}), one JSON reply a line on stdout."""
    import torch

    torch.set_num_threads(1)
    from backends.__main__ import main
    from tests.forked import run_forked

    work = Path(tempfile.mkdtemp(prefix="cli-driver-"))
    for line in sys.stdin:
        request = json.loads(line)

        def call(argv, request=request):  # in the child: its own environment and folder, then the CLI
            os.environ.update(request["env"])
            os.chdir(request["cwd"])
            return main(argv)

        out, err = work / "stdout", work / "stderr"
        res = run_forked(call, request["argv"], err, deadline_s=DEADLINE_S, out_path=out)
        reply = {"rc": res["rc"], "stdout": out.read_text(errors="replace") if out.exists() else "",
                 "stderr": err.read_text(errors="replace") if err.exists() else ""}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    serve()
