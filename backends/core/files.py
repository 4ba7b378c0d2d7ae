"""Where a job's files live: one private folder per job, generated file names, and files written whole.

Root folder: $DISTILL_TMP, else <tempfile.gettempdir()>/distill_studio, created private (0700). Job folder names
are generated, never taken from an upload, so a file called "../../x" or "con.png" cannot steer where anything
is written.

The app keeps a run's job folder until `cleanup_expired` removes it (Gradio serves results after the handler
returns). The CLI and the API write to the folder they are given (`--out`, `out_dir`).
"""
from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Union

from backends.core.errors import DistillError, InputError, RunError

PathLike = Union[str, "os.PathLike[str]"]

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


class JobDir:
    """One private folder for one job under `root` (default: `default_root()`): job = JobDir(); job.path. It
    stays until `cleanup` or `cleanup_expired` removes it."""

    def __init__(self, root: PathLike | None = None, *, prefix: str = "job"):
        if not re.fullmatch(r"[a-z0-9][a-z0-9_]{0,15}", prefix):
            raise ValueError(f"prefix must match [a-z0-9][a-z0-9_]{{0,15}}, got {prefix!r}")
        self.root = Path(root) if root is not None else default_root()
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
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

    def touch(self) -> None:
        """Mark the job as in use, so `cleanup_expired` counts its age from now (call it during long runs)."""
        os.utime(self.path)

    def cleanup(self) -> None:
        """Remove the folder and everything in it (symlinks inside are removed, never followed)."""
        shutil.rmtree(self.path, ignore_errors=True)

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


# Why a write failed, in words. The machine's lack of room fails the run (exit 1: good input, free space and run
# again); a folder that refuses writes is the output folder chosen (exit 2, as the check before the run says).
_FREE = "free some space there or choose another output folder, and run again"
_NO_ROOM = {errno.ENOSPC: ("no space left on device", _FREE), errno.EDQUOT: ("the disk quota is exceeded", _FREE),
            errno.EFBIG: ("the file is larger than this process may write (its file size limit)",
                          "raise the limit (ulimit -f) or lower the output's size"),
            errno.EIO: ("the disk reported an I/O error", "check the disk or choose another output folder")}
_REFUSED = {errno.EROFS: "the file system is read-only", errno.EACCES: "permission denied",
            errno.EPERM: "the operation is not permitted"}
_LOW_SPACE = 1 << 20


def _no_room_left(folder: Path) -> bool:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return st.f_bavail * st.f_frsize < _LOW_SPACE


def write_error(path: PathLike, err: OSError) -> DistillError | None:
    """The one-sentence error for an OSError met while writing `path`, or None when it is not a write failure.

    ENOSPC, EDQUOT, EFBIG, EIO: RunError (exit 1). EROFS, EACCES, EPERM: InputError (exit 2: choose another
    output folder). A writer that reports no errno (ffmpeg behind a pipe) into a folder with under 1 MB free is
    taken as out of space.
    """
    shown = str(path) if len(str(path)) <= 120 else "..." + str(path)[-117:]
    code = err.errno
    if code is None and _no_room_left(Path(path).parent):
        code = errno.ENOSPC
    if code in _NO_ROOM:
        reason, remedy = _NO_ROOM[code]
        return RunError(f"Could not write {shown}: {reason}; {remedy}.")
    if code in _REFUSED:
        return InputError(f"Could not write {shown}: {_REFUSED[code]}; choose another output folder.")
    return None


@contextlib.contextmanager
def atomic_path(path: PathLike):
    """Write a file under a temporary name beside `path` and rename it into place only when the block completes.

        with atomic_path(out / "edited.mp4") as tmp:
            writer(tmp)

    The temporary name is hidden (".edited.partial-<hex>.mp4") and keeps the extension, since writers such as
    Pillow and ffmpeg pick the format from it. An exception or Ctrl-C inside the block removes it, so an
    interrupted run never leaves a file that looks finished; the rename is atomic on one file system. A full
    disk, a quota, a read-only or forbidden folder (`write_error`) is one sentence naming `path`, not the
    writer's traceback. Inside `recording_writes`, the finished path is added to its list.
    """
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.partial-{uuid.uuid4().hex[:8]}{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
        written = _WRITTEN.get()
        if written is not None:
            written.append(path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        failure = write_error(path, err) if isinstance(err, OSError) else None
        if failure is not None:
            raise failure from None
        raise


# the list `atomic_path` adds its finished files to, set only while one step of `recording_writes` runs
_WRITTEN: contextvars.ContextVar[list[Path] | None] = contextvars.ContextVar("distill_written", default=None)


def recording_writes(steps: Iterator, written: list[Path]) -> Iterator:
    """Yield what `steps` (a backend's run) yields, adding to `written` each file `atomic_path` puts in place
    while it runs: the runner's list of what a run wrote, to take away when the run fails before it completes.

    The list is set around each step only, not across a yield: the app steps a run from worker threads (each
    with a copy of the context), and the caller's own writes between steps are not the run's.
    """
    try:
        while True:
            token = _WRITTEN.set(written)
            try:
                item = next(steps)
            except StopIteration:
                return
            finally:
                _WRITTEN.reset(token)
            yield item
    finally:
        close = getattr(steps, "close", None)
        if close is not None:  # a cancelled run's generator ends now, removing what it was writing
            close()
