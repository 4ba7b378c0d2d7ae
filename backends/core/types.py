"""What a backend yields while it runs (`Progress`) and once at the end (`Result`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import InputError


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


# ---- what a backend takes: its spec, read by the runner, the CLI, the budget and the app ----
INPUT_KINDS = ("image", "images", "video", "svg", "mesh")
INPUT_NOUNS = {"image": "an image", "images": "the views (images or a zip)", "video": "a video", "svg": "an SVG file",
               "mesh": "a textured mesh (.glb, or a zipped .obj)"}


@dataclass(frozen=True)
class Inputs:
    """The input files a backend takes: their kind ("none" or one of INPUT_KINDS) and how many (min..max; max None:
    any number). Declared on a backend as a word: "none", "image", "images", "video", "svg", "mesh", or "image?"
    (optional)."""

    kind: str
    min: int
    max: int | None

    @classmethod
    def parse(cls, word: str) -> "Inputs":
        kind, optional = word.rstrip("?"), word.endswith("?")
        if kind == "none":
            return cls("none", 0, 0)
        if kind not in INPUT_KINDS:
            raise ValueError(f"inputs must be 'none' or one of {', '.join(INPUT_KINDS)} (optionally with '?'), "
                             f"not {word!r}")
        return cls(kind, 0 if optional else 1, None if kind == "images" else 1)

    @property
    def noun(self) -> str:
        return INPUT_NOUNS.get(self.kind, "no input")

    def accepts(self, kind: str) -> bool:
        """Whether a file of `kind` can feed these inputs (one image and several images serve each other)."""
        return kind == self.kind or {kind, self.kind} == {"image", "images"}

    def too_few(self, count: int) -> bool:
        """Whether `count` files are fewer than the backend needs (the CLI's and the page's sentence differ)."""
        return count < self.min

    def check(self, key: str, count: int) -> None:
        """An InputError (one sentence) when `count` files do not fit."""
        if self.max == 0 and count:
            raise InputError(f"{key} takes no input file")
        if self.too_few(count):
            raise InputError(f"{key} needs an input: {self.noun}, got none")
        if self.max is not None and count > self.max:
            most = "one" if self.max == 1 else str(self.max)
            many = f"exactly {most}" if self.min == self.max else f"at most {most}"
            raise InputError(f"{key} takes {many} input ({self.noun}), got {count}")


@dataclass(frozen=True)
class BackendSpec:
    """One backend's contract, built once when it registers (`registry.register`) from its class attributes.

    prior: the prior kind it runs on ("text", "instruct") or "none"; analytic_ok: it also takes a prior centred on
    target images; prompt_required: an empty `prompt` setting is refused before any model loads; scorer: "clip" when
    it ranks its results with CLIP (loaded with the prior, `runner.warm_up`), else None; estimate:
    `estimate(settings, input_paths, budget_facts) -> budget.Work` (None for a backend without one); steps:
    `steps(settings) -> int | None`, the optimization steps a run of these settings takes, for the time budget and
    the expected time (the backend's `total_steps`, else its `steps` setting; None: not known before the run)."""

    key: str
    description: str
    prior: str
    inputs: Inputs
    prompt_required: bool
    analytic_ok: bool
    scorer: str | None
    estimate: Callable | None
    steps: Callable[[Any], int | None] = lambda settings: getattr(settings, "steps", None)
