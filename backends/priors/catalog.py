"""The one table of model facts: every prior's name, kind, role, label, where its weights come from and how to load
it, and the sources of the two helper models (the fast VAE, the CLIP scorer).

Every other place (the runner, the CLI's `list`, `priors.describe()` and through it the app) reads this table; no
other module names a prior's role, label or environment variable. Third-party priors add entries through the entry
point group `distill_studio.priors`: each entry point names a module whose import calls `register(Entry(...))`, or
an `Entry` itself.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..core.errors import InputError
from ..core.plugins import load_entry_points, resolve
from .machine import looks_like_path

ENTRY_POINT_GROUP = "distill_studio.priors"
KINDS = ("text", "instruct")
KIND_LABELS = {"text": "text to image", "instruct": "instruction editing"}  # what a person reads for each kind
# real: a diffusion model with downloaded weights (the paper's settings); offline: a closed-form prior that needs
# nothing but this package ("auto" falls back to the first of its kind); tiny: random weights built in code, for
# exercising the diffusers code path (its pictures mean nothing); measure: a closed-form prior for measuring the
# engine, never picked by "auto".
ROLES = ("real", "offline", "tiny", "measure")


@dataclass(frozen=True)
class Entry:
    """One prior.

    kind: "text" (prompt -> image, like Stable Diffusion) or "instruct" (image + instruction -> edited image, like
    InstructPix2Pix). role: one of ROLES (see there). env, default_source: where real weights come from; a name may
    then be given as "name:<hub id or folder>". needs_target: the prior is centred on target images that the backend
    gives to `condition(images=...)` (the analytic prior). load: "module:function" called as
    fn(source, device=..., memory=...) -> the prior object. native_size, latent_scale, size_multiple: the loaded
    prior's own (its image side in px, px per latent cell, the multiple image sides must be), so the work budget
    can size a run before the prior loads (`backends.core.budget.facts`); the closed-form priors take theirs from here
    (`builtin`), and a test checks that every loaded prior agrees.
    memory: bytes the loaded prior holds on its device (a bank of images, weights), which the work budget adds to a
    run's estimate before the prior loads (once loaded, its memory is in use and no longer available); 0: small.
    vocabulary: "module:function" listing the prompts a closed-vocabulary prior knows (see `words`).
    """

    name: str
    kind: str
    label: str
    summary: str
    load: str
    role: str = "offline"
    env: str | None = None
    default_source: str | None = None
    needs_target: bool = False
    native_size: int = 512
    latent_scale: int = 8
    size_multiple: int = 8
    memory: int = 0
    vocabulary: str | None = None

    def words(self) -> tuple[str, ...] | None:
        """What a retrieval prior knows, as prompts it accepts (icon names, edit instructions), read without loading
        the prior; None for a prior that takes any text. `vocabulary`: "module:function" returning them."""
        if self.vocabulary is None:
            return None
        return tuple(resolve(self.vocabulary)())

    @property
    def profile(self) -> str:
        """"full" for real diffusion models (the paper's settings apply), "quick" (CPU-sized settings) otherwise."""
        return "full" if self.role == "real" else "quick"

    @property
    def offline(self) -> bool:
        """Needs nothing from the network or the disk beyond the installed package."""
        return self.role != "real"

    @property
    def tiny(self) -> bool:
        return self.role == "tiny"

    def source(self) -> str | None:
        """The hub id or folder the weights load from: $env if set, else the default (None: nothing to load)."""
        return _source(self.env, self.default_source)

    def loader(self) -> Callable:
        return resolve(self.load)


def _source(env: str | None, default: str | None) -> str | None:
    return (os.environ.get(env) if env else None) or default


@dataclass(frozen=True)
class Helper:
    """A model a backend uses beside its prior: where its weights come from ($env, else `default`)."""

    name: str
    label: str
    env: str
    default: str

    def source(self) -> str:
        return _source(self.env, self.default)


HELPERS = {h.name: h for h in (
    Helper("fast-vae", "TAESD fast VAE", "DISTILL_FAST_VAE", "madebyollin/taesd"),  # hub id or folder; "tiny"
    Helper("clip", "CLIP ViT-B/16 scorer", "DISTILL_CLIP_MODEL", "ViT-B-16:openai"),  # "model:pretrained" or "tiny"
)}

_BUILTIN = (
    Entry("sd", "text", "Stable Diffusion 1.5", "Stable Diffusion 1.5 (text to image); weights from DISTILL_SD_MODEL "
          "or the default hub id", "backends.priors.diffusers_prior:load_sd", role="real", env="DISTILL_SD_MODEL",
          default_source="stable-diffusion-v1-5/stable-diffusion-v1-5"),
    Entry("ip2p", "instruct", "InstructPix2Pix", "InstructPix2Pix (image + instruction); weights from "
          "DISTILL_IP2P_MODEL or timbrooks/instruct-pix2pix", "backends.priors.diffusers_prior:load_ip2p",
          role="real", env="DISTILL_IP2P_MODEL", default_source="timbrooks/instruct-pix2pix"),
    Entry("tiny-sd", "text", "tiny random Stable Diffusion", "tiny random-weight Stable Diffusion, built in code: tests "
          "the diffusers code path, its pictures mean nothing", "backends.priors.tiny:load_tiny_sd", role="tiny", native_size=128,
          size_multiple=16),
    Entry("tiny-ip2p", "instruct", "tiny random InstructPix2Pix", "tiny random-weight InstructPix2Pix, built in code: "
          "tests the diffusers code path, its pictures mean nothing", "backends.priors.tiny:load_tiny_ip2p",
          role="tiny", native_size=128, size_multiple=16),
    Entry("icons", "text", "icons (closed-form)", "closed-form prior over 3,508 real emoji icons (Fluent Emoji, "
          "Twemoji) retrieved by the prompt's words: exact denoiser, no training, not Stable Diffusion",
          "backends.priors.icons:load_icons", native_size=64, latent_scale=1, size_multiple=1,
          memory=3508 * 3 * 64 * 64 * 4,  # its bank at the native 64 px, float32 (172 MB), never at the run's size
          vocabulary="backends.priors.icons:vocabulary"),
    Entry("edits", "instruct", "edits (closed-form)", "closed-form editing prior: a closed vocabulary of procedural "
          "edits (winter, sunset, night, black and white, sepia, watercolour, pop art, invert), each a mixture of "
          "variants, exact score; not InstructPix2Pix", "backends.priors.edits:load_edits", native_size=128, latent_scale=1,
          size_multiple=1, vocabulary="backends.priors.edits:vocabulary"),
    Entry("analytic", "text", "analytic Gaussian", "Gaussian (mixture) around the given target image(s) with exact "
          "noise prediction: for measuring the engine", "backends.priors.analytic:load_analytic", role="measure", needs_target=True,
          native_size=64, latent_scale=1, size_multiple=1),
    Entry("analytic-edit", "instruct", "analytic colour-shift edit", "closed-form edit of the source by one of two "
          "random colour shifts per call: for measuring CSD-Edit's consistency", "backends.priors.analytic:load_edit",
          role="measure", native_size=64, latent_scale=1, size_multiple=1),
)

_entries: dict[str, Entry] = {e.name: e for e in _BUILTIN}
_plugins_loaded = False
_lock = threading.Lock()
plugin_errors: dict[str, str] = {}


def builtin(name: str) -> Entry:
    """A built-in prior's entry, plugins not looked at: the built-in priors take their name, kind and size facts
    from here (the facts the work budget reads before a prior loads are then the loaded prior's own)."""
    return next(e for e in _BUILTIN if e.name == name)


def register(entry: Entry) -> Entry:
    """Add a prior to the catalog (plugins call this at import)."""
    if entry.kind not in KINDS:
        raise ValueError(f"prior kind must be one of {KINDS}, not {entry.kind!r}")
    if entry.role not in ROLES:
        raise ValueError(f"prior role must be one of {ROLES}, not {entry.role!r}")
    existing = _entries.get(entry.name)
    if existing is not None and existing != entry:
        raise ValueError(f"prior {entry.name!r} is registered twice")
    _entries[entry.name] = entry
    return entry


def _load_plugins() -> None:
    global _plugins_loaded
    with _lock:
        if _plugins_loaded:
            return
        _plugins_loaded = True
        # a module registers its entries when imported; an Entry object is registered here
        load_entry_points(ENTRY_POINT_GROUP, lambda obj: register(obj) if isinstance(obj, Entry) else None,
                          plugin_errors)


def entries() -> dict[str, Entry]:
    """Every prior, built-in and plugin, by name."""
    _load_plugins()
    return dict(_entries)


def entry(name: str) -> Entry:
    """The entry for a prior name, also "sd:<hub id or folder>" forms; InputError naming the choices otherwise."""
    base = name.split(":", 1)[0] if isinstance(name, str) else ""
    found = entries().get(base)
    if found is None or (":" in name and found.env is None):
        kinds = ", ".join(n + (":<hub id or folder>" if e.env else "") for n, e in entries().items())
        raise InputError(f"There is no prior {str(name)[:60]!r}; choose one of {kinds}.")
    source = name.split(":", 1)[1] if ":" in name else ""
    if source and looks_like_path(source) and not Path(source).expanduser().is_dir():
        raise InputError(f"The prior's folder {source[:80]!r} does not exist; give the folder of a downloaded "
                         f"{found.label} model, or its hub id.")  # before loading anything: not a failed run
    return found


def names(kind: str | None = None) -> list[str]:
    return [n for n, e in entries().items() if kind is None or e.kind == kind]


def first(kind: str, role: str) -> str | None:
    """The first prior of `kind` with `role` in the catalog (built-ins before plugins), or None."""
    return next((n for n, e in entries().items() if e.kind == kind and e.role == role), None)


def real(kind: str) -> Entry:
    """The real diffusion model of `kind` (Stable Diffusion, InstructPix2Pix)."""
    return entry(first(kind, "real"))
