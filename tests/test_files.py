"""Job folders: private, unique, removed when expired; and the fence around user-named paths."""
from __future__ import annotations

import os
import stat
import time

import pytest

from backends.core import files
from backends.core.errors import RunError


@pytest.fixture
def root(tmp_path, monkeypatch):
    work = tmp_path / "work"
    monkeypatch.setenv("DISTILL_TMP", str(work))
    return work


def test_job_dir_is_private_unique_and_under_distill_tmp(root):
    a, b = files.JobDir(), files.JobDir()
    assert a.path.parent == root and b.path.parent == root and a.path != b.path
    assert a.path.is_dir() and stat.S_IMODE(a.path.stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert os.fspath(a) == str(a.path)


def test_default_root_is_system_temp_without_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("DISTILL_TMP", raising=False)
    monkeypatch.setattr(files.tempfile, "gettempdir", lambda: str(tmp_path))
    assert files.default_root() == tmp_path / "distill_studio"


def test_cleanup_expired_removes_only_old_job_folders(root, tmp_path):
    old, fresh = files.JobDir(), files.JobDir()
    (old.path / "result.png").write_bytes(b"x")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (old.path / "link").symlink_to(outside)
    stranger = root / "not-a-job"
    stranger.mkdir()
    lookalike = root / "job-20240101-000000-0123456789ab"
    lookalike.symlink_to(tmp_path, target_is_directory=True)
    past = time.time() - 3600
    for p in (old.path / "result.png", old.path, stranger):
        os.utime(p, (past, past))
    os.utime(old.path / "link", (past, past), follow_symlinks=False)

    assert files.cleanup_expired(600) == 1
    assert not old.path.exists() and fresh.path.exists() and stranger.exists()
    assert outside.read_text() == "keep me" and lookalike.is_symlink()


def test_cleanup_expired_counts_age_from_the_newest_file(root):
    job = files.JobDir()
    past = time.time() - 3600
    os.utime(job.path, (past, past))
    (job.path / "preview.png").write_bytes(b"x")  # written just now
    os.utime(job.path, (past, past))
    assert files.cleanup_expired(600) == 0
    job.touch()
    assert files.cleanup_expired(600, now=time.time() + 3600) == 1


def test_default_root_refuses_a_symlinked_root(tmp_path, monkeypatch):
    real = tmp_path / "elsewhere"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real, target_is_directory=True)
    monkeypatch.setenv("DISTILL_TMP", str(link))
    with pytest.raises(RunError):
        files.default_root()


def test_recording_writes_lists_what_the_steps_wrote_not_what_the_caller_wrote_between_them(tmp_path):
    def steps():
        with files.atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("a")
        yield 1
        with files.atomic_path(tmp_path / "b.txt") as tmp:
            tmp.write_text("b")
        yield 2

    written = []
    run = files.recording_writes(steps(), written)
    assert next(run) == 1
    with files.atomic_path(tmp_path / "mine.txt") as tmp:  # the caller's own write, between two steps
        tmp.write_text("mine")
    assert list(run) == [2]
    assert written == [tmp_path / "a.txt", tmp_path / "b.txt"]


def test_closing_a_recorded_run_closes_its_steps(tmp_path):
    closed = []

    def steps():
        try:
            yield 1
            yield 2
        finally:
            closed.append(True)

    run = files.recording_writes(steps(), [])
    assert next(run) == 1
    run.close()
    assert closed == [True]
