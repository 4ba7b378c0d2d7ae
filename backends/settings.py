"""Backend settings: one dataclass per backend, fields declared with `option(...)`.

`option` records what the UI and the CLI need to know (help text, range, choices, advanced or not);
`make_settings` builds a settings object from user overrides (strings from the CLI, values from the UI),
checking types and ranges with one clear sentence per mistake.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import MISSING, field, fields
from typing import Any

from .errors import InputError


def option(default: Any, help: str, *, lo: float | None = None, hi: float | None = None,
           choices: typing.Sequence[str] | None = None, advanced: bool = False, ui: bool = True):
    """A settings field with its default (from the paper) and what the UI / CLI show for it."""
    meta = {"help": help, "lo": lo, "hi": hi, "choices": tuple(choices) if choices else None,
            "advanced": advanced, "ui": ui}
    return field(default=default, metadata=meta)


def describe(settings_cls) -> list[dict[str, Any]]:
    """One dict per field: name, type name, default, help, lo, hi, choices, advanced."""
    hints = typing.get_type_hints(settings_cls)
    out = []
    for f in fields(settings_cls):
        meta = dict(f.metadata)
        default = f.default if f.default is not MISSING else (f.default_factory() if f.default_factory is not MISSING else None)
        out.append({"name": f.name, "type": _type_name(hints[f.name]), "default": default,
                    "help": meta.get("help", ""), "lo": meta.get("lo"), "hi": meta.get("hi"),
                    "choices": meta.get("choices"), "advanced": meta.get("advanced", False), "ui": meta.get("ui", True)})
    return out


def make_settings(settings_cls, overrides: dict[str, Any] | None = None, *, where: str = ""):
    """Build `settings_cls` from defaults plus overrides, coercing strings and checking ranges and choices."""
    overrides = dict(overrides or {})
    hints = typing.get_type_hints(settings_cls)
    known = {f.name: f for f in fields(settings_cls)}
    unknown = sorted(set(overrides) - set(known))
    if unknown:
        raise InputError(f"unknown setting {unknown[0]!r}{' for ' + where if where else ''}; known settings: {', '.join(known)}")
    values = {}
    for name, value in overrides.items():
        f = known[name]
        values[name] = _check(name, _coerce(name, value, hints[name]), f.metadata)
    return settings_cls(**values)


def to_dict(settings) -> dict[str, Any]:
    return dataclasses.asdict(settings)


def _type_name(tp) -> str:
    base = _unwrap_optional(tp)
    return getattr(base, "__name__", str(base))


def _unwrap_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, getattr(__import__("types"), "UnionType", None)) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0] if len(rest) == 1 else tp
    return tp


def _coerce(name: str, value: Any, tp) -> Any:
    optional = type(None) in typing.get_args(tp)
    base = _unwrap_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.strip().lower() in ("", "none", "null")):
        if optional:
            return None
        raise InputError(f"setting {name!r} needs a value")
    try:
        if base is bool:
            if isinstance(value, str):
                v = value.strip().lower()
                if v in ("1", "true", "yes", "on"):
                    return True
                if v in ("0", "false", "no", "off"):
                    return False
                raise ValueError
            return bool(value)
        if base is int:
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(float(value)) if isinstance(value, str) else int(value)
        if base is float:
            return float(value)
        if base is str:
            return str(value)
    except (TypeError, ValueError):
        raise InputError(f"setting {name!r} must be {_type_name(tp)}, got {str(value)[:40]!r}") from None
    return value


def _check(name: str, value: Any, meta) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"setting {name!r} must be a finite number, got {value}")
    lo, hi, choices = meta.get("lo"), meta.get("hi"), meta.get("choices")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if lo is not None and value < lo or hi is not None and value > hi:
            raise InputError(f"setting {name!r} must be between {lo} and {hi}, got {value}")
    if choices and value is not None and value not in choices:
        raise InputError(f"setting {name!r} must be one of {', '.join(map(str, choices))}, got {value!r}")
    return value
