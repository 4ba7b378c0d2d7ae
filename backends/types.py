"""What a backend yields while it runs (`Progress`) and once at the end (`Result`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Progress:
    """One progress report.

    step: steps done so far (0..total); total: planned steps; loss: mean loss since the last report;
    preview: optional (H, W, 3) uint8 image of the current state; metrics: scalar floats by name.
    """

    step: int
    total: int
    loss: float | None = None
    preview: np.ndarray | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    message: str = ""
    elapsed: float = 0.0


@dataclass
class Result:
    """The end of a run.

    files: role -> path of a written file (e.g. {"svg": ".../result.svg", "png": ".../result.png"});
    preview: (H, W, 3) uint8 image that shows the result; metadata: JSON-able facts (settings, seed, prior,
    timings, metrics), written to result.json by `backends.run`.
    """

    files: dict[str, str] = field(default_factory=dict)
    preview: np.ndarray | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
