"""`icons`: a text-conditioned prior with an exact, closed-form score over a few thousand real icons.

No network, no weights, no training. A prompt retrieves the icons it names (BM25 over emoji captions and tags,
`text_match`); the prior is then the mixture

    p(x0 | prompt) = sum_m w_m N(mu_m, sigma^2 I),   mu_m = icon m in latent units ([-1, 1] pixels),

whose noisy marginal under z_t = a x0 + s eps (a = sqrt(alphabar_t), s = sqrt(1 - alphabar_t)) is
sum_m w_m N(a mu_m, v I) with v = a^2 sigma^2 + s^2. Its posterior mean (Tweedie) is

    E[x0 | z_t] = sum_m r_m(z_t) (mu_m + (a sigma^2 / v) (z_t - a mu_m)),
    r_m(z_t)    = softmax_m(log w_m - ||z_t - a mu_m||^2 / (2 v)),

and the optimal noise prediction is eps_hat = (z_t - a E[x0 | z_t]) / s, which equals -s grad log p(z_t)
(substitute: (z_t - a E[x0|z_t]) / s = sum_m r_m (z_t - a mu_m) (1 - a^2 sigma^2 / v) / s
= s sum_m r_m (z_t - a mu_m) / v, and grad log p = -sum_m r_m (z_t - a mu_m) / v).

Smoothing (Scarvelis, Borde and Solomon 2023, "Closed-Form Diffusion Models"): the exact score memorizes, every
sample lands on one icon. They smooth the closed-form score by averaging it over Gaussian perturbations, which
moves the denoised estimate onto barycenters of nearby training points, so samples can leave them. Here (as I
read it; only the paper's abstract and summary were at hand) the responsibilities are averaged over K fixed
draws delta_k = a * smoothing * sqrt(D) * u_k, u_k ~ N(0, I_D), D = 3*h*w (a perturbation of x0 whose component
along any direction has std smoothing * sqrt(D): `smoothing` is thereby on the scale of the RMS per-pixel
difference between two icons, about 0.5 in latent units, and means the same at every resolution):

    r_m^smooth(z_t) = mean_k r_m(z_t + delta_k),

so E[x0 | z_t] stays a convex combination of the icons (a barycenter) whose weights vary smoothly between them.
Because ||z + delta - a mu_m||^2 = ||z - a mu_m||^2 + 2 delta.(z - a mu_m) + ||delta||^2 and only the
delta.(a mu_m) part depends on m, each draw costs one (K, M) projection. smoothing = 0 is the exact score.

Classifier-free guidance combines this conditional branch with an unconditional one over a fixed subset of all
icons (`backends.engine.guidance.cfg`). Everything is per sample: Cond.text / Cond.uncond hold (B, N)
log-weights over the whole icon set (-inf for icons not retrieved), so Cond's batch operations work unchanged.
"""
from __future__ import annotations

import itertools
import math
import threading
from collections import OrderedDict
from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..engine.sampling import ddim_sample, ddim_timesteps
from ..engine.step import noise
from ..engine.guidance import cfg
from . import catalog
from .analytic import scaled_linear_alphas_cumprod
from .base import Cond, PromptReading, as_list, per_row
from ..core.errors import InputError
from .compose import RECOLOUR, VARIANTS, Cutout, cutout, layout, recolour
from .reading import (BACKDROPS, COLOUR_CLASSES, Phrase, PromptParts, Understood, colour_shares,
                      composition_sentence, head_word, read_prompt, stem, thing_name, understand)
from .reading import ALIASES, USUAL
from .text_match import STOP_WORDS, TextIndex

DATA = Path(__file__).resolve().parent / "data" / "icons.npz"
COLOUR_SHARE = 0.25  # an icon "is red" when at least this share of its own pixels is red
# Neighbours on the colour wheel, taken when no match has the colour itself (before recolouring any): people call
# orange foxes, squirrels and hair red, and a blue-violet flower purple.
NEAR_COLOURS = {"red": ("orange", "pink"), "orange": ("red", "yellow", "brown"), "yellow": ("orange",),
                "green": ("yellow", "blue"), "blue": ("purple",), "purple": ("blue", "pink"), "pink": ("red", "purple"),
                "brown": ("orange",), "gray": ("white", "black"), "white": ("gray",), "black": ("gray",)}
COMPOSE_ICONS = (3, 2, 2)  # icons of the first, second and third thing combined in compositions
COMPOSED_SLOTS = 1024  # bank rows for composed pictures (50 MB at 64 px), reused oldest first

# Words the backends' style suffixes add ("minimal flat 2d vector icon. lineal color. on a white background.
# trending on artstation", "pixel art", "2d line drawing"): every icon here is flat, coloured and on white, so
# they would only drag in the "flat shoe" and "artist palette" icons. "white" stays a word (a white cat): the
# reading drops the suffix's "white background" phrase (`reading.read_prompt`).
STYLE_WORDS = frozenset("""
minimal flat 2d vector icon icons lineal color colour colored coloured background trending artstation
pixel art line drawing sketch style illustration emoji
""".split())


@lru_cache(maxsize=2)
def load_icon_data(path: str | Path = DATA) -> dict[str, np.ndarray]:
    """The shipped icon set, cached per process: images (N, 64, 64, 3) uint8, caption, tags, source, licence."""
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


ENTRY = catalog.builtin("icons")  # its name, kind and sizes: the catalog is their one source


class IconPrior:
    """Exact-score prior over real icons retrieved by the prompt; see the module docstring for the maths.

    images: (N, 3, 64, 64) float in [0, 1]; captions: N strings; tags: N lists of strings.
    sigma: std of each icon's Gaussian in latent units (0 = the icons themselves); smoothing: the Scarvelis et
    al. perturbation, relative to RMS per-pixel icon distances (0 = the unsmoothed exact score; 0.05, the
    default, only blends icons that are nearly tied; 0.2 gives visible barycenters, ghosted overlays of two
    icons); draws: K, its sample count.
    keep_ratio: icons scoring at least this fraction of the best match are retrieved (at most max_icons);
    temperature: their log-weight is (score - best) / temperature, so colour words re-weight but the noun
    decides. uncond_size: how many evenly spaced icons form the unconditional branch.
    """

    name, kind, tiny, needs_target = ENTRY.name, ENTRY.kind, ENTRY.tiny, ENTRY.needs_target
    native_size, latent_scale, size_multiple = ENTRY.native_size, ENTRY.latent_scale, ENTRY.size_multiple
    dtype = torch.float32
    latent_channels = 3
    num_train_timesteps = 1000
    # Suggested settings for the SDS backends with this prior on a CPU (names as in VectorFusion's Settings).
    # guidance: with an exact score the conditional branch already is the target, and CFG at w > 1 moves the
    # SDS fixed point past it, away from the unconditional icons: x0 = x0_cond + (w - 1)(x0_cond - x0_uncond),
    # clipped to saturated colours. Measured (SDS on 64-px pixels, 100-300 steps): w = 1 lands on the pizza /
    # fox icon (per-pixel MSE 1e-4), w = 1.5 at 0.004, w = 3 at 0.02, w = 5 at 0.03, w = 100 at 0.06.
    # VectorFusion's 100 compensates for SD's weak conditional; this prior needs none.
    # augment off: the icons sit at fixed positions, so a randomly warped render is pulled toward an unwarped
    # icon and the gradients of successive steps disagree (measured, 400 steps: per-pixel MSE to the nearest
    # pizza icon 0.0035 without augmentation, 0.022 with it). lr_warmup 20: the paper's 500-step warm-up
    # is longer than the whole run needs; 400 steps give a recognisable pizza (MSE 0.0035) in about 40 s.
    # steps 200: the nearest icon is already the prompt's one at 200 steps (benchmarks/eval_icons.py measures
    # recognition over 50 caption prompts), at half the time: 10-14 s per SVG on a busy 2-core CPU, under 20 s.
    # lr_scale 10: VectorFusion's rates are per step for 2000 steps (0.2 px a step on a 600 px canvas, 0.025 on
    # this prior's 75 px one); over 200 steps a point then travels at most 5 px. From scratch the random circles
    # stayed where they were drawn and only recoloured: two prompts with one seed gave the same pale field of
    # specks. At 10x (the paper's travel in a tenth of its steps) they converge on the icon (looked at: "a red
    # apple", "a robot", "a rocket", "a whale" from scratch; benchmarks/eval_icons.py measures it).
    defaults = {"guidance": 1.0, "steps": 200, "augment": "off", "lr_warmup": 20, "sample_steps": 20,
                "sample_guidance": 1.0, "lr_scale": 10.0}

    def __init__(
        self,
        images: torch.Tensor,
        captions: Sequence[str],
        tags: Sequence[Sequence[str]] | None = None,
        *,
        device: torch.device | str = "cpu",
        sigma: float = 0.0,
        smoothing: float = 0.05,
        draws: int = 16,
        keep_ratio: float = 0.6,
        temperature: float = 2.0,
        max_icons: int = 32,
        uncond_size: int = 256,
    ):
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be (N, 3, H, W), not {tuple(images.shape)}")
        self.device = torch.device(device)
        self.sigma, self.smoothing, self.draws = float(sigma), float(smoothing), int(draws)
        self.keep_ratio, self.temperature, self.max_icons = keep_ratio, temperature, max_icons
        self.alphas_cumprod = scaled_linear_alphas_cumprod(self.num_train_timesteps).to(self.device)
        self.native_size = images.shape[-1]
        self._bank = {tuple(images.shape[-2:]): (images.to(self.device, torch.float32) * 2 - 1).flatten(1)}
        self.captions = [str(c) for c in captions]
        self.index = TextIndex(self.captions, tags, stop_words=STOP_WORDS | STYLE_WORDS)
        self._tag_sets = [frozenset(t) for t in (tags if tags is not None else [[]] * len(self.captions))]
        self._negation: np.ndarray | None = None
        self._colours: np.ndarray | None = None
        n = len(self.captions)
        # a fixed, evenly spaced subset: deterministic, and it spans every emoji group and both sets
        self.uncond_ids = torch.from_numpy(np.unique(np.linspace(0, n - 1, min(uncond_size, n)).round().astype(np.int64)))
        self.description = (f"closed-form exact-score prior over {n} real emoji icons retrieved by the prompt's words "
                            "(no Stable Diffusion, no weights; runs offline on a CPU)")
        self._gather_cache: tuple | None = None
        self.switches: list[str] = []
        # composed pictures (`_compose`): COMPOSED_SLOTS rows after the icons, so every Cond has one width
        self._extra = torch.zeros(COMPOSED_SLOTS, images[0].numel(), device=self.device)
        self._composed: OrderedDict = OrderedDict()
        self._next_slot = 0
        self._compose_lock = threading.Lock()
        self._cutouts: dict[int, Cutout] = {}
        self.composed_captions: dict[int, str] = {}

    @classmethod
    def load(cls, device: torch.device | str = "cpu", path: str | Path = DATA, **kwargs) -> "IconPrior":
        """The shipped icon set (backends/priors/data/icons.npz, see ICONS.md for sources and licences)."""
        data = load_icon_data(path)
        images = torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 255.0
        tags = [t.split(";") if t else [] for t in data["tags"]]
        return cls(images, data["caption"], tags, device=device, **kwargs)

    # ----- pixels <-> latents (pixel space: no VAE)

    def encode(self, images: torch.Tensor, mode: str = "sample", generator: torch.Generator | None = None) -> torch.Tensor:
        """(B, 3, H, W) in [0, 1] -> (B, 3, H, W) latents in [-1, 1]; differentiable. mode/generator: unused
        (no VAE to sample from), kept for the protocol."""
        return images * 2.0 - 1.0

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """(B, 3, h, w) latents -> images in [0, 1]."""
        return ((latents + 1.0) / 2.0).clamp(0.0, 1.0)

    # ----- text

    def log_weights(self, prompt: str) -> torch.Tensor:
        """(N,) float32 log-weights of the icons `prompt` names (-inf elsewhere), as `read` explains them. Raises
        InputError when no icon matches, naming the closest captions."""
        ids, scores, _ = self._retrieve(prompt)
        out = torch.full((self.components,), -math.inf)
        out[torch.from_numpy(ids)] = torch.from_numpy((scores - scores.max()) / self.temperature)
        return out

    def read(self, prompt: str) -> PromptReading:
        """What the prompt retrieves, in words (`backends.priors.base.PromptReader`): the main object, the icons
        it is drawn from (distinct captions, most weight first), colours, words left out or unknown."""
        ids, scores, reading = self._retrieve(prompt)
        drawn = list(dict.fromkeys(self.component_caption(i) for i in ids[np.argsort(-scores, kind="stable")]))
        return replace(reading, drawn=tuple(drawn[:4]) + (("...",) if len(drawn) > 4 else ()))

    @lru_cache(maxsize=64)
    def _retrieve(self, prompt: str) -> tuple[np.ndarray, np.ndarray, PromptReading]:
        """(component ids, their retrieval scores, the reading without `drawn`) for a prompt: see `reading.py`.

        One thing named: the icons of its phrase (`_phrase_icons`). Two or three things, or a thing and a backdrop
        ("at night"): composed pictures of their icons laid out by the relation (`compose.layout`), each variant of
        each combination one component, scored by the sum of its icons' scores (`_compose`)."""
        index = self.index
        parts = read_prompt(prompt, index.stop_words)
        phrases = list(parts.phrases)
        terms = {w for p in phrases for w in (*p.words, *p.colours)}
        if len(phrases) > 1 and any(terms == c for c in index.caption_terms):  # the prompt is an icon's name
            phrases = [Phrase(sum((p.words for p in phrases), ()), sum((p.colours for p in phrases), ()),
                              sum((p.typed for p in phrases), ()))]
        understood = understand(PromptParts(tuple(phrases), parts.negation), index.vocab)
        by_typed = {p.typed: p for p in phrases}
        if understood.objects:
            main = by_typed[understood.objects[0][0]]
        else:
            main = next((p for p in phrases if p.colours), None)
        if main is None:
            raise self._no_match(prompt)
        typed = {w: t for p in phrases for w, t in zip(p.words, p.typed)}
        unknown = [t for w, t in typed.items() if w not in index.vocab]
        ids, scores, found, dropped = self._phrase_icons(main, parts.negation, prompt)
        recoloured = ""
        if not found and main.colours[0] in RECOLOUR:  # no match has the colour or a near one: draw them in it
            recoloured = main.colours[0]
            ids = self._recoloured(ids, recoloured)
        near = found if found not in ("any", "") and found not in main.colours else ""
        reading = PromptReading(subject=main.typed, drawn=(), colours=tuple(dict.fromkeys(main.colours)),
                                colour_found=bool(found), nearest_colour=near, recoloured=recoloured,
                                left_out=understood.extra,
                                unknown=tuple(dict.fromkeys(unknown)), negation_dropped=dropped,
                                objects=tuple(thing_name(t) for t, _ in understood.objects) or (thing_name(main.typed),))
        if len(understood.objects) < 2 and understood.backdrop is None:
            return ids, scores, reading
        return self._compose(understood, by_typed, (ids, scores), parts.negation, prompt, reading)

    def _phrase_icons(self, phrase: Phrase, negation: bool, prompt: str):
        """(icon ids, scores, the colour matched, negation icons dropped) of one phrase: the colour is the one asked
        for, a neighbour of it on the colour wheel (`NEAR_COLOURS`) when no match has it, "" when neither, "any"
        when the phrase names no colour.

        The phrase's head noun (`reading.head_word`: its last known word, not a measure or a generic word) must occur
        in every icon retrieved; the phrase's words and colours rank them (BM25 + caption cover); negation icons are
        dropped unless the prompt asks for one; colour words keep only the matches whose own pixels are at least
        `COLOUR_SHARE` of those colours, or else of their neighbours (all of them when none is). Then icons scoring at least keep_ratio x the
        best are kept, at most max_icons."""
        index = self.index
        head = head_word(phrase.words, index.vocab)
        colour_terms = [c for c in phrase.colours if c in index.vocab]
        cand = index.holding(head) if head else np.unique(np.concatenate([index.holding(c) for c in colour_terms]
                                                                         or [np.zeros(0, np.int64)]))
        dropped: tuple[str, ...] = ()
        if not negation:
            neg = self.negation[cand]
            if neg.any() and not neg.all():
                dropped = tuple(dict.fromkeys(self.captions[i] for i in cand[neg]))
                cand = cand[~neg]
        found = "any"
        if phrase.colours and len(cand):
            found = ""
            asked = list(dict.fromkeys(phrase.colours))
            # the colours asked for, else their neighbours on the colour wheel: a "red fox" is an orange one
            for names in (asked, [n for c in asked for n in NEAR_COLOURS.get(c, ())]):
                cols = [COLOUR_CLASSES.index(c) for c in names]
                shares = self.colour_shares(cand)[:, cols]
                keep = shares.sum(1) >= COLOUR_SHARE
                if keep.any():
                    cand, found = cand[keep], names[int(shares[keep].sum(0).argmax())]
                    break
        if not len(cand):
            raise self._no_match(prompt)
        scores = index.term_scores(list(phrase.words) + colour_terms)[cand]
        order = np.argsort(-scores, kind="stable")[: self.max_icons]
        keep = order[scores[order] >= self.keep_ratio * scores[order[0]]]
        return cand[keep], scores[keep], found, dropped

    def _compose(self, understood: Understood, by_typed: dict, main_icons, negation: bool, prompt: str,
                 reading: PromptReading):
        """Components for a prompt that names several things: the best COMPOSE_ICONS[j] icons of thing j, every
        combination in every layout variant of its relations (`compose.VARIANTS`), registered as extra rows of the
        bank (`_register`). A combination's score is the sum of its icons' scores, so among layouts of the same icons
        the mixture is uniform and better-named icons weigh more."""
        picks, heads, names, objects, relations, skipped = [], [], [], [], [], []
        for j, (typed, head) in enumerate(understood.objects):
            if j == 0:
                ids, scores = main_icons
            else:
                found = self._thing_icons(by_typed[typed], head, negation, prompt)
                if found is None:  # no icon shows it: said, not drawn as something else
                    skipped.append(thing_name(typed))
                    continue
                ids, scores = found
                relations.append(understood.relations[j - 1])
            objects.append((typed, head))
            order = np.argsort(-scores, kind="stable")[:COMPOSE_ICONS[j]]
            picks.append([(int(ids[i]), float(scores[i])) for i in order])
            heads.append(head)
            names.append(self.component_caption(int(ids[order[0]])))
        if len(objects) == 1 and understood.backdrop is None:
            return main_icons[0], main_icons[1], replace(reading, objects=(thing_name(objects[0][0]),),
                                                         left_out=tuple(skipped) + reading.left_out)
        backdrop = None
        if understood.backdrop is not None:
            caption = BACKDROPS[understood.backdrop]
            backdrop = self.cutout(self.captions.index(caption))
        variants = len(VARIANTS[relations[0]]) if relations else 2
        key = (tuple(tuple(i for i, _ in p) for p in picks), tuple(relations), understood.backdrop)
        images, captions, scores = [], [], []
        for combo in itertools.product(*picks):
            things = [(self.cutout(i), h) for (i, _), h in zip(combo, heads)]
            for v in range(variants):
                images.append(layout(things, relations, v, backdrop, self.native_size))
                captions.append(" + ".join(self.component_caption(i) for i, _ in combo))
                scores.append(sum(sc for _, sc in combo))
        ids = self._register(key, torch.stack(images), captions)
        how = composition_sentence(names, [t for t, _ in objects], relations, understood.backdrop)
        reading = replace(reading, relations=tuple(relations), backdrop=understood.backdrop, composed=how,
                          objects=tuple(thing_name(t) for t, _ in objects),
                          left_out=tuple(skipped) + reading.left_out)
        return ids, np.asarray(scores, dtype=np.float32), reading

    def _recoloured(self, ids: np.ndarray, colour: str) -> np.ndarray:
        """The icons `ids` with their main colour turned to `colour` (`compose.recolour`), as bank rows of the
        mixture, so the prior's score stays exact for the pictures it samples."""
        n = self.native_size
        images = (self.bank(torch.from_numpy(ids)).view(-1, 3, n, n) + 1) / 2
        return self._register(("recolour", tuple(int(i) for i in ids), colour), recolour(images, colour),
                              [f"{self.captions[int(i)]} (recoloured {colour})" for i in ids])

    def _thing_icons(self, phrase: Phrase, head: str, negation: bool, prompt: str):
        """(ids, scores) of a second or third thing, or None when no icon shows it: the icons whose caption holds
        its head noun (a tag alone is too loose for a thing beside the main one: "branch" tags a nest), those
        whose caption ends in it first ("top hat" before "cowboy hat face"); else the icon ALIASES names."""
        typed = next((t for w, t in zip(phrase.words, phrase.typed) if w == head), head)
        if ALIASES.get(typed) in self.captions:
            return np.array([self.captions.index(ALIASES[typed])]), np.ones(1, dtype=np.float32)
        try:
            ids, scores, _, _ = self._phrase_icons(phrase, negation, prompt)
        except InputError:
            ids, scores = np.zeros(0, np.int64), np.zeros(0, np.float32)
        terms = self.index.caption_terms
        own = np.array([head in terms[i] for i in ids], dtype=bool)
        if own.any():
            ends = np.array([stem(self.captions[i].lower().replace("-", " ").split()[-1]) == head for i in ids[own]])
            usual = np.array([self.captions[i] == USUAL.get(typed) for i in ids[own]])
            top = float(scores[own].max())
            return ids[own], scores[own] + (ends.astype(np.float32) + usual.astype(np.float32)) * top
        return None

    def cutout(self, i: int) -> Cutout:
        """Icon i cut out of its white (`compose.cutout`), cached."""
        if i not in self._cutouts:
            n = self.native_size
            self._cutouts[i] = cutout((self.bank(torch.tensor([i])).view(3, n, n) + 1) / 2)
        return self._cutouts[i]

    def _register(self, key, images: torch.Tensor, captions: list[str]) -> np.ndarray:
        """Composed pictures (M, 3, n, n) in [0, 1] as bank rows (ids len(captions) and up, in COMPOSED_SLOTS slots
        reused oldest first); the same key gives the same rows back. Returns their ids (M,)."""
        with self._compose_lock:
            if key in self._composed:
                self._composed.move_to_end(key)
                return self._composed[key]
            m = len(images)
            if self._next_slot + m > COMPOSED_SLOTS:  # wrap: the oldest compositions give their rows back
                self._next_slot = 0
                self._composed.clear()
                self._retrieve.cache_clear()
            ids = np.arange(self._next_slot, self._next_slot + m) + len(self.captions)
            self._next_slot += m
            self._extra[ids - len(self.captions)] = (images.to(self.device, torch.float32) * 2 - 1).flatten(1)
            for i, c in zip(ids, captions):
                self.composed_captions[int(i)] = c
            self._composed[key] = ids
            self._gather_cache = None
            return ids

    def component_caption(self, i: int) -> str:
        """The caption of mixture component i: an icon's, or a composition's ("cat + top hat")."""
        return self.captions[i] if i < len(self.captions) else self.composed_captions.get(i, "")

    def _no_match(self, prompt: str) -> InputError:
        close = [c for c, _ in self.index.suggest(prompt, 3)]
        shown = prompt if len(prompt) <= 80 else prompt[:77] + "..."  # a 1 KB prompt is not repeated whole
        return InputError(f"No icon matches the prompt {shown!r}; the icons prior knows emoji names, the closest "
                          f"are {', '.join(repr(c) for c in close)}.", suggestions=close)

    @property
    def negation(self) -> np.ndarray:
        """(N,) bool: prohibition icons ("no bicycles", "prohibited"), by caption and tags."""
        if self._negation is None:
            self._negation = np.array([c.lower().startswith(("no ", "non-")) or bool({"prohibited", "forbidden"} & t)
                                       for c, t in zip(self.captions, self._tag_sets)])
        return self._negation

    def colour_shares(self, ids: np.ndarray) -> np.ndarray:
        """(len(ids), len(COLOUR_CLASSES)) the share of each icon's own pixels in each colour class (`reading.
        colour_shares`), computed once per icon when first asked for (all 3508 take seconds; one prompt's few, ms)."""
        if self._colours is None:
            self._colours = np.full((len(self.captions), len(COLOUR_CLASSES)), np.nan, dtype=np.float32)
        todo = ids[np.isnan(self._colours[ids, 0])]
        if len(todo):
            n = self.native_size
            bank = self._bank[(n, n)][torch.from_numpy(todo).to(self.device)].view(-1, 3, n, n)
            pixels = ((bank + 1) * 127.5).round().clamp(0, 255).byte().permute(0, 2, 3, 1).cpu().numpy()
            self._colours[todo] = colour_shares(pixels)
        return self._colours[ids]

    def condition(self, prompts, *, negative="", images=None, guidance=7.5, image_guidance=1.5) -> Cond:
        """Cond with text (B, N) log-weights of the retrieved icons, uncond (B, N) log-weights of the
        unconditional branch (the negative prompt's icons when it names some, else the fixed uniform subset),
        guidance (B,). images / image_guidance are ignored (a text prior)."""
        prompts = as_list(prompts)
        b = len(prompts)
        negs = per_row(negative, b, "negative prompts")
        n = self.components
        text = torch.stack([self.log_weights(p) for p in prompts])
        base = torch.full((n,), -math.inf)
        base[self.uncond_ids] = 0.0
        unc = []
        for neg in negs:
            if neg.strip() and float(self.index.scores(neg).max()) > 0:
                unc.append(self.log_weights(neg))
            else:
                unc.append(base)
        g = torch.as_tensor(guidance, dtype=torch.float32).flatten()
        g = g.expand(b) if g.numel() == 1 else g
        return Cond(text=text.to(self.device), uncond=torch.stack(unc).to(self.device), guidance=g.to(self.device))

    # ----- the denoiser

    @property
    def components(self) -> int:
        """The mixture's width: the icons, then COMPOSED_SLOTS rows for composed pictures (-inf until used)."""
        return len(self.captions) + COMPOSED_SLOTS

    def bank(self, ids: torch.Tensor | None = None) -> torch.Tensor:
        """(N, 3*n*n) icons in latent units at their native n x n, or the rows `ids` (M,) of the mixture's
        components (icons, then composed pictures). The bank is never resized: runs at other sizes are scored at
        this one (`predict_eps`), so a step's memory is that of the icons it weighs at 64 px whatever the canvas
        (all 3508 resized to 512 px once took 11 GB)."""
        n = self.native_size
        icons = self._bank[(n, n)]
        if ids is None:
            return icons
        ids = ids.to(self.device)
        if not len(ids) or int(ids.max()) < len(icons):
            return icons[ids]
        base = ids < len(icons)
        out = torch.empty(len(ids), icons.shape[1], device=self.device)
        out[base] = icons[ids[base]]
        out[~base] = self._extra[ids[~base] - len(icons)]
        return out

    def _draws(self, dim: int) -> torch.Tensor:
        """(K, dim) fixed standard normal draws for the smoothing (seeded: the prior stays deterministic)."""
        key = ("draws", dim)
        if key not in self._bank:
            g = torch.Generator().manual_seed(0)
            self._bank[key] = torch.randn(self.draws, dim, generator=g).to(self.device)
        return self._bank[key]

    def _gather(self, cols: torch.Tensor):
        """Rows of the bank for icon ids `cols` (M,), their squared norms and smoothing projections; the last
        call's result is reused (consecutive steps of one run ask for the same icons)."""
        key = cols.cpu().numpy().tobytes()
        if self._gather_cache is None or self._gather_cache[0] != key:
            mu = self.bank(cols)
            proj = self._draws(mu.shape[1]) @ mu.T if self.smoothing > 0 else None  # (K, M)
            self._gather_cache = (key, mu, mu.pow(2).sum(1), proj)
        return self._gather_cache[1:]

    def posterior_mean(self, z_t: torch.Tensor, a: torch.Tensor, logw: torch.Tensor, mu: torch.Tensor,
                       mu_sq: torch.Tensor, proj: torch.Tensor | None, sharpness: float = 1.0) -> torch.Tensor:
        """E[x0 | z_t] of the (smoothed) mixture, for one or several weightings of the same icons at once.

        z_t: (B, D); a: (B, 1) sqrt(alphabar); logw: (..., B, M) log-weights (-inf allowed; leading dims are
        branches, e.g. cond and uncond); mu: (M, D) means; mu_sq: (M,) their squared norms; proj: (K, M)
        u_k . mu_m, or None for no smoothing; sharpness: how many of the run's pixels each of z_t's stands for
        (z_t their block means: the log-likelihoods, and the smoothing's shifts, scale by it). Returns (..., B, D).
        """
        s2 = 1.0 - a * a
        v = a * a * self.sigma**2 + s2  # (B, 1)
        # ||z - a mu||^2 without the ||z||^2 term, which is the same for every m and cancels in the softmax;
        # one (B, D) x (D, M) product serves every branch
        dist = -2.0 * a * (z_t @ mu.T) + a * a * mu_sq  # (B, M)
        logits = logw - sharpness * dist / (2.0 * v)
        if proj is not None and self.smoothing > 0:
            # draw k moves z by delta_k = a * smoothing * sqrt(D) * u_k: the m-dependent part of
            # -||z + delta_k - a mu_m||^2 / 2v is + a * delta_k . mu_m / v
            lam = self.smoothing * math.sqrt(z_t.shape[-1])
            shift = (sharpness * a * a * lam / v).unsqueeze(-2) * proj  # (B, K, M)
            r = torch.softmax(logits.unsqueeze(-2) + shift, dim=-1).mean(-2)
        else:
            r = torch.softmax(logits, dim=-1)
        shrink = self._shrink(a)
        return (1.0 - a * shrink) * (r @ mu) + shrink * z_t

    def _shrink(self, a: torch.Tensor) -> torch.Tensor:
        """(B, 1): how far the posterior of one Gaussian (sqrt(alphabar) = a) moves toward z_t."""
        return a * self.sigma**2 / (a * a * self.sigma**2 + 1.0 - a * a)

    @torch.no_grad()
    def predict_eps(self, z_t: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
        """Guided eps_hat for (B, 3, h, w) noisy latents at integer timesteps t (B,) or (): cfg between the
        uncond and cond branches, each (z_t - a E[x0 | z_t]) / s."""
        b, c, h, w = z_t.shape
        if c != 3:
            raise ValueError(f"the icons prior works on 3-channel pixels, not {c} channels")
        n = self.native_size
        t = t.reshape(-1).long().to(self.device)
        ab = self.alphas_cumprod[t.expand(b) if t.numel() == 1 else t].reshape(b, 1)
        a, s = ab.sqrt(), (1.0 - ab).sqrt()
        # only icons with a finite weight in some row matter: a few hundred of the few thousand
        live = torch.isfinite(cond.text).any(0) | torch.isfinite(cond.uncond).any(0)
        cols = live.nonzero().squeeze(1)
        mu, mu_sq, proj = self._gather(cols)
        logw = torch.stack([cond.text[:, cols], cond.uncond[:, cols]])  # (2, B, M)
        # Scored at the icons' own n x n, whatever the run's size: with the icon upsampled by block replication,
        # ||z - a U mu||^2 is `pixels` times the distance of z's block means to a mu (up to a term the same for
        # every icon), so the mixture's posterior over icons is exact at n x n with the likelihood sharpened by
        # the block size. Its mean is then brought back to h x w (bilinear), and eps computed there.
        z = z_t.float()
        small = z if (h, w) == (n, n) else F.adaptive_avg_pool2d(z, n)
        x0_c, x0_u = self.posterior_mean(small.reshape(b, -1), a, logw, mu, mu_sq, proj, sharpness=h * w / n**2)
        if (h, w) != (n, n):
            shrink = self._shrink(a).view(b, 1, 1, 1)
            x0_c, x0_u = (F.interpolate((x0 - shrink * small.reshape(b, -1)).view(b, c, n, n), size=(h, w),
                                        mode="bilinear", antialias=True, align_corners=False) + shrink * z
                          for x0 in (x0_c, x0_u))
        z, x0_c, x0_u = z.reshape(b, -1), x0_c.reshape(b, -1), x0_u.reshape(b, -1)
        eps_c, eps_u = (z - a * x0_c) / s, (z - a * x0_u) / s
        g = cond.guidance.reshape(b, 1) if cond.guidance is not None else 1.0
        return cfg(eps_u, eps_c, g).reshape(b, c, h, w)

    @torch.no_grad()
    def score(self, images: torch.Tensor, prompt: str, tau: float = 0.05) -> torch.Tensor:
        """How well each image shows what `prompt` names (`backends.priors.base.PromptScorer`): the log-density of
        the image, resized to 64 px, under the prompt's mixture of retrieved icons with a per-pixel std of `tau`
        ([0, 1] units), log sum_m w_m exp(-(d_m / tau)^2 / 2), d_m the RMS pixel distance to icon m. An image on an
        icon scores that icon's log-weight (so of two clean icons the one the prompt names better wins: the red
        apple for "a red apple"); far from every icon it falls with the squared distance. images: (B, 3, H, W) in
        [0, 1]; returns (B,) float32, higher is better. Ranks samples and candidates where the offline CLIP knows
        nothing."""
        n = self.native_size
        x = images.float().to(self.device)
        if x.shape[-2:] != (n, n):
            x = F.interpolate(x, size=(n, n), mode="bilinear", antialias=True, align_corners=False)
        x = (x * 2 - 1).flatten(1)
        logw = torch.log_softmax(self.log_weights(prompt), dim=0)
        cols = torch.isfinite(logw).nonzero().squeeze(1)
        d = torch.cdist(x, self.bank(cols)) / (2 * math.sqrt(x.shape[1]))  # (B, M) RMS
        return torch.logsumexp(logw[cols].to(self.device) - 0.5 * (d / tau) ** 2, dim=1)

    def sample(self, prompts, *, steps: int = 50, guidance=7.5, height: int = 64, width: int = 64,
               generator: torch.Generator | None = None, negative="", images=None, image_guidance=1.5) -> torch.Tensor:
        """Deterministic DDIM (eta = 0) at 64 px, SD's "leading" timesteps (as the diffusers prior), then resized
        to height x width. Returns (B, 3, height, width) float32 in [0, 1].

        The start is drawn from the mixture's exact noisy marginal at the first timestep T, z_T = a_T mu_m +
        s_T eps with m ~ the prompt's retrieval weights, not from N(0, I). SD's schedule never reaches zero
        signal (alphabar_T = 0.008 at DDIM's first of 20 steps; Lin et al. 2024, "Common Diffusion Noise
        Schedules and Sample Steps are Flawed"), and over 12,288 pixels that residual signal is decisive: from
        N(0, I), the posterior at T favours the icon of smallest norm by several nats, and 24 of 32 samples of
        "a tree" were the same icon (weight 0.085). From the exact marginal the samples follow the weights."""
        cond = self.condition(prompts, negative=negative, guidance=guidance)
        n, b = self.native_size, len(cond)
        eps = noise((b, 3, n, n), self.device, generator)
        first = ddim_timesteps(steps, self.num_train_timesteps)[0]
        ab = self.alphas_cumprod[first]
        picks = torch.multinomial(torch.softmax(cond.text.float().cpu(), dim=-1), 1, generator=_cpu(generator))
        mu = self.bank(picks.squeeze(1)).view(b, 3, n, n)
        z = ab.sqrt() * mu + (1.0 - ab).sqrt() * eps
        out = ddim_sample(self, cond, z, steps)
        if (height, width) != (n, n):
            out = F.interpolate(out, size=(height, width), mode="bilinear", antialias=True, align_corners=False)
        return out.clamp(0, 1)


def _cpu(generator: torch.Generator | None) -> torch.Generator | None:
    """`generator` when it draws on the CPU (where torch.multinomial's weights live), else a CPU generator seeded
    from it."""
    if generator is None or generator.device.type == "cpu":
        return generator
    return torch.Generator().manual_seed(int(torch.randint(2**62, (), generator=generator, device=generator.device)))


def vocabulary() -> list[str]:
    """The icon names, each a prompt the prior accepts (distinct, sorted): the catalog's `vocabulary` of `icons`."""
    return sorted({str(c) for c in load_icon_data()["caption"]}, key=str.lower)


def load_icons(source=None, *, device="cpu", memory: str = "none") -> IconPrior:
    """The `icons` prior (catalog loader): the shipped icon set; `source` is unused (the data ships with the code)."""
    return IconPrior.load(device=device)
