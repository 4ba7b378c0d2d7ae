"""SVG 1.1 export of scenes: one element per shape in painter's order, numbers written to `decimals` places."""
from __future__ import annotations

from pathlib import Path

import torch

from ..scene import Scene
from .limits import SVG_NS


def _num(v: float, decimals: int) -> str:
    s = f"{v:.{decimals}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
    return "0" if s in ("-0", "") else s


def _hex(rgb) -> str:
    return "#" + "".join(f"{int(round(min(max(float(c), 0.0), 1.0) * 255)):02x}" for c in rgb)


def _opacity(a: float) -> str:
    return _num(min(max(float(a), 0.0), 1.0), 3)


def _path_d(pts: torch.Tensor, counts, closed: bool, decimals: int) -> str:
    p = [(_num(x, decimals), _num(y, decimals)) for x, y in pts.tolist()]
    parts, i = [], 0
    for s in counts:
        n = 3 * s if closed else 3 * s + 1
        sub = p[i:i + n] + ([p[i]] if closed else [])
        i += n
        cmds = [f"M{sub[0][0]} {sub[0][1]}"]
        for j in range(s):
            c1, c2, e = sub[3 * j + 1], sub[3 * j + 2], sub[3 * j + 3]
            cmds.append(f"C{c1[0]} {c1[1]} {c2[0]} {c2[1]} {e[0]} {e[1]}")
        parts.append(" ".join(cmds) + ("Z" if closed else ""))
    return " ".join(parts)


def _paint_attrs(prefix: str, rgba) -> list[str]:
    if float(rgba[3]) <= 0:
        return [f'{prefix}="none"']
    out = [f'{prefix}="{_hex(rgba[:3])}"']
    if float(rgba[3]) < 1:
        out.append(f'{prefix}-opacity="{_opacity(rgba[3])}"')
    return out


def scene_to_svg(scene: Scene, decimals: int = 2, size: tuple[int, int] | None = None) -> str:
    """Clean SVG 1.1 text for the scene: viewBox "0 0 width height", one element per shape in painter's order.
    size: the (width, height) in px the file declares, the size a browser or an editor shows it at (default the
    canvas's own); the viewBox keeps the canvas's coordinates either way."""
    W, H = scene.width, scene.height
    dw, dh = size or (W, H)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>',
             f'<svg xmlns="{SVG_NS}" version="1.1" width="{dw}" height="{dh}" viewBox="0 0 {W} {H}">']
    bg = scene.background.detach().cpu().float().tolist()
    if bg[3] > 0:
        lines.append(f'  <rect class="background" x="0" y="0" width="{W}" height="{H}" '
                     + " ".join(_paint_attrs("fill", bg)) + "/>")
    for s in scene.shapes:
        pts = s.points.detach().cpu().float()
        fill = s.fill.detach().cpu().float().tolist()
        stroke = s.stroke.detach().cpu().float().tolist()
        width = float(s.stroke_width.detach())
        if s.kind == "square":
            (x0, y0), (x1, y1) = pts.tolist()
            x0, x1 = min(x0, x1), max(x0, x1)
            y0, y1 = min(y0, y1), max(y0, y1)
            attrs = [f'x="{_num(x0, decimals)}"', f'y="{_num(y0, decimals)}"', f'width="{_num(x1 - x0, decimals)}"',
                     f'height="{_num(y1 - y0, decimals)}"'] + _paint_attrs("fill", fill)
            lines.append("  <rect " + " ".join(attrs) + "/>")
            continue
        attrs = [f'd="{_path_d(pts, s.segment_counts(), s.closed, decimals)}"']
        if s.kind == "path":
            attrs += _paint_attrs("fill", fill)
            if s.fill_rule == "evenodd":
                attrs.append('fill-rule="evenodd"')
        else:
            attrs.append('fill="none"')
        if (s.kind == "stroke" or (stroke[3] > 0 and width > 0)) and width > 0:
            attrs += _paint_attrs("stroke", stroke)
            attrs += [f'stroke-width="{_num(width, decimals)}"', 'stroke-linecap="round"', 'stroke-linejoin="round"']
        lines.append("  <path " + " ".join(attrs) + "/>")
    lines.append("</svg>")
    return "\n".join(lines) + "\n"


def save_svg(scene: Scene, path: str | Path, decimals: int = 2, size: tuple[int, int] | None = None) -> str:
    """Write the scene as an SVG file (see `scene_to_svg`), whole or not at all (a temporary name renamed into
    place)."""
    from ...core.files import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(scene_to_svg(scene, decimals, size), encoding="utf-8")
    return str(path)
