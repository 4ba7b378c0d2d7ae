"""Property-based fuzzing of the SVG importer: whatever arrives, the answer is a Scene or one InputError,
quickly, and a Scene it returns can be rendered and exported."""
import time  # bounds below are process CPU seconds (work), not wall clock: a busy machine stretches only the latter

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backends.core.errors import InputError
from backends.svg.render import render
from backends.svg.svgio import scene_to_svg, svg_to_scene

FUZZ = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

numbers = st.one_of(st.integers(-300, 300).map(str), st.floats(-1e4, 1e4, allow_nan=False).map(lambda f: f"{f:.3g}"),
                    st.sampled_from(["nan", "inf", "-inf", "1e999", ".", "-", "1e", "--1", "0x10", ""]))
commands = st.sampled_from(list("MmLlHhVvCcSsQqTtAaZz") + ["X", " ", ","])
path_data = st.lists(st.one_of(commands, numbers), max_size=40).map(" ".join)
colors = st.one_of(st.sampled_from(["red", "none", "#abc", "#a1b2c3", "#zzz", "rgb(10,20,30)", "rgb(300%,-5,x)",
                                    "currentColor", "url(#g)", "transparent", "hsl(1,2,3)", ""]), st.text(max_size=10))
transforms = st.one_of(st.sampled_from(["", "translate(10 20)", "scale(2)", "rotate(45 50 50)", "skewX(30)",
                                        "matrix(1 0 0 1 5 5)", "matrix(0 0 0 0 0 0)", "scale(1e300)", "rotate()"]),
                       st.text(max_size=15))


def element(tag_and_attrs):
    tag, d, fill, stroke, width, tf, rule = tag_and_attrs
    geo = {"path": f'd="{d}"', "rect": 'x="5" y="5" width="40" height="30" rx="4"', "circle": 'cx="50" cy="50" r="20"',
           "ellipse": 'cx="50" cy="50" rx="30" ry="10"', "line": 'x1="0" y1="0" x2="90" y2="90"',
           "polyline": f'points="{d}"', "polygon": f'points="{d}"', "g": ""}[tag]
    attrs = f'{geo} fill="{fill}" stroke="{stroke}" stroke-width="{width}" transform="{tf}" fill-rule="{rule}"'
    return f"<{tag} {attrs}/>"


elements = st.tuples(st.sampled_from(["path", "rect", "circle", "ellipse", "line", "polyline", "polygon", "g"]),
                     path_data, colors, colors, numbers, transforms, st.sampled_from(["nonzero", "evenodd", "x"]))


def parse_or_reject(text):
    start = time.process_time()
    try:
        scene = svg_to_scene(text)
    except InputError as err:
        msg = str(err)
        assert msg and "\n" not in msg and "Traceback" not in msg
        scene = None
    assert time.process_time() - start < 2.0
    return scene


@FUZZ
@given(st.lists(elements, max_size=8), st.sampled_from(['viewBox="0 0 100 100"', 'viewBox="0 0 0 0"', 'viewBox="a b"',
                                                        'width="100" height="100"', 'width="-5" height="1e9"', ""]))
def test_any_svg_document_gives_a_scene_or_one_input_error(elems, root_attrs):
    text = f'<svg xmlns="http://www.w3.org/2000/svg" {root_attrs}>{"".join(map(element, elems))}</svg>'
    scene = parse_or_reject(text)
    if scene is not None and scene.width * scene.height <= 1024 * 1024:
        img = render(scene, size=32)
        assert torch.isfinite(img).all()
        assert parse_or_reject(scene_to_svg(scene)) is not None  # what we export, we can read back


@FUZZ
@given(st.binary(max_size=400))
def test_random_bytes_are_rejected_cleanly(data):
    parse_or_reject(data)


@FUZZ
@given(st.text(max_size=300))
def test_random_text_inside_an_svg_root_is_handled(body):
    parse_or_reject(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">{body}</svg>')


# 100 KB runs of each character class, where a pattern could backtrack: after a number's digits, inside rgb( ),
# between a length and its unit; and a chain of url() fallbacks. Each must be read (or refused) in linear time.
RUN = 100_000
HOSTILE_VALUES = {
    "digits": "1" * RUN + "x",
    "digits, dot, digits": "1" * (RUN // 2) + "." + "1" * (RUN // 2) + "!",
    "spaces after a number": "5" + " " * RUN + "!",
    "spaces after a unit": "5px" + " " * RUN + "!",
    "rgb( and spaces": "rgb(" + " " * RUN,
    "rgb( spaces )x": "rgb(" + " " * RUN + ")x",
    "letters": "a" * RUN,
    "spaces, then not a transform": " " * RUN + "x",
}


def test_hostile_attribute_values_are_read_in_linear_time():
    from backends.svg.svgio import parse_color, parse_length

    for name, value in HOSTILE_VALUES.items():
        start = time.process_time()
        assert parse_length(value) is None and parse_color(value) is None, name
        for attr in ("width", "fill", "stroke-width", "transform"):
            parse_or_reject(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><rect {attr}="{value}"/></svg>')
        assert time.process_time() - start < 2.0, name  # quadratic backtracking took 99 s on 30,000 digits


def test_a_long_chain_of_url_fallbacks_is_followed_without_recursion():
    chain = " ".join(f"url(#m{i})" for i in range(5000)) + " red"
    scene = parse_or_reject(f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10">'
                            f'<rect width="5" height="5" fill="{chain}"/></svg>')
    assert scene is not None and len(scene.shapes) == 1  # the last fallback, red, fills it
