"""Backend settings: one dataclass per backend, fields declared with `option(...)`.

`option` records what the UI and the CLI need to know (help text, range, choices, advanced or not, and how an
"auto" value resolves); `make_settings` builds a settings object from user overrides (strings from the CLI, values
from the UI or the API) through one strict parser (`backends.inputs.validate`): whole numbers refuse fractions, booleans
and non-finite values, numbers refuse NaN and inf, text refuses bytes and control characters, and every mistake is
one sentence that names the setting.

"auto" settings default to None. `resolve_auto` fills them in once the run's prior is known: the prior's own
suggestion first (`prior.defaults`), then the value for the run's profile ("full": real weights, the paper's
numbers; "quick": tiny or closed-form priors, or no prior on a CPU, sized to finish in seconds on a CPU). A None
left after that is resolved by the backend itself (e.g. VectorFusion's steps depend on its init).
"""
from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import MISSING, field, fields
from typing import Any

from ..inputs import validate
from .errors import InputError

PROFILES = ("full", "quick")
# how a yes / no is written in a setting's text and in an environment variable (DISTILL_SHARE=1, HF_HUB_OFFLINE=on)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def truthy(value: str | None) -> bool:
    """Whether an environment variable's text says yes (unset or empty: no)."""
    return (value or "").strip().lower() in TRUE_WORDS


def option(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
           choices: typing.Sequence[str] | None = None, advanced: bool = False, ui: bool = True,
           full: Any = None, quick: Any = None, at_most: str | None = None):
    """A settings field with its default (from the paper) and what the UI / CLI show for it.

    full, quick: for an "auto" field (default None), its value in the "full" profile (real weights) and in the
    "quick" one (tiny or closed-form priors, CPU-sized); None leaves the choice to the backend.
    at_most: the name of another field this one must not exceed (t_min <= t_max), checked by `make_settings`.
    """
    meta = {"help": help, "lo": lo, "hi": hi, "choices": tuple(choices) if choices else None,
            "advanced": advanced, "ui": ui, "full": full, "quick": quick, "at_most": at_most}
    return field(default=default, metadata=meta)


def describe(settings_cls) -> list[dict[str, Any]]:
    """One dict per field: name, type name, default, help, lo, hi, choices, advanced, ui, full, quick."""
    hints = typing.get_type_hints(settings_cls)
    out = []
    for f in fields(settings_cls):
        meta = dict(f.metadata)
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)
        out.append({"name": f.name, "type": _type_name(hints[f.name]), "default": default,
                    "help": meta.get("help", ""), "lo": meta.get("lo"), "hi": meta.get("hi"),
                    "choices": meta.get("choices"), "advanced": meta.get("advanced", False), "ui": meta.get("ui", True),
                    "optional": _is_optional(hints[f.name]), "full": meta.get("full"), "quick": meta.get("quick")})
    return out


def make_settings(settings_cls, overrides: dict[str, Any] | Any = None, *, where: str = ""):
    """Build `settings_cls` from defaults plus overrides, parsing each value strictly (see the module docstring),
    then the rules between fields (`option(at_most=...)`). A ready `settings_cls` object goes through the same
    parser, field by field: every way in is checked once, here."""
    if isinstance(overrides, settings_cls):
        overrides = to_dict(overrides)
    if overrides is not None and not isinstance(overrides, dict):
        raise InputError(f"The settings must be a mapping of name to value, not {type(overrides).__name__}.")
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(settings_cls)
    known = {f.name: f for f in fields(settings_cls)}
    unknown = sorted(str(k) for k in set(overrides) - set(known))
    if unknown:
        close = difflib.get_close_matches(unknown[0], list(known), n=1)
        raise InputError(f"There is no setting {unknown[0][:40]!r}{' in ' + where if where else ''}"
                         f"{f' (did you mean {close[0]!r}?)' if close else ''}; its settings are {', '.join(known)}.")
    values = {name: parse(name, value, hints[name], known[name].metadata) for name, value in overrides.items()}
    settings = settings_cls(**values)
    for f in fields(settings_cls):
        other = f.metadata.get("at_most")
        low, high = getattr(settings, f.name), getattr(settings, other) if other else None
        if low is not None and high is not None and low > high:
            raise InputError(f"The setting {f.name!r} ({low}) must not exceed {other!r} ({high}).")
    return settings


def parse(name: str, value: Any, tp, meta) -> Any:
    """One setting's value from a number, bool or text (CLI strings welcome), checked against its range/choices."""
    label = f"setting {name!r}"
    base = _unwrap_optional(tp)
    if _is_optional(tp) and (value is None or (isinstance(value, str) and value.strip().lower() in
                                               ("", "auto", "none", "null"))):
        return None
    if value is None:
        raise InputError(f"The {label} needs a value.")
    if isinstance(value, (bytes, bytearray, memoryview)):
        raise InputError(f"The {label} must be given as text or a number, not bytes.")
    choices = meta.get("choices")
    if choices:
        return validate.choice(label, value, choices)
    if base is bool:
        return _boolean(label, value)
    if base in (int, float):
        lo = meta.get("lo") if meta.get("lo") is not None else -float("inf")
        hi = meta.get("hi") if meta.get("hi") is not None else float("inf")
        return validate.number(label, value, lo=lo, hi=hi, integer=base is int)
    if base is str:
        if not isinstance(value, str):
            raise InputError(f"The {label} must be text, not {type(value).__name__}.")
        return validate.prompt(value, name=label, required=False)
    return value


def resolve_auto(settings, profile: str, prior_defaults: dict[str, Any] | None = None):
    """(settings with "auto" (None) fields filled in, {name: value} of what was filled).

    Order: the prior's own suggestion, then the field's value for `profile` ("full" or "quick"). Fields the user
    set are never touched; a None with no value for the profile stays None (the backend decides).
    """
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, not {profile!r}")
    filled = {}
    for f in fields(settings):
        if getattr(settings, f.name) not in (None, "auto"):  # "auto": a choice field's own automatic setting
            continue
        value = (prior_defaults or {}).get(f.name)
        if value is None and getattr(settings, f.name) is None:
            value = f.metadata.get(profile)
        if value is not None:
            filled[f.name] = value
    return dataclasses.replace(settings, **filled), filled


def field_value(settings, name: str, default: Any = None) -> Any:
    """The value of a field that some backends' settings declare and others do not (`seed`), or `default`."""
    return getattr(settings, name) if name in {f.name for f in fields(settings)} else default


def to_dict(settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def _boolean(label: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        v = value.strip().lower()
        if v in TRUE_WORDS:
            return True
        if v in FALSE_WORDS:
            return False
    shown = repr(value)[:40] if isinstance(value, str) else type(value).__name__
    raise InputError(f"The {label} must be true or false; got {shown}.")


def _type_name(tp) -> str:
    base = _unwrap_optional(tp)
    return getattr(base, "__name__", str(base))


def _is_optional(tp) -> bool:
    return type(None) in typing.get_args(tp)


def _unwrap_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp
