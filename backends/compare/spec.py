"""The compare spec: a small TOML file (or YAML) naming a grid of runs, checked and expanded into cells.

    out = "out/compare"                   # the cells' folders and the report (relative to the spec's folder)
    prompts = ["a fox", "a red apple"]    # or prompts_file = "prompts.txt": one a line, '#' starts a comment
    seeds = [0, 1]                        # default [0]
    priors = ["auto"]                     # catalog names; "auto": this machine's default for each backend's kind
    inputs = ["clip.mp4", "pictures/"]    # files, or folders (each file in one is an input of its own; for a
                                          # backend that takes several images the folder is one input)
    workers = 1                           # local workers on a CPU (one per GPU on a GPU machine)
    # device = "cuda:0", memory = "auto": as `python -m backends run` takes them

    [[backends]]                          # one table per method, in the report's column order
    name = "svg/vectorfusion"
    settings = { steps = 100 }            # any of `python -m backends list`'s settings but prompt and seed
    # label = "VF 100 steps"              # the method's name in the report (default: the backend's), unique
    # prompts, prompts_file, inputs, seeds, priors: this backend's own, in place of the top-level ones

The grid: every backend x its priors x its items (prompt x input) x its seeds. A backend without a `prompt`
setting takes no prompts; one that takes no input file ignores the top-level inputs; one without a `seed` setting
runs once. Each cell is a plain `backends.run` into out/<cell id>/: the id is readable (method, prompt or input,
prior, seed) and ends in 8 hex digits of a hash of what decides the result (backend, every setting, prior, the
inputs' SHA-256), so a changed setting is a new cell and an unchanged one finds its folder again.

A mistake is an InputError of one line that names the key: "grid.toml: backends[2].settings: There is no setting
'stpes' ... (did you mean 'steps'?)". Tables and list items are counted from 1, as an editor shows them.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core import registry
from ..inputs import validate
from ..core.errors import InputError
from ..priors.machine import MEMORY_MODES
from ..core.runner import check_prior, file_sha256
from ..core.settings import make_settings, to_dict
from ..inputs.validate import quote_path

SPEC_KEYS = ("out", "backends", "prompts", "prompts_file", "inputs", "seeds", "priors", "device", "memory", "workers")
BACKEND_KEYS = ("name", "label", "settings", "prompts", "prompts_file", "inputs", "seeds", "priors")
AXIS_KEYS = ("prompts", "prompts_file", "inputs", "seeds", "priors")  # a backend's own replace the top level's
MAX_CELLS = 10_000  # a typo (seeds = a range of 99,999) is refused as a mistake before any cell is built: 10,000
# runs of even 10 s each are 28 hours, and building 10,000 cells takes about a second
MAX_WORKERS = 64
MAX_SPEC_BYTES = 1024 * 1024  # a spec names a grid; a prompts_file holds its prompts: neither needs more
MAX_PROMPTS_FILE_BYTES = 1024 * 1024
MAX_SPEC_VALUES = 1_000_000  # lists, tables and values in a spec, a YAML alias counted each time it is used
MAX_SPEC_DEPTH = 16  # a spec's deepest: backends[n].settings.key = [list]
SYSTEM_FOLDERS = ("/proc", "/sys", "/dev")  # files there are not data: endless (/dev/zero), or the machine's own


@dataclass(frozen=True)
class Cell:
    """One run of the grid.

    id: its folder's name under the spec's `out`; backend: "task/name"; label: its method's name in the report;
    prior: the catalog name it runs on ("auto" resolved on this machine; None for a backend without a prior);
    prompt: None for a backend without one; inputs: absolute paths; input_sha256: their contents' hashes; seed: None
    for a backend without one; settings: every setting as `backends.run` takes them (prompt and seed included);
    item: the report's row: the prompt, the inputs' names, or both; folder: out / id.
    """

    id: str
    backend: str
    label: str
    prior: str | None
    prompt: str | None
    inputs: tuple[str, ...]
    input_sha256: tuple[str, ...]
    seed: int | None
    settings: dict = field(hash=False)
    item: str
    folder: Path


@dataclass(frozen=True)
class Spec:
    """A checked grid: its cells in run order (item by item, so a partial grid holds whole comparisons), the
    methods (labels) in the spec's order, and where and how it runs."""

    out: Path
    cells: tuple[Cell, ...]
    labels: tuple[str, ...]
    device: str | None = None
    memory: str = "auto"
    workers: int | None = None
    name: str = "spec"


def load_spec(path: str | Path, *, out: str | Path | None = None) -> Spec:
    """Read, check and expand a spec file (.toml; .yaml / .yml too). out: overrides the spec's `out`."""
    path = Path(path)
    name = path.name[:60]
    if not path.exists():
        raise InputError(f"There is no spec file {quote_path(path)}.")
    try:
        text = read_text_file(path, MAX_SPEC_BYTES)
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise InputError(f"The spec file {quote_path(path)} cannot be read: {_why(err)}.") from None
    return parse_spec(_decode(text, path.suffix.lower(), name), base=path.resolve().parent, name=name, out=out)


def read_text_file(path: Path, limit: int) -> str:
    """The UTF-8 text of a regular file of at most `limit` bytes (ValueError naming what it is otherwise: a device
    such as /dev/zero never ends, a FIFO waits for a writer, /proc's files are the machine's own)."""
    if _in_system_folder(path):
        raise ValueError("it is in a system folder, not a file of data")
    with open(path, "rb", opener=lambda p, flags: os.open(p, flags | os.O_NONBLOCK)) as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ValueError("it is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"it is larger than {limit // 1024:,} KB")
    return data.decode("utf-8")


def _in_system_folder(path: Path) -> bool:
    real = os.path.realpath(path)
    return any(real == folder or real.startswith(folder + "/") for folder in SYSTEM_FOLDERS)


def _why(err: Exception) -> str:
    if isinstance(err, UnicodeDecodeError):
        return "it is not UTF-8 text"
    return str(getattr(err, "strerror", None) or err)


def _decode(text: str, suffix: str, name: str) -> Any:
    """The spec's data. TOML is the format (tomllib: the standard library, typed values, no surprises); YAML is read
    too, since PyYAML comes with huggingface_hub, but its `no` is false and `010` is 8."""
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text)
        except RecursionError:
            raise InputError(f"{name}: not a spec: it nests lists or tables far too deep.") from None
        except ValueError as err:  # an integer of over 4300 digits
            raise InputError(f"{name}: not a spec: {_number_error(err)}.") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
            raise InputError(f"{name}: not valid YAML{where}: {getattr(err, 'problem', None) or err}.") from None
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        try:
            import tomli as tomllib
        except ModuleNotFoundError:
            raise InputError("Reading a TOML spec needs Python 3.11 or the tomli package (pip install tomli), or "
                             "write the spec as YAML (.yaml).") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{name}: not valid TOML: {str(err).splitlines()[0]}.") from None
    except RecursionError:
        raise InputError(f"{name}: not a spec: it nests lists or tables far too deep.") from None
    except ValueError as err:  # an integer of over 4300 digits
        raise InputError(f"{name}: not a spec: {_number_error(err)}.") from None


def _number_error(err: ValueError) -> str:
    return "it holds a number too long to read" if "digits" in str(err) else str(err).splitlines()[0][:100]


def _check_size(keys: "_Keys", data: Any) -> None:
    """Refuse a spec of more than MAX_SPEC_VALUES values or deeper than MAX_SPEC_DEPTH, counting a YAML alias each
    time it is used (a 1 KB file of nested aliases stands for billions of values), before any value is turned
    into text or copied."""
    seen, stack = 0, [(data, 1)]
    while stack:
        value, depth = stack.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES or depth > MAX_SPEC_DEPTH:
            what = f"more than {MAX_SPEC_VALUES:,} values" if seen > MAX_SPEC_VALUES else \
                f"lists or tables nested more than {MAX_SPEC_DEPTH} deep"
            raise keys.error("", f"the spec holds {what} (a YAML alias counts each time it is used); a grid "
                                 "needs far fewer.")
        if isinstance(value, dict):
            stack += [(v, depth + 1) for v in value.values()] + [(k, depth + 1) for k in value]
        elif isinstance(value, (list, tuple)):
            stack += [(v, depth + 1) for v in value]


class _Keys:
    """Builds the one-line errors: the spec's name, then the key path."""

    def __init__(self, name: str):
        self.name = name

    def error(self, key: str, message: str) -> InputError:
        return InputError(f"{self.name}: {key}: {message}" if key else f"{self.name}: {message}")

    def table(self, key: str, value: Any, allowed: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table of keys, not {_kind(value)}.")
        for k in value:
            if k not in allowed:
                shown = _show(k, 40)
                close = difflib.get_close_matches(shown, allowed, n=1)
                raise self.error(f"{key}.{shown}" if key else shown, "is not a key of "
                                 f"{'a compare spec' if not key else 'a [[backends]] table'}"
                                 f"{f' (did you mean {close[0]!r}?)' if close else ''}; the keys are "
                                 f"{', '.join(allowed)}.")
        return value

    def texts(self, key: str, value: Any) -> list[str]:
        value = [value] if isinstance(value, str) else value
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(key, f"must be a list of text, not {_kind(value)}.")
        return value


def _kind(value: Any) -> str:
    """What a wrong value is, for a message; nothing but a scalar is turned into text (a list or table, perhaps
    of YAML aliases, could be billions of characters)."""
    if isinstance(value, list):
        return "a list of " + ", ".join(sorted({type(v).__name__ for v in value[:1000]})) if value else "an empty list"
    if isinstance(value, dict):
        return "a table"
    return f"{type(value).__name__} {_show(value, 30)!r}"


def _show(value: Any, limit: int) -> str:
    """A scalar as short text; an int of thousands of digits (str() refuses those) or a container by its kind."""
    if isinstance(value, bool) or value is None or isinstance(value, (float, str)):
        return str(value)[:limit]
    if isinstance(value, int):
        return str(value)[:limit] if abs(value) < 10 ** 100 else "a number of over 100 digits"
    return type(value).__name__


def parse_spec(data: Any, *, base: str | Path = ".", name: str = "spec", out: str | Path | None = None) -> Spec:
    """Check and expand a spec given as data (what the file holds; the app builds it from its controls). Relative
    paths are taken from `base`; out overrides the spec's `out`."""
    keys, base = _Keys(name), Path(base)
    _check_size(keys, data)
    data = keys.table("", data, SPEC_KEYS)
    out_value = out if out is not None else data.get("out")
    if not isinstance(out_value, (str, Path)) or not str(out_value).strip():
        raise keys.error("out", "the output folder must be named (out = \"folder\", or --out).")
    out_dir = (base / Path(out_value).expanduser()).resolve()
    if _in_system_folder(out_dir):
        raise keys.error("out", f"{quote_path(out_value)} is in a system folder; name a folder of your own.")
    if out_dir.exists() and not out_dir.is_dir():
        raise keys.error("out", f"{quote_path(out_value)} is a file, not a folder; name a folder (it is made if "
                                "missing).")
    device = data.get("device")
    if device is not None and not isinstance(device, str):
        raise keys.error("device", f"must be text (cpu, cuda, cuda:1), not {_kind(device)}.")
    memory = data.get("memory", "auto")
    if memory not in MEMORY_MODES:
        raise keys.error("memory", f"must be one of {', '.join(MEMORY_MODES)}, not {_kind(memory)}.")
    workers = data.get("workers")
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int)
                                or not 1 <= workers <= MAX_WORKERS):
        raise keys.error("workers", f"must be a whole number from 1 to {MAX_WORKERS}, not {_kind(workers)}.")
    tables = data.get("backends")
    if not isinstance(tables, list) or not tables:
        raise keys.error("backends", "name at least one method: a [[backends]] table with name = \"task/name\".")
    inputs_cache: dict[Path, str] = {}  # path -> SHA-256: a file hashed once for every backend that takes it
    cells: list[tuple[tuple, Cell]] = []
    labels: list[str] = []
    seen: dict[str, str] = {}  # cell hash -> where it came from
    items_order: dict[str, int] = {}
    for b, table in enumerate(tables, 1):
        where = f"backends[{b}]"
        table = keys.table(where, table, BACKEND_KEYS)
        label, found = _backend_cells(keys, where, table, data, base, out_dir, device, inputs_cache)
        if label in labels:
            raise keys.error(f"{where}.label", f"{label!r} names two methods; give each [[backends]] its own label.")
        labels.append(label)
        for order, cell, digest in found:
            if digest in seen:
                raise keys.error(where, f"repeats a run of {seen[digest]} (same backend, settings, prior, input and "
                                        "seed); remove it or change a setting.")
            seen[digest] = where
            cells.append(((items_order.setdefault(cell.item, len(items_order)), *order, b), cell))
        if len(cells) > MAX_CELLS:  # checked after each method: the next would build its cells in vain
            raise keys.error("backends", f"the grid has {len(cells):,} cells or more; at most {MAX_CELLS:,}.")
    cells.sort(key=lambda pair: pair[0])
    return Spec(out=out_dir, cells=tuple(c for _, c in cells), labels=tuple(labels), device=device, memory=memory,
                workers=workers, name=name)


def _backend_cells(keys: _Keys, where: str, table: dict, top: dict, base: Path, out_dir: Path, device,
                   inputs_cache: dict) -> tuple[str, list]:
    """(label, [((seed index, prior index), Cell, hash)]) of one [[backends]] table: its backend, label and
    settings, then its axes (priors, prompts, inputs, seeds) each checked, then their product."""
    cls, label, settings = _backend_table(keys, where, table)
    names = {f.name for f in fields(cls.Settings)}
    priors = _backend_priors(keys, cls, _axis(where, table, top, "priors"), device)
    prompts: list[str | None] = [None]
    if "prompt" in names:
        prompts = _prompts(keys, where, table, top, base) or [None]
        if cls.spec.prompt_required and prompts == [None]:
            raise keys.error("prompts", f"{cls.key} ({where}) needs a prompt: give prompts or prompts_file.")
    input_sets = _backend_inputs(keys, cls, where, _axis(where, table, top, "inputs"), base)
    skey, seeds = _axis(where, table, top, "seeds")
    seeds = _backend_seeds(keys, cls, skey, seeds, "seed" in names)
    total = len(priors) * len(prompts) * len(input_sets) * len(seeds)
    if total > MAX_CELLS:
        raise keys.error(where, f"expands to {total:,} cells; at most {MAX_CELLS:,}.")
    if seeds != [None]:  # a range: its two ends checked stand for every seed
        for i in sorted({seeds.index(min(seeds)), seeds.index(max(seeds))}):
            try:
                make_settings(cls.Settings, {"seed": seeds[i]}, where=cls.key)
            except InputError as err:  # out of the setting's range
                raise keys.error(f"{skey}[{i + 1}]", str(err)) from None
    found = []
    for files in input_sets:
        hashes = tuple(_hash_input(inputs_cache, f) for f in files)
        for prompt in prompts:
            found += _item_cells(keys, cls, where, label, settings, prompt, files, hashes, seeds, priors, out_dir)
    return label, found


def _axis(where: str, table: dict, top: dict, name: str) -> tuple[str, Any]:
    """(key for a message, value) of one axis of a backend: its own value, else the top level's (None when
    neither)."""
    if name in table:
        return f"{where}.{name}", table[name]
    return name, top.get(name)


def _backend_table(keys: _Keys, where: str, table: dict) -> tuple[type, str, dict]:
    """(backend class, label, settings) of one [[backends]] table, each checked; the settings without the grid's
    axes (prompt, seed) and valid for the backend on their own."""
    if not isinstance(table.get("name"), str):
        raise keys.error(f"{where}.name", "name the backend, e.g. name = \"svg/vectorfusion\" (see "
                                          "`python -m backends list`).")
    try:
        cls = registry.get(table["name"])
    except InputError as err:
        raise keys.error(f"{where}.name", str(err)) from None
    label = table.get("label", cls.key)
    if not isinstance(label, str) or not label.strip() or len(label) > 80:
        raise keys.error(f"{where}.label", f"must be a short text (at most 80 characters), not {_kind(label)}.")
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise keys.error(f"{where}.settings", f"must be a table of settings, not {_kind(settings)}.")
    for axis, setting in (("prompts", "prompt"), ("seeds", "seed")):
        if setting in settings:
            raise keys.error(f"{where}.settings.{setting}", f"the grid sets each cell's {setting}: give it in "
                                                             f"`{axis}` instead.")
    try:
        make_settings(cls.Settings, settings, where=cls.key)
    except InputError as err:
        raise keys.error(f"{where}.settings", str(err)) from None
    return cls, label, settings


def _backend_priors(keys: _Keys, cls, axis: tuple[str, Any], device) -> list[str | None]:
    """The backend's priors, each resolved ("auto": this machine's default for its kind) and named once."""
    pkey, priors = axis
    priors = keys.texts(pkey, priors if priors is not None else ["auto"])
    resolved = []
    for i, p in enumerate(priors, 1):
        try:
            resolved.append(check_prior(cls, p, device))
        except InputError as err:
            raise keys.error(f"{pkey}[{i}]", str(err)) from None
    if len(set(resolved)) != len(resolved):
        raise keys.error(pkey, f"names a prior twice ({', '.join(map(str, resolved))}, after auto).")
    return resolved


def _backend_inputs(keys: _Keys, cls, where: str, axis: tuple[str, Any], base: Path) -> list[tuple[Path, ...]]:
    """The backend's input sets ([()] for a backend that takes no input file), each of a count it takes."""
    ikey, entries = axis
    if cls.spec.inputs.max == 0:
        if where + ".inputs" == ikey and entries:
            raise keys.error(ikey, f"{cls.key} takes no input file.")
        return [()]
    input_sets = _inputs(keys, ikey, entries, base, several=cls.spec.inputs.kind == "images") if entries else [()]
    if input_sets == [()] and cls.spec.inputs.min:
        raise keys.error("inputs", f"{cls.key} ({where}) needs an input ({cls.spec.inputs.noun}): give inputs.")
    for i, files in enumerate(input_sets, 1):
        try:
            cls.spec.inputs.check(cls.key, len(files))
        except InputError as err:
            raise keys.error(f"{ikey}[{i}]", str(err)) from None
    return input_sets


def _backend_seeds(keys: _Keys, cls, skey: str, seeds: Any, has_seed: bool) -> list[int | None]:
    """The backend's seeds (default [0]), whole numbers named once; [None] for a backend without a seed."""
    seeds = [0] if seeds is None else seeds
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool)
                                                           for s in seeds):
        raise keys.error(skey, f"must be a list of whole numbers, not {_kind(seeds)}.")
    if len(set(seeds)) != len(seeds):
        raise keys.error(skey, "names a seed twice.")
    return seeds if has_seed else [None]


def _item_cells(keys: _Keys, cls, where: str, label: str, settings: dict, prompt: str | None,
                files: tuple[Path, ...], hashes: tuple[str, ...], seeds: list, priors: list, out_dir: Path) -> list:
    """The cells of one item (prompt x input files): one per seed and prior, [((seed index, prior index), Cell,
    hash)]."""
    key = cls.key
    item = _item(prompt, files)
    values = dict(settings)
    if prompt is not None:
        values["prompt"] = prompt
    if seeds[0] is not None:
        values["seed"] = seeds[0]
    try:
        checked = to_dict(make_settings(cls.Settings, values, where=key))
    except InputError as err:  # a rule between the settings and the prompt (each passed alone)
        raise keys.error(where, str(err)) from None
    checked = json.loads(json.dumps(checked, default=str))  # what result.json will hold
    found = []
    for s_i, seed in enumerate(seeds):  # the seed is checked alone (its range, above): no rule joins it
        full = dict(checked, seed=seed) if seed is not None else checked
        for p_i, prior in enumerate(priors):
            digest = _digest(key, full, prior, hashes)
            cell_id = "_".join(
                [_slug(label, 28), _slug(item, 28), _slug(prior or "no-prior", 16),
                 f"s{seed}" if seed is not None else "s-", digest[:8]])
            found.append(((s_i, p_i), Cell(
                id=cell_id, backend=key, label=label, prior=prior, prompt=full.get("prompt", prompt),
                inputs=tuple(str(f) for f in files), input_sha256=hashes, seed=seed, settings=full,
                item=item, folder=out_dir / cell_id), digest))
    return found


def _prompts(keys: _Keys, where: str, table: dict, top: dict, base: Path) -> list[str]:
    """The prompts of one backend: its own prompts / prompts_file, else the top level's; [] when none."""
    source = table if ("prompts" in table or "prompts_file" in table) else top
    prefix = f"{where}." if source is table else ""
    if "prompts" in source and "prompts_file" in source:
        raise keys.error(f"{prefix}prompts", "give prompts or prompts_file, not both.")
    if "prompts_file" in source:
        value = source["prompts_file"]
        if not isinstance(value, str) or not value.strip():
            raise keys.error(f"{prefix}prompts_file", f"must name a text file, not {_kind(value)}.")
        path = base / Path(value).expanduser()
        try:
            lines = read_text_file(path, MAX_PROMPTS_FILE_BYTES).splitlines()
        except (OSError, UnicodeDecodeError, ValueError) as err:
            raise keys.error(f"{prefix}prompts_file", f"cannot read {quote_path(value)}: {_why(err)}.") from None
        raw = [(f"{prefix}prompts_file line {n}", line) for n, line in enumerate(lines, 1)
               if line.strip() and not line.lstrip().startswith("#")]
        if not raw:
            raise keys.error(f"{prefix}prompts_file",
                             f"{quote_path(value)} holds no prompt (one a line; '#' comments).")
    elif "prompts" in source:
        raw = [(f"{prefix}prompts[{n}]", p) for n, p in enumerate(keys.texts(f"{prefix}prompts", source["prompts"]), 1)]
        if not raw:
            raise keys.error(f"{prefix}prompts", "is empty; give at least one prompt, or leave the key out.")
    else:
        return []
    prompts: list[str] = []
    for where_p, text in raw:
        try:
            prompt = validate.prompt(text, name="prompt")
        except InputError as err:
            raise keys.error(where_p, str(err)) from None
        if prompt in prompts:
            raise keys.error(where_p, f"{prompt[:60]!r} is given twice.")
        prompts.append(prompt)
    return prompts


def _inputs(keys: _Keys, key: str, entries: Any, base: Path, several: bool) -> list[tuple[Path, ...]]:
    """The input sets of one backend: each file one set; a folder's files each one (several=True: the folder is
    one set, for a backend that takes several images); a list of files one set."""
    entries = [entries] if isinstance(entries, str) else entries
    if not isinstance(entries, list):
        raise keys.error(key, f"must be a list of files or folders, not {_kind(entries)}.")
    sets: list[tuple[Path, ...]] = []
    for i, entry in enumerate(entries, 1):
        names = entry if isinstance(entry, list) else [entry]
        if not names or not all(isinstance(n, str) and n.strip() for n in names):
            raise keys.error(f"{key}[{i}]", f"must be a file, a folder or a list of files, not {_kind(entry)}.")
        paths = [(base / Path(n).expanduser()).resolve() for n in names]
        for n, p in zip(names, paths):
            if not p.exists():
                raise keys.error(f"{key}[{i}]", f"there is no file or folder {quote_path(n)}.")
            if _in_system_folder(p) or not (p.is_file() or p.is_dir()):
                raise keys.error(f"{key}[{i}]", f"{quote_path(n)} is not a regular file or folder (a device, a pipe "
                                                "or a system file); give files of data.")
        if len(paths) == 1 and paths[0].is_dir():
            try:
                files = sorted(f for f in paths[0].iterdir() if f.is_file() and not f.name.startswith("."))
            except OSError as err:
                raise keys.error(f"{key}[{i}]", f"the folder {quote_path(names[0])} cannot be read: {_why(err)}.") \
                    from None
            if not files:
                raise keys.error(f"{key}[{i}]", f"the folder {quote_path(names[0])} holds no file.")
            sets += [tuple(files)] if several else [(f,) for f in files]
        elif any(p.is_dir() for p in paths):
            raise keys.error(f"{key}[{i}]", "a list of inputs names files, not folders.")
        else:
            sets.append(tuple(paths))
    if len(set(sets)) != len(sets):
        raise keys.error(key, "names an input twice.")
    return sets


def _hash_input(cache: dict, path: Path) -> str:
    if path not in cache:
        cache[path] = file_sha256(path)
    return cache[path]


def _digest(backend: str, settings: dict, prior: str | None, hashes: tuple[str, ...]) -> str:
    """The hash of what decides a cell's result (the method's label and the machine do not)."""
    blob = json.dumps({"backend": backend, "settings": settings, "prior": prior, "inputs": list(hashes)},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _item(prompt: str | None, files: tuple[Path, ...]) -> str:
    """The report's row name of a cell: its inputs' names and its prompt ("clip.mp4 · make it night")."""
    names = files[0].name + (f" +{len(files) - 1}" if len(files) > 1 else "") if files else ""
    return " · ".join(x for x in (names, prompt) if x) or "(no prompt)"


def _slug(text: str, limit: int) -> str:
    slug = "-".join(re.findall(r"[a-z0-9]+", text.lower().replace("'", "")))
    return slug[:limit].rstrip("-") or "x"


def finished(cell: Cell) -> dict | None:
    """The cell's result.json when it holds this cell's result (same backend, prior, inputs' contents and settings,
    "auto" ones as the run resolved them), else None: the cell is still to run."""
    try:
        meta = json.loads((cell.folder / "result.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if matches(cell, meta) else None


def matches(cell: Cell, meta: Any) -> bool:
    """Whether a result.json (`meta`) is of this cell's run. A setting the cell left to "auto" (None) matches what
    the run filled in for it (`meta["auto"]`); every other must be equal."""
    if not isinstance(meta, dict) or not isinstance(meta.get("settings"), dict):
        return False
    if (meta.get("backend"), meta.get("prior"), meta.get("input_sha256")) != (cell.backend, cell.prior,
                                                                               list(cell.input_sha256)):
        return False
    got, filled = meta["settings"], meta.get("auto") or {}
    for name, want in cell.settings.items():
        if name in filled:
            if want not in (None, "auto"):
                return False
        elif name not in got or got[name] != want:
            return False
    return True
