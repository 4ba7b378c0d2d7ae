"""The one optimization loop every backend drives: a generator, so the consumer can watch and cancel."""
from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import numpy as np
import torch

from ..core.errors import RunError
from ..core.types import Progress


@dataclass
class Step:
    """What a backend's step function returns: the loss to backpropagate and optional metrics (tensors are
    fine: they are read on the host only when progress is reported)."""

    loss: torch.Tensor
    metrics: dict[str, torch.Tensor | float] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) from one integer."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def distill(
    step_fn: Callable[[int], Step | torch.Tensor],
    optimizer: torch.optim.Optimizer,
    *,
    steps: int,
    seed: int | None = None,
    every: int = 10,
    preview: Callable[[], np.ndarray | None] | None = None,
    lr_schedule: Callable[[int], float] | None = None,
    grad_clip: float | None = None,
    max_bad_steps: int = 10,
    after_step: Callable[[int], None] | None = None,
    report_s: float | None = 1.0,
) -> Iterator[Progress]:
    """Run `steps` optimization steps, yielding a `Progress` every `every` steps, at least every `report_s` seconds
    (so Stop, which acts at a report, is never far off however slow the steps are; None: by count only), and after
    the last.

    step_fn(step) builds the loss for one step (it samples t and noise, renders, calls the prior).
    lr_schedule(step) multiplies each parameter group's initial lr. grad_clip clips the global grad norm.
    after_step(step) runs after each optimizer step (projections, re-initialization of dead paths).

    NaN/Inf guard: a step whose loss or gradients are not finite leaves the parameters as they were (the
    check and the restore run on the device, without a host sync); bad steps are counted and read back at the
    next report; more than `max_bad_steps` in a row raises RunError. The loop makes no host-device sync
    between reports. If the consumer stops iterating (closes the generator), the loop stops there.
    """
    if steps < 0:
        raise ValueError("steps must be >= 0")
    if seed is not None:
        seed_everything(seed)
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for g in optimizer.param_groups:
        g.setdefault("initial_lr", g["lr"])
    tally = StepTally(params[0].device if params else torch.device("cpu"))
    start = last_report = time.perf_counter()
    for step in range(steps):
        if lr_schedule is not None:
            mult = lr_schedule(step)
            for g in optimizer.param_groups:
                g["lr"] = g["initial_lr"] * mult
        out, ok = guarded_step(step_fn, step, optimizer, params, grad_clip)
        if after_step is not None:
            after_step(step)
        tally.add(out.loss, ok)
        now = time.perf_counter()  # host clock only: deciding to report costs no device sync
        if (step + 1) % every == 0 or step == steps - 1 or (report_s is not None and now - last_report >= report_s):
            last_report = now
            yield tally.report(step, steps, out.metrics, preview, start, max_bad_steps)
            tally.reset()


def guarded_step(step_fn: Callable[[int], Step | torch.Tensor], step: int, optimizer: torch.optim.Optimizer,
                 params: list[torch.Tensor], grad_clip: float | None) -> tuple[Step, torch.Tensor]:
    """One optimizer step under the NaN/Inf guard: (the step's Step, ok: a 0-d bool tensor on the device). A step
    whose loss or gradients are not finite leaves the parameters as they were; the check and the restore are
    device operations, so the guard makes no host sync."""
    optimizer.zero_grad(set_to_none=True)
    out = step_fn(step)
    if isinstance(out, torch.Tensor):
        out = Step(out)
    out.loss.backward()
    grads = [p.grad for p in params if p.grad is not None]
    ok = torch.isfinite(out.loss.detach())
    if grads:
        ok = ok & torch.stack([torch.isfinite(g).all() for g in grads]).all()
        for g in grads:  # keep non-finite values out of the optimizer's moments
            torch.nan_to_num_(g, nan=0.0, posinf=0.0, neginf=0.0)
            g.mul_(ok)
    if grad_clip is not None and grads:
        torch.nn.utils.clip_grad_norm_(params, grad_clip, foreach=True)
    before = [p.detach().clone() for p in params]
    optimizer.step()
    with torch.no_grad():
        for p, old in zip(params, before):
            p.copy_(torch.where(ok, p, old))
    return out, ok


class StepTally:
    """The loop's figures between two reports, kept on the device so that counting them makes no host sync: the
    loss summed over the good steps, and the bad (NaN/Inf) steps in a row and since the last report."""

    def __init__(self, device: torch.device):
        self.loss_sum = torch.zeros((), device=device)
        self.bad_run = torch.zeros((), device=device)  # consecutive bad steps
        self.bad_window = torch.zeros((), device=device)  # bad steps since the last report
        self.bad_total = 0
        self.n_since = 0

    def add(self, loss: torch.Tensor, ok: torch.Tensor) -> None:
        self.bad_run = torch.where(ok, torch.zeros_like(self.bad_run), self.bad_run + 1)
        self.bad_window = self.bad_window + (~ok).float()
        self.loss_sum = self.loss_sum + torch.where(ok, loss.detach().float(), torch.zeros_like(self.loss_sum))
        self.n_since += 1

    def report(self, step: int, steps: int, metrics: dict, preview: Callable[[], np.ndarray | None] | None,
               start: float, max_bad_steps: int) -> Progress:
        """The Progress after step `step` (0-based): the figures read back from the device (the mean loss of the
        good steps since the last report); a RunError once more than `max_bad_steps` steps in a row were bad."""
        if int(self.bad_run.item()) > max_bad_steps:
            raise RunError(f"the optimization diverged (NaN/Inf for {int(self.bad_run.item())} steps in a row at step "
                           f"{step + 1}): try a lower learning rate or guidance scale")
        n_bad = int(self.bad_window.item())
        self.bad_total += n_bad
        n_ok = max(self.n_since - n_bad, 1)
        report = {k: float(v) for k, v in metrics.items()}
        report["bad_steps"] = float(self.bad_total)
        return Progress(
            step=step + 1,
            total=steps,
            loss=float(self.loss_sum.item()) / n_ok,
            preview=preview() if preview is not None else None,
            metrics=report,
            elapsed=time.perf_counter() - start,
        )

    def reset(self) -> None:
        """Start the next report's window (the run of bad steps in a row goes on across reports)."""
        self.loss_sum.zero_()
        self.bad_window.zero_()
        self.n_since = 0
