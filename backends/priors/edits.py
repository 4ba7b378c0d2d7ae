"""The `edits` prior: a closed-form, instruction-conditioned editing prior over procedural image edits.

Not InstructPix2Pix. It knows a closed vocabulary of instructions (`VOCABULARY`); each names a deterministic image
transform with K = 3 equally weighted *variants* T_1..T_K (different tints, colourways or paper colours of the same
edit, chosen so each lies at a similar distance from the source). Latents are pixels: z = 2x - 1, one latent cell
per pixel. With S the source latent (the image condition) the three conditionals InstructPix2Pix's guidance needs
are Gaussians or Gaussian mixtures with the exact noise prediction:

    "full"   (image, instruction):  p(x0) = 1/K sum_k N(T_k(S), sigma^2 I)     (the instruction's variants)
    "image"  (image, no text):      p(x0) = N(S, sigma^2 I)                      (keep the source; with a negative
                                                                                  prompt: its edit's variants)
    "uncond" (no image, no text):   p(x0) = N(0, sigma_u^2 I), sigma_u = 0.5     (a broad grey prior, about the
                                                                                  spread of natural-image latents)

and for z_t = a x0 + s eps (a = sqrt(alphabar_t), s = sqrt(1 - alphabar_t)), a mixture of N(mu_k, v I) with equal
weights has E[eps | z_t] = -s grad log p(z_t) = sum_k r_k(z_t) s (z_t - a mu_k) / (a^2 v + s^2), r the posterior
responsibilities. These are combined with InstructPix2Pix's 3-way guidance (`engine.ip2p_guidance`).

What the guidance scales mean here (worked out for one variant T; the mixture picks the variant nearest the noisy
latent, so near a variant the same holds). SDS-edit's gradient eps_hat(z_t; T) - eps_hat(S_t; no text) vanishes at

    z* = S + g / (s_I + (1 - s_I) D / D_u) * (T(S) - S),   D = a^2 sigma^2 + s^2,  D_u = a^2 sigma_u^2 + s^2,

g the text scale, s_I the image scale. So with s_I = 1 the edit lands at S + g (T(S) - S): g = 1 lands exactly
on the edit, g = 7.5 (InstructPix2Pix's usual value) would overshoot it 7.5 times and saturate. s_I > 1 shrinks the
edit (by a factor between 1 and 1/s_I, depending on t): "higher keeps more of the source", as with InstructPix2Pix.
The defaults are therefore guidance 1 and image guidance 1; at those scales eps_hat is the exact "full" score and
`sample` draws exactly from the edit's mixture.

Locality (the panorama cuts windows out of the source): every edit is pointwise except `winter` (snow looks at the
pixel below: 1 pixel of context) and `watercolour` (a 5 x 5 blur: 2 pixels). Editing a crop equals cropping the
edit exactly for the pointwise edits, and for the other two everywhere except a border of 1 (winter) or 2
(watercolour) pixels along the crop's inner edges, where the crop's replicate padding stands in for the unseen
neighbours. No edit uses a position-dependent texture.

Variants are built so that independent per-item edits can disagree while CSD-Edit's coupled particles agree: at
every pixel the K variants are equally far from the source (`equidistant`) and, for the colour grades, sit on an
equilateral triangle of hues around the edit (`_hue_variants`). Then which variant a particle's score pulls it to
is decided by its noise, not by the geometry: in thousands of dimensions a variant nearer the source by a hair would
win every time. Speed: one predict_eps for 16 particles of 128 x 128 with their sources (32 rows) takes 20-75 ms on
one thread of the shared 2-core test CPU (the engine's csd_grad on the same tensors: 18-28 ms).
"""
from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..engine.sampling import ddim_sample
from ..engine.step import noise
from ..engine.guidance import ip2p_guidance
from . import catalog
from .analytic import scaled_linear_alphas_cumprod
from .base import Cond, per_row, per_sample
from ..core.errors import InputError

SIGMA = 0.02  # std of each variant's Gaussian, latent units: DDIM samples keep 0.01 px of grain, invisible
SIGMA_UNCOND = 0.5  # std of the broad unconditional prior around mid-grey, latent units

_LUMA = (0.299, 0.587, 0.114)


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W) Rec. 601 luma."""
    w = x.new_tensor(_LUMA).reshape(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _rgb(values: Sequence[float], like: torch.Tensor) -> torch.Tensor:
    return like.new_tensor(values).reshape(1, 3, 1, 1)


def _smoothstep(lo: float, hi: float, x: torch.Tensor) -> torch.Tensor:
    u = ((x - lo) / (hi - lo)).clamp(0, 1)
    return u * u * (3 - 2 * u)


def _saturate(x: torch.Tensor, k: float) -> torch.Tensor:
    """Scale chroma by k around the pixel's luma (k = 0: grey, 1: unchanged)."""
    l = _luma(x)
    return l + k * (x - l)


# ------------------------------------------------------------------------------------------------ the edits
# Each edit: x (B, 3, H, W) in [0, 1] -> all its variants at once, (B, K, 3, H, W) in [0, 1]. The part every variant
# shares is computed once and the variants differ by a per-channel tint, mix or order (broadcast over K), which is
# what keeps a 16-particle step at a few milliseconds.

def _hue_variants(base: torch.Tensor, amplitude: torch.Tensor | float, phase: float) -> torch.Tensor:
    """(B, 3, H, W) base grade -> (B, K, 3, H, W): the base shifted by `amplitude` (a number or (B, 1, H, W)) along K
    chroma directions 120 degrees apart (grey kept), starting at `phase` degrees from red. The variants form an
    equilateral triangle around the base at every pixel, so none of them sits between the others (a middle variant
    would be nearest to the particles' average and win every time)."""
    e1 = base.new_tensor((2.0, -1.0, -1.0)) / 6**0.5  # red - cyan
    e2 = base.new_tensor((0.0, 1.0, -1.0)) / 2**0.5  # green - blue
    angles = torch.deg2rad(base.new_tensor([phase + 360.0 * k / VARIANTS for k in range(VARIANTS)]))
    dirs = torch.cos(angles)[:, None] * e1 + torch.sin(angles)[:, None] * e2  # (K, 3)
    amp = torch.as_tensor(amplitude, dtype=base.dtype, device=base.device)
    amp = amp.unsqueeze(1) if amp.dim() == 4 else amp
    return base.unsqueeze(1) + amp * dirs.reshape(1, VARIANTS, 3, 1, 1)


def _winter(x: torch.Tensor) -> torch.Tensor:
    """Cool, desaturated, highlights lifted, snow where a bright pixel is brighter than the one below it (a lit,
    upward-facing surface). Variants: icy blue, steel-green and lavender casts."""
    l = _luma(x)
    below = torch.cat([l[:, :, 1:], l[:, :, -1:]], dim=2)  # replicate the last row: 1 pixel of context
    y = _saturate(x, 0.45)
    y = (y + 0.3 * _smoothstep(0.5, 0.9, l) * (1 - y)) * _rgb((0.84, 0.95, 1.15), x)
    snow = 0.8 * _smoothstep(0.45, 0.8, l) * (0.5 + 6.0 * (l - below)).clamp(0, 1)
    y = y * (1 - snow) + snow * _rgb((0.95, 0.97, 1.0), x)
    return _hue_variants(y, 0.16 * _luma(y) * (1 - snow), 200.0).clamp(0, 1)


def _sunset(x: torch.Tensor) -> torch.Tensor:
    """Warm grade, a little more saturated, shadows lifted towards the sky colour. Variants: orange, pink and gold
    skies (the warm grade's hue turned three ways)."""
    y = _saturate(x, 1.2) * _rgb((1.18, 0.91, 0.70), x)
    y = y + 0.35 * (1 - _luma(x)) * _rgb((0.22, 0.10, 0.07), x)
    return _hue_variants(y, 0.16 * _luma(y).clamp_min(0.2), 20.0).clamp(0, 1)


def _night(x: torch.Tensor) -> torch.Tensor:
    """Low key: darkened, mostly desaturated, a cold moonlight cast. Variants: blue, teal and violet moonlight."""
    y = _saturate(x, 0.4).clamp(0, 1).pow(1.3) * 0.45 * _rgb((0.62, 0.78, 1.30), x)
    return _hue_variants(y, 0.15 * _luma(y) + 0.04, 230.0).clamp(0, 1)


def _black_and_white(x: torch.Tensor) -> torch.Tensor:
    """Grey from a channel mix, as a colour filter on black and white film, a little contrasty. Variants: red
    filter (dark skies), green filter, blue filter (pale skies, dark reds)."""
    mix = x.new_tensor(((0.75, 0.20, 0.05), (0.15, 0.75, 0.10), (0.10, 0.20, 0.70)))  # (K, 3)
    g = torch.einsum("kc,bchw->bkhw", mix, x).unsqueeze(2)
    return (0.5 + 1.15 * (g - 0.5)).clamp(0, 1).expand(-1, -1, 3, -1, -1)


def _sepia(x: torch.Tensor) -> torch.Tensor:
    """Monochrome toned in brown. Variants: the brown turned towards red, yellow and olive-grey."""
    l = _luma(x)
    y = 0.06 + 0.94 * l * _rgb((1.09, 0.86, 0.62), x)
    return _hue_variants(y, 0.15 * l + 0.02, 0.0).clamp(0, 1)


def _watercolour(x: torch.Tensor) -> torch.Tensor:
    """Smoothed (5 x 5 box blur, 2 pixels of context), colours a little stronger, laid as transparent paint on
    paper: lightened a fifth of the way to white, times the paper's colour. Variants: three paper tints (rose,
    green-grey, blue-grey), which show as much as the paper does, in proportion to the paint's lightness.

    Why in proportion: a tint of one amplitude everywhere turned a photo's dark pigments its colour, and the
    blue-grey paper washed a dark photo texture into lavender (its darkest quarter's hue turned 48 degrees; now 8)."""
    soft = F.avg_pool2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    y = (0.2 + 0.8 * _saturate(soft, 1.15).clamp(0, 1)) * _rgb((0.97, 0.95, 0.90), x)
    return _hue_variants(y, 0.13 * _luma(y), 0.0).clamp(0, 1)


def _pop_art(x: torch.Tensor) -> torch.Tensor:
    """Saturated and posterized to 4 levels a channel, in three screen-print colourways (the channels rotated:
    RGB, GBR, BRG), as Warhol's repeated prints."""
    y = (_saturate(x, 1.9).clamp(0, 1) * 3.999).floor() / 3.0
    return y[:, [[0, 1, 2], [1, 2, 0], [2, 0, 1]]]


def _invert(x: torch.Tensor) -> torch.Tensor:
    """Negatives. Variants: colour negative, brightness-only negative (hues kept), film negative (orange mask)."""
    neg = 1 - x
    film = neg * _rgb((1.0, 0.72, 0.50), x) + _rgb((0.0, 0.05, 0.08), x)
    return torch.stack([neg, x + 1 - 2 * _luma(x), film], 1).clamp(0, 1)


@dataclass(frozen=True)
class Edit:
    name: str
    variants: Callable[[torch.Tensor], torch.Tensor]  # (B, 3, H, W) -> (B, K, 3, H, W), all in [0, 1]
    words: tuple[str, ...]  # stemmed single words and multi-word phrases (matched on the normalised instruction)
    context: int = 0  # pixels of neighbourhood the transform reads (0: pointwise)


VARIANTS = 3  # every edit has this many equally weighted variants

EDITS = (
    Edit("winter", _winter, ("winter", "snow", "ice", "icy", "frost", "frozen", "cold", "christmas",
                             "blizzard"), context=1),
    Edit("sunset", _sunset, ("sunset", "sundown", "dusk", "golden hour", "warm", "sunrise", "dawn")),
    Edit("night", _night, ("night", "nighttime", "midnight", "moonlight", "moonlit", "dark")),
    Edit("black and white", _black_and_white, ("black and white", "black white", "b and w", "bw", "grayscale",
                                               "greyscale", "gray", "grey", "monochrome", "noir", "colorless",
                                               "colourless")),
    Edit("sepia", _sepia, ("sepia", "old photo", "vintage", "antique", "old fashion", "daguerreotype")),
    Edit("watercolour", _watercolour, ("watercolour", "watercolor", "water colour", "water color", "paint",
                                      "painting", "painter", "painterly", "van gogh", "gogh", "monet", "aquarel"),
         context=2),
    Edit("pop art", _pop_art, ("pop art", "pop", "warhol", "comic", "posterize", "poster", "lichtenstein")),
    Edit("invert", _invert, ("invert", "inverse", "negative", "inversion")),
)
VOCABULARY = [e.name for e in EDITS]


# ------------------------------------------------------------------------------------------------ matching

def _stem(word: str) -> str:
    """Light stemming: plural and adjective endings off, so "snowy", "snows", "snowing" all read "snow"."""
    for suffix in ("ing", "ed", "es", "y", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _normalise(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower()  # fullwidth "ｗｉｎｔｅｒ" reads as winter
    text = text.replace("&", " and ").replace("/", " and ").replace("-", " ")
    return [_stem(w) for w in re.findall(r"[a-z0-9]+", text)]


_KEYS = [(k, [_stem(w) for w in phrase.split()]) for k, e in enumerate(EDITS) for phrase in e.words]


def match_index(instruction: str) -> int | None:
    """The vocabulary index an instruction names (None for the empty instruction: no edit; an instruction with no
    English word is refused).

    Lowercased, split into words, lightly stemmed, then every known word and phrase of every edit is looked for;
    the edit with the most matched words wins, ties going to the edit named first in the instruction ("a winter
    night" is winter). Raises InputError when nothing matches."""
    words = _normalise(instruction)
    if not instruction.strip():
        return None
    if not words:  # Chinese, Arabic, emoji only: once read as "no edit", silently
        raise InputError(f"The edits prior reads English words and found none in {instruction.strip()[:80]!r}: it "
                         f"knows {', '.join(VOCABULARY)} (for example 'make it look like {VOCABULARY[0]}').",
                         suggestions=vocabulary())
    best: tuple[int, int, int] | None = None  # (-matched words, first position, index)
    for k, key in _KEYS:
        n = len(key)
        for pos in range(len(words) - n + 1):
            if words[pos:pos + n] == key:
                cand = (-n, pos, k)
                best = cand if best is None or cand < best else best
                break
    if best is None:
        raise InputError(f"The edits prior does not know the instruction {instruction.strip()[:80]!r}: it knows "
                         f"only {', '.join(VOCABULARY)} (for example 'make it look like {VOCABULARY[0]}').",
                         suggestions=closest_instructions(words))
    return best[2]


def closest_instructions(words: list[str], k: int = 3) -> list[str]:
    """The known instructions (`vocabulary`) whose words are spelt most like the given ones ("make it wintr" ->
    "make it winter"), best first; every instruction when none is close."""
    score = [max((difflib.SequenceMatcher(None, w, key).ratio() for w in words for phrase in e.words
                  for key in phrase.split()), default=0.0) for e in EDITS]
    close = sorted((i for i, r in enumerate(score) if r >= 0.75), key=lambda i: -score[i])[:k]
    known = vocabulary()
    return [known[i] for i in close] or known


def equidistant(x: torch.Tensor, variants: torch.Tensor) -> torch.Tensor:
    """Give every variant, at every pixel, the same distance from the source x: the displacement T_k(x) - x keeps
    its RGB direction and takes the variants' mean length there. x: (B, 3, H, W), variants: (B, K, 3, H, W), both
    in [0, 1]; returns (B, K, 3, H, W), not clamped: a clamp would undo the equal distances. The colour grades stay
    within 0.09 of [0, 1]; pop art and invert, whose variants' displacements differ most in length, overshoot by
    up to 0.9 at a few pixels (mean 0.04 and 0.01 per value); `decode` clamps, so those pixels show at the edge of
    the range (measured on random and smooth 64 x 64 images).

    Why: which variant a model's score pulls a particle to is decided by the noise only when the variants are
    equally far from where the particle starts (the source). A variant nearer the source by even a little wins
    every time in thousands of dimensions, and then independent per-item edits could never disagree (nor CSD have
    anything to agree on). Pointwise, so it keeps the edits' locality."""
    d = variants - x.unsqueeze(1)
    # per-channel sum, not d.norm(dim=2): torch.linalg.vector_norm over a 3-long strided dim is 30x slower on a CPU
    length = (d[:, :, 0:1].square() + d[:, :, 1:2].square() + d[:, :, 2:3].square()).sqrt()  # (B, K, 1, H, W)
    target = length.mean(dim=1, keepdim=True)
    return x.unsqueeze(1) + d * (target / length.clamp_min(1e-6))


# ------------------------------------------------------------------------------------------------ the prior

ENTRY = catalog.builtin("edits")  # its name, kind and sizes: the catalog is their one source


class EditPrior:
    """Exact-score editing prior over `VOCABULARY` (see the module docstring for the densities and the guidance).

    Cond layout: image (B, 3, h, w) source latents (2x - 1); text (B, V) one-hot of the instruction over the
    vocabulary (all zeros: no edit); uncond (B, V) likewise for the negative prompt; guidance, image_guidance (B,).
    """

    name, kind, tiny, needs_target = ENTRY.name, ENTRY.kind, ENTRY.tiny, ENTRY.needs_target
    native_size, latent_scale, size_multiple = ENTRY.native_size, ENTRY.latent_scale, ENTRY.size_multiple
    description = (f"closed-form editing prior over {len(EDITS)} procedural edits ({', '.join(VOCABULARY)}), "
                   f"{VARIANTS} variants each, exact score; not InstructPix2Pix")
    dtype = torch.float32
    latent_channels = 3
    num_train_timesteps = 1000
    vocabulary = VOCABULARY
    # CSD-Edit on a CPU, measured (tests/test_edits_prior.py; 12 frames at 128 x 96 through video/csd-edit: residual
    # variation 0.0028 against per-frame's 0.041 at edit strength 0.087 / 0.093). Guidance 1 lands on the edit;
    # t_min 200 or lr 1.0 made CSD's particles split between variants more often on 16 x 16 frames.
    defaults = dict(steps=100, lr=0.5, guidance=1.0, image_guidance=1.0, t_min=20, t_max=500, short_side=128,
                    particles=16)
    # the panorama updates a random batch of windows a step, so it needs more steps for the same edit strength
    # frames and views: the faster the particles move, the sooner each falls to a variant of its own before the kernel
    # has made them agree. Measured (benchmarks/eval_csd_edit.py --seeds 3, residual variation CSD / per-item, per
    # seed): video at lr 0.5 x 100 steps 0.028 / 0.067, 0.030 / 0.066, 0.052 / 0.065 (seed 2 fails the 1/2 target);
    # lr 0.2 x 200 and 0.15 x 200 each fail on one seed (0.043 / 0.059, 0.036 / 0.059); lr 0.1 x 300 0.006 / 0.060,
    # 0.018 / 0.072, 0.007 / 0.065. Views (8, sepia): lr 0.25 x 100 0.033 / 0.055 on seed 0; lr 0.1 x 300 0.020 /
    # 0.055, 0.020 / 0.072, 0.021 / 0.075. There CSD's items agree on one variant but stop short of it, a softer
    # edit (edit strength 0.07 against per-frame's 0.13 on the clip; csd.weighted_mean, csd.settle_scale_option say
    # why). 12 frames or 8 views at 128 px, 300 steps: 15-20 s and 5 s on this CPU.
    # The clip at short side 96: a first visit's default run within 20 s (the shipped 16-frame clip took 37 s at
    # 128 px, 27 s with the variants kept between steps; 15 s at 96), consistency kept: CSD / per-frame residual
    # variation 0.016 / 0.047, 0.019 / 0.067, 0.005 / 0.080 over seeds 0-2, edit strength 0.069 / 0.134.
    task_defaults = {"panorama": dict(defaults, steps=200, lr=1.0, window=64, stride=32),
                     "video": dict(defaults, steps=300, lr=0.1, short_side=96),
                     "views3d": dict(defaults, steps=300, lr=0.1)}

    def __init__(self, device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.alphas_cumprod = scaled_linear_alphas_cumprod(self.num_train_timesteps).to(self.device)
        self.switches: list[str] = []
        # (source latents, {edit: variant means of every row}): a run conditions every step on the same sources
        # (in a new tensor each step), and making their variants again would take a third of a step's time
        self._variants: tuple[torch.Tensor, dict[int, torch.Tensor]] | None = None

    @classmethod
    def load(cls, device: torch.device | str = "cpu") -> "EditPrior":
        return cls(device)

    def __repr__(self) -> str:
        return f"EditPrior(device={self.device}, vocabulary={VOCABULARY})"

    # ---- images <-> latents ----
    def encode(self, images: torch.Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) latents 2x - 1; differentiable, deterministic (mode and
        generator are accepted for the protocol: there is no posterior to sample)."""
        return images.to(self.device, torch.float32) * 2.0 - 1.0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) latents -> (B, 3, h, w) images in [0, 1]."""
        return ((latents.float() + 1.0) / 2.0).clamp(0.0, 1.0)

    # ---- conditions ----
    def match(self, instruction: str) -> str:
        """The vocabulary entry an instruction names; "" for the empty instruction (no edit)."""
        k = match_index(instruction)
        return "" if k is None else VOCABULARY[k]

    def _one_hot(self, prompts: Sequence[str]) -> torch.Tensor:
        out = torch.zeros(len(prompts), len(VOCABULARY), device=self.device)
        for row, p in enumerate(prompts):
            k = match_index(p)
            if k is not None:
                out[row, k] = 1.0
        return out

    def condition(self, prompts: str | Sequence[str], *, negative: str | Sequence[str] = "",
                  images: torch.Tensor | None = None, guidance: float | Sequence[float] | torch.Tensor = 1.0,
                  image_guidance: float | Sequence[float] | torch.Tensor = 1.0) -> Cond:
        """prompts: one instruction (used for every image) or one per image; images: (B, 3, H, W) in [0, 1], the
        sources (required); negative: one or B; guidance, image_guidance: a number or B numbers."""
        if images is None:
            raise ValueError("the edits prior needs the source images to condition on")
        b = images.shape[0]
        prompts, negative = per_row(prompts, b), per_row(negative, b, "negative prompts")
        return Cond(text=self._one_hot(prompts), uncond=self._one_hot(negative), image=self.encode(images),
                    guidance=per_sample(guidance, b, self.device), image_guidance=per_sample(image_guidance, b, self.device))

    def variant_means(self, source: torch.Tensor, edit: int) -> torch.Tensor:
        """(B, 3, h, w) source latents -> (B, K, 3, h, w) latents of the K variants of edit `edit` (an index)."""
        x = (source + 1.0) / 2.0
        return equidistant(x, EDITS[edit].variants(x)) * 2.0 - 1.0

    def _variants_of(self, source: torch.Tensor, edit: int) -> torch.Tensor:
        """variant_means(source, edit), kept while sources equal to the last ones come back (comparing them costs
        a few percent of making the variants)."""
        cache = self._variants
        if cache is None or cache[0].shape != source.shape or not torch.equal(cache[0], source):
            cache = self._variants = (source.clone(), {})
        if edit not in cache[1]:
            cache[1][edit] = self.variant_means(source, edit)
        return cache[1][edit]

    def _posterior_mean(self, z: torch.Tensor, a: torch.Tensor, var: torch.Tensor, source: torch.Tensor,
                        words: torch.Tensor) -> torch.Tensor:
        """E[x0 | z_t] (B, 3, h, w) under each row's instruction (words (B, V) one-hot): the responsibility-weighted
        mean of its edit's variants, or the source itself for rows with no instruction (a single Gaussian).
        Every conditional shares the variance SIGMA^2, so its eps is s (z_t - a E[x0 | z_t]) / (a^2 SIGMA^2 + s^2)."""
        if words.shape[-1] != len(VOCABULARY):
            raise ValueError(f"instruction rows have {words.shape[-1]} entries, the vocabulary {len(VOCABULARY)}")
        which, active = words.argmax(-1), words.amax(-1) > 0
        if not bool(active.any()):
            return source
        mean = source.clone()
        for k in which[active].unique().tolist():  # rows of one edit go through its variants together
            rows = (active & (which == k)).nonzero().flatten()
            mean[rows] = _mixture_mean(z[rows], a[rows], var[rows], self._variants_of(source, k)[rows])
        return mean

    def _terms(self, z_t, t, cond: Cond):
        b = z_t.shape[0]
        if len(cond) != b:
            raise ValueError(f"condition has batch {len(cond)} but the latents have {b}: use cond.repeat / cond.index")
        if cond.image is None or cond.text is None or cond.guidance is None or cond.image_guidance is None:
            raise ValueError("the condition needs image, text and guidance scales: build it with prior.condition(...)")
        z = z_t.to(self.device, torch.float32)
        t = torch.as_tensor(t, device=self.device).long().reshape(-1).expand(b)
        ab = self.alphas_cumprod[t].reshape(b, 1, 1, 1)
        a, s2 = ab.sqrt(), 1.0 - ab
        var, var_u = a * a * SIGMA**2 + s2, a * a * SIGMA_UNCOND**2 + s2
        src = cond.image.to(self.device, torch.float32)
        negative = cond.uncond.to(self.device) if cond.uncond is not None else torch.zeros_like(cond.text)
        m_full = self._posterior_mean(z, a, var, src, cond.text.to(self.device))
        m_image = self._posterior_mean(z, a, var, src, negative)
        g = cond.guidance.to(self.device, torch.float32).reshape(b, 1, 1, 1)
        ig = cond.image_guidance.to(self.device, torch.float32).reshape(b, 1, 1, 1)
        return z, a, s2.sqrt() / var, s2.sqrt() / var_u, m_full, m_image, g, ig

    # ---- noise prediction ----
    @torch.no_grad()
    def predict_eps_parts(self, z_t: torch.Tensor, t: torch.Tensor | int, cond: Cond) -> dict[str, torch.Tensor]:
        """Exact noise predictions for (B, 3, h, w) noisy latents at integer timesteps t ((B,) or one), all (B, 3,
        h, w) float32: "uncond", "image", "full" and their InstructPix2Pix combination "guided"."""
        z, a, c, c_u, m_full, m_image, g, ig = self._terms(z_t, t, cond)
        eps_full, eps_image = c * (z - a * m_full), c * (z - a * m_image)
        eps_uncond = c_u * z  # N(0, SIGMA_UNCOND^2 I): mean 0 is mid-grey
        return dict(guided=ip2p_guidance(eps_uncond, eps_image, eps_full, g, ig), uncond=eps_uncond,
                    image=eps_image, full=eps_full)

    @torch.no_grad()
    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor | int, cond: Cond) -> torch.Tensor:
        """The guided noise prediction (B, 3, h, w) float32; no gradient. Equal to predict_eps_parts(...)["guided"],
        with ip2p_guidance's sum collected per term (every branch is linear in z_t and in its posterior mean):
        eps_hat = ((1 - s_I) c_u + s_I c) z_t - a c ((s_I - s_T) m_image + s_T m_full)."""
        z, a, c, c_u, m_full, m_image, g, ig = self._terms(z_t, t, cond)
        return ((1 - ig) * c_u + ig * c) * z - (a * c) * ((ig - g) * m_image + g * m_full)

    # ---- sampling ----
    @torch.no_grad()
    def sample(self, prompts: str | Sequence[str], *, steps: int = 50, guidance: float | Sequence[float] = 1.0,
               height: int | None = None, width: int | None = None, generator: torch.Generator | None = None,
               negative: str | Sequence[str] = "", images: torch.Tensor | None = None,
               image_guidance: float | Sequence[float] = 1.0) -> torch.Tensor:
        """Deterministic DDIM (eta = 0, SD's "leading" spacing) from pure noise with this denoiser, conditioned on
        the sources `images` (B, 3, H, W) in [0, 1], which fix the size (height, width are ignored). Returns the
        edited images (B, 3, H, W) in [0, 1]: at guidance 1, image guidance 1 one variant of the edit per image."""
        cond = self.condition(prompts, negative=negative, images=images, guidance=guidance,
                              image_guidance=image_guidance)
        z = noise(cond.image.shape, self.device, generator)
        return ddim_sample(self, cond, z, steps)


def _mixture_mean(z: torch.Tensor, a: torch.Tensor, var: torch.Tensor, means: torch.Tensor) -> torch.Tensor:
    """E[x0 | z_t] for x0 ~ 1/K sum_k N(mu_k, SIGMA^2 I): z (B, C, h, w), a and var = a^2 SIGMA^2 + s^2 (B, 1, 1, 1),
    means (B, K, C, h, w) -> sum_k r_k(z_t) mu_k, (B, C, h, w). Equal weights and one variance, so the
    responsibilities r need only the distances |z_t - a mu_k|^2."""
    b, k = means.shape[:2]
    d2 = (z.unsqueeze(1) - a.unsqueeze(1) * means).pow(2).reshape(b, k, -1).sum(-1)  # (B, K)
    r = torch.softmax(-0.5 * d2 / var.reshape(b, 1), dim=1)
    return torch.einsum("bk,bkn->bn", r, means.reshape(b, k, -1)).reshape(z.shape)


def vocabulary() -> list[str]:
    """One instruction per known edit ("make it winter", ...): the catalog's `vocabulary` of `edits`."""
    return [f"make it {name}" if name != "invert" else "invert the colours" for name in VOCABULARY]


def load_edits(source=None, *, device="cpu", memory: str = "none") -> EditPrior:
    """The `edits` prior (catalog loader): procedural, nothing to download."""
    return EditPrior.load(device)
