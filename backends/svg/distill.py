"""The SVG distillation library: styles, settings, the plan of a run, K paintings optimized by SDS or CSD through
the vector renderer, path re-initialization, the init from prior samples, and the work estimate.

`svg/vectorfusion` (one painting, SDS) and `svg/csd` (K paintings, CSD) are thin backends over it; the engine's one
step (`engine.distillation_loss`) gives the gradient, so nothing here re-derives SDS.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import torch

from ..core import budget
from .. import engine
from ..core.devices import to_device
from . import cost
from ..core.errors import InputError
from ..core.pixels import save_png, to_uint8
from ..priors.base import FastEncoding
from ..core.settings import option
from .losses import closed_area, saturation_penalty, xing_loss
from .sampled_init import resolve_init, sample_rank_vectorize
from .painting import Painting, export_svg, grid_image, pixel_squares, random_circles, random_strokes, resize_to
from .vectorize import live_steps

PAPER_SIZE = 600   # VectorFusion renders at 600 x 600 ...
PAPER_CROP = 512   # ... and crops 512 x 512 for Stable Diffusion's native 512
TRACED_STROKE_LR = 0.1  # sketch strokes traced from a sample move at this share of the style's learning rates


@dataclass(frozen=True)
class Style:
    """What a style optimizes and its paper defaults (pixel sizes are for the 600 px canvas)."""

    kind: str               # "path" | "stroke" | "square"
    paths: int              # number of shapes (pixel art: squares per side)
    segments: int           # cubic segments per shape (unused for squares)
    suffix: str             # appended to the prompt
    lr: tuple[float, float, float, int]  # start, peak, end, warm-up steps of the main parameter group
    optimize: tuple[str, ...]            # which of "points", "colors", "background" are optimized
    radius: float = 20.0    # initial circle radius, px
    stroke_width: float = 6.0


STYLES = {
    "iconography": Style("path", 64, 4, "minimal flat 2d vector icon. lineal color. on a white background. "
                         "trending on artstation", (0.02, 0.2, 0.05, 500), ("points", "colors", "background")),
    "pixelart": Style("square", 32, 1, "pixel art. trending on artstation", (1e-5, 1e-4, 1e-4, 1000), ("colors",)),
    "sketch": Style("stroke", 16, 5, "minimal 2d line drawing. trending on artstation", (0.02, 0.2, 0.05, 500),
                    ("points",)),
}


def full_prompt(prompt: str, suffix: str) -> str:
    """The prompt with the style's suffix appended ("a fox" -> "a fox. minimal flat 2d vector icon. ...")."""
    if not suffix:
        return prompt
    return prompt + ("" if prompt.rstrip().endswith((".", "!", "?")) else ".") + " " + suffix


# ------------------------------------------------------------------------------------------------ settings

@dataclass
class SVGDistillSettings:
    """Settings shared by the SDS/CSD text-to-SVG backends (paper defaults; None = the style's default)."""

    prompt: str = option("", "what the SVG should show (the style's prompt suffix is appended)")
    style: str = option("iconography", "iconography: filled paths; pixelart: a grid of colored squares; sketch: "
                                       "black strokes", choices=tuple(STYLES))
    paths: Optional[int] = option(None, "number of shapes (pixel art: squares per side); default 64 / 32 / 16 "
                                        "by style; the work budget applies to paths x size", lo=1, hi=1024)
    segments: Optional[int] = option(None, "cubic segments per path; default 4 (iconography) / 5 (sketch)",
                                     lo=1, hi=16)
    steps: Optional[int] = option(None, "SDS steps; the paper's 2000 from scratch, 1000 after a traced or LIVE init",
                                  lo=1, hi=20000, quick=150)
    seed: int = option(0, "random seed", lo=0, hi=2**31 - 1)
    size: Optional[int] = option(None, "canvas / render size in px; default 600 for 512-px priors, scaled "
                                       "down for smaller ones (150 for tiny-sd); pixel art rounds it to whole "
                                       "pixels per square", lo=16, hi=2048)
    guidance: Optional[float] = option(None, "classifier-free guidance scale of the SDS gradient (not in the paper; "
                                             "its public reimplementations use 100; closed-form priors suggest 1)",
                                       lo=0.0, hi=500.0, full=100.0, quick=100.0)
    negative: str = option("", "negative prompt", advanced=True)
    suffix: Optional[str] = option(None, "prompt suffix; default: the style's (empty text: none)", advanced=True)
    t_min: int = option(50, "smallest diffusion timestep (of 1000)", lo=1, hi=999, advanced=True, at_most="t_max")
    t_max: int = option(950, "largest diffusion timestep (of 1000)", lo=1, hi=999, advanced=True)
    augment: str = option("auto", "random perspective (0.5, p 0.7) + 512/600 crop: auto = on from scratch, "
                                  "off after a traced or LIVE init", choices=("auto", "on", "off"), advanced=True)
    lr: Optional[float] = option(None, "peak learning rate (points: px per step on a 600 px canvas; pixel art: "
                                       "colors); default 0.2, pixel art 1e-4", lo=0.0, hi=100.0, advanced=True)
    lr_start: Optional[float] = option(None, "learning rate at step 0 (linear warm-up to the peak); default "
                                             "0.02, pixel art 1e-5", lo=0.0, hi=100.0, advanced=True)
    lr_end: Optional[float] = option(None, "learning rate at the last step (cosine decay); default 0.05, pixel "
                                           "art 1e-4", lo=0.0, hi=100.0, advanced=True)
    lr_warmup: Optional[int] = option(None, "warm-up steps; default 500, pixel art 1000", lo=0, hi=20000,
                                      advanced=True)
    lr_scale: Optional[float] = option(None, "multiplies the style's default learning rates (lr_start, lr, lr_end "
                                             "not set here): the paper's are per step for 2000 steps, so a run of "
                                             "fewer steps needs larger ones to travel as far; default 1, the icons "
                                             "prior suggests 10 for its 200 steps", lo=0.0, hi=1000.0,
                                       advanced=True, full=1.0, quick=1.0)
    color_lr_scale: float = option(0.05, "fill-color learning rate / point learning rate (paper: 20x lower)",
                                   lo=0.0, hi=10.0, advanced=True)
    bg_lr_scale: float = option(0.005, "background learning rate / point learning rate (paper: 200x lower)",
                                lo=0.0, hi=10.0, advanced=True)
    xing_weight: float = option(0.01, "self-intersection (Xing) loss weight, closed paths", lo=0.0, hi=100.0,
                                advanced=True)
    saturation_weight: float = option(0.05, "L2 saturation penalty weight, pixel art only", lo=0.0, hi=100.0,
                                      advanced=True)
    reinit_every: int = option(50, "re-initialize faded or collapsed paths every k steps (0: never)", lo=0,
                               hi=10000, advanced=True)
    reinit_stop: Optional[float] = option(None, "stop re-initializing after this fraction of the steps; "
                                                "default 0.75 from scratch (1.5K of 2K), 0.8 after LIVE "
                                                "(0.8K of 1K), 0 after a trace (its small shapes are details, "
                                                "not dead paths)", lo=0.0, hi=1.0, advanced=True)
    opacity_threshold: float = option(0.05, "a path fainter than this is re-initialized", lo=0.0, hi=1.0,
                                      advanced=True)
    area_threshold: float = option(64.0, "a path smaller than this many px^2 (600 px canvas) is re-initialized",
                                   lo=0.0, hi=1e5, advanced=True)
    every: int = option(25, "report progress (with a preview) every k steps", lo=1, hi=1000, advanced=True)
    encoder: str = option("kl", "image encoder the SDS gradient flows through: kl = the prior's own VAE; fast = "
                                "AutoencoderTiny (madebyollin/taesd from the local cache, or $DISTILL_FAST_VAE): "
                                "~4x cheaper per step on a GPU, slightly less faithful",
                          choices=("kl", "fast"), advanced=True)
    sample_steps: Optional[int] = option(None, "DDIM steps per raster sample (init trace or live)", lo=1, hi=1000,
                                         advanced=True, full=50, quick=20)
    sample_guidance: Optional[float] = option(None, "guidance scale of the raster samples (init trace or live); "
                                                    "Stable Diffusion's 7.5, closed-form priors suggest 1",
                                              lo=0.0, hi=50.0, advanced=True, full=7.5, quick=7.5)
    live_iters: Optional[int] = option(None, "LIVE steps per stage when vectorizing the sample (init=live)", lo=1,
                                       hi=5000, advanced=True, full=100, quick=25)
    live_size: int = option(256, "resolution the sample is vectorized at (init=live)", lo=16, hi=1024,
                            advanced=True)


# ------------------------------------------------------------------------------------------- the plan

@dataclass
class Plan:
    """Every number one distillation run uses, resolved from settings, style and prior (no None left)."""

    style: Style
    prompt: str             # with suffix
    steps: int
    size: int               # canvas px
    native: int             # prior's image size
    crop: int               # augmentation crop, px of the canvas
    augment: bool
    px: float               # canvas px per paper px (size / 600)
    lr: tuple[float, float, float, int]
    reinit_stop: int        # last step (exclusive) at which paths are re-initialized
    settings: SVGDistillSettings = field(repr=False)


def canvas_size(size: int | None, native_size: int, grid: int | None = None) -> int:
    """The canvas side in px: the `size` setting, else the paper's 600 px scaled to the prior's image side (600 for
    a 512-px prior, so the 512-px crop is the prior's own size). grid: pixel art's squares per side; its canvas is
    rounded to whole pixels per square (crisp cells, and resvg draws exactly what is optimized)."""
    side = size or max(16, round(PAPER_SIZE * native_size / PAPER_CROP))
    return side if grid is None else grid * max(1, round(side / grid))


def make_plan(s: SVGDistillSettings, prior, *, init: str = "scratch") -> Plan:
    """Resolve the style defaults (paths, segments, lr, steps...) and the prior-dependent sizes; check ranges.
    init: the resolved init ("scratch", "trace" or "live", see `sampled_init.resolve_init`)."""
    style = STYLES[s.style]
    native = prior.native_size
    size = canvas_size(s.size, native, (s.paths or style.paths) if style.kind == "square" else None)
    steps = s.steps or (2000 if init == "scratch" else 1000)
    aug = {"auto": init == "scratch", "on": True, "off": False}[s.augment]
    scale = 1.0 if s.lr_scale is None else s.lr_scale
    if style.kind == "stroke" and init == "trace":
        # strokes traced along the sample's outlines already draw it: SDS against a filled, coloured target pulls
        # them into the dark fills at the full rate (looked at, icons prior, 200 steps: the bell's outline broke
        # into scattered dashes, the anchor filled with scribbles; at a tenth they keep the outline and the
        # outline judge knows 5 of 6 of them)
        scale *= TRACED_STROKE_LR
    lr = (style.lr[0] * scale if s.lr_start is None else s.lr_start, style.lr[1] * scale if s.lr is None else s.lr,
          style.lr[2] * scale if s.lr_end is None else s.lr_end, style.lr[3] if s.lr_warmup is None else s.lr_warmup)
    stop = s.reinit_stop if s.reinit_stop is not None else {"scratch": 0.75, "live": 0.8, "trace": 0.0}[init]
    suffix = style.suffix if s.suffix is None else s.suffix
    style = Style(style.kind, s.paths or style.paths, s.segments or style.segments, suffix, lr, style.optimize,
                  style.radius, style.stroke_width)
    return Plan(style=style, prompt=full_prompt(s.prompt, suffix), steps=steps, size=size,
                native=native, crop=max(8, round(size * PAPER_CROP / PAPER_SIZE)), augment=aug,
                px=size / PAPER_SIZE, lr=lr, reinit_stop=round(stop * steps), settings=s)


def with_encoder(prior, encoder: str):
    """The prior the SDS step encodes with: itself for "kl", its fast-encoder view for "fast" (the prior owns the
    model: `prior.with_fast_encoder()`; InputError when it has none or its weights are not on this machine)."""
    if encoder == "kl":
        return prior
    if encoder != "fast":
        raise InputError(f"encoder must be 'kl' or 'fast', not {encoder!r}")
    if not isinstance(prior, FastEncoding):
        raise InputError(f"encoder 'fast' needs a Stable Diffusion prior; the prior '{prior.name}' has no fast "
                         "encoder: use encoder 'kl'")
    return prior.with_fast_encoder()


def init_painting(plan: Plan, k: int, generator: torch.Generator, device) -> Painting:
    """K random scenes of the plan's style (circles / strokes / a grid of squares) on a white background."""
    st, size = plan.style, plan.size
    if st.kind == "path":
        points, colors = random_circles(k, st.paths, st.segments, st.radius * plan.px, size, generator)
    elif st.kind == "stroke":
        points = random_strokes(k, st.paths, st.segments, size, generator)
        colors = torch.tensor([0.0, 0.0, 0.0, 1.0]).expand(k, st.paths, 4).clone()
    else:
        points = pixel_squares(k, st.paths, size)
        colors = torch.cat([torch.rand(k, points.shape[1], 3, generator=generator),
                            torch.ones(k, points.shape[1], 1)], dim=-1)
    n = points.shape[1]
    return Painting(size, size, st.kind, points.to(device), colors.to(device), torch.ones(k, 3, device=device),
                    torch.arange(n).expand(k, n).clone(), st.stroke_width * plan.px)


# -------------------------------------------------------------------------------------------- optimizing

def make_augment(crop: int, *, same_on_batch: bool = False):
    """Random perspective (distortion 0.5, p 0.7) then a random crop of `crop` px; fills with white."""
    import kornia.augmentation as KA

    aug = torch.nn.Sequential(KA.RandomPerspective(distortion_scale=0.5, p=0.7, same_on_batch=same_on_batch),
                              KA.RandomCrop((crop, crop), same_on_batch=same_on_batch))
    # kornia pads with zeros: warp the negative image so the padding comes out white, like the icons' background
    return lambda images: 1.0 - aug(1.0 - images)


def distill_painting(painting: Painting, prior, plan: Plan, *, objective: str = "sds", repulsion: float = 1.0,
                     bandwidth: float | None = None, generator: torch.Generator, step_offset: int = 0,
                     total: int | None = None, stats: dict | None = None):
    """Optimize the K scenes of `painting` in place by SDS (each scene on its own) or CSD (the K scenes as
    SVGD particles), one batched render / encode / UNet call per step. Yields Progress.

    objective "sds": t and noise drawn per scene; "csd": one t for all particles (the kernel compares their
    noisy latents at the same noise level), augmentation shared across the batch, engine.csd_grad.
    stats (optional dict) receives "reinitialized": number of paths re-initialized.
    """
    s, st = plan.settings, plan.style
    prior = with_encoder(prior, s.encoder)
    device = prior.device
    k = painting.k
    cond = prior.condition(plan.prompt, negative=s.negative, guidance=s.guidance).repeat(k)
    augment = make_augment(plan.crop, same_on_batch=objective == "csd") if plan.augment else None
    stats = stats if stats is not None else {}
    stats.setdefault("reinitialized", 0)

    opt, lr_schedule = _optimizer(painting, plan)

    def step(i: int) -> engine.Step:
        images = painting.render()                                    # (K, 3, size, size)
        x = augment(images) if augment is not None else images
        x = resize_to(x, plan.native)
        z = prior.encode(x)                                           # fp32 encoder, differentiable
        n_t = 1 if objective == "csd" else k
        # drawn on the host generator (a seed gives the same timesteps on any device), copied without a host sync
        # (see to_device)
        t = to_device(engine.sample_timesteps(n_t, s.t_min, s.t_max, generator=generator), device).expand(k)
        # one denoiser call for all K (x2 for CFG); CSD: the K scenes are the particles
        loss, grad = engine.distillation_loss(prior, z, cond, t, generator=generator, objective=objective,
                                              repulsion=repulsion, bandwidth=bandwidth)
        metrics = {"grad_norm": grad.norm() / k}
        if st.kind == "path" and s.xing_weight > 0:
            xing = xing_loss(painting.cubics()).sum()
            loss = loss + s.xing_weight * xing
            metrics["xing"] = xing.detach() / k
        if st.kind == "square" and s.saturation_weight > 0:
            sat = saturation_penalty(painting.colors[..., :3])
            loss = loss + s.saturation_weight * sat
            metrics["saturation"] = sat.detach() / k
        return engine.Step(loss, metrics)

    def after_step(i: int) -> None:
        with torch.no_grad():
            painting.colors.clamp_(0, 1)
            if st.kind != "path":  # squares and strokes stay opaque: only paths fade (and get re-initialized)
                painting.colors[..., 3] = 1.0
            painting.background.clamp_(0, 1)
            painting.points.clamp_(-0.1 * plan.size, 1.1 * plan.size)
        if st.kind == "path" and s.reinit_every and (i + 1) % s.reinit_every == 0 and i + 1 <= plan.reinit_stop:
            stats["reinitialized"] += reinitialize(painting, opt, plan, generator)

    def preview():
        with torch.no_grad():
            images = painting.render(size=min(plan.size, 256))
        return to_uint8(images[0]) if k == 1 else grid_image(images)

    total = total or step_offset + plan.steps
    for p in engine.distill(step, opt, steps=plan.steps, every=s.every, preview=preview, lr_schedule=lr_schedule,
                            after_step=after_step):
        p.step, p.total = step_offset + p.step, total
        p.metrics["reinitialized"] = float(stats["reinitialized"])
        yield p
    painting.points.requires_grad_(False)
    painting.colors.requires_grad_(False)
    painting.background.requires_grad_(False)


def _optimizer(painting: Painting, plan: Plan):
    """VectorFusion's Adam over what the style optimizes (points at a learning rate scaled to the canvas, colours,
    the background), those made to require grad, and its schedule: a factor of the peak rate per step (warm-up
    from the start rate, then cosine down to the end rate)."""
    s, st = plan.settings, plan.style
    start, peak, end, warmup = plan.lr
    groups = []
    if "points" in st.optimize:
        painting.points.requires_grad_(True)
        groups.append({"params": [painting.points], "lr": peak * plan.px})
    if "colors" in st.optimize:
        painting.colors.requires_grad_(True)
        scale = 1.0 if st.kind == "square" else s.color_lr_scale  # pixel art's schedule is the colors' own
        groups.append({"params": [painting.colors], "lr": peak * scale})
    if "background" in st.optimize and s.bg_lr_scale > 0:
        painting.background.requires_grad_(True)
        groups.append({"params": [painting.background], "lr": peak * s.bg_lr_scale})
    opt = torch.optim.Adam(groups, betas=(0.9, 0.9), eps=1e-6)  # VectorFusion's Adam
    peak_safe = peak if peak > 0 else 1.0

    def lr_schedule(i: int) -> float:
        return engine.warmup_cosine(i, warmup=warmup, total=plan.steps, start=start / peak_safe, peak=1.0,
                                    end=end / peak_safe)

    return opt, lr_schedule


def dead_paths(painting: Painting, plan: Plan) -> torch.Tensor:
    """(K, N) bool: paths that faded (opacity below the threshold) or collapsed (control-polygon area below
    the threshold, scaled from the 600 px canvas)."""
    s = plan.settings
    area = closed_area(painting.points.detach())
    return (painting.colors.detach()[..., 3] < s.opacity_threshold) | (area < s.area_threshold * plan.px ** 2)


def reinitialize(painting: Painting, opt: torch.optim.Optimizer | None, plan: Plan,
                 generator: torch.Generator) -> int:
    """Replace dead paths by fresh random circles placed on top of the painter's order (VectorFusion).

    Centers are uniform over the whole canvas; the replaced rows' Adam moments are zeroed so the new circle
    does not inherit the old path's momentum. Returns how many paths were replaced.
    """
    dead = dead_paths(painting, plan)
    if not dead.any():
        return 0
    st = plan.style
    idx = dead.nonzero().tolist()
    pts, col = random_circles(1, len(idx), st.segments, st.radius * plan.px, plan.size, generator)
    with torch.no_grad():  # one indexed write for all K scenes (a boolean mask takes rows in idx's row-major order)
        painting.points[dead] = pts[0].to(painting.points.device, painting.points.dtype)
        painting.colors[dead] = col[0].to(painting.colors.device, painting.colors.dtype)
    if opt is not None:
        for p in (painting.points, painting.colors):
            state = opt.state.get(p, {})
            for key in ("exp_avg", "exp_avg_sq"):
                if key in state:
                    state[key][dead] = 0.0
    for kk in range(painting.k):
        painting.to_top(kk, [i for k2, i in idx if k2 == kk])
    return len(idx)


def clip_metadata(scorer, images: torch.Tensor, prompt: str) -> tuple[list[float], dict]:
    """CLIP scores of (K, 3, H, W) images against the user's prompt, and the scorer's label."""
    scores = scorer.score(images, prompt).tolist()
    return scores, scorer.label()


# ------------------------------------------------------------------------------------------------ backend


def sample_init(plan: Plan, prior, s: SVGDistillSettings, init: str, scorer, gen, device, out_dir, files, meta, *,
                samples: int, keep: int = 1):
    """VectorFusion's init from prior samples: `samples` raster samples -> the `keep` best
    (`sampled_init.rank_samples`) -> vectorized by `init` ("trace" or "live"; pixel art: each kept sample averaged
    over each square), one scene each. Yields Progress; returns (painting, steps done) and records the best sample
    in files / meta."""
    st = plan.style
    vectorize = init if st.kind != "square" else None
    done = keep * live_steps(st.paths, s.live_iters) if vectorize == "live" else 0
    found = yield from sample_rank_vectorize(
        prior, plan.prompt, rank_prompt=s.prompt, k=samples, steps=s.sample_steps, guidance=s.sample_guidance,
        negative=s.negative, generator=gen, scorer=scorer, vectorize=vectorize, paths=st.paths, segments=st.segments,
        iters=s.live_iters, live_size=s.live_size, canvas=plan.size, every=s.every, total=done + plan.steps,
        keep=keep, kind=st.kind, stroke_width=st.stroke_width * plan.px)
    files["raster"] = save_png(found.best, out_dir / "sample.png")
    meta["samples_score"] = [float(x) for x in found.scores]
    meta["samples_ranked_by"] = found.ranked_by
    meta["chosen_sample"] = int(found.order[0])
    if vectorize is None:
        painting = init_painting(plan, keep, gen, device)
        kept = found.samples[found.order[:keep]]
        cols = torch.nn.functional.adaptive_avg_pool2d(kept, st.paths).permute(0, 2, 3, 1).reshape(keep, -1, 3)
        painting.colors[:, :, :3] = cols.to(device)
        return painting, 0
    files["init_svg"] = export_svg(found.painting.scene(0), out_dir / f"{init}_init.svg")
    return found.painting, done


# ------------------------------------------------------------------------------------------------ work budget

def distillation_work(s: SVGDistillSettings, k: int, facts) -> budget.Work:
    """The budget's `Work` of one distillation step of K paintings: its peak memory, from the settings alone
    (nothing built; `cost.estimate_work` counts scenes that are).

    `cost.painting_bytes` per painting (the renderer's measured costs per unit): each shape's box on the canvas
    plus a pixel of antialiasing each side, its outline of PIECES_PER_CUBIC sub-lines a cubic plus its box's
    perimeter. Pixel art has paths**2 squares of size/paths pixels each. Paths from a traced or LIVE init (the
    default for icons) span the canvas like the shapes they trace, so each is counted at a full-canvas tile (as
    `cost.fit_bytes`); only a scratch init's random paths are small (measured: svg/csd k=8 paths=96 with the icons
    prior rose ~1 GB in RSS over its start, estimated at 69 MB when every path was counted small).
    """

    style = STYLES[s.style]
    n = s.paths or style.paths
    segments = s.segments or style.segments
    size = canvas_size(s.size, facts.native_size, n if style.kind == "square" else None)
    if style.kind == "square":
        cell = size // n
        shapes, side, outline = n * n, cell + 2, 4 * (5 + cell)
    else:
        small = style.kind == "path" and resolve_init(s.init, style.kind) == "scratch"
        side = min(size, round(2 * style.radius * size / PAPER_SIZE) + 2) if small else size
        shapes, outline = n, segments * cost.PIECES_PER_CUBIC + 4 * side
    per_painting = cost.painting_bytes(shapes, side, outline, size)
    what = (f"{k} painting{'s' if k > 1 else ''} of {shapes} {'squares' if style.kind == 'square' else 'shapes'} on a "
            f"{size}x{size} canvas")
    return budget.Work(int(k * per_painting), what, "paths or size" + (" (or k)" if k > 1 else ""))
