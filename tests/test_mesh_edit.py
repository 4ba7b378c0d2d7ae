"""views3d/csd-edit-mesh and views3d/per-view-mesh: a textured mesh in, the edited mesh out, on the offline
`edits` prior."""
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import backends
from backends.core.errors import InputError
from backends.mesh import Camera, load_mesh, rasterize, render
from PIL import Image

EXAMPLE_HOUSE = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"
SMALL = {"steps": 6, "every": 2, "sync_every": 2, "short_side": 32, "particles": 4, "fit_steps": 10,
         "turntable_frames": 4, "seed": 0}


@pytest.fixture
def mesh_backends():
    from backends.csd_edit import views3d_mesh

    return views3d_mesh


@pytest.mark.parametrize("key", ["views3d/csd-edit-mesh", "views3d/per-view-mesh"])
def test_a_mesh_run_writes_the_edited_mesh_its_texture_a_turntable_and_its_fit_residuals(mesh_backends, key,
                                                                                         tmp_path, monkeypatch):
    reads = []
    monkeypatch.setattr(mesh_backends, "load_mesh", lambda path: reads.append(path) or load_mesh(path))
    result = backends.run_to_end(key, {**SMALL, "prompt": "make it night"}, prior="edits",
                                 inputs=[str(EXAMPLE_HOUSE)], out_dir=tmp_path)
    # the checks before the prior read the triangles alone, kept for the next estimate; the run reads the mesh
    # whole once, and nothing keeps its texture
    assert len(reads) == 1 and not hasattr(mesh_backends._last[1], "texture")
    assert set(result.files) == {"glb", "texture", "gif", "mp4", "zip", "comparison", "json"}
    source, edited = load_mesh(EXAMPLE_HOUSE), load_mesh(result.files["glb"])
    assert len(edited.faces) == len(source.faces) and np.allclose(edited.vertices, source.vertices, atol=1e-6)
    assert edited.texture.shape == source.texture.shape
    # the turntable at its own size (512 px by default), drawn from the full texture and scaled down
    assert Image.open(result.files["gif"]).size == (512, 512) and result.metadata["turntable_size"] == [512, 512]
    # night darkens the texels the views show (about 40% of the atlas); the floor, which no view shows, keeps its
    # colours
    changed = (edited.texture - source.texture).abs().sum(-1) > 0.02
    assert 0.2 < float(changed.float().mean()) < 0.6
    assert float(edited.texture[changed].mean()) < float(source.texture[changed].mean()) - 0.05
    assert torch.allclose(edited.texture[256:384, 0:128], source.texture[256:384, 0:128], atol=1 / 255 + 1e-6)
    meta = json.loads((tmp_path / "result.json").read_text())
    found = meta["metrics"]
    assert 0 < found["fit_residual"] < 0.2 and 0 < found["held_out_residual"] < 0.3
    assert len(meta["sync_residuals"]) == 2  # steps 6, a carry every 2: at 2 and 4 (the last fit makes the texture)
    assert meta["triangles"] == len(source.faces) and meta["texture_size"] == [512, 512]
    # the recorded cameras are the views': the edited mesh seen from camera k looks like edited view k
    assert len(meta["cameras"]) == meta["views"] == SMALL["particles"]
    with zipfile.ZipFile(result.files["zip"]) as z:
        names = sorted(z.namelist())
        view = torch.from_numpy(np.array(Image.open(io.BytesIO(z.read(names[0]))).convert("RGB"))).float() / 255
    side = meta["work_size"][0]

    def distance(k: int) -> float:
        raster = rasterize(edited, [Camera(**{n: np.asarray(v) if n != "fov" else v
                                              for n, v in meta["cameras"][k].items()})], side)
        seen = raster.mask[0]
        drawn = render(edited.texture, raster)[0].permute(1, 2, 0)
        return float((drawn - view).abs()[seen | (view.sum(-1) < 2.9)].mean())

    assert distance(0) < 0.1 < distance(1)


def test_a_mesh_the_run_cannot_read_is_refused_before_the_prior_loads(mesh_backends, tmp_path, monkeypatch):
    from backends.core import runner

    def no_load(*args, **kwargs):
        raise AssertionError("the prior was loaded")

    monkeypatch.setattr(runner, "load_prior", no_load)
    photo = tmp_path / "photo.png"
    from PIL import Image

    Image.new("RGB", (8, 8)).save(photo)
    with pytest.raises(InputError, match=r"^The file 'photo.png' is not a mesh this app reads; upload .*\.$"):
        backends.run_to_end("views3d/csd-edit-mesh", {**SMALL, "prompt": "make it night"}, prior="edits",
                            inputs=[str(photo)], out_dir=tmp_path / "out")
    with pytest.raises(InputError, match="takes exactly one input"):
        backends.run_to_end("views3d/csd-edit-mesh", {**SMALL, "prompt": "make it night"}, prior="edits",
                            inputs=[str(EXAMPLE_HOUSE)] * 2, out_dir=tmp_path / "out")


def _house_with_texture(path: Path, side: int) -> Path:
    """The example house with a side x side gradient texture (compressible: a 4096 px one is a few hundred KB)."""
    import trimesh

    scene = trimesh.load(EXAMPLE_HOUSE, force="scene", process=False)
    y, x = np.mgrid[0:side, 0:side]
    rgb = np.stack([x * 255 // side, y * 255 // side, (x + y) * 127 // side], -1).astype(np.uint8)
    for geometry in scene.geometry.values():
        geometry.visual.material.baseColorTexture = Image.fromarray(rgb)
    scene.export(path, file_type="glb")
    return path


def test_the_expected_time_grows_with_the_texture_as_the_run_s_cpu_time_does(tmp_path):
    """The house at the stated largest texture, 4096x4096, and at its own 512x512, 2 steps, each run in a fresh
    process (`benchmarks.calibrate_time.run_cold`: CPU seconds from the run's start, after its prior loaded): what
    the texture adds to the expected seconds is what it adds to the run's CPU seconds, within 3x either way. The
    texture's work once grew with its texels at every fit iteration: 421 s at steps=2 against 19 s expected."""
    from backends.core import runner
    from benchmarks.calibrate_time import run_cold

    key, settings = "views3d/csd-edit-mesh", {"prompt": "make it night", "steps": 2}
    expected, cpu = {}, {}
    for side in (512, 4096):
        path = str(_house_with_texture(tmp_path / f"house{side}.glb", side))
        expected[side] = runner.expect(key, settings, prior="edits", inputs=[path]).seconds
        cpu[side] = run_cold(key, settings, [path], prior="edits")["cpu"]
    added, measured = expected[4096] - expected[512], cpu[4096] - cpu[512]
    assert measured > 0 and 1 / 3 < added / measured < 3, (expected, cpu)


# in a child process, one torch thread: how much more than it holds each step of a run's end makes it hold at peak
# (/proc/self/clear_refs restarts the peak), for a mesh with the largest texture allowed
_PEAKS_CHILD = """
import sys
import numpy as np
import torch
from backends.mesh import Mesh, fit_texture, held_out_residual, orbit, rasterize, save_glb

def held_mb(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(key)) / 1024

def extra_mb(fn):
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    start = held_mb("VmRSS")
    out = fn()
    return out, held_mb("VmHWM") - start

torch.set_num_threads(1)
vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
texture = torch.full((4096, 4096, 3), 0.5)
mesh = Mesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), vertices[:, :2].copy(), texture)
raster = rasterize(mesh, orbit(mesh, 4), 32)
targets = torch.full((4, 3, 32, 32), 0.25)
fit_texture(targets, raster, texture, steps=2)  # the first call's one-time costs, not measured
fitted, fit = extra_mb(lambda: fit_texture(targets, raster, texture, steps=2)[0])
_, held_out = extra_mb(lambda: held_out_residual(targets, raster, texture, steps=2))
_, save = extra_mb(lambda: save_glb(mesh, fitted, sys.argv[1]))
print(round(fit), round(held_out), round(save))
"""


def test_the_end_of_a_run_holds_no_texture_copy_it_no_longer_needs(tmp_path):
    """A 4096x4096 texture is 192 MiB as float. A fit holds one more at its peak, its result, and little beside
    (it held 464 MiB above what the process held: its visible texels grown by a float max-pool, the change
    upsampled three channels at once, a `where` through a temporary); the held-out pair does not hold the first
    fit's texture through the second, and a half that shows nothing (two of these views see the square edge-on)
    is not fitted at the texture's own size (1,328 MiB); saving makes it 8-bit a band at a time."""
    import os
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", _PEAKS_CHILD, str(tmp_path / "t.glb")], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(root)), timeout=600, check=True)
    fit, held_out, save = (int(v) for v in out.stdout.split())
    assert fit < 320, fit
    assert held_out < 320, held_out
    assert save < 400, save
