"""What one press of Run asks for, as JSON, and everything derived from it without a widget: the request's shape
and bounds, the baseline's settings, the CLI line that repeats a run, the prior a web request may pick, and the
input files a backend takes. No gradio here: the API, the tests and the UI share this plumbing.
"""
from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

from backends.core import settings as bsettings
from backends.core.errors import InputError

SHARED_FIELDS = ("prompt", "seed")  # shown once per tab; method and baseline get the same values
# A request is a backend name, a prior name and a few dozen settings: 64 KiB and 8 levels hold any real one with
# room (a prompt is at most a few KiB). Larger or deeper text is refused before json.loads sees it, so a visitor
# cannot buy a RecursionError or seconds of parsing.
MAX_REQUEST_BYTES = 64 * 1024
MAX_REQUEST_DEPTH = 8


def ui_default(d: dict, device: str = "cpu") -> Any:
    """The value a panel starts with for field `d` (from `describe()`): its default. (Stop acts at a progress
    report, and the engine's loop reports at least every second whatever `every` says, so the UI need not force
    frequent reports, which cost a preview each.)"""
    return d["default"]


def defaults_of(cls) -> dict:
    """{setting name: default} of a backend class."""
    return {d["name"]: d["default"] for d in bsettings.describe(cls.Settings)}


def resolve_prior(cls, asked: str | None, env) -> str | None:
    """The prior name for backend `cls`: None if it needs none; "auto" -> this machine's default. A web request
    may only pick priors of this server's catalog by name: paths and hub ids ("sd:/some/folder") are for the CLI
    and the environment, never for a visitor. `env`: a demo.environment.Environment."""
    if cls.spec.prior == "none":
        return None
    if asked in (None, "", "auto"):
        return env.prior_for(cls.spec.prior)
    if not isinstance(asked, str) or asked not in env.facts["priors"]:
        shown = repr(asked)[:40] if isinstance(asked, str) else type(asked).__name__
        raise InputError(f"The prior {shown} is not offered here; choose auto or one of "
                         f"{', '.join(env.facts['priors'])}.")
    return asked


def json_depth(text: str) -> int:
    """The deepest nesting of [ and { in JSON text, strings skipped: O(len), no recursion, so it can run before
    json.loads on text of any depth."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


MAX_INT_DIGITS = 20  # no setting needs a longer whole number; 5000 digits once ended in Python's int limit


def _json_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_INT_DIGITS:
        raise InputError(f"the settings JSON has a whole number of {len(digits.lstrip('-'))} digits; settings take "
                         f"at most {MAX_INT_DIGITS}")
    return int(digits)


def parse_request(text: str) -> dict:
    """Validate the request JSON's size, depth and shape (not the settings: backends.run does that)."""
    if not isinstance(text, str):
        raise InputError("the settings JSON must be text")
    if len(text.encode("utf-8", "surrogatepass")) > MAX_REQUEST_BYTES:
        raise InputError(f"the settings JSON is larger than {MAX_REQUEST_BYTES // 1024} KiB; a request is a backend, "
                         "a prior and its settings, so shorten it (a long prompt, pasted files?)")
    if json_depth(text) > MAX_REQUEST_DEPTH:
        raise InputError(f"the settings JSON nests deeper than {MAX_REQUEST_DEPTH} levels; a request is "
                         '{"backend", "prior", "settings": {name: value}, "compare": {...}}')
    try:
        req = json.loads(text or "", parse_int=_json_int)
    except json.JSONDecodeError as err:
        raise InputError(f"the settings JSON is not valid JSON ({err.msg} at line {err.lineno})") from None
    if not isinstance(req, dict) or not isinstance(req.get("backend"), str):
        raise InputError('the settings JSON must be an object with a "backend" name, e.g. {"backend": "image/sds"}')
    for side in (req, req.get("compare") or {}):
        if not isinstance(side, dict) or not isinstance(side.get("settings", {}), dict):
            raise InputError('"settings" in the settings JSON must be an object of name: value')
    if req.get("compare") is not None and not isinstance(req["compare"].get("backend"), str):
        raise InputError('"compare" in the settings JSON needs a "backend" name')
    return req


def baseline_settings(method_cls, baseline_cls, method_settings: dict) -> dict:
    """The baseline's starting settings: the prompt and seed, plus every setting both backends declare with the
    same name and the same default (so it means the same thing: steps, guidance, size...), taken from the method.
    With the same backend on both sides that is all of them: "two settings of one method"."""
    a, b = defaults_of(method_cls), defaults_of(baseline_cls)
    return {k: v for k, v in method_settings.items()
            if k in b and (k in SHARED_FIELDS or (k in a and a[k] == b[k]))}


def cli_line(key: str, prior: str | None, settings: dict, defaults: dict, inputs: list[str]) -> str:
    """The `python -m backends run` line that repeats one run (non-default settings, always the seed)."""
    parts = ["python", "-m", "backends", "run", key]
    if prior:
        parts += ["--prior", prior]
    for name, value in settings.items():
        if name == "seed" or (name == "prompt" and value) or defaults.get(name, object()) != value:
            parts += ["--set", f"{name}={value}"]
    for path in inputs:
        parts += ["--input", Path(path).name]
    parts += ["--out", "out/"]
    return " ".join(shlex.quote(p) for p in parts)


def paths_of(value) -> list[str]:
    """Whatever an input widget gives (path, list of paths, (path, caption) pairs, FileData dicts) -> paths."""
    if value is None or value == "" or value == []:
        return []
    if isinstance(value, (list, tuple)):
        out = []
        for v in value:
            out += paths_of(v[0] if isinstance(v, (list, tuple)) else v)
        return out
    if isinstance(value, dict):
        value = value.get("path") or value.get("name")
        return [value] if value else []
    path = getattr(value, "name", value)
    return [str(path)]


def without_example_files(value, example_files: list[str]):
    """The files of a multi-file input after an upload, less those an example had put there; and the example's
    files, now forgotten (returns (files or None, []))."""
    gone = set(example_files or [])
    keep = [p for p in paths_of(value) if p not in gone]
    return keep or None, []


def inputs_for(slot_kinds: list[str], cls, values: list) -> list[str]:
    """The input files backend `cls` takes, from a tab's input values (one per slot, of kinds `slot_kinds`): the
    first slot its spec accepts, cut to the spec's most (a second upload in a one-image slot is not an error)."""
    want = cls.spec.inputs
    if want.max == 0:
        return []
    paths = next((paths_of(v) for kind, v in zip(slot_kinds, values) if want.accepts(kind) and paths_of(v)), [])
    if want.too_few(len(paths)):
        raise InputError(f"{cls.key} needs {want.noun}: upload one (or click an example) and press Run again")
    return paths[:want.max]


def setting_differences(sides: list[dict]) -> list[str]:
    """For two runs side by side: per side, the settings that tell them apart ("lr 0.01"), seed and prompt aside
    (they are shared); "" for a single run. Without this, two runs of one backend read alike."""
    if len(sides) < 2:
        return [""] * len(sides)
    keys = [k for k in sides[0] if k not in SHARED_FIELDS and k in sides[1] and sides[0][k] != sides[1][k]]
    keys += [k for k in sides[1] if k not in SHARED_FIELDS and k not in sides[0]]
    return [", ".join(f"{k.replace('_', ' ')} {_shown(s[k])}" for k in keys if k in s)[:80] for s in sides]


def _shown(value) -> str:
    """A setting's value as a caption shows it: "auto" for a field left to the prior's suggestion (None)."""
    if value is None:
        return "auto"
    return f"{value:g}" if isinstance(value, float) else str(value)
