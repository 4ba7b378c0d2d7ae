"""SVG import and export: commands and shapes to cubics, styles, transforms, exact round trip, hostile input, CLI."""
from __future__ import annotations

import math
import re
import subprocess
import sys
import time  # bounds below are process CPU seconds (work), not wall clock: a busy machine stretches only the latter
from pathlib import Path

import pytest
import torch
from PIL import Image

from backends.core.errors import InputError
from backends.svg.render import render
from backends.svg.painting import pixel_shapes, random_paths, stroke_shapes
from backends.svg.scene import Scene, Shape
from backends.svg.svgio import load_svg, parse_color, parse_path_data, save_svg, scene_to_svg, svg_to_scene
from tests import hostile

ROOT = Path(__file__).resolve().parents[1]


def _svg(body: str, size: str = 'width="100" height="100"') -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" {size}>{body}</svg>'


def _bezier(c, t):
    c = torch.as_tensor(c, dtype=torch.float64)
    s = 1 - t
    return s ** 3 * c[0] + 3 * s * s * t * c[1] + 3 * s * t * t * c[2] + t ** 3 * c[3]


# ------------------------------------------------------------------------------------------ round trip

def _mixed_scene() -> Scene:
    g = torch.Generator().manual_seed(11)
    shapes = random_paths(4, 4, 120, 90, generator=g) + stroke_shapes(2, 3, 2.5, 120, 90, generator=g)
    shapes += pixel_shapes(2, 120, 90, generator=g)
    shapes[0].fill_rule = "evenodd"
    shapes[1].stroke = torch.tensor([0.1, 0.2, 0.3, 0.6])
    shapes[1].stroke_width = torch.tensor(1.75)
    donut = torch.cat([shapes[2].points, shapes[3].points * 0.5 + 20])
    shapes.append(Shape("path", donut, fill=torch.tensor([0.5, 0.5, 0.0, 1.0]), fill_rule="evenodd", subpaths=(4, 4)))
    return Scene(120, 90, shapes, background=torch.tensor([0.95, 0.9, 0.8]))


def test_export_then_import_round_trips_exactly():
    scene = _mixed_scene()
    text = scene_to_svg(scene)
    back = svg_to_scene(text)
    assert scene_to_svg(back) == text                              # exporting again gives the same file
    assert (back.width, back.height) == (scene.width, scene.height)
    assert [s.kind for s in back.shapes] == [s.kind for s in scene.shapes]
    for a, b in zip(scene.shapes, back.shapes):
        assert a.fill_rule == b.fill_rule and a.segment_counts() == b.segment_counts()
        assert (a.points - b.points).abs().max() <= 0.005 + 1e-4    # 2 decimals
        assert (a.fill - b.fill).abs().max() <= 0.5 / 255 + 1e-3
        assert (a.stroke_width - b.stroke_width).abs() <= 0.005
    assert torch.allclose(back.background[:3], scene.background[:3], atol=0.5 / 255 + 1e-6)
    assert (render(scene) - render(back)).abs().max() < 0.02


def test_export_is_clean_svg11_one_element_per_shape_in_painters_order():
    scene = _mixed_scene()
    text = scene_to_svg(scene)
    assert 'version="1.1"' in text and 'viewBox="0 0 120 90"' in text and 'xmlns="http://www.w3.org/2000/svg"' in text
    body = [line.strip() for line in text.splitlines()[2:-1]]
    assert body[0].startswith('<rect class="background"')
    kinds = ["rect" if line.startswith("<rect") else "path" for line in body[1:]]
    assert kinds == ["rect" if s.kind == "square" else "path" for s in scene.shapes]
    assert 'fill-rule="evenodd"' in body[1] and 'stroke-linecap="round"' in body[2]
    assert all('fill="none"' in line for line in body[5:7])          # the two open strokes
    assert "style=" not in text
    for d in re.findall(r' d="([^"]*)"', text):                       # plain numbers: no exponents, <= 2 decimals
        assert re.fullmatch(r"[MCZ0-9. -]+", d)
        assert all(len(tok.split(".")[1]) <= 2 for tok in re.findall(r"[-0-9.]+", d) if "." in tok)


def test_save_and_load_files(tmp_path):
    scene = _mixed_scene()
    path = save_svg(scene, tmp_path / "out.svg")
    assert load_svg(path).width == 120


# -------------------------------------------------------------------------------------------- path data

def _subpaths(d):
    return [(torch.tensor(p, dtype=torch.float64), closed) for p, closed in parse_path_data(d)]


def test_absolute_and_relative_commands_give_the_same_curves():
    absolute = _subpaths("M10 10 L50 10 H70 V40 C70 60 50 70 30 60 S10 40 20 30 Q30 20 40 25 T60 30 Z")
    relative = _subpaths("m10 10 l40 0 h20 v30 c0 20 -20 30 -40 20 s-20-20-10-30 q10-10 20-5 t20 5 z")
    assert len(absolute) == len(relative) == 1
    assert absolute[0][1] and relative[0][1]
    assert torch.allclose(absolute[0][0], relative[0][0], atol=1e-9)


def test_smooth_commands_reflect_the_previous_control_point():
    (pts, _), = _subpaths("M0 0 C10 0 20 10 30 10 S50 20 60 20")
    assert torch.allclose(pts[4], torch.tensor([40.0, 10.0], dtype=torch.float64))      # 2 * (30,10) - (20,10)
    (pts, _), = _subpaths("M0 0 Q15 30 30 0 T60 0")
    # T reflects the quadratic control (15,30) about (30,0) to (45,-30); elevated: c1 = p0 + 2/3 (q - p0)
    assert torch.allclose(pts[4], torch.tensor([30 + 2 / 3 * 15, -20.0], dtype=torch.float64))
    mid = _bezier(pts[0:4], 0.5)
    assert torch.allclose(mid, torch.tensor([15.0, 15.0], dtype=torch.float64))           # quadratic midpoint


def test_arcs_become_cubics_on_the_ellipse():
    (pts, closed), = _subpaths("M10 50 A40 20 0 0 1 90 50 A40 20 0 1 1 10 50.001")
    for i in range(0, len(pts) - 1, 3):
        for t in (0.25, 0.5, 0.75):
            x, y = _bezier(pts[i:i + 4], t).tolist()
            assert abs(((x - 50) / 40) ** 2 + ((y - 50) / 20) ** 2 - 1) < 2e-3
    assert torch.allclose(pts[-1], torch.tensor([10.0, 50.001], dtype=torch.float64))
    (pts, _), = _subpaths("M0 0 a10 10 0 1 0 20 0")                                       # compact flags
    assert len(pts) == 7 and abs(_bezier(pts[0:4], 1.0)[1].item() - 10) < 1e-9           # sweep 0: through y=+10
    (pts, _), = _subpaths("M0 0 a5 5 0 0110 0")                                            # "0110" = flags 0,1 then 10
    assert torch.allclose(pts[-1], torch.tensor([10.0, 0.0], dtype=torch.float64))


def test_path_errors_keep_the_data_before_the_error():
    subs = _subpaths("M0 0 L10 10 L20 0 X 30 30")
    assert len(subs) == 1 and len(subs[0][0]) == 7


def test_basic_shapes_convert_to_closed_cubics():
    svg = _svg('<rect x="10" y="10" width="30" height="20" rx="5"/><circle cx="50" cy="50" r="10"/>'
               '<ellipse cx="50" cy="50" rx="20" ry="5"/><polygon points="0,0 10,0 10,10"/>'
               '<line x1="0" y1="0" x2="10" y2="10" stroke="black"/><polyline points="0 0 5 5 10 0" fill="none" '
               'stroke="red"/><rect x="1" y="1" width="5" height="5"/>')
    scene = svg_to_scene(svg)
    kinds = [s.kind for s in scene.shapes]
    assert kinds == ["path", "path", "path", "path", "stroke", "stroke", "square"]
    rounded, circle = scene.shapes[0], scene.shapes[1]
    assert rounded.segment_counts() == (8,)
    a = render(Scene(100, 100, [circle]), background=False)[..., 3].sum()
    assert abs(a.item() - math.pi * 100) < 0.5
    assert scene.shapes[6].points.tolist() == [[1.0, 1.0], [6.0, 6.0]]


def test_group_transforms_compose_in_order():
    svg = _svg('<g transform="translate(50 50)"><g transform="rotate(90)"><g transform="scale(2 1)">'
               '<rect x="0" y="0" width="10" height="5" stroke="black" stroke-width="1"/></g></g></g>'
               '<path d="M0 0 L10 0" fill="none" stroke="black" transform="matrix(1 0 0 1 5 6) skewX(45)"/>'
               '<path d="M0 0 L0 10" fill="none" stroke="black" transform="rotate(90, 10, 0)"/>')
    rect, skewed, rotated = svg_to_scene(svg).shapes
    corners = rect.points[::3]
    expected = torch.tensor([[50.0, 50.0], [50.0, 70.0], [45.0, 70.0], [45.0, 50.0]])   # x->y doubled, y->-x
    assert torch.allclose(corners, expected, atol=1e-5)
    assert torch.allclose(skewed.points[[0, -1]], torch.tensor([[5.0, 6.0], [15.0, 6.0]]), atol=1e-5)
    assert torch.allclose(rotated.points[[0, -1]], torch.tensor([[10.0, -10.0], [0.0, -10.0]]), atol=1e-5)
    assert torch.allclose(rect.stroke_width, torch.tensor(math.sqrt(2.0)))              # scaled by sqrt|det|


def test_styles_inherit_and_style_attribute_overrides_presentation_attributes():
    svg = _svg('<g fill="red" stroke="blue" stroke-width="3" opacity="0.5" color="#00ff00">'
               '<rect x="0" y="0" width="10" height="10" style="fill: #00f; fill-opacity: .5" fill="yellow" '
               'stroke="none"/><circle cx="50" cy="50" r="5" fill-rule="evenodd"/>'
               '<circle cx="20" cy="50" r="5" fill="currentColor" stroke-opacity="0.5"/>'
               '<rect x="0" y="0" width="5" height="5" display="none"/><rect x="0" y="0" width="5" height="5" '
               'visibility="hidden"/></g>')
    rect, circle, current = svg_to_scene(svg).shapes
    assert torch.allclose(rect.fill, torch.tensor([0.0, 0.0, 1.0, 0.25]))
    assert torch.allclose(circle.fill, torch.tensor([1.0, 0.0, 0.0, 0.5]))
    assert torch.allclose(circle.stroke, torch.tensor([0.0, 0.0, 1.0, 0.5]))
    assert circle.stroke_width.item() == 3.0 and circle.fill_rule == "evenodd"
    assert torch.allclose(current.fill, torch.tensor([0.0, 1.0, 0.0, 0.5]))
    assert torch.allclose(current.stroke, torch.tensor([0.0, 0.0, 1.0, 0.25]))


def test_colors_in_hex_rgb_and_names():
    assert parse_color("#f80") == (1.0, 0x88 / 255, 0.0, 1.0)
    assert parse_color("#FF8800") == (1.0, 0x88 / 255, 0.0, 1.0)
    assert parse_color("rgb(255, 0, 51)") == (1.0, 0.0, 0.2, 1.0)
    assert parse_color("rgb(100%,50%,0%)") == (1.0, 0.5, 0.0, 1.0)
    assert parse_color("rgba(0,0,255,0.25)") == (0.0, 0.0, 1.0, 0.25)
    assert parse_color("CornflowerBlue") == (100 / 255, 149 / 255, 237 / 255, 1.0)
    assert parse_color("rebeccapurple") is not None and parse_color("notacolor") is None
    # hsl(), once dropped without a word: CSS Color 4 forms, commas or spaces, a "deg" hue, alpha
    assert parse_color("hsl(0, 100%, 50%)") == (1.0, 0.0, 0.0, 1.0)
    assert parse_color("hsl(120deg 100% 25%)") == (0.0, 0.5, 0.0, 1.0)
    assert parse_color("hsla(240, 100%, 50%, 0.5)") == (0.0, 0.0, 1.0, 0.5)
    assert parse_color("hsl(1, 2, 3)") is None and parse_color("hsl(nan, 1%, 2%)") is None
    scene = svg_to_scene(_svg('<rect width="5" height="5" fill="url(#g)"/><linearGradient id="g">'
                              '<stop offset="0" stop-color="#000"/><stop offset="1" stop-color="#fff"/>'
                              '</linearGradient>'))
    assert torch.allclose(scene.shapes[0].fill[:3], torch.full((3,), 0.5))                # mean stop color


def test_viewbox_maps_onto_the_canvas_with_preserve_aspect_ratio():
    scene = svg_to_scene(_svg('<rect x="0" y="0" width="10" height="10" fill="red"/>',
                              'width="200" height="100" viewBox="0 0 10 10"'))
    assert (scene.width, scene.height) == (200, 100)
    assert scene.shapes[0].points.tolist() == [[50.0, 0.0], [150.0, 100.0]]            # xMidYMid meet
    scene = svg_to_scene(_svg('<rect x="0" y="0" width="10" height="10"/>',
                              'width="200" height="100" viewBox="0 0 10 10" preserveAspectRatio="none"'))
    assert scene.shapes[0].points.tolist() == [[0.0, 0.0], [200.0, 100.0]]
    scene = svg_to_scene(_svg('<rect x="-5" y="0" width="10" height="10"/>', 'viewBox="-5 0 10 10"'))
    assert (scene.width, scene.height) == (10, 10) and scene.shapes[0].points.tolist() == [[0.0, 0.0], [10.0, 10.0]]
    scene = svg_to_scene(_svg("", 'width="1in" height="72pt"'))
    assert (scene.width, scene.height) == (96, 96)
    scene = svg_to_scene(_svg('<rect x="10%" y="10%" width="50%" height="50%"/>',
                              'width="400" height="200" viewBox="0 0 200 100"'))    # percentages of the viewBox
    assert scene.shapes[0].points.tolist() == [[40.0, 20.0], [240.0, 120.0]]


# --------------------------------------------------------------------------------------------- hostile

def _rejects(data, *, match, **limits):
    t0 = time.process_time()
    with pytest.raises(InputError, match=match) as err:
        svg_to_scene(data, **limits)
    assert time.process_time() - t0 < 3.0
    msg = str(err.value)
    assert "\n" not in msg and msg.endswith(".")
    return msg


def test_billion_laughs_entity_bomb_is_refused_quickly():
    lol = '<!ENTITY lol "lol">' + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                                          for i in range(1, 10))
    _rejects(f'<?xml version="1.0"?><!DOCTYPE svg [{lol}]><svg xmlns="http://www.w3.org/2000/svg">'
             '<text>&lol9;</text></svg>', match="entities")


def test_external_entity_to_etc_passwd_is_refused():
    msg = _rejects('<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
                   '<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>', match="entities")
    assert "root" not in msg


def test_too_many_elements_is_refused():
    msg = _rejects('<svg xmlns="http://www.w3.org/2000/svg">' + '<path d="M0 0h1"/>' * 100_000 + "</svg>",
                   match="more than 20,000 elements")
    assert msg == "The SVG has more than 20,000 elements; at most 20,000 are allowed."


def test_malformed_documents_are_refused_with_a_clear_sentence():
    _rejects('<svg xmlns="http://www.w3.org/2000/svg"><rect width="1" height="1"/', match="not well-formed XML")
    _rejects('<html><body/></html>', match="no <svg> element")
    _rejects('<html><svg/></html>', match="root element is <html>, not <svg>")
    _rejects("   ", match="empty")
    _rejects(b"\x89PNG\r\n\x1a\n\x00\x00", match="not valid UTF-8")
    _rejects('<svg xmlns="http://www.w3.org/2000/svg">' + "<g>" * 300 + "</g>" * 300 + "</svg>", match="nests")
    _rejects('<svg xmlns="http://www.w3.org/2000/svg" width="1e9" height="10"/>', match="canvas")
    _rejects(_svg('<path d="M0 0 L1e999 0"/>'), match="non-finite")
    _rejects(_svg('<path d="M0 0' + " L1 1" * 2000 + '"/>'), match="segments", max_segments=1000)
    _rejects(_svg("<rect/>" * 10), match="at most 100 bytes", max_bytes=100)
    _rejects(_svg('<rect transform="rotate(oops)" width="1" height="1"/>'), match="transform")


def test_load_svg_of_a_missing_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_svg(tmp_path / "missing.svg")


# ------------------------------------------------------------------------------------------------- CLI

def test_cli_renders_an_svg_to_png(tmp_path):
    src = tmp_path / "in.svg"
    src.write_text(_svg('<circle cx="50" cy="50" r="30" fill="red"/>', 'width="100" height="50" viewBox="0 0 100 50"'))
    out = tmp_path / "out.png"
    proc = subprocess.run([sys.executable, "-m", "backends.svg", "render", str(src), str(out), "--size", "64"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    img = Image.open(out)
    assert img.size == (64, 32) and img.getpixel((32, 16))[:3] == (255, 0, 0)


def test_cli_reports_a_bad_file_on_one_line_with_exit_code_2(tmp_path):
    bad = tmp_path / "bad.svg"
    bad.write_text("<svg><unclosed></svg>")
    proc = subprocess.run([sys.executable, "-m", "backends.svg", "render", str(bad), str(tmp_path / "o.png")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "well-formed" in lines[0]


def test_every_svg_of_the_shared_hostile_corpus_is_refused_without_leaking(tmp_path):
    corpus = hostile.make_corpus(tmp_path)
    for name, path in corpus.items():
        if hostile.CORPUS[name][0] != "svg":
            continue
        t0 = time.process_time()
        with pytest.raises(InputError) as err:
            load_svg(path)
        assert time.process_time() - t0 < 2.0, name
        assert hostile.SECRET_TEXT not in str(err.value) and "\n" not in str(err.value)


# -------------------------------------------------------------------------------------------- warnings

def test_what_import_approximates_or_skips_is_said_once_per_kind_with_counts():
    scene = svg_to_scene(_svg('<linearGradient id="a"><stop stop-color="red"/></linearGradient>'
                              '<radialGradient id="b"><stop stop-color="blue"/></radialGradient>'
                              '<rect width="5" height="5" fill="url(#a)"/><rect width="5" height="5" fill="url(#a)"/>'
                              '<circle r="3" fill="url(#b)" filter="url(#f)"/><text>a</text><text>b</text>'
                              '<text>c</text><image href="x.png"/><mask id="m"/><style>rect{fill:red}</style>'))
    assert scene.warnings == ["2 gradients were drawn as their mean colour.", "1 element with a filter was drawn "
                              "without it.", "3 <text> elements were skipped.", "1 <image> element was skipped.",
                              '1 <style> sheet was ignored (only attributes and style="..." are read).']
    assert scene.detach().warnings == scene.warnings and scene.to("cpu").warnings == scene.warnings


def test_the_fidelity_corpus_imports_without_warnings():
    from tests.svg_corpus import CORPUS

    assert {name: svg_to_scene(text).warnings for name, text in CORPUS} == {name: [] for name, _ in CORPUS}


def test_malformed_path_data_is_drawn_up_to_the_error_and_warned_about():
    scene = svg_to_scene(_svg('<path d="M10 10 L90 10 L90 90 Z"/><path d="M10 10 L50 50 L 60 oops 70 L 1 1"/>'))
    assert len(scene.shapes) == 2                                        # the part before the error is kept
    assert scene.warnings == ["1 path has malformed data (d) and was drawn up to the first error (the first "
                              "after 'M10 10 L50 50 L 60'), as the SVG spec says."]


def test_lengths_in_an_unknown_unit_are_warned_about_with_their_attribute_and_element():
    # the text alone ('2vw', '20rem') gave no way to find the element in a large file
    scene = svg_to_scene(_svg('<rect x="2vw" y="1" width="20rem" height="30"/><circle cx="50" cy="50" r="10"/>'
                              '<rect id="field" width="3furlongs" height="auto"/>'))
    assert scene.warnings == ["4 lengths could not be read (x '2vw' on <rect>: unknown unit 'vw'; width '20rem' on "
                              "<rect>: unknown unit 'rem'; width '3furlongs' on <rect id=\"field\">: unknown unit "
                              "'furlongs'; height 'auto' on <rect id=\"field\">: not a number) and the default was "
                              "used (the units read are px, pt, pc, mm, cm, in, em, ex and %)."]
    assert svg_to_scene(_svg('<rect x="2mm" width="2in" height="3pt"/>')).warnings == []


def test_percentages_inside_a_nested_svg_refer_to_its_own_viewbox():
    # the inner svg maps its 10x10 viewBox onto 50x50 px at (50, 0); 50% of it is 5 units, 25 px
    scene = svg_to_scene(_svg('<svg x="50%" width="50" height="50" viewBox="0 0 10 10">'
                              '<rect width="50%" height="100%" fill="red"/></svg>'))
    pts = scene.shapes[0].points
    assert pts[:, 0].min().item() == pytest.approx(50) and pts[:, 0].max().item() == pytest.approx(75)
    assert pts[:, 1].max().item() == pytest.approx(50)
