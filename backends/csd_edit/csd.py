"""CSD-Edit, once for all three tasks: its settings, conditions, the prior calls, the per-step gradient and the loop.

The method (Kim et al. 2023, "Collaborative Score Distillation for Consistent Visual Editing", and the authors'
public code), for N particles whose target latents z_i start at the source latents s_i and are optimized directly:

    t ~ U(t_min, t_max), one per step; eps_i ~ N(0, I), shared by the source and the target of particle i
    z_t^i = a_t z_i + s_t eps_i,   s_t^i = a_t s_i + s_t eps_i
    score_i = eps_hat(z_t^i; source image i, target prompt) - eps_hat(s_t^i; source image i, source prompt)
    CSD-Edit:  grad_i = w(t)/N sum_j [k(z_t^j, z_t^i) score_j + repulsive kernel-gradient term]   (objective csd)
    per-item:  grad_i = w(t) score_i                                                              (objective sds)

both by the engine's one step (engine.distillation_grad), with the source's prediction as the baseline.

with eps_hat InstructPix2Pix's 3-way guidance (the prior does it, in diffusers' pipeline order), w(t) = 1 - alphabar_t,
an RBF kernel on the flattened noisy target latents with the median bandwidth, SGD with lr decayed x0.9 every
20 steps. The image-conditional source estimate replaces the random eps of plain SDS, so only the instruction's
direction is distilled and the source's detail stays. Target and source, all particles, go through ONE
`predict_eps` call (Cond.cat), split into `chunk`-sized calls only when asked to.

Two deliberate differences from the authors' code, both towards the diffusers pipeline / a fair baseline: the
image condition is the *unscaled* `latent_dist.mode()` of the source (their code passes the scaled posterior
sample), and the per-item baseline is weighted by w(t) like CSD (their non-SVGD panorama path drops w(t)).

Offline, the priors "edits" (a closed vocabulary of procedural edits, each a mixture of variants) and
"analytic-edit" (a random colour shift per call) make the method's claim measurable: per-item edits of neighbours
land on different variants, CSD-Edit's agree. They are priors like any other: this module never asks which.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator, Optional

import numpy as np
import torch

from .. import engine
from ..measures.clip import check_spec
from ..priors.base import Cond, PreviewDecoding
from ..core.settings import option
from ..core.types import Progress, Result
from . import metrics

# CSD-Edit without the kernel is each task's per-item baseline: one method in code, PER_ITEM (result.json's
# "method"); only its registered name, the one users type, says what the task's items are (per_item_name).
PER_ITEM = "per-item"
METHODS = ("csd", PER_ITEM)


def per_item_name(item: str) -> str:
    """The registered name of a task's per-item baseline: "patch" -> "per-patch", "frame" -> "per-frame"."""
    return f"per-{item}"



# ------------------------------------------------------------------------------------------------ settings

@dataclass
class EditSettings:
    """What the six CSD-Edit backends share; each task subclasses it with its own defaults (from the authors'
    scripts) and its own fields. CLI names shared by all: prompt, source_prompt, steps, seed, guidance,
    image_guidance, particles, lr."""

    prompt: str = option("", "the edit instruction, e.g. 'make it look like winter'")
    source_prompt: str = option("", "text for the source baseline; empty, as in the paper's code, or a caption of the input",
                                advanced=True)
    negative_prompt: str = option("", "text to steer away from (replaces the empty prompt of the unconditional branch)",
                                  advanced=True)
    steps: Optional[int] = option(None, "optimization steps", lo=1, hi=5000, full=200, quick=40)
    seed: int = option(0, "random seed: the same seed gives CSD-Edit and its baseline the same timesteps and noise",
                       lo=0, hi=2**31 - 1)
    guidance: Optional[float] = option(None, "text guidance scale (the paper uses 3-15; offline priors suggest their "
                                       "own)", lo=0.0, hi=50.0, full=7.5, quick=7.5)
    image_guidance: Optional[float] = option(None, "image guidance scale: higher keeps more of the source (the paper "
                                             "uses 1.5-5)", lo=0.0, hi=20.0, full=1.5, quick=1.5)
    particles: Optional[int] = option(None, "images edited together", lo=1, hi=64, full=16, quick=8)
    lr: Optional[float] = option(None, "SGD learning rate on the latents", lo=1e-4, hi=100.0, advanced=True, full=2.0,
                                 quick=2.0)
    lr_decay: float = option(0.9, "the learning rate is multiplied by this every decay_every steps", lo=0.05, hi=1.0,
                             advanced=True)
    decay_every: int = option(20, "steps between learning-rate decays", lo=1, hi=100000, advanced=True)
    t_min: int = option(20, "smallest diffusion timestep sampled", lo=1, hi=999, advanced=True, at_most="t_max")
    t_max: int = option(500, "largest diffusion timestep sampled", lo=1, hi=999, advanced=True)
    short_side: Optional[int] = option(None, "the input is resized so its short side has this many pixels (512 for "
                                       "InstructPix2Pix); outputs are resized back", lo=16, hi=2048, advanced=True,
                                       full=512, quick=128)
    upsample: str = option("guided", "how the working-size edit reaches the input's own size: 'guided' (a local colour "
                           "model fitted at the working size, applied to every input pixel, plus the residual it "
                           "cannot express) or 'resize' (the edit resized back: soft)", choices=("guided", "resize"),
                           advanced=True)
    chunk: int = option(0, "at most this many latents per UNet call (each runs 3 times for the guidance); 0 puts all "
                        "particles and both prompts in one call. Halved by itself whenever the GPU runs out of memory",
                        lo=0, hi=4096, advanced=True)
    every: int = option(20, "report progress with a preview every k steps", lo=1, hi=10000, advanced=True)
    clip_model: str = option("", "CLIP model for the CLIP directional similarity, NAME:PRETRAINED from the local cache "
                             "(e.g. ViT-B-32:openai) or tiny (random weights: the number means nothing); empty: skip "
                             "that metric", advanced=True)


def repulsion_option():
    """A CSD-only setting every csd-edit backend adds: the weight of the repulsive term."""
    return option(1.0, "weight of SVGD's repulsive kernel-gradient term (0: score mixing only)", lo=0.0, hi=10.0,
                  advanced=True)


def kernel_width_option(default: float = 1.0):
    """A CSD-only setting every csd-edit backend adds: the kernel's width, as a scale on the median heuristic.

    Why views need more than 1: with the heuristic (h = med^2 / log N) a pair of particles at the median distance
    weighs 1/N, and views of an object's far side, which differ from the rest more than most pairs, barely share
    scores with it. With an edit that has several looks (night: a blue, a violet or a teal dark), such a group
    settles on a look of its own: one background took three tints across the 8 example views. At 4 every view
    takes one look (edit inconsistency 0.041 against 0.096 at 1, on the night example; benchmarks/RESULTS.md).

    Why frames and windows take 4 too: since the kernel-weighted scores are a mean (`weighted_mean`), a particle's
    own score weighs 1 / sum_j K[j, i], about half at width 1 (16 frames of the example clip): each frame then
    moved at full pace towards its own variant, and the clip flickered between three winters (inconsistency 0.037,
    the per-frame baseline's 0.036). At 4 its own weight is about a fifth and the frames agree (0.0018 at strength
    0.070 against the baseline's 0.073)."""
    return option(default, "width of the SVGD kernel, a scale on the median bandwidth (1: the paper's heuristic; "
                  "larger lets particles that look less alike share one edit)", lo=0.1, hi=100.0, advanced=True)


# the part of the run at kernel_width, while the particles choose their look; kernel_width x settle_scale after it
CHOOSING = 1 / 3


def settle_scale_option(default: float = 1.0):
    """A CSD-only setting every csd-edit backend adds: the kernel's width once the particles have chosen their look
    (from a third of the run on), as a scale on `kernel_width` (1: one width all run, whatever kernel_width is set
    to). Views take 0.5 (width 2 after 4); frames, windows and a mesh's views 1.

    Why views narrow: scores are mixed cell by cell, and views of different sides show different things in a cell.
    The kernel-weighted mean moves what the particles share (their look) at the baseline's pace, but what differs
    between them (each view's own content under the edit) at (1 - k) / (1 + (N - 1) k) of it, k the kernel between
    two particles. On the noisy latents the noise sets every distance (k = N^(-1 / width) for every pair), so for 8
    views at width 4 k = 0.59 and that part moves at 0.08 of the pace; the decayed learning rate's sum is bounded
    (200 times lr), so it never arrives. On the example views, sepia, every view took the same variant by step 10 of
    300 and kept it, yet stopped a quarter of the way short of its own image under it (L2, relative to the edit).
    Narrower, that part moves faster: at width 2, 0.19 of the pace; at 1 (the paper's heuristic), 0.47. Over seeds
    0-5 of the example views (strength by `metrics.colour_change`; CSD-Edit over per-view): width 4 all run
    0.89-0.93x the strength at 0.17-0.27x the inconsistency (sepia), 0.98x at 0.25-0.30x (night); 2 from a third on
    0.92-0.95x at 0.23-0.37x and 0.99x at 0.30-0.39x; 1 from a third on 0.97-0.98x at 0.32-0.51x and 0.99-1.00x at
    0.38-0.52x. Views take 2: the width that meets both targets (0.9x the strength, 0.5x the inconsistency) on every
    seed (docs/edit_fidelity.md, "Views at seed 2").

    Why frames, windows and a mesh's views keep their width: frames and windows show nearly the same thing in a cell
    (a mesh's views are mixed through their correspondence), so there is little of their own to arrive at, and the
    coupling goes on averaging what differs between the scores from call to call. That averaging is what the
    narrowing gives up: on the analytic edit, whose scores carry a fresh colour shift per particle and call (as a
    real model's do), the example views' inconsistency went from 0.21-0.35x per-view's to 0.64-0.74x at 1 (32 px,
    100 steps, seeds 0-1), and a 12-frame clip's to per-frame's (tests/test_csd_edit.py's consistency test)."""
    return option(default, "the SVGD kernel's width from a third of the run on, once the particles have chosen "
                  "their look, as a scale on kernel_width (1: one width all run; narrower lets each particle's own "
                  "content arrive at the edit, wider keeps averaging the scores' noise)", lo=0.01, hi=10.0,
                  advanced=True)


def kernel_width_at(s: EditSettings, step: int) -> float:
    """The kernel's width at a step (0-based): s.kernel_width for the first third of s.steps, s.kernel_width x
    s.settle_scale after (see `settle_scale_option`)."""
    return s.kernel_width if step < CHOOSING * s.steps else s.kernel_width * s.settle_scale


def checked(s: EditSettings, prior) -> EditSettings:
    """The settings, once the one rule the settings parser cannot know is checked: the CLIP spec's form (text
    fields, ranges and t_min <= t_max were parsed by `make_settings`; an empty prompt refused by the runner)."""
    check_spec(s.clip_model)
    return s


# ------------------------------------------------------------------------------------------------ conditions

class EditConditions:
    """The target-prompt and source-prompt conditions of the source images, and their rows for a step's particles.

    Built once with `prior.condition(..., images=sources)`, whose image condition lies on the latent grid
    (InstructPix2Pix: the unscaled `latent_dist.mode()`, diffusers' pipeline convention); a step's particles take
    their rows (video frames, views) or windows of them (panorama).
    """

    def __init__(self, prior, s: EditSettings, sources: torch.Tensor):
        common = dict(negative=s.negative_prompt, images=sources, guidance=s.guidance, image_guidance=s.image_guidance)
        self.target = prior.condition(s.prompt, **common)
        self.source = prior.condition(s.source_prompt, **common)

    def for_particles(self, n: int, take: Callable | None) -> tuple[Cond, Cond]:
        """(target condition, source condition), batch n. take: maps a per-source tensor (B, C, h, w) to the
        particles (e.g. cuts windows); None: the particles are the sources themselves."""
        return self._rows(self.target, n, take), self._rows(self.source, n, take)

    @staticmethod
    def _rows(cond: Cond, n: int, take: Callable | None) -> Cond:
        if take is None:
            return cond
        # One prompt for all particles: the text rows are copies of row 0; the image rows follow the particles.
        return replace(cond.index(slice(0, 1)).repeat(n), image=take(cond.image))


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch: int) -> torch.Tensor:
    """fn over x's rows in calls of `batch` rows (0: all in one call), float32; the batch is halved whenever the
    GPU runs out of memory, down to one row a call (then the error stands)."""
    n = x.shape[0]
    size = n if batch <= 0 else min(batch, n)
    while True:
        try:
            return torch.cat([fn(x[i:i + size]).float() for i in range(0, n, size)])
        except torch.cuda.OutOfMemoryError:
            if size <= 1:
                raise
            size //= 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


@torch.no_grad()
def encode(prior, images: torch.Tensor, batch: int = 0) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, C, h, w) float32 latents; the posterior mean where the prior offers it, so
    the source latents (and the target's start) do not depend on VAE sampling noise. batch: images per VAE call,
    0 = all in one (a GPU is launch-bound at 4 a call); halved on out-of-memory. The 16gb memory profile's VAE
    slicing still runs the VAE one image at a time inside the call."""
    return _batched(lambda x: prior.encode(x, mode="mean"), images, batch)


@torch.no_grad()
def decode(prior, latents: torch.Tensor, batch: int = 0) -> torch.Tensor:
    """(B, C, h, w) -> (B, 3, H, W) in [0, 1], float32, `batch` latents per VAE call (0: all in one), halved
    on out-of-memory. For outputs and figures: the prior's own decoder."""
    return _batched(prior.decode, latents, batch)


@torch.no_grad()
def decode_preview(prior, latents: torch.Tensor, batch: int = 0) -> torch.Tensor:
    """decode for live previews: the prior's `preview_decoder()` where it has one (Stable Diffusion: the fast
    AutoencoderTiny decoder when its weights are on this machine, ~9x cheaper for 4 latents on an H200), else
    its `decode`. Outputs and metrics keep `decode`."""
    return _batched(prior.preview_decoder() if isinstance(prior, PreviewDecoding) else prior.decode, latents, batch)


def predict_eps(prior, z_t: torch.Tensor, t: torch.Tensor, cond: Cond, chunk: int = 0) -> torch.Tensor:
    """The prior's guided noise prediction for the whole batch in one call, or in calls of `chunk` latents."""
    n = z_t.shape[0]
    if chunk <= 0 or chunk >= n:
        return prior.predict_eps(z_t, t, cond).float()
    return torch.cat([prior.predict_eps(z_t[i:i + chunk], t[i:i + chunk], cond.index(slice(i, i + chunk))).float()
                      for i in range(0, n, chunk)])


def predict_eps_fitting(prior, z_t: torch.Tensor, t: torch.Tensor, cond: Cond, chunk: int) -> tuple[torch.Tensor, int]:
    """predict_eps that halves the chunk whenever the GPU runs out of memory, down to one latent a call.
    Returns (eps_hat, the chunk that fitted: 0 when the whole batch did)."""
    while True:
        try:
            return predict_eps(prior, z_t, t, cond, chunk), chunk
        except torch.cuda.OutOfMemoryError:
            size = chunk if 0 < chunk < z_t.shape[0] else z_t.shape[0]
            if size <= 1:
                raise
            chunk = size // 2
            if torch.cuda.is_available():
                torch.cuda.empty_cache()


# ------------------------------------------------------------------------------------------------ the update

class CSDEdit:
    """The CSD-Edit (method="csd") or per-item SDS-edit (method="per-item") gradient for one set of sources.

    sources: (B, 3, H, W) in [0, 1] on the prior's device (the frames, the views, or the one panorama).
    kernel: "latent" (RBF on the noisy target latents, as the paper) or "lpips" (RBF on the LPIPS distance between
    the particles' decoded images; needs the lpips package and its weights, else ModelUnavailableError).
    correspondence: where each particle's latent cells are in the others, for particles that show one thing from
    different places (views of a mesh): `engine.csd_grad` then shares scores between cells that show the same
    thing. None: cell by cell, as the paper (frames, windows, views assumed aligned).
    All randomness (timesteps, noise, panorama windows) comes from `self.gen`, seeded with
    s.seed, in the same order for both methods: same seed, same draws.
    """

    def __init__(self, prior, s: EditSettings, sources: torch.Tensor, *, method: str, kernel: str = "latent",
                 correspondence: engine.Correspondence | None = None):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, not {method!r}")
        self.prior, self.s, self.method = prior, s, method
        self.device = torch.device(prior.device)
        self.gen = torch.Generator(self.device).manual_seed(s.seed)
        # window choices are host-side indices: drawn on the CPU so picking them never waits for the GPU
        self.host_gen = torch.Generator().manual_seed(s.seed)
        self.lpips = metrics.load_lpips(self.device) if method == "csd" and kernel == "lpips" else None
        self.source_latents = encode(prior, sources)
        self.conditions = EditConditions(prior, s, sources)
        self.chunk = s.chunk  # latents per UNet call (0: all); halved for good if the GPU runs out of memory
        self.correspondence = correspondence

    def gradient(self, z: torch.Tensor, take: Callable | None = None, step: int = 0) -> tuple[torch.Tensor, dict]:
        """grad (N, C, h, w) of the loss with respect to the particles' latents z (N, C, h, w), and step metrics.

        take: maps per-source tensors to the particles (panorama windows); None: particle i is source i.
        step: the step's index in the run (0-based), which sets CSD-Edit's kernel width (`kernel_width_at`).
        """
        s, prior, n = self.s, self.prior, z.shape[0]
        z = z.detach().float()
        src = self.source_latents if take is None else take(self.source_latents)
        cond_tgt, cond_src = self.conditions.for_particles(n, take)
        t = engine.sample_timesteps(1, s.t_min, s.t_max, generator=self.gen, device=self.device).expand(n)
        eps = engine.draw_noise(z, self.gen)

        def predict(z_t, tt, noise):
            # the baseline is the prior's prediction for the source noised by the same eps: one UNet call for the
            # target and source of every particle, unless that does not fit (then smaller calls)
            src_t = engine.add_noise(src, noise, prior.alphas_cumprod[tt])
            eps_hat, self.chunk = predict_eps_fitting(prior, torch.cat([z_t, src_t]), torch.cat([tt, tt]),
                                                      Cond.cat([cond_tgt, cond_src]), self.chunk)
            return eps_hat.chunk(2)

        if self.method == PER_ITEM:
            done = engine.distillation_grad(predict, z, t, eps, prior.alphas_cumprod, objective="sds")
        else:
            width = kernel_width_at(s, step)
            if self.lpips is not None:  # what the views look like: their clean decoded images, not decodes of noise
                kernel = lambda _z_t: weighted_mean(*feature_kernel(z, self.lpips, to_images=prior.decode,  # noqa: E731
                                                                    scale=width)[:2])
            else:
                kernel = lambda z_t: weighted_mean(*engine.svgd_kernel(z_t, None, width)[:2])  # noqa: E731
            done = engine.distillation_grad(predict, z, t, eps, prior.alphas_cumprod, objective="csd",
                                            repulsion=s.repulsion, bandwidth_scale=width, kernel=kernel,
                                            correspondence=self.correspondence)
        stats = {"t": t[0].float(), "score": (done.eps_hat - done.eps_base).abs().mean()}
        return done.grad, stats


def weighted_mean(k: torch.Tensor, grad_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The kernel (K (N, N), grad_K (N, ...)) rescaled so `engine.csd_grad`'s 1/N sum becomes a kernel-weighted
    mean: column i times N / sum_j K[j, i], and grad_K[i] with it. Each particle then moves at the per-item
    baseline's pace, towards its neighbours' mean score.

    Why: with the median bandwidth, sum_j K[j, i] / N was 0.12 on the example clip (16 frames, 128x96): SVGD's
    1/N shrank every CSD-Edit step about 8 times against the per-frame baseline's at the same learning rate, so
    in the same steps the particles travelled half as far (edit strength 0.037 against 0.073; with 4x the
    learning rate it reached 0.067). The edit was weak because the particles had not arrived, not because the
    prior's variants cancelled. Normalized, the kernel still decides *which* scores a particle takes, so the set
    agrees on one look, at the baseline's strength (benchmarks/edit_fidelity.py)."""
    scale = k.shape[0] / k.sum(0).clamp_min(1e-12)  # (N,): sum_j K[j, i] >= K[i, i] = 1
    return k * scale[None, :], grad_k * scale.reshape(-1, *([1] * (grad_k.dim() - 1))).to(grad_k.dtype)


def feature_kernel(x: torch.Tensor, sq_distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
                   to_images: Callable[[torch.Tensor], torch.Tensor] | None = None, scale: float = 1.0):
    """RBF kernel over any differentiable squared distance, and SVGD's kernel-gradient term through it.

    x: (N, ...) particles; to_images: an optional differentiable map applied to each particle first (the VAE
    decoder, for LPIPS); sq_distance(a, b) -> (P,) squared distances between rows of a and b, differentiable in a.
    Returns (K, grad_K, h) as engine.svgd_kernel: K[j, i] = exp(-d(x_j, x_i) / h) with the median bandwidth (times
    `scale`),
    grad_K[i] = sum_j d k(x_j, x_i) / d x_j. Each ordered pair gets its own copy of image j, so one backward pass
    through the distance gives every pair's gradient; through `to_images` it is one vector-Jacobian product per pair
    on one particle's graph at a time (N(N-1) decoder backward passes a step: slow, but memory stays one image's).
    """
    n = x.shape[0]
    rows, cols = torch.meshgrid(torch.arange(n, device=x.device), torch.arange(n, device=x.device), indexing="ij")
    off = rows != cols
    j, i = rows[off], cols[off]
    with torch.no_grad():
        images = x if to_images is None else torch.cat([to_images(x[k:k + 1]) for k in range(n)])
    with torch.enable_grad():
        first = images.detach()[j].clone().requires_grad_(True)
        d = sq_distance(first, images.detach()[i]).reshape(-1).float()
        d2 = torch.zeros(n, n, device=x.device)
        d2[j, i] = d.detach()
        h = engine.median_bandwidth(0.5 * (d2 + d2.T), scale=scale)
        k = torch.exp(-d / h)
        (g,) = torch.autograd.grad(k.sum(), first)  # g[p] = d k(image_j, image_i) / d image_j for pair p = (j, i)
    kernel = torch.eye(n, device=x.device)
    kernel[j, i] = k.detach()
    if to_images is None:
        grad_k = torch.zeros_like(x, dtype=g.dtype).index_add_(0, i, g)
        return kernel, grad_k.to(x.dtype), h
    grad_k = torch.zeros_like(x, dtype=torch.float32)
    for src in range(n):
        with torch.enable_grad():
            xs = x[src:src + 1].detach().requires_grad_(True)
            image = to_images(xs)
            pairs = (j == src).nonzero().flatten().tolist()
            for last, p in enumerate(pairs, start=1):
                (gz,) = torch.autograd.grad(image, xs, grad_outputs=g[p:p + 1].to(image.dtype),
                                            retain_graph=last < len(pairs))
                grad_k[i[p]] += gz[0].float()
    return kernel, grad_k.to(x.dtype), h


def optimize(latents: torch.Tensor, step_fn: Callable[[int], engine.Step], s: EditSettings,
             preview: Callable[[], np.ndarray]) -> Iterator[Progress]:
    """SGD on the target latents with the authors' step decay, through the engine's loop (previews every s.every)."""
    opt = torch.optim.SGD([latents], lr=s.lr)
    return engine.distill(step_fn, opt, steps=s.steps, seed=s.seed, every=s.every, preview=preview,
                          lr_schedule=lambda i: engine.step_decay(i, base=1.0, gamma=s.lr_decay, every=s.decay_every))


def items_step(edit: CSDEdit, z: torch.Tensor) -> Callable[[int], engine.Step]:
    """The step of video and views: every source is a particle, every step updates all of them."""

    def step(i: int) -> engine.Step:
        grad, stats = edit.gradient(z, step=i)
        return engine.Step(engine.grad_to_loss(z, grad), stats)

    return step


# ------------------------------------------------------------------------------------------------ the run template

@dataclass
class Sources:
    """What a task's `load` gives the shared run: the particles' source images, (N, 3, H, W) in [0, 1] at the
    working size, and the task's own facts (input size, frame rate, windows...), handed back to its other hooks."""

    images: torch.Tensor
    facts: dict


class EditBackend:
    """The run every edit task shares: check the settings, load the sources, optimize their latents with CSD-Edit
    (or per-item SDS-edit), decode, write the outputs.

    A task gives the hooks: `load` (inputs -> Sources), `preview` and `outputs` (-> Result); it may change `step`
    (default: every source is a particle, all updated every step), `decode` (default: the prior's decoder, in
    one call), `kernel` (default: the L2 distance of the noisy latents) and `correspondence` (default: particles'
    cells correspond place by place).
    """

    prior = "instruct"
    requires_prompt = True
    method = "csd"

    def run(self, s: EditSettings, *, prior, inputs, out_dir):
        s = checked(s, prior)
        src = self.load(s, prior, inputs)
        edit = CSDEdit(prior, s, src.images, method=self.method, kernel=self.kernel(s),
                       correspondence=self.correspondence(s, prior, src) if self.method == "csd" else None)
        z = edit.source_latents.clone().requires_grad_(True)
        # the source as the VAE returns it: the metrics' residuals then exclude the VAE's own error
        source = self.decode(prior, edit.source_latents, src)
        last = None
        for progress in optimize(z, self.step(s, edit, z, src), s, lambda: self.preview(prior, z.detach(), source, src)):
            last = progress
            yield progress
        edited = self.decode(prior, z.detach(), src)
        yield self.outputs(s, prior, edit, edited, source, src, last, Path(out_dir))

    def kernel(self, s: EditSettings) -> str:
        return "latent"

    def correspondence(self, s: EditSettings, prior, src: Sources) -> engine.Correspondence | None:
        """Where each particle's latent cells are in the others (see CSDEdit); None: the same cells."""
        return None

    def step(self, s: EditSettings, edit: CSDEdit, z: torch.Tensor, src: Sources) -> Callable[[int], engine.Step]:
        return items_step(edit, z)

    def decode(self, prior, latents: torch.Tensor, src: Sources) -> torch.Tensor:
        return decode(prior, latents)

    def load(self, s: EditSettings, prior, inputs: list[str]) -> Sources:
        raise NotImplementedError

    def preview(self, prior, z: torch.Tensor, source: torch.Tensor, src: Sources) -> np.ndarray:
        """The live preview, (H, W, 3) uint8, from the current latents z and the decoded source."""
        raise NotImplementedError

    def outputs(self, s: EditSettings, prior, edit: CSDEdit, edited: torch.Tensor, source: torch.Tensor,
                src: Sources, last: Progress | None, out_dir: Path) -> Result:
        """Files, figures and metrics from the decoded result and source, (N, 3, H, W) in [0, 1]."""
        raise NotImplementedError
