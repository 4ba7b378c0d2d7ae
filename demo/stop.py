"""What Stop does in a tab (`Stopper`): flag this session's runs there, wait a little for them to end, and say
where they stopped. The run itself ends at its next progress report (`demo.jobs`)."""
from __future__ import annotations

import time

import gradio as gr

from .jobs import JOBS, session_of

STOP_WAIT_S = 10.0  # how long the Stop handler waits for the run to end before answering


class Stopper:
    """The `<tab>_stop` handler of one tab (named by its spec's name)."""

    def __init__(self, tab_name: str):
        self.tab_name = tab_name

    def stop(self, request: gr.Request):
        """Stop this session's run in this tab (Gradio also cancels the queued or streaming event) and report when
        it has really ended: the optimization stops at its next progress report and the device is free."""
        t0 = time.monotonic()
        session = session_of(request)
        hits = JOBS.stop(session, self.tab_name)
        if not JOBS.wait_stopped(session, self.tab_name, timeout_s=STOP_WAIT_S):
            return ("**Stopping**: the current step is still running; the run ends at its next progress report "
                    "(lower *every* in the advanced settings to report more often).")
        last = JOBS.last(session, self.tab_name)
        if last is None or (not hits and last.ended_at is not None and last.ended_at < t0 - 2.0):
            return "Nothing was running here (a run still waiting in the queue is taken off it). Ready."
        where = f"at step {last.step} of {last.total}" if last.total else "before the first step"
        took = max(0.0, (last.ended_at or t0) - t0)
        return f"**Stopped** {where} ({took:.1f} s after Stop). Ready for the next run."
