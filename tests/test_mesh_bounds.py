"""backends.mesh.load_mesh against round 4's hostile meshes (tests/hostile.make_hostile_meshes): each is refused
in one sentence naming the file, before trimesh decodes a texture or copies a mesh; the CLI says it in one line
(exit 2); and what is within the limits in the same forms (a GIF texture, a mesh placed by several nodes, a strip)
loads to what it holds."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backends.core.errors import InputError
from backends.mesh import load_mesh
from tests.hostile import glb_bytes, glb_declaring, glb_geometry, grid_triangles, make_hostile_meshes, mesh_zip

ROOT = Path(__file__).resolve().parents[1]
PEAK_KB = ("def peak_kb():\n"  # VmHWM: ru_maxrss keeps the high mark of the process that forked this one
           "    with open('/proc/self/status') as fh:\n"
           "        return next(int(line.split()[1]) for line in fh if line.startswith('VmHWM'))\n")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    return make_hostile_meshes(tmp_path_factory.mktemp("meshes"))


CASES = ["gif_texture.zip", "tga_texture.zip", "tiff_texture.zip", "named_txt_texture.zip", "eps_texture.zip", "strip.glb", "fan.glb",
         "instanced.glb", "nested_instances.glb", "continued_faces.zip", "vectorized_faces.zip",
         "many_lines.zip", "upper_map_kd.zip", "mtllib_in_comment.zip",
         "outside_image.glb", "buffers_object.gltf", "images_number.gltf", "deep.gltf", "huge_integer.gltf",
         "far_vertices.glb", "one_point.glb", "bad_index.glb", "face_zero.zip", "flat_line.glb", "broken.zip"]


def test_the_case_list_names_every_hostile_mesh(hostile):
    assert sorted(CASES) == sorted(hostile)


@pytest.mark.parametrize("name", CASES)
def test_a_hostile_mesh_is_refused_in_one_sentence_naming_the_file_and_its_fault(hostile, name, recwarn):
    path, words = hostile[name]
    with pytest.raises(InputError) as err:
        load_mesh(path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and f"'{name}'" in message, message
    assert words in message, message
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]  # no numpy warning on the way


def _peak_mb_of_loading(path: Path) -> tuple[str, float]:
    """load_mesh(path) in a child process: (its one line of outcome, its peak resident memory in MB)."""
    code = (PEAK_KB + "import sys\nfrom backends.mesh import load_mesh\nfrom backends.core.errors import InputError\n"
            "try:\n    load_mesh(sys.argv[1]); print('loaded')\nexcept InputError as e:\n    print(e)\n"
            "print(peak_kb())\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
    line, peak_kb = out.stdout.strip().splitlines()
    return line, int(peak_kb) / 1024


def test_gif_textures_of_5700_pixels_a_side_are_refused_before_any_is_decoded(tmp_path):
    """24 GIFs declaring 5700x5700 (each 97 MB decoded; trimesh decoded them all): refused from the first header,
    the process staying near its size after importing torch and trimesh."""
    from tests.hostile import _gif_with_canvas

    gif = _gif_with_canvas(5700, 5700)
    path = tmp_path / "gifs.zip"
    path.write_bytes(mesh_zip(mtl=b"".join(b"newmtl m%d\nmap_Kd t%d.gif\n" % (k, k) for k in range(24)),
                              **{f"t{k}.gif": gif for k in range(24)}))
    line, peak_mb = _peak_mb_of_loading(path)
    assert "5700x5700" in line
    assert peak_mb < 1500, peak_mb


def test_a_gif_texture_within_the_limits_loads_with_its_colours(tmp_path):
    red = Image.new("RGB", (16, 16), (255, 0, 0))
    gif = tmp_path / "t.gif"
    red.save(gif)
    path = tmp_path / "red.zip"
    path.write_bytes(mesh_zip(mtl=b"newmtl a\nmap_Kd t.gif\n", **{"t.gif": gif.read_bytes()}))
    mesh = load_mesh(path)
    assert len(mesh.faces) == 1
    assert mesh.texture[..., 0].min() > 0.9 and mesh.texture[..., 1:].max() < 0.1


def test_a_mesh_placed_by_several_nodes_loads_once_per_node_within_the_limit(tmp_path):
    vertices, indices = grid_triangles(4)
    nodes = [{"mesh": 0, "translation": [0, 0, 2.0 * k]} for k in range(3)]
    path = tmp_path / "three.glb"
    path.write_bytes(glb_geometry(vertices, indices, nodes=nodes))
    assert len(load_mesh(path).faces) == 12


def test_a_triangle_strip_within_the_limit_loads_as_its_triangles(tmp_path):
    vertices = np.array([[0, 0, 0], [0, 1, 0], [1, 0, 0], [1, 1, 0], [2, 0, 0]], np.float32)
    path = tmp_path / "strip.glb"
    path.write_bytes(glb_geometry(vertices, np.arange(5), mode=5))
    assert len(load_mesh(path).faces) == 3


def test_an_obj_with_an_upper_case_map_kd_inside_the_zip_loads_its_texture(tmp_path):
    blue = tmp_path / "t.png"
    Image.new("RGB", (8, 8), (0, 0, 255)).save(blue)
    path = tmp_path / "blue.zip"
    path.write_bytes(mesh_zip(mtl=b"newmtl a\nMAP_KD t.png\n", **{"t.png": blue.read_bytes()}))
    assert load_mesh(path).texture[..., 2].min() > 0.9


@pytest.mark.parametrize("name", ["gif_texture.zip", "instanced.glb", "continued_faces.zip", "far_vertices.glb"])
def test_the_cli_refuses_a_hostile_mesh_in_one_line_with_exit_2(hostile, name, tmp_path):
    path, words = hostile[name]
    proc = subprocess.run([sys.executable, "-m", "backends", "run", "views3d/csd-edit-mesh", "--input", str(path),
                           "--set", "prompt=make it night", "--prior", "edits", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and words in lines[0], proc.stderr


def _textured_box(path: Path, side: int) -> Path:
    """A box with a side x side gradient texture (a few hundred KB as PNG), as a .glb."""
    import trimesh

    y, x = np.mgrid[0:side, 0:side]
    rgb = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], -1).astype(np.uint8)
    box = trimesh.creation.box()
    uv = np.random.default_rng(0).uniform(0.01, 0.99, (len(box.vertices), 2))
    material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.fromarray(rgb),
                                                   baseColorFactor=[255, 255, 255, 255])
    box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
    box.export(path, file_type="glb")
    return path


def test_mesh_texels_gives_the_loaded_texture_s_size_from_the_headers(tmp_path):
    from backends.mesh import mesh_texels

    path = _textured_box(tmp_path / "box.glb", 600)
    assert mesh_texels(path) == 600 * 600 == int(np.prod(load_mesh(path).texture.shape[:2]))
    small = _textured_box(tmp_path / "small.glb", 100)  # may be drawn into an atlas of 512 px a side
    assert mesh_texels(small) == 512 * 512


def test_a_4096_texture_over_the_memory_budget_is_refused_in_one_line_before_the_run(tmp_path):
    """The stated largest texture: the estimate counts what its fits hold (3.3 GB), so a budget of 2.5 GB refuses it
    before the run, from the texture's header and the mesh's triangles: the texture is never decoded (the CLI's
    process peaked at 576 MB, 520 MB after its imports alone; 968 MB when the estimate read the mesh whole)."""
    path = _textured_box(tmp_path / "big.glb", 4096)
    code = (PEAK_KB + "import sys\nfrom backends.__main__ import main\nrc = main(sys.argv[1:])\n"
            "print(rc, peak_kb())\n")
    env = dict(os.environ, PYTHONPATH=str(ROOT), DISTILL_MEMORY_BUDGET="2.5GB")
    proc = subprocess.run([sys.executable, "-c", code, "run", "views3d/csd-edit-mesh", "--input", str(path),
                           "--set", "prompt=make it night", "--prior", "edits", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, env=env, timeout=300)
    rc, peak_kb = proc.stdout.split()[-2:]
    lines = proc.stderr.strip().splitlines()
    assert rc == "2" and len(lines) == 1 and "memory" in lines[0] and "DISTILL_MEMORY_BUDGET" in lines[0], lines
    assert "a 4096x4096 texture" in lines[0] and "lower the texture's size" in lines[0], lines
    assert int(peak_kb) / 1024 < 750  # a float copy of the texture alone is 200 MB
    assert not (tmp_path / "out" / "result.json").exists()


@pytest.mark.parametrize("backend", ["views3d/csd-edit", "views3d/per-view"])
def test_a_mesh_given_to_a_views_method_names_the_method_that_takes_a_mesh(tmp_path, backend):
    from backends.core import registry, runner
    from backends.core.settings import make_settings

    path = _textured_box(tmp_path / "box.glb", 16)
    zipped = tmp_path / "obj.zip"
    zipped.write_bytes(mesh_zip())
    cls = registry.get(backend)
    for given in (path, zipped):
        with pytest.raises(InputError) as err:  # the run's first check (the estimate, from headers)
            runner.work_of(cls, make_settings(cls.Settings, {"prompt": "make it night"}), [str(given)], None)
        assert str(err.value) == (f"The file {given.name!r} is a textured mesh; {backend} edits views (images or an "
                                  f"orbit video), {backend}-mesh edits a mesh.")


def _bytes_read() -> int:
    """Bytes this process has read through read() so far (/proc/self/io's rchar)."""
    with open("/proc/self/io") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("rchar"))


def test_a_glb_whose_json_breaks_a_limit_is_refused_before_its_binary_chunk_is_read(tmp_path):
    """A 40 MB GLB whose JSON declares 300,000 triangles: refused from its header and JSON chunk, the 40 MB binary
    chunk never read (the whole file was read before its JSON was looked at)."""
    data = glb_declaring(300_000)
    gltf = json.loads(data[20 : 20 + struct.unpack("<L", data[12:16])[0]])
    path = tmp_path / "big.glb"
    path.write_bytes(glb_bytes(gltf, bytes(40 * 1024 * 1024)))
    before = _bytes_read()
    with pytest.raises(InputError, match="300,000 triangles"):
        load_mesh(path)
    assert _bytes_read() - before < 1024 * 1024, _bytes_read() - before


def _with_json(glb: bytes, change, padding: int = 0) -> bytes:
    """`glb` with its JSON changed by `change(gltf)`, its binary chunk kept and `padding` zero bytes added to it."""
    json_len = struct.unpack("<L", glb[12:16])[0]
    gltf = json.loads(glb[20 : 20 + json_len])
    binary = glb[28 + json_len :] + bytes(padding)
    gltf["buffers"][0]["byteLength"] = len(binary)
    change(gltf)
    return glb_bytes(gltf, binary)


def _zeros_accessor(gltf):  # an accessor without a view: 128 MB of zeros trimesh would make
    gltf["accessors"].append({"componentType": 5126, "count": 2_000_000, "type": "MAT4"})


def _views_over_the_buffer(gltf):  # 60 views of the whole 1 MB buffer: 60 MB of copies
    gltf["bufferViews"] += [{"buffer": 0, "byteLength": gltf["buffers"][0]["byteLength"]}] * 60


def _bufferless_positions(gltf):  # 3 million vertices for one triangle
    gltf["accessors"].append({"componentType": 5126, "count": 3_000_000, "type": "VEC3"})
    gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"] = len(gltf["accessors"]) - 1


def _empty_objects(gltf):  # 1.5 million dicts in Python
    gltf["extras"] = [{}] * 1_500_000


@pytest.mark.parametrize("change, words", [(_zeros_accessor, "accessors of"),
                                           (_views_over_the_buffer, "buffer views of"),
                                           (_bufferless_positions, "3,000,000 vertices"),
                                           (_empty_objects, "items in its JSON")])
def test_a_glb_whose_json_declares_more_than_its_limits_is_refused_from_the_json(tmp_path, change, words):
    """What trimesh would make of the JSON (an accessor's array, a view's copy, a primitive's vertices, the JSON's
    own objects) judged before it runs: each refused in one sentence naming the file."""
    path = tmp_path / "declares.glb"
    path.write_bytes(_with_json(glb_geometry(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), [0, 1, 2]),
                                change, padding=1024 * 1024))
    with pytest.raises(InputError) as err:
        load_mesh(path)
    message = str(err.value)
    assert words in message and "'declares.glb'" in message and "\n" not in message, message


def test_a_glb_whose_header_declares_another_length_than_the_file_s_is_refused(tmp_path):
    data = glb_geometry(np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0]], np.float32), [0, 1, 2])
    path = tmp_path / "long.glb"
    path.write_bytes(data + bytes(64))
    with pytest.raises(InputError, match=f"declares {len(data):,} bytes"):
        load_mesh(path)
    path.write_bytes(data)
    assert len(load_mesh(path).faces) == 1


def test_the_tab_s_upload_viewer_refuses_a_hostile_mesh_before_decoding_it(hostile, tmp_path):
    """The 3D-view tab reads an uploaded zip for its viewer as soon as it lands (before Run): by the same loader,
    so the same refusal (the tab then hides the viewer and Run says why)."""
    from demo.views3d_tab import mesh_view

    for name in ("gif_texture.zip", "continued_faces.zip", "upper_map_kd.zip"):
        path, words = hostile[name]
        with pytest.raises(InputError, match=words):
            mesh_view(str(path), str(tmp_path))


def test_the_tab_s_upload_viewer_checks_a_glb_before_the_viewer_reads_it(tmp_path):
    """A .glb goes to the viewer as uploaded, framed by trimesh (every texture decoded): a 16384x16384 texture
    declared in its header is refused first, as a run refuses it (the tab then hides the viewer)."""
    from demo.views3d_tab import mesh_view
    from tests.hostile import png_with_declared_size

    path = tmp_path / "huge_texture.glb"
    path.write_bytes(glb_declaring(1, png_with_declared_size(16384, 16384)))
    with pytest.raises(InputError, match="16384x16384"):
        mesh_view(str(path), str(tmp_path))
    good = _textured_box(tmp_path / "box.glb", 16)
    assert mesh_view(str(good), str(tmp_path)) == str(good)


def _zip_with_bmp(path: Path, width: int, height: int) -> Path:
    """A zipped .obj whose texture is a 24-bit BMP of width x height, all black (deflated to about 1/1000), written
    member by member without holding the image."""
    import struct
    import zipfile

    row = (width * 3 + 3) // 4 * 4
    header = (b"BM" + struct.pack("<IHHI", 54 + row * height, 0, 0, 54)
              + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, row * height, 2835, 2835, 0, 0))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.obj", b"v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nmtllib m.mtl\nusemtl a\n"
                             b"f 1/1 2/2 3/3\n")
        zf.writestr("m.mtl", b"newmtl a\nmap_Kd t.bmp\n")
        with zf.open("t.bmp", "w", force_zip64=True) as member:
            member.write(header)
            chunk = bytes(row * 256)
            for start in range(0, height, 256):
                member.write(chunk[: row * min(256, height - start)])
    return path


def test_a_zipped_texture_too_large_is_refused_from_its_header_before_it_is_unpacked(tmp_path):
    """A 7000x6000 BMP (126 MB unpacked, 123 KB zipped): refused from its first bytes, the loader's peak no higher
    than loading a small mesh's (the member was unpacked whole first: about 126 MB more)."""
    line, peak_mb = _peak_mb_of_loading(_zip_with_bmp(tmp_path / "big.zip", 7000, 6000))
    small_line, small_mb = _peak_mb_of_loading(_zip_with_bmp(tmp_path / "small.zip", 64, 64))
    assert "7000x6000" in line and "'big.zip'" in line, line
    assert small_line == "loaded"
    assert peak_mb < small_mb + 60, (peak_mb, small_mb)


def test_loading_meshes_in_threads_leaves_the_process_s_warning_filters_alone(tmp_path):
    """Requests run in threads: a mesh loaded in one must not change the warning filters another decodes under
    (catch_warnings around trimesh's load swapped the process's list while it ran, and two loads racing could
    leave either one's list in place)."""
    import threading
    import warnings

    from backends import mesh as _mesh  # noqa: F401  (its module-level filters in place before the snapshot)

    path = _textured_box(tmp_path / "box.glb", 64)
    before = list(warnings.filters)
    changed, done = [], threading.Event()

    def load(times: int) -> None:
        for _ in range(times):
            load_mesh(path)

    def watch() -> None:
        while not done.is_set():
            if warnings.filters != before:
                changed.append(list(warnings.filters[:2]))
                return

    watcher = threading.Thread(target=watch)
    loaders = [threading.Thread(target=load, args=(15,)) for _ in range(2)]
    watcher.start()
    for t in loaders:
        t.start()
    for t in loaders:
        t.join()
    done.set()
    watcher.join()
    assert not changed and warnings.filters == before, changed
