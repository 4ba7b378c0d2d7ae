"""Where the SVG backends start: K raster samples of the prior, ranked, the best vectorized (VectorFusion's
"sample -> vectorize -> refine" and the raster-then-vectorize baseline).

    init        what it does                                                       cost (2-core CPU, icons prior)
    trace       samples -> the best traced by vtracer (`trace.py`); sketches:     well under a second
                open strokes along its outlines (`trace.trace_strokes`)
    live        samples -> the best fitted LIVE-style (`vectorize.live_vectorize`) minutes (LIVE's stages)
    scratch     random circles / strokes / a colour grid, no samples               none; needs many more SDS steps

Ranking the samples: the paper keeps the best by CLIP. A CLIP with random weights (what an offline machine has)
ranks by chance, so there the prior's own judgement is used when it has one (`PromptScorer`: the icons prior knows
how close each sample is to the icons the prompt names), else the samples keep the order they were drawn in;
`Sampled.ranked_by` says which.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from ..measures.clip import rerank
from ..core.errors import InputError
from ..priors.base import PromptReader, PromptScorer
from ..core.types import Progress
from .painting import Painting, grid_image, resize_to, stack_paintings
from .trace import trace_painting, trace_strokes
from .vectorize import live_steps, live_vectorize

VECTORIZERS = ("trace", "live")
INIT_HELP = ("auto: trace; trace: K prior samples, the best traced into paths (sketches: strokes along its "
             "outlines; well under a second) then refined by SDS; live: the same, vectorized LIVE-style (minutes on "
             "a CPU; not for sketches); scratch: random shapes, no samples (needs more SDS steps)")


def resolve_init(init: str, kind: str) -> str:
    """The init a run uses: "auto" is "trace" (sketches: strokes traced along the best sample's outlines,
    `trace.trace_strokes`). An explicit live with sketches is refused (LIVE fits filled shapes, not lines)."""
    if init == "auto":
        return "trace"
    if init == "live" and kind == "stroke":
        raise InputError("init=live fits raster samples with filled shapes: use it with the iconography or pixelart "
                         "style, not sketch (sketches start from strokes along the best sample's outlines: init "
                         "trace, or random strokes: init scratch)")
    return init


@dataclass
class Sampled:
    """What `sample_rank_vectorize` found: the K samples (K, 3, n, n), their order (best first) with the scores it
    came from, what ranked them ("CLIP", "the icons prior's score" or "draw order"), and the `keep` best
    vectorized as one Painting (None when vectorize is None)."""

    samples: torch.Tensor
    order: list[int]
    scores: torch.Tensor
    ranked_by: str
    painting: Painting | None

    @property
    def best(self) -> torch.Tensor:
        return self.samples[self.order[0]]


def rank_samples(samples: torch.Tensor, prompt: str, *, prior, scorer) -> tuple[list[int], torch.Tensor, str]:
    """(order best first, scores, what ranked them) of (K, 3, H, W) samples for the user's `prompt`: CLIP with real
    weights (the paper's rejection sampling); else the prior's own score where it has one; else draw order."""
    if scorer is not None and not scorer.random_weights:
        order, scores = rerank(samples, prompt, model=scorer)
        return order, scores, "CLIP"
    if isinstance(prior, PromptScorer):
        scores = prior.score(samples, prompt).float().cpu()
        return torch.argsort(scores, descending=True, stable=True).tolist(), scores, f"the {prior.name} prior's score"
    k = samples.shape[0]
    return list(range(k)), torch.zeros(k), "draw order (no CLIP weights on this machine to rank them)"


def sample_rank_vectorize(prior, prompt: str, *, rank_prompt: str, k: int, steps: int, guidance: float,
                          negative: str, generator: torch.Generator, scorer, vectorize: str | None = "trace",
                          paths: int = 64, segments: int = 4, iters: int = 100, live_size: int = 256,
                          canvas: int = 600, every: int = 25, offset: int = 0, total: int | None = None,
                          keep: int = 1, kind: str = "path", stroke_width: float = 6.0):
    """K raster samples of `prompt` at the prior's native size (deterministic DDIM), ranked against `rank_prompt`
    (the user's words, without the style suffix; `rank_samples`), the `keep` best vectorized by `vectorize`
    ("trace", "live" or None) into at most `paths` closed paths of `segments` cubics on a `canvas` px canvas (kind
    "stroke" with "trace": `paths` open strokes of `stroke_width` px along its outlines), as one Painting of `keep`
    scenes. A generator: yields Progress (numbered from `offset` within `total`; LIVE counts
    its steps, tracing none) and returns a `Sampled`."""
    if not 1 <= keep <= k:
        raise ValueError(f"keep must be between 1 and k = {k}, not {keep}")
    if vectorize not in (*VECTORIZERS, None):
        raise ValueError(f"vectorize must be one of {VECTORIZERS} or None, not {vectorize!r}")
    per = live_steps(paths, iters) if vectorize == "live" else 0
    total = total if total is not None else offset + keep * per
    yield Progress(step=offset, total=total, message=f"sampling {k} raster images ({steps} DDIM steps)")
    n = prior.native_size
    samples = prior.sample([prompt] * k, steps=steps, guidance=guidance, height=n, width=n, generator=generator,
                           negative=negative).clamp(0, 1)
    order, scores, ranked_by = rank_samples(samples, rank_prompt, prior=prior, scorer=scorer)
    yield Progress(step=offset, total=total, preview=grid_image(samples[order]),
                   message=f"{k} samples, best first, ranked by {ranked_by}")
    found = Sampled(samples, order, scores, ranked_by, None)
    if vectorize == "trace" and kind == "stroke":
        fits = [trace_strokes(samples[i].to(prior.device), paths=paths, segments=segments, canvas=canvas,
                              stroke_width=stroke_width) for i in order[:keep]]
        found.painting = stack_paintings(fits)
        yield Progress(step=offset, total=total, preview=grid_image(found.painting.render()),
                       message=f"drew {paths} strokes along the best sample's outlines")
    elif vectorize == "trace":
        fits = [trace_painting(samples[i].to(prior.device), paths=paths, segments=segments, canvas=canvas)
                for i in order[:keep]]
        found.painting = stack_paintings(fits)
        yield Progress(step=offset, total=total, preview=grid_image(found.painting.render()),
                       message=f"traced the best sample{'s' if keep > 1 else ''} into paths")
    elif vectorize == "live":
        fits = []
        for j, i in enumerate(order[:keep]):
            target = resize_to(samples[i][None], live_size)[0].to(prior.device)
            fitted = yield from renumber(live_vectorize(target, paths=paths, segments=segments, iters=iters,
                                                        every=every), offset + j * per, total)
            fits.append(fitted)
        scale = canvas / live_size
        both = stack_paintings(fits)
        found.painting = Painting(canvas, canvas, "path", both.points * scale, both.colors, both.background,
                                  both.order)
    return found


def renumber(gen, offset: int, total: int):
    """Re-number a sub-phase's Progress into the whole run's step count; returns the sub-generator's value."""
    while True:
        try:
            p = next(gen)
        except StopIteration as stop:
            return stop.value
        p.step, p.total = offset + p.step, total
        yield p


def reading_notes(prior, prompt: str, meta: dict) -> None:
    """What a retrieval prior understood of the user's prompt (`PromptReader`), into the run's metadata: a sentence
    in `notes` (the app's notices box) and the parts under `understood` (result.json). Other priors: nothing."""
    if not isinstance(prior, PromptReader):
        return
    reading = prior.read(prompt)
    meta.setdefault("notes", []).append(reading.sentence(f"the {prior.name} prior"))
    meta["understood"] = asdict(reading)
