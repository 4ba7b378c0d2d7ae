"""Timestep sampling, weightings w(t) and learning-rate schedules: values computed from the step."""
from __future__ import annotations

import math

import torch

WEIGHTINGS = ("sds", "uniform", "fantasia3d")


def sample_timesteps(
    batch: int,
    t_min: int,
    t_max: int,
    *,
    step: int = 0,
    total_steps: int = 1,
    anneal: str = "none",
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> torch.Tensor:
    """Integer timesteps, shape (batch,), uniform in [t_min, t_max] (both ends included).

    anneal="none": the range stays fixed. anneal="linear": the upper end moves linearly from t_max down to t_min
    over the run (coarse structure first, detail later); anneal="sqrt": the same with a square-root schedule.
    """
    if not 0 <= t_min <= t_max:
        raise ValueError(f"need 0 <= t_min <= t_max, got t_min={t_min}, t_max={t_max}")
    hi = float(t_max)
    if anneal != "none":
        frac = min(max(step / max(total_steps - 1, 1), 0.0), 1.0)
        if anneal == "linear":
            pass
        elif anneal == "sqrt":
            frac = math.sqrt(frac)
        else:
            raise ValueError(f"unknown anneal {anneal!r}: use 'none', 'linear' or 'sqrt'")
        hi = t_max - frac * (t_max - t_min)
    hi_i = max(int(round(hi)), t_min)
    return torch.randint(t_min, hi_i + 1, (batch,), generator=generator, device=generator.device if generator is not None else device).to(device)


def weighting(alphas_cumprod_t: torch.Tensor, kind: str = "sds") -> torch.Tensor:
    """w(t) from alphabar_t (any shape).

    "sds": 1 - alphabar_t (DreamFusion); "uniform": 1; "fantasia3d": alphabar_t^0.5 * (1 - alphabar_t)
    (Fantasia3D's weighting, stronger at small t).
    """
    if kind == "sds":
        return 1.0 - alphas_cumprod_t
    if kind == "uniform":
        return torch.ones_like(alphas_cumprod_t)
    if kind == "fantasia3d":
        return alphas_cumprod_t.sqrt() * (1.0 - alphas_cumprod_t)
    raise ValueError(f"unknown weighting {kind!r}: use one of {', '.join(WEIGHTINGS)}")


def warmup_cosine(step: int, *, warmup: int, total: int, start: float, peak: float, end: float) -> float:
    """Linear warm-up start -> peak over `warmup` steps, then cosine decay peak -> end until `total`."""
    if step < warmup:
        return start + (peak - start) * step / max(warmup, 1)
    frac = min((step - warmup) / max(total - warmup, 1), 1.0)
    return end + 0.5 * (peak - end) * (1.0 + math.cos(math.pi * frac))


def step_decay(step: int, *, base: float, gamma: float, every: int) -> float:
    """base * gamma ** (step // every): the step decay CSD-Edit uses (x0.9 every 20 steps)."""
    return base * gamma ** (step // every)
