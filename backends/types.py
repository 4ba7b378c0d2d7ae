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

    def __repr__(self) -> str:
        loss = f", loss={self.loss:.4g}" if self.loss is not None else ""
        preview = ", preview" if self.preview is not None else ""
        message = f", {self.message!r}" if self.message else ""
        return f"Progress({self.step}/{self.total}{loss}{preview}{message})"


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

    def __repr__(self) -> str:
        return f"Result(files={sorted(self.files)}, metrics={self.metadata.get('metrics', {})})"
