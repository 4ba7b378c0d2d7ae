"""A varied corpus of SVGs for the fidelity tests: shapes, strokes, transforms, fill rules, translucent layers.

Each entry is (name, svg text); all are 256 x 256 on a white page (the renderer's "transparent
background shows white", and the reference renderer is given a white background too). Strokes use round
caps and joins, the only kind the renderer draws; group opacity is used only where children do not overlap
(the importer folds it into each child).
"""
from __future__ import annotations

import math
import random

HEAD = '<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" viewBox="0 0 256 256">'
ROUND = 'stroke-linecap="round" stroke-linejoin="round"'


def _svg(body: str, head: str = HEAD) -> str:
    return head + body + "</svg>"


def _random_paths(seed: int, n: int, evenodd: bool = False) -> str:
    rnd = random.Random(seed)
    out = []
    for _ in range(n):
        x0, y0 = rnd.uniform(0, 192), rnd.uniform(0, 192)
        pts = [(x0 + rnd.uniform(0, 64), y0 + rnd.uniform(0, 64)) for _ in range(12)]
        d = f"M{pts[0][0]:.2f} {pts[0][1]:.2f}"
        for i in range(4):
            c1, c2 = pts[3 * i + 1], pts[3 * i + 2]
            e = pts[(3 * i + 3) % 12]
            d += f" C{c1[0]:.2f} {c1[1]:.2f} {c2[0]:.2f} {c2[1]:.2f} {e[0]:.2f} {e[1]:.2f}"
        col = "#%02x%02x%02x" % tuple(rnd.randrange(256) for _ in range(3))
        rule = ' fill-rule="evenodd"' if evenodd else ""
        out.append(f'<path d="{d} Z" fill="{col}" fill-opacity="{rnd.uniform(0.4, 1):.2f}"{rule}/>')
    return "".join(out)


def _star(cx, cy, r, n=5, k=2):
    pts = [(cx + r * math.sin(2 * math.pi * i * k / n), cy - r * math.cos(2 * math.pi * i * k / n)) for i in range(n)]
    return " ".join(f"{x:.2f},{y:.2f}" for x, y in pts)


CORPUS: list[tuple[str, str]] = [
    ("rects", _svg('<rect x="20" y="30" width="120" height="80" fill="red"/>'
                   '<rect x="60.5" y="70.25" width="150.3" height="120.7" fill="#3366cc" fill-opacity="0.6"/>'
                   '<rect x="100" y="150" width="130" height="90" rx="20" ry="12" fill="green"/>')),
    ("circles_ellipses", _svg('<circle cx="80" cy="80" r="60" fill="orange"/>'
                              '<circle cx="150" cy="120" r="70.5" fill="rgb(30,144,255)" opacity="0.5"/>'
                              '<ellipse cx="128" cy="200" rx="100" ry="30" fill="purple" fill-opacity="0.7"/>')),
    ("polygon_star_nonzero", _svg(f'<polygon points="{_star(128, 128, 110)}" fill="gold"/>')),
    ("polygon_star_evenodd", _svg(f'<polygon points="{_star(128, 128, 110)}" fill="navy" fill-rule="evenodd"/>')),
    ("donut_evenodd", _svg('<path d="M128 28 A100 100 0 1 1 127.9 28 Z M128 78 A50 50 0 1 0 128.1 78 Z" '
                           'fill="crimson" fill-rule="evenodd"/>')),
    ("donut_nonzero_reversed", _svg('<path d="M128 28 A100 100 0 1 1 127.9 28 Z M128 78 A50 50 0 1 1 128.1 78 Z" '
                                    'fill="teal"/>')),
    ("relative_commands", _svg('<path d="m20 20 l60 10 h40 v50 c10 20 30 20 40 0 s30-20 40 0 q20 40 0 60 '
                               't-40 20 -60 -20 z" fill="#8a2be2" stroke="black" stroke-width="4" '
                               f'{ROUND}/>')),
    ("absolute_commands", _svg('<path d="M30 220 L30 120 H90 V60 C90 20 150 20 150 60 S210 100 220 60 '
                               'Q240 140 200 180 T120 230 Z" fill="#ff7f50" fill-opacity="0.8"/>')),
    ("arcs", _svg('<path d="M40 200 A60 40 0 0 1 160 200 A30 30 0 1 0 220 150 L220 240 Z" fill="seagreen"/>'
                  '<path d="M30 40 a50 25 30 1 1 90 40 a20 20 0 0 0 40 0" fill="none" stroke="#c00" '
                  f'stroke-width="6" {ROUND}/>')),
    ("strokes_widths", _svg(''.join(f'<line x1="20" y1="{20 + 28 * i}" x2="236" y2="{40 + 24 * i}" stroke="black" '
                                    f'stroke-width="{0.7 + 2.2 * i:.1f}" {ROUND}/>' for i in range(8)))),
    ("polyline_stroke", _svg('<polyline points="20,230 60,40 100,200 140,30 180,220 230,20" fill="none" '
                             f'stroke="#1e90ff" stroke-width="9" stroke-opacity="0.8" {ROUND}/>')),
    ("filled_and_stroked", _svg('<circle cx="128" cy="128" r="80" fill="yellow" stroke="#333" stroke-width="12"/>'
                                '<rect x="40" y="40" width="70" height="70" fill="none" stroke="red" '
                                f'stroke-width="5" {ROUND}/>')),
    ("open_path_filled_and_stroked", _svg('<path d="M30 200 C60 20 200 20 230 200" fill="lightblue" '
                                          f'stroke="darkblue" stroke-width="5" {ROUND}/>')),
    ("group_transforms", _svg('<g transform="translate(128 128)"><g transform="rotate(30)">'
                              '<rect x="-60" y="-20" width="120" height="40" fill="tomato"/>'
                              '<g transform="scale(0.5 1.5) skewX(20)"><circle cx="0" cy="40" r="30" fill="indigo" '
                              'fill-opacity="0.6"/></g></g></g>'
                              '<g transform="matrix(0.8 0.3 -0.2 0.9 20 10)"><polygon points="10,10 80,20 40,90" '
                              'fill="olive"/></g>')),
    ("rotate_about_point", _svg('<rect x="78" y="103" width="100" height="50" fill="blue" fill-opacity="0.5" '
                                'transform="rotate(45 128 128)"/><rect x="78" y="103" width="100" height="50" '
                                'fill="red" fill-opacity="0.5" transform="rotate(-20, 128, 128)"/>')),
    ("style_attribute", _svg('<g style="fill:#0a0;stroke:#a0a;stroke-width:3">'
                             '<circle cx="70" cy="70" r="40" style="stroke-linejoin:round"/>'
                             '<rect x="130" y="130" width="80" height="80" style="fill:rgba(255,0,0,0.5);'
                             'stroke:none"/></g>')),
    ("inheritance_currentcolor", _svg('<g fill="currentColor" color="#ff8800" stroke-width="4">'
                                      '<circle cx="80" cy="128" r="50"/>'
                                      f'<path d="M150 60 L220 200 L150 200" stroke="currentColor" fill="none" {ROUND}/>'
                                      '</g>')),
    ("translucent_layers", _svg(_random_paths(3, 12))),
    ("translucent_layers_evenodd", _svg(_random_paths(7, 10, evenodd=True))),
    ("viewbox_scaled", _svg('<circle cx="50" cy="50" r="40" fill="#e91e63"/><rect x="10" y="70" width="80" height="20" '
                            'fill="#2196f3" fill-opacity="0.7"/>',
                            head='<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" '
                                 'viewBox="0 0 100 100">')),
    ("viewbox_offset_aspect", _svg('<rect x="-50" y="0" width="100" height="50" fill="gray"/>'
                                   '<circle cx="0" cy="25" r="20" fill="black"/>',
                                   head='<svg xmlns="http://www.w3.org/2000/svg" width="256" height="256" '
                                        'viewBox="-50 0 100 50">')),
    ("tiny_features", _svg(''.join(f'<circle cx="{16 + 32 * (i % 8)}" cy="{16 + 32 * (i // 8)}" '
                                   f'r="{0.6 + i * 0.2:.1f}" '
                                   f'fill="black"/>' for i in range(64)))),
    ("hairlines", _svg(''.join(f'<path d="M{10 + 15 * i} 10 L{30 + 13 * i} 246" stroke="#000" '
                               f'stroke-width="{0.5 + 0.1 * i:.1f}" '
                               f'fill="none" {ROUND}/>' for i in range(15)))),
    ("group_opacity_disjoint", _svg('<g opacity="0.5"><rect x="20" y="20" width="90" height="90" fill="blue"/>'
                                    '<circle cx="180" cy="180" r="50" fill="green"/></g>'
                                    '<circle cx="128" cy="128" r="40" fill="red" fill-opacity="0.5"/>')),
    ("named_hex_short", _svg('<rect x="0" y="0" width="128" height="128" fill="#f0a"/>'
                             '<rect x="128" y="0" width="128" height="128" fill="darkolivegreen"/>'
                             '<rect x="0" y="128" width="128" height="128" fill="rgb(100%, 50%, 0%)"/>'
                             '<rect x="128" y="128" width="128" height="128" fill="#12345680"/>')),
]
