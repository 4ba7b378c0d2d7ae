"""The widgets every tab shares: settings panels built from `describe()`, the result widgets and what they show,
the report table (every metric with its human name and caption) and the banner. Gradio, but no run logic.
"""
from __future__ import annotations

import base64
import html
import json
import zipfile
from pathlib import Path
from typing import Any

import gradio as gr

from backends.core import settings as bsettings

from . import environment, metrics
from .requests import SHARED_FIELDS

IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp", ".gif"}
VIDEO_EXT = {".mp4", ".webm"}
TINY_NOTE = "tiny prior: shows the flow, not the method's quality"


def _label(name: str) -> str:
    return name.replace("_", " ")


def is_auto(d: dict) -> bool:
    """Whether field `d` (from `describe()`) is an "auto" field: a text box that reads "auto" until a person types."""
    return bool(d.get("optional")) and d["default"] is None and not d["choices"]


def field_info(d: dict, auto: Any = None, prior: str | None = None) -> str:
    """The help line under a field; for an "auto" one, what "auto" becomes in a run here (`auto`: the value from
    `backends.resolved_settings`, the place that decides the run, so the line cannot drift from what runs) and the
    values it takes: 'optimization steps (auto: 200 with the edits prior here); or a value 1-5000'."""
    if not is_auto(d):
        return d["help"]
    if auto is None:
        said = "(auto: chosen by the method as it runs)"
    else:
        said = f"(auto: {auto:g}" if isinstance(auto, float) else f"(auto: {auto}"
        said += f" with the {prior} prior here)" if prior else " here)"
    lo, hi = d["lo"], d["hi"]
    rng = f"; or a value {lo:g}-{hi:g}" if d["type"] in ("int", "float") and lo is not None and hi is not None else ""
    return f"{d['help']} {said}{rng}"


def field_widget(d: dict, elem_id: str, value: Any = None, info: str | None = None):
    """A widget for one settings field from `describe()`: dropdown, checkbox, slider, number or text. An "auto" field
    (default None) is a text box that reads "auto" until a person types a value. info: its help line
    (`field_info`; default: the field's own help)."""
    value = d["default"] if value is None else value
    kw = dict(label=_label(d["name"]), info=(info or field_info(d)) or None, elem_id=elem_id)
    t, lo, hi = d["type"], d["lo"], d["hi"]
    if is_auto(d):
        return gr.Textbox(value="" if value is None else str(value), placeholder="auto", lines=1, max_lines=1, **kw)
    if d["choices"]:
        return gr.Dropdown(choices=list(d["choices"]), value=value, **kw)
    if t == "bool":
        return gr.Checkbox(value=bool(value), **kw)
    if t in ("int", "float") and lo is not None and hi is not None and value is not None:
        small_int = t == "int" and hi - lo <= 1100
        unit_float = t == "float" and lo >= 0 and hi <= 1.0
        if small_int or unit_float:
            return gr.Slider(minimum=lo, maximum=hi, value=value, step=1 if t == "int" else 0.01, **kw)
    if t in ("int", "float"):  # also an optional number left empty: the backend picks (its help says how)
        # no minimum/maximum: Gradio would refuse out-of-range input with a toast that names no field; the settings
        # parser says which field and why
        return gr.Number(value=value, precision=0 if t == "int" else None, **kw)
    if t == "str":
        return gr.Textbox(value=value, lines=1, placeholder="auto" if value is None else None, **kw)
    return gr.Textbox(value="" if value is None else json.dumps(value, default=str), **kw)


def ui_fields(cls) -> list[dict]:
    """The fields a panel shows: `ui` ones that are not the tab-wide shared fields."""
    return [d for d in bsettings.describe(cls.Settings) if d["ui"] and d["name"] not in SHARED_FIELDS]



def svg_html(path: str | None) -> str:
    """The SVG itself, drawn by the browser (gr.Image cannot show SVG), as a sandboxed <img> data URI."""
    if not path:
        return ""
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure class="svg-result"><img alt="result SVG" src="data:image/svg+xml;base64,{data}"/>'
            '<figcaption>the .svg file, drawn by your browser</figcaption></figure>')


def unpack_views(zip_path: str, folder: Path, limit: int = 64) -> list[str]:
    """The images inside a result zip (our own backend wrote it), written under generated names for the gallery."""
    out = []
    with zipfile.ZipFile(zip_path) as zf:
        names = sorted(n for n in zf.namelist() if Path(n).suffix.lower() in IMAGE_EXT and not n.endswith("/"))
        folder.mkdir(exist_ok=True)
        for i, name in enumerate(names[:limit]):
            if zf.getinfo(name).file_size > 64 * 2**20:
                continue
            dst = folder / f"view-{i:03d}{Path(name).suffix.lower()}"
            dst.write_bytes(zf.read(name))
            out.append(str(dst))
    return out


def media_value(kind: str, files: dict[str, str], folder: Path):
    """What a result widget of `kind` shows, from the run's published files (none: the kind's empty value)."""
    paths = list(files.values())
    if kind == "svg":
        return svg_html(files.get("svg") or next((p for p in paths if p.lower().endswith(".svg")), None))
    if kind == "video":
        return files.get("mp4") or next((p for p in paths if Path(p).suffix.lower() in VIDEO_EXT), None)
    if kind == "model3d":  # shown only with a mesh to show (the views3d tab's image views make none)
        return viewer_update(files.get("glb") or next((p for p in paths if p.lower().endswith(".glb")), None),
                             folder)
    if kind == "gallery":
        zips = [p for p in paths if p.lower().endswith(".zip")]
        if zips:
            return unpack_views(zips[0], folder / (Path(zips[0]).stem + "-views"))
        return [p for r, p in files.items() if Path(p).suffix.lower() in IMAGE_EXT - {".gif"} and r != "comparison"]
    raise ValueError(f"unknown media kind {kind!r}")


NO_MODEL = "no-model"  # the CSS class that takes a 3D viewer out of the layout while it has nothing to show


def viewer(label: str, elem_id: str, height: int) -> gr.Model3D:
    """Gradio's 3D viewer, out of the layout until `viewer_update` gives it a model. Hidden by CSS, not by
    `visible=False`: a Model3D that first mounts hidden never draws its canvas once shown (Gradio 6.31)."""
    return gr.Model3D(label=label, elem_id=elem_id, interactive=False, height=height, elem_classes=[NO_MODEL],
                      camera_position=VIEW_CAMERA)


def viewer_update(path: str | None, folder: Path | None = None) -> dict:
    """The update that shows `path` in a `viewer` (no path: out of the layout), framed (`framed`) by a copy in
    `folder` (a job's folder; None: shown as it is)."""
    shown = framed(path, folder) if path and folder is not None else path
    return gr.update(value=shown, elem_classes=[] if path else [NO_MODEL])


VIEW_SIZE = 2.0  # the longest side of a mesh as the viewer shows it (`framed`)
# The viewer's camera: 60 degrees round from the side, 65 down from the top, 4.5 units from the centre, so a mesh of
# VIEW_SIZE shows its front (glTF's +Z) and one side whole with a margin. Gradio's own camera looked straight at one
# face from as close as fits it, which turned a box into a cropped trapezoid.
VIEW_CAMERA = (60.0, 65.0, 4.5)


def framed(path: str, folder: Path) -> str:
    """A copy of the mesh at `path` (.glb or .gltf) centred on the origin and scaled to VIEW_SIZE, written to
    `folder` as "<stem>-view.glb" (or .gltf), for the 3D viewer, whose camera (VIEW_CAMERA) sits at a fixed
    distance that frames a mesh of that size. The file itself, which the person downloads, keeps its own units. A
    mesh that cannot be read is shown as it is.

    Its bounds come from its triangles alone and the copy only wraps its scene in one placing node
    (`backends.mesh.placed_copy`): no texture is decoded or encoded for a viewer (a 4096x4096 one held 160 MB)."""
    import numpy as np

    from backends.mesh import load_geometry, placed_copy

    src = Path(path)
    try:
        with open(src, "rb") as fh:
            out = Path(folder) / f"{src.stem}-view{'.glb' if fh.read(4) == b'glTF' else '.gltf'}"
        vertices = load_geometry(src).vertices.astype(np.float64)
        low, high = vertices.min(axis=0), vertices.max(axis=0)
        size = float(np.max(high - low))
        if not np.isfinite(size) or size <= 0:
            return path
        scale = VIEW_SIZE / size
        out.parent.mkdir(parents=True, exist_ok=True)
        placed_copy(str(src), str(out), -scale * (low + high) / 2, scale)
    except Exception:  # noqa: BLE001 - the viewer is a courtesy: the run's own checks say what is wrong with a mesh
        return path
    return str(out)


def media_widget(kind: str, label: str, elem_id: str):
    if kind == "svg":
        return gr.HTML(label=label, elem_id=elem_id)
    if kind == "video":
        return gr.Video(label=label, elem_id=elem_id, interactive=False, height=260)
    if kind == "gallery":
        return gr.Gallery(label=label, elem_id=elem_id, columns=4, height=220, interactive=False, object_fit="contain")
    if kind == "model3d":
        return viewer(label, elem_id, height=300)
    raise ValueError(f"unknown media kind {kind!r}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def report_markdown(rows: list[tuple[str, dict]]) -> str:
    """The runs side by side, one column each: backend, prior, seed, time, then every metric either reports, each
    row named for people with a one-line caption (what it measures, which way is better). A CLIP figure from random
    CLIP weights reads "not meaningful" instead of a number; a row in which every figure is such says nothing and
    is left out."""
    if not rows:
        return ""
    keys: list[str] = []
    for _, meta in rows:
        for k in (meta.get("metrics") or {}):
            if k not in keys and k != "bad_steps":
                keys.append(k)

    def prior(meta):
        return (meta.get("prior") or "none") + (" (tiny)" if meta.get("prior_is_tiny") else "")

    def meaningless(meta: dict, key: str) -> bool:
        return metrics.describe(key).needs_clip and metrics.clip_is_random(meta)

    def metric_cell(meta: dict, key: str) -> str:
        value = (meta.get("metrics") or {}).get(key, "")
        if value != "" and meaningless(meta, key):
            return "not meaningful (random CLIP)"
        return _fmt(value)

    keys = [k for k in keys if not all(meaningless(meta, k) for _, meta in rows)]

    lines = ["| | " + " | ".join(side for side, _ in rows) + " | what it means |",
             "|---|" + "---|" * len(rows) + "---|"]
    lines.append("| backend | " + " | ".join(f"`{m.get('backend', '')}`" for _, m in rows) + " | |")
    lines.append("| prior | " + " | ".join(_cell(prior(m)) for _, m in rows) + " | the model that scored the steps |")
    lines.append("| seed | " + " | ".join(_fmt(m.get("seed", "")) for _, m in rows) + " | |")
    lines.append("| time (s) | " + " | ".join(_fmt((m.get("timings") or {}).get("total_s", "")) for _, m in rows)
                 + " | wall-clock time of the run |")
    for key in keys:
        m = metrics.describe(key)
        lines.append(f"| <span title=\"{html.escape(key)}\">{_cell(m.name)}</span> | "
                     + " | ".join(_cell(metric_cell(meta, key)) for _, meta in rows)
                     + f" | {_cell(metrics.caption(m))} |")
    return "\n".join(lines)


def notices_markdown(rows: list[tuple[str, dict]]) -> str:
    """What each run changed or dropped (frames kept, resizing, SVG elements approximated or skipped), one bullet
    each, or "" when nothing was."""
    out = []
    for side, meta in rows:
        for line in metrics.notices(meta):
            out.append(f"- **{side}:** {_cell(line)}" if len(rows) > 1 else f"- {_cell(line)}")
    return ("**What the run changed or left out**\n\n" + "\n".join(out)) if out else ""


def banner_widget(env: environment.Environment):
    """The top of the page: one line (real or try-out, which priors), the rest (what is missing, how to get the
    real models, failed plugins) folded below it, so the tabs start high on the page."""
    from backends.core.registry import plugin_errors

    ok = all(env.uses_real(k) for k in env.facts["kinds"])
    rest = environment.banner(env) + "".join(f"\n\nPlugin `{n}` failed to load: {e}" for n, e in plugin_errors.items())
    with gr.Column(elem_id="env-banner", elem_classes=["ok"] if ok else []) as column:
        gr.Markdown(environment.headline(env), elem_id="env-headline")
        with gr.Accordion("What runs here, and what the real models need", open=bool(plugin_errors),
                          elem_id="env-details"):
            gr.Markdown(rest)
    return column
