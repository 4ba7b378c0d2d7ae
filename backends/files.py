"""Where a job's files live: one private folder per job, generated file names, and files written whole.

Root folder: $DISTILL_TMP, else <tempfile.gettempdir()>/distill_studio, created private (0700). Names written
there are generated (`safe_output_name`), never taken from an upload, so a file called "../../x" or
"con.png" cannot steer where anything is written.

A public Space keeps job folders until `cleanup_expired` removes them (Gradio serves results after the
handler returns); the CLI uses `with JobDir() as job:` and the folder goes away on exit.
"""
from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import Union

from backends.errors import RunError

PathLike = Union[str, "os.PathLike[str]"]

_ROLE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")
_EXT = re.compile(r"[a-z0-9]{1,8}")
_JOB_NAME = re.compile(r"[a-z0-9][a-z0-9_]{0,15}-\d{8}-\d{6}-[0-9a-f]{12}")


def default_root() -> Path:
    """The folder that holds all job folders: $DISTILL_TMP or <system temp>/distill_studio, created 0700.

    Refuses (RunError) a root that is a symlink or, on POSIX, owned by another user: in a shared /tmp someone
    else could have created it first to read or redirect our files.
    """
    env = os.environ.get("DISTILL_TMP")
    root = Path(env) if env else Path(tempfile.gettempdir()) / "distill_studio"
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = os.lstat(root)
    if os.path.islink(root) or not os.path.isdir(root):
        raise RunError(f"The work folder {root} is a link or not a folder; set DISTILL_TMP to a private folder.")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise RunError(f"The work folder {root} belongs to another user; set DISTILL_TMP to a private folder.")
    return root


def safe_output_name(role: str, ext: str) -> str:
    """A fresh file name '<role>-<YYYYmmdd-HHMMSS>-<8 hex>.<ext>', e.g. 'svg-20250101-120000-3fa2c1d0.svg'.

    role and ext are chosen by code, never by a user: role [a-z0-9_-], up to 32 characters; ext up to 8
    letters or digits, with or without the dot. Anything else is a programming error (ValueError).
    """
    ext = ext[1:] if ext.startswith(".") else ext
    if not _ROLE.fullmatch(role):
        raise ValueError(f"role must match [a-z0-9][a-z0-9_-]{{0,31}}, got {role!r}")
    if not _EXT.fullmatch(ext):
        raise ValueError(f"ext must be 1-8 lowercase letters or digits, got {ext!r}")
    return f"{role}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:8]}.{ext}"


class JobDir:
    """One private folder for one job under `root` (default: `default_root()`).

    job = JobDir(); job.path -> Path; job.file("svg", "svg") -> a new path inside; job.write("upload", "mp4",
    data) -> that path, written. As a context manager the folder is removed on exit unless keep=True (the UI
    keeps it so Gradio can serve the results, and `cleanup_expired` removes it later).
    """

    def __init__(self, root: PathLike | None = None, *, prefix: str = "job", keep: bool = False):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,15}", prefix):
            raise ValueError(f"prefix must match [a-z0-9][a-z0-9_]{{0,15}}, got {prefix!r}")
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.keep = keep
        for _ in range(8):
            self.id = f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:12]}"
            self.path = self.root / self.id
            try:
                os.mkdir(self.path, 0o700)
                break
            except FileExistsError:
                continue
        else:  # pragma: no cover - 8 collisions of 48 random bits
            raise RunError("Could not create a job folder; try again.")

    def file(self, role: str, ext: str) -> Path:
        """A new, not yet existing path in this job's folder with a generated name."""
        return self.path / safe_output_name(role, ext)

    def write(self, role: str, ext: str, data: bytes) -> Path:
        """Write `data` to a new generated file in this job's folder (never overwriting) and return its path."""
        path = self.file(role, ext)
        with open(path, "xb") as fh:
            fh.write(data)
        return path

    def touch(self) -> None:
        """Mark the job as in use, so `cleanup_expired` counts its age from now (call it during long runs)."""
        os.utime(self.path)

    def cleanup(self) -> None:
        """Remove the folder and everything in it (symlinks inside are removed, never followed)."""
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> "JobDir":
        return self

    def __exit__(self, *exc) -> None:
        if not self.keep:
            self.cleanup()

    def __fspath__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"JobDir({str(self.path)!r})"


def _last_used(path: Path) -> float:
    """Newest mtime of the folder and its direct entries (a file rewritten in place does not touch the folder)."""
    newest = os.lstat(path).st_mtime
    with os.scandir(path) as entries:
        for entry in entries:
            try:
                newest = max(newest, entry.stat(follow_symlinks=False).st_mtime)
            except OSError:
                continue
    return newest


def cleanup_expired(max_age_s: float, *, root: PathLike | None = None, now: float | None = None) -> int:
    """Remove job folders under `root` unused for more than `max_age_s` seconds; returns how many were removed.

    Only folders whose names `JobDir` generates are touched (never links, files or anything else in the root).
    Pick max_age_s longer than the longest run, or call `JobDir.touch` from the run.
    """
    root = Path(root) if root is not None else default_root()
    now = time.time() if now is None else now
    removed = 0
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return 0
    for entry in entries:
        if not _JOB_NAME.fullmatch(entry.name) or not entry.is_dir(follow_symlinks=False):
            continue
        try:
            if now - _last_used(Path(entry.path)) <= max_age_s:
                continue
        except OSError:
            continue  # removed meanwhile by another worker
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed += 1
    return removed


@contextlib.contextmanager
def atomic_path(path: PathLike):
    """Write a file under a temporary name beside `path` and rename it into place only when the block completes.

        with atomic_path(out / "edited.mp4") as tmp:
            writer(tmp)

    The temporary name is hidden (".edited.partial-<hex>.mp4") and keeps the extension, since writers such as
    Pillow and ffmpeg pick the format from it. An exception or Ctrl-C inside the block removes it, so an
    interrupted run never leaves a file that looks finished; the rename is atomic on one file system.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
