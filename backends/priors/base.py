"""The one small protocol every diffusion prior implements, and the batched condition it takes.

A prior turns images into latents and back, predicts (guided) noise for noisy latents, and samples. The engine
and the backends only ever talk to this protocol (never to a prior's modules or class), so Stable Diffusion,
InstructPix2Pix, the tiny random-weight models and the closed-form priors are interchangeable.
"""
from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Callable, Protocol, Sequence, runtime_checkable

import torch


@dataclass
class Cond:
    """A batch of conditions, one row per sample; every tensor field has the batch on dim 0.

    text: (B, L, D) prompt embeddings; uncond: (B, L, D) embeddings of the negative / empty prompt;
    What `text` and `uncond` hold is the prior's business (CLIP embeddings for Stable Diffusion, retrieval weights
    for a closed-form prior); backends only batch, index and repeat them.
    image: (B, C, h, w) the image condition on the latent grid (InstructPix2Pix: the source's unscaled
    `latent_dist.mode()`, as diffusers' pipeline; the analytic prior: the target's latents);
    guidance: (B,) text guidance scale; image_guidance: (B,) image guidance scale.
    """

    text: torch.Tensor | None = None
    uncond: torch.Tensor | None = None
    image: torch.Tensor | None = None
    guidance: torch.Tensor | None = None
    image_guidance: torch.Tensor | None = None

    def __len__(self) -> int:
        for f in fields(self):
            v = getattr(self, f.name)
            if v is not None:
                return v.shape[0]
        return 0

    def repeat(self, n: int) -> "Cond":
        """The whole batch tiled n times ([a, b] -> [a, b, a, b]); a condition of batch 1 becomes batch n."""
        return self._map(lambda v: v.repeat(n, *([1] * (v.dim() - 1))))

    def index(self, idx) -> "Cond":
        return self._map(lambda v: v[idx])

    def to(self, device=None, dtype=None) -> "Cond":
        return self._map(lambda v: v.to(device=device, dtype=dtype if v.is_floating_point() else None))

    @staticmethod
    def cat(conds: Sequence["Cond"]) -> "Cond":
        """Concatenate along the batch: all must have the same fields set."""
        out = {}
        for f in fields(Cond):
            vals = [getattr(c, f.name) for c in conds]
            if all(v is None for v in vals):
                out[f.name] = None
            elif any(v is None for v in vals):
                raise ValueError(f"cannot concatenate conditions where only some have {f.name!r}")
            else:
                out[f.name] = torch.cat(vals, dim=0)
        return Cond(**out)

    def _map(self, fn) -> "Cond":
        return replace(self, **{f.name: fn(getattr(self, f.name)) for f in fields(self) if getattr(self, f.name) is not None})


@runtime_checkable
class Prior(Protocol):
    """What the engine and every backend need from a diffusion model.

    Attributes: name (as the user picked it), kind ("text" or "instruct"), description (one line: what it is),
    tiny (random weights: results only show the flow), needs_target (centred on target images given to
    `condition(images=...)`), device, dtype (of the denoiser), latent_scale (pixels per latent cell: 8 for Stable
    Diffusion, 1 in pixel space), latent_channels, native_size (the image side in pixels it was built for: 512 for
    Stable Diffusion 1.x), size_multiple (image sides must be multiples of this many pixels), alphas_cumprod ((T,)
    float32 on device), num_train_timesteps, defaults (suggested settings of "auto" fields for this prior; may be
    empty; a prior with `TaskDefaults` refines them per task), switches (the memory and speed switches that are on,
    for result.json). The optional capabilities below are declared by having them; code tests with isinstance().
    """

    name: str
    kind: str
    description: str
    tiny: bool
    needs_target: bool
    device: torch.device
    dtype: torch.dtype
    latent_scale: int
    latent_channels: int
    native_size: int
    size_multiple: int
    alphas_cumprod: torch.Tensor
    num_train_timesteps: int
    defaults: dict
    switches: list

    def encode(self, images: torch.Tensor, mode: str = "sample",
               generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, C, H/s, W/s) latents; differentiable (float32 path). mode: "sample" draws
        from the encoder's posterior where it has one, "mean" takes its mean (deterministic)."""

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) latents -> (B, 3, h*s, w*s) images in [0, 1]."""

    def condition(
        self,
        prompts: str | Sequence[str],
        *,
        negative: str | Sequence[str] = "",
        images: torch.Tensor | None = None,
        guidance: float = 7.5,
        image_guidance: float = 1.5,
    ) -> Cond:
        """Build a batched condition. images: (B, 3, H, W) in [0, 1], the sources of an "instruct" prior or the
        targets of a `needs_target` prior; refused otherwise."""

    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Guided noise prediction for (B, C, h, w) noisy latents at integer timesteps t (B,), all in one call."""

    def sample(self, prompts: str | Sequence[str], *, steps: int = 50, guidance: float = 7.5, height: int = 512,
               width: int = 512, generator: torch.Generator | None = None, negative: str | Sequence[str] = "",
               images: torch.Tensor | None = None, image_guidance: float = 1.5) -> torch.Tensor:
        """Images drawn from the prior (deterministic DDIM): (B, 3, height, width) float32 in [0, 1]."""


def per_sample(scale, b: int, device) -> torch.Tensor:
    """A guidance scale as (B,) float32 on device: one number for every row, or one per row."""
    s = torch.as_tensor(scale, dtype=torch.float32, device=device).reshape(-1)
    if s.numel() == 1:
        s = s.expand(b)
    if s.numel() != b:
        raise ValueError(f"{s.numel()} guidance scales for a batch of {b}: give one or one per sample")
    return s.clone()


def as_list(prompts: str | Sequence[str]) -> list[str]:
    return [prompts] if isinstance(prompts, str) else list(prompts)


def per_row(texts: str | Sequence[str], b: int, what: str = "prompts") -> list[str]:
    """B strings from one (used for every row) or exactly B; a ValueError naming `what` otherwise."""
    out = as_list(texts)
    if len(out) == 1:
        out = out * b
    if len(out) != b:
        raise ValueError(f"{len(out)} {what} for a batch of {b}: give one or one per row")
    return out


# ---- optional capabilities: a prior declares one by having the method; backends test with isinstance()

@runtime_checkable
class PromptScorer(Protocol):
    """A prior that can say how well images show a prompt (the closed-form priors know exactly)."""

    def score(self, images: torch.Tensor, prompt: str) -> torch.Tensor:
        """(B,) float32, higher is better, for (B, 3, H, W) images in [0, 1]."""


@runtime_checkable
class TaskDefaults(Protocol):
    """A prior whose suggested settings differ per task: {task: {field: value}}, over its `defaults`."""

    task_defaults: dict


@runtime_checkable
class FastEncoding(Protocol):
    """A prior with a cheaper encoder for the per-step SDS encode (Stable Diffusion: the fast VAE)."""

    def with_fast_encoder(self, source: str | None = None) -> Prior:
        """This prior with `encode` through the fast encoder (InputError when its weights are not here)."""


@runtime_checkable
class PreviewDecoding(Protocol):
    """A prior with a cheaper decoder for live previews (outputs and metrics keep `decode`)."""

    def preview_decoder(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """(B, C, h, w) latents -> (B, 3, H, W) images in [0, 1], as `decode` but cheaper where it can be."""


@runtime_checkable
class StartNotice(Protocol):
    """A prior whose first step can take a while for a reason the person should be told (a CUDA graph capture)."""

    def start_notice(self) -> str | None:
        """One line to show before the first step, or None."""


def suggested_settings(prior: Prior | None, task: str) -> dict:
    """The settings a prior suggests for the "auto" fields of a task's backends (none without a prior)."""
    if prior is None:
        return {}
    per_task = prior.task_defaults.get(task, {}) if isinstance(prior, TaskDefaults) else {}
    return {**prior.defaults, **per_task}


@dataclass(frozen=True)
class PromptReading:
    """What a prior that retrieves by words understood of a prompt, for the person who typed it.

    subject: the words that name what is drawn; drawn: what it draws them from (e.g. icon captions), most weight
    first; colours: the colour words applied; colour_found: whether some match has those colours; recoloured: the
    colour the matches were redrawn in when none had it or a near one ("" otherwise); nearest_colour: the colour
    of the matches kept when none had the one asked for but a neighbour on the colour wheel ("" otherwise);
    left_out: known
    words of other objects, not drawn; unknown: words it does not know; negation_dropped: negation items ("no
    bicycles") left out because the prompt asked for none. objects: the things it names, as typed (at most three);
    relations: how each after the first relates to it ("wearing", "holding", "riding", "on", "in", "under",
    "over", "beside"); backdrop: a setting drawn behind ("night", "snow") or None; composed: what a composition
    draws and how, in words ("" for one thing)."""

    subject: tuple[str, ...]
    drawn: tuple[str, ...]
    colours: tuple[str, ...] = ()
    colour_found: bool = True
    nearest_colour: str = ""
    recoloured: str = ""
    left_out: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    negation_dropped: tuple[str, ...] = ()
    objects: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    backdrop: str | None = None
    composed: str = ""

    def sentence(self, prior: str = "the offline prior") -> str:
        """One paragraph in plain words: what was drawn, from which items, what was left out and why."""
        if self.composed:
            things = "; ".join(self.objects) + (f"; backdrop: {self.backdrop}" if self.backdrop else "")
            parts = [f"{prior[0].upper()}{prior[1:]} read the prompt as {things} and composes {self.composed}."]
        else:
            parts = [f"{prior[0].upper()}{prior[1:]} read the prompt as “{' '.join(self.colours + self.subject)}” "
                     f"and draws it from: {', '.join(self.drawn)}."]
        if self.nearest_colour:
            parts.append(f"Its {' or '.join(self.colours)} is the {self.nearest_colour} of its icons, the nearest "
                         f"colour they have.")
        if self.recoloured:
            parts.append(f"No icon of it is {self.recoloured}, so they were recoloured {self.recoloured}.")
        elif self.colours and not self.colour_found:
            parts.append(f"None of those is {' or '.join(self.colours)}: the colour could not be matched.")
        if self.left_out:
            parts.append(f"Not drawn: {', '.join(self.left_out)} (no icon's name holds it, or it is past the third thing named).")
        if self.unknown:
            parts.append(f"Words it does not know: {', '.join(self.unknown)}.")
        if self.negation_dropped:
            parts.append(f"Left out: {', '.join(self.negation_dropped)} (the prompt asks for no prohibition sign).")
        return " ".join(parts)


@runtime_checkable
class PromptReader(Protocol):
    """A prior that retrieves by words and can say what it understood of a prompt."""

    def read(self, prompt: str) -> PromptReading:
        """What `prompt` retrieves and why; raises InputError when nothing matches."""
