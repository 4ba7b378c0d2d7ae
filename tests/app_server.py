"""Start the real app (`python app.py`) on a free localhost port for the client and browser tests.

The app runs offline (HF_HUB_OFFLINE=1) on the CPU, exactly as a fresh machine without weights would: every tab
then uses the tiny priors. Its log goes to tests/artifacts/app-<name>.log (kept, gitignored).
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class AppServer:
    """`with AppServer("client") as app: app.url` -> the app's base URL; `app.startup_s` how long it took."""

    def __init__(self, name: str, *args: str, env: dict[str, str] | None = None, timeout_s: float = 300.0):
        self.name, self.args, self.timeout_s = name, args, timeout_s
        self.extra_env = env or {}
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.proc: subprocess.Popen | None = None
        self.startup_s = float("nan")

    def __enter__(self) -> "AppServer":
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # A private Gradio cache: other Gradio apps on this machine clean /tmp/gradio on their own schedule.
        self._cache = tempfile.TemporaryDirectory(prefix=f"distill-app-{self.name}-")
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False",
                   DISTILL_DEVICE="cpu", PYTHONUNBUFFERED="1", GRADIO_TEMP_DIR=self._cache.name, **self.extra_env)
        self.log_path = ARTIFACTS / f"app-{self.name}.log"
        self._log = open(self.log_path, "w")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), *self.args], cwd=ROOT,
                                     env=env, stdout=self._log, stderr=subprocess.STDOUT)
        while time.perf_counter() - t0 < self.timeout_s:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(self.url, timeout=2) as r:
                    if r.status == 200:
                        self.startup_s = time.perf_counter() - t0
                        return self
            except OSError:
                time.sleep(0.2)
        self.__exit__()
        raise RuntimeError(f"the app did not serve its page within {self.timeout_s} s; see {self.log_path}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()
        self._cache.cleanup()
