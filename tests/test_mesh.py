"""backends.mesh: loading bounded, rasterizing once, rendering and fitting a texture, saving a GLB."""
import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from backends.core.errors import InputError
from backends.mesh.matching import near_silhouette
from backends.mesh import (Camera, Mesh, correspondence, fit_texture, held_out_residual, load_mesh, orbit, rasterize,
                           render, save_glb, seen_texels)
from backends.mesh.raster import grown, project, upsampled
from tests.hostile import OBJ_TRIANGLE, glb_declaring

EXAMPLE_HOUSE = Path(__file__).resolve().parent.parent / "examples" / "views3d" / "house.glb"

# +x, -x, +y, -y, +z, -z: each face its own colour, in a 3x2 atlas of 32-px tiles
COLORS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [1, 0, 1], [0, 1, 1]], np.float32)
NORMALS = np.array([[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]], np.float64)


def painted_cube() -> Mesh:
    """A unit cube centred at the origin, 24 vertices, 12 triangles; face k's UVs sit inside atlas tile k."""
    vertices, faces, uv = [], [], []
    for k, n in enumerate(NORMALS):
        a = np.roll(n, 1)
        b = np.cross(n, a)
        corners = [0.5 * n + sa * 0.5 * a + sb * 0.5 * b for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        col, row = k % 3, k // 3
        for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
            u = (col + 0.5 + 0.3 * sa) / 3.0
            v = 1.0 - (row + 0.5 + 0.3 * sb) / 2.0
            uv.append((u, v))
        base = 4 * k
        faces += [(base, base + 1, base + 2), (base, base + 2, base + 3)]
        vertices += corners
    texture = torch.zeros(64, 96, 3)
    for k in range(6):
        col, row = k % 3, k // 3
        texture[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32] = torch.from_numpy(COLORS[k])
    return Mesh(np.array(vertices, np.float32), np.array(faces, np.int64), np.array(uv, np.float32), texture)


def test_cube_faces_render_their_colours_where_the_camera_sees_them():
    mesh = painted_cube()
    cameras = [Camera(np.array([2.0, 1.6, 2.4]), np.zeros(3), np.array([0.0, 1.0, 0.0]), 40.0)]
    raster = rasterize(mesh, cameras, 64)
    views = render(mesh.texture, raster, 1.0)
    assert views.shape == (1, 3, 64, 64)
    assert views[0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]  # a corner pixel shows the background
    for k in (0, 2, 4):  # +x, +y, +z face the camera
        pix, _ = project(cameras[0], NORMALS[k][None] * 0.5, 64, 64)
        x, y = (int(v) for v in pix[0])
        shade = float(raster.shade[0, y, x])
        assert raster.mask[0, y, x] and 0.3 < shade <= 1.0
        assert torch.allclose(views[0, :, y, x] / shade, torch.from_numpy(COLORS[k]), atol=1e-4)
    seen = {int(f) // 2 for f in raster.face[0][raster.mask[0]]}
    assert seen == {0, 2, 4}
    # the light is on the viewer's side: a face looking at the camera is lit, not left at the ambient level
    # (a sign slip once lit every visible face from behind: all at 0.35-0.58, the views a dim grey)
    ahead = rasterize(mesh, [Camera(np.array([0.0, 0.0, 3.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]))], 32)
    assert float(ahead.shade[0, 16, 16]) > 0.85


def test_texture_gradient_only_on_texels_some_view_sees():
    mesh = painted_cube()
    raster = rasterize(mesh, orbit(mesh, 4, elevation=30.0, start=45.0), 48)  # sees the sides and the top
    texture = mesh.texture.clone().requires_grad_(True)
    render(texture, raster, 0.5).sum().backward()
    grad = texture.grad.abs().sum(-1) > 0
    assert torch.equal(grad, seen_texels(raster, (64, 96)))
    assert grad[32:, 0:32].sum() == 0  # tile 3 (-y, the bottom) is never seen from above
    for k in (0, 1, 2, 4, 5):
        col, row = k % 3, k // 3
        assert grad[row * 32:(row + 1) * 32, col * 32:(col + 1) * 32].any()
    assert not grad[0, 0] and not grad[31, 31]  # the tile margins outside every UV stay without gradient


def test_fit_texture_recovers_a_known_texture_and_keeps_unseen_texels():
    mesh = painted_cube()
    raster = rasterize(mesh, orbit(mesh, 4, elevation=30.0, start=45.0), 48)
    targets = render(mesh.texture, raster, 0.0)
    init = torch.full_like(mesh.texture, 0.5)
    texture, residual = fit_texture(targets, raster, init, steps=40)
    assert residual < 0.02
    assert torch.equal(texture[32:, 0:32], init[32:, 0:32])  # the bottom tile, never seen


def test_a_fit_on_views_that_show_nothing_keeps_the_texture():
    # a flat square seen edge-on covers no pixel: the pyramid would have been fitted at the texture's own size
    vertices = np.array([[0, 0, 0], [1, 0, 0], [1, 1, 0], [0, 1, 0]], np.float32)
    square = Mesh(vertices, np.array([[0, 1, 2], [0, 2, 3]]), vertices[:, :2].copy(), torch.rand(64, 64, 3))
    raster = rasterize(square, orbit(square, 4), 32).views(slice(1, 4, 2))
    assert not raster.mask.any()
    texture, residual = fit_texture(torch.rand(2, 3, 32, 32), raster, square.texture, steps=5)
    assert torch.equal(texture, square.texture) and texture is not square.texture and residual == 0.0


def test_the_visible_texels_grow_by_one_texel_as_a_3x3_max_pool_grows_them():
    mask = torch.rand(37, 53) > 0.97
    pooled = torch.nn.functional.max_pool2d(mask[None, None].float(), 3, stride=1, padding=1)[0, 0] > 0
    assert torch.equal(grown(mask), pooled)
    views = torch.rand(3, 29, 31) > 0.95  # a batch of views, grown by 2: a 5x5 max-pool of each
    pooled = torch.nn.functional.max_pool2d(views[:, None].float(), 5, stride=1, padding=2)[:, 0] > 0
    assert torch.equal(grown(views, 2), pooled)


def test_the_texture_sized_change_is_the_bilinear_upsampling_to_float_rounding():
    change = torch.rand(1, 3, 16, 24) * 2 - 1
    wanted = torch.nn.functional.interpolate(change, size=(256, 384), mode="bilinear", align_corners=False)[0]
    made = upsampled(change[0].permute(1, 2, 0), (256, 384))
    assert made.shape == wanted.shape and float((made - wanted).abs().max()) < 1e-6
    assert upsampled(change[0].permute(1, 2, 0), (16, 24)).data_ptr() == change.data_ptr()  # its size: no copy


def test_a_fit_from_views_coarser_than_the_texture_changes_whole_surfaces_not_speckles():
    # 8 views of 64 px look up a fraction of the house's 512x512 texels; fitted at that size alone, the texels
    # between kept the source's colours (held-out RMS 71% of the unedited texture's; now 17%)
    mesh = load_mesh(EXAMPLE_HOUSE)
    truth = mesh.texture[..., [2, 1, 0]]  # an edit known everywhere: red and blue swapped
    raster = rasterize(mesh, orbit(mesh, 8), 64)
    texture, residual = fit_texture(render(truth, raster, 0.0), raster, mesh.texture, steps=60)
    held_out = rasterize(mesh, orbit(mesh, 4, elevation=30.0, start=22.5), 128)  # other cameras, finer pixels
    covered = held_out.mask.unsqueeze(1).float()
    rms = lambda tex: float((((render(tex, held_out) - render(truth, held_out)) * covered).pow(2).sum()
                             / (3 * covered.sum())).sqrt())
    assert residual < 0.045 and rms(texture) < 0.06 and rms(mesh.texture) > 0.2  # measured: 0.036, 0.044, 0.258
    assert torch.equal(texture[256:384, 0:128], mesh.texture[256:384, 0:128])  # the floor: no view shows it


def test_the_held_out_residual_tells_views_that_disagree_from_views_that_agree():
    # renders of one texture agree; tinted each its own way (as per-view edits land on different variants) they
    # do not, and the fit at the views' resolution cannot meet them all from one texture
    mesh = load_mesh(EXAMPLE_HOUSE)
    raster = rasterize(mesh, orbit(mesh, 8, swing=15.0), 64)
    agree = render(mesh.texture[..., [2, 1, 0]], raster, 0.0)
    tints = torch.tensor([[1.0, 0.6, 0.6], [0.6, 1.0, 0.6], [0.6, 0.6, 1.0], [1.0, 1.0, 0.6]]).repeat(2, 1)
    disagree = agree * tints[:, :, None, None]
    fit = {name: fit_texture(views, raster, mesh.texture, steps=60)[1] for name, views in
           (("agree", agree), ("disagree", disagree))}
    held = {name: held_out_residual(views, raster, mesh.texture, steps=60) for name, views in
            (("agree", agree), ("disagree", disagree))}
    assert fit["agree"] < 0.045 and fit["disagree"] > 0.06  # measured: 0.037 and 0.069
    assert held["agree"] < 0.065 and held["disagree"] > 0.12  # measured: 0.050 and 0.153


def test_views_correspond_where_they_show_the_same_surface_point_and_nowhere_else():
    mesh = painted_cube()
    cameras = orbit(mesh, 4, elevation=30.0, start=45.0)  # each sees two side faces and the top; neighbours share one
    raster = rasterize(mesh, cameras, 64)
    index, valid = correspondence(mesh, cameras, raster)
    n, hw = 4, 64 * 64
    edge = near_silhouette(raster.mask)
    face, uv, covered = raster.face.reshape(n, hw), raster.uv.reshape(n, hw, 2), raster.mask.reshape(n, hw)
    side = raster.face // 2  # the cube face each pixel shows; inside: every pixel within 2 shows the same one
    pad = torch.nn.functional.pad(side, (2, 2, 2, 2), value=-1)
    inside = torch.stack([pad[:, 2 + dy:66 + dy, 2 + dx:66 + dx] == side for dy in range(-2, 3)
                          for dx in range(-2, 3)]).all(0).reshape(n, hw)
    for i in range(n):
        assert valid[i, i].all() and torch.equal(index[i, i], torch.arange(hw))
        for j in range(n):
            if j == i:
                continue
            surface = valid[j, i] & covered[i]
            at_j = index[j, i][surface]
            # the same cube face, and on it the same point (uv within 1.5 pixels' footprint: the cube's side is
            # ~30 px and 0.2 of UV wide here), but for pixels on an edge, which may meet the face beyond it (measured:
            # 4.5 % of the matches of neighbouring views, 13 % of opposite ones, which share only the top)
            same_face = face[i][surface] // 2 == face[j][at_j] // 2
            assert float(same_face.float().mean()) > 0.85
            assert float((uv[i][surface][same_face] - uv[j][at_j][same_face]).norm(dim=-1).max()) < 0.015
            seen_by_j = torch.unique(face[j][inside[j]] // 2)  # (a face edge-on may leave a pixel at an edge)
            # a face view j cannot see is never matched away from its edges: those pixels keep their own score
            hidden = covered[i] & ~torch.isin(face[i] // 2, seen_by_j) & inside[i]
            assert hidden.any() and not valid[j, i][hidden].any()
            # the backdrop corresponds place by place, where both show backdrop away from both silhouettes
            backdrop = valid[j, i] & ~covered[i]
            assert torch.equal(backdrop, ~covered[i] & ~covered[j] & ~edge[i] & ~edge[j])
            # nothing within the margin of a silhouette is shared, either way
            assert not (valid[j, i] & edge[i]).any() and not edge[j][index[j, i][valid[j, i]]].any()
            assert torch.equal(index[j, i][backdrop], torch.arange(hw)[backdrop])
    # the shared side and the top, less a silhouette margin of 2 px on both views (at 64 px a large part: 0.36)
    assert 0.3 < float((valid[1, 0] & covered[0]).sum() / covered[0].sum()) < 0.9


def test_glb_round_trip_keeps_geometry_and_texture(tmp_path):
    mesh = painted_cube()
    new = torch.rand(64, 96, 3)
    glb, png = save_glb(mesh, new, tmp_path / "cube.glb")
    assert Image.open(png).size == (96, 64)
    back = load_mesh(glb)
    assert len(back.vertices) == len(mesh.vertices) and len(back.faces) == len(mesh.faces)
    assert back.texture.shape == (64, 96, 3)
    assert torch.allclose(back.texture, new, atol=1 / 255 + 1e-6)
    np.testing.assert_allclose(back.uv, mesh.uv, atol=1e-6)
    import trimesh

    gltf = trimesh.exchange.gltf.export_gltf(trimesh.load(glb, force="mesh"), embed_buffers=True)
    (tmp_path / "cube.gltf").write_bytes(gltf["model.gltf"])
    embedded = load_mesh(tmp_path / "cube.gltf")
    assert len(embedded.faces) == 12 and torch.allclose(embedded.texture, back.texture)


def _png_declaring(width: int, height: int) -> bytes:
    ihdr = struct.pack(">LLBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = lambda kind, data: (struct.pack(">L", len(data)) + kind + data
                                + struct.pack(">L", zlib.crc32(kind + data) & 0xFFFFFFFF))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _zip(members: dict) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _refusal(tmp_path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        load_mesh(path)
    message = str(err.value)
    assert "\n" not in message and message.endswith(".") and name in message
    return message


def test_hostile_meshes_are_refused_in_one_sentence(tmp_path):
    assert "300,000 triangles" in _refusal(tmp_path, "many.glb", glb_declaring(300_000))
    assert "4096x4096" in _refusal(tmp_path, "huge.glb", glb_declaring(1, _png_declaring(100_000, 100_000)))
    obj = OBJ_TRIANGLE
    zipped_huge = _zip({"m.obj": obj, "m.mtl": b"newmtl a\nmap_Kd t.png\n", "t.png": _png_declaring(5000, 10)})
    assert "5000x10" in _refusal(tmp_path, "tex.zip", zipped_huge)
    assert "not a valid glTF" in _refusal(tmp_path, "notes.glb", b"these are not the triangles you want" * 3)
    assert "is not a mesh" in _refusal(tmp_path, "photo.png", _png_declaring(8, 8))
    assert "0 .obj" in _refusal(tmp_path, "readme.zip", _zip({"readme.txt": b"hello"}))
    assert "unsafe path" in _refusal(tmp_path, "evil.zip", _zip({"../evil.obj": obj}))
    assert "unsafe path" in _refusal(tmp_path, "abs.zip", _zip({"/etc/evil.obj": obj}))
    outside = _zip({"m.obj": obj, "m.mtl": b"newmtl a\nmap_Kd ../../../etc/passwd\n"})
    assert "not in the zip" in _refusal(tmp_path, "outside.zip", outside)
    four_k = _png_declaring(4096, 4096)
    textures = {f"t{k}.png": four_k for k in range(5)}
    many = _zip({"m.obj": obj, "m.mtl": b"newmtl a\nmap_Kd t0.png\n", **textures})
    assert "83,886,080 pixels together" in _refusal(tmp_path, "five.zip", many)
    many_faces = b"v 0 0 0\nv 1 0 0\nv 0 1 0\n" + b"f 1 2 3\n" * 200_001
    assert "200,001 triangles" in _refusal(tmp_path, "faces.zip", _zip({"m.obj": many_faces}))


def test_a_mesh_too_heavy_to_draw_is_refused_before_rasterizing():
    rng = np.random.default_rng(0)
    big = rng.uniform(-1, 1, (3000, 3, 3)).astype(np.float32)  # 3000 triangles each across most of the view
    mesh = Mesh(big.reshape(-1, 3), np.arange(9000).reshape(-1, 3), np.zeros((9000, 2), np.float32),
                torch.zeros(4, 4, 3), name="'scribble.glb'")
    with pytest.raises(InputError, match=r"^The mesh 'scribble.glb' is too heavy to draw: .*\.$"):
        rasterize(mesh, orbit(mesh, 8), 256)


def test_a_glb_of_several_textured_parts_keeps_each_part_s_colours(tmp_path):
    import trimesh

    parts = []
    for k, colour in enumerate([(255, 0, 0), (0, 0, 255)]):
        box = trimesh.creation.box()
        box.apply_translation([1.5 * k, 0.0, 0.0])
        uv = np.random.default_rng(k).uniform(0.1, 0.9, (len(box.vertices), 2))
        material = trimesh.visual.material.PBRMaterial(baseColorTexture=Image.new("RGB", (64, 32), colour),
                                                       baseColorFactor=[255, 255, 255, 255])
        box.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        parts.append(box)
    trimesh.Scene(parts).export(tmp_path / "two.glb")
    mesh = load_mesh(tmp_path / "two.glb")  # one atlas; trimesh's own packing turned both textures black
    assert len(mesh.faces) == 24
    raster = rasterize(mesh, orbit(mesh, 1, elevation=0.0), 64)
    left, right = (render(mesh.texture, raster, 1.0)[0, :, 32, x] / raster.shade[0, 32, x] for x in (16, 48))
    assert torch.allclose(left, torch.tensor([1.0, 0.0, 0.0]), atol=0.02)
    assert torch.allclose(right, torch.tensor([0.0, 0.0, 1.0]), atol=0.02)


def test_a_texture_repeated_across_the_surface_is_drawn_once_into_a_new_atlas(tmp_path):
    # a quad whose UVs run 0..3 along x: a two-colour texture (left half red, right half blue) repeats 3 times
    quad = (b"mtllib m.mtl\nv 0 0 0\nv 3 0 0\nv 3 1 0\nv 0 1 0\nvt 0 0\nvt 3 0\nvt 3 1\nvt 0 1\n"
            b"usemtl paint\nf 1/1 2/2 3/3 4/4\n")
    stripes = np.zeros((8, 16, 3), np.uint8)
    stripes[:, :8] = (255, 0, 0)
    stripes[:, 8:] = (0, 0, 255)
    png = io.BytesIO()
    Image.fromarray(stripes).save(png, format="PNG")
    path = tmp_path / "tiles.zip"
    path.write_bytes(_zip({"m.obj": quad, "m.mtl": b"newmtl paint\nmap_Kd t.png\n", "t.png": png.getvalue()}))
    mesh = load_mesh(path)
    assert 0.0 <= mesh.uv.min() and mesh.uv.max() <= 1.0
    raster = rasterize(mesh, [Camera(np.array([1.5, 0.5, 4.0]), np.array([1.5, 0.5, 0.0]),
                                     np.array([0.0, 1.0, 0.0]), 30.0)], 96)
    row = (render(mesh.texture, raster, 1.0)[0, :, 48] / raster.shade[0, 48].clamp(min=1e-6))[:, raster.mask[0, 48]]
    red = (row[0] > 0.8) & (row[2] < 0.2)
    assert int((red[1:] != red[:-1]).sum()) == 5  # red, blue, red, blue, red, blue: three repeats across the quad


def test_a_zipped_obj_with_its_mtl_and_texture_loads(tmp_path):
    quad = (b"mtllib house.mtl\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 1 1\nvt 0 1\n"
            b"usemtl paint\nf 1/1 2/2 3/3 4/4\n")
    png = io.BytesIO()
    Image.new("RGB", (16, 8), (200, 40, 10)).save(png, format="PNG")
    path = tmp_path / "quad.zip"
    path.write_bytes(_zip({"model/quad.obj": quad, "model/house.mtl": b"newmtl paint\nmap_Kd tex/paint.png\n",
                           "model/tex/paint.png": png.getvalue()}))
    mesh = load_mesh(path)
    assert len(mesh.faces) == 2 and mesh.texture.shape == (8, 16, 3)
    assert torch.allclose(mesh.texture[0, 0], torch.tensor([200, 40, 10]) / 255.0)


def test_the_example_house_loads_and_renders_from_every_side():
    mesh = load_mesh(EXAMPLE_HOUSE)
    raster = rasterize(mesh, orbit(mesh, 4), 32)
    assert all(0.1 < float(m.float().mean()) < 0.9 for m in raster.mask)


def test_a_mesh_without_uvs_gets_an_atlas_with_its_colours_baked(tmp_path):
    import trimesh

    box = trimesh.creation.box()
    box.unmerge_vertices()  # glTF holds vertex colours only; unshared corners keep each face one colour
    side = np.argmax(box.face_normals @ NORMALS.T, axis=1)  # which of the six sides each triangle is on
    box.visual.face_colors = (COLORS[side] * 255).astype(np.uint8)
    path = tmp_path / "plain.glb"
    box.export(path)
    mesh = load_mesh(path)
    assert mesh.uv.shape == (len(mesh.vertices), 2) and 0.0 <= mesh.uv.min() and mesh.uv.max() <= 1.0
    assert len(mesh.faces) == 12
    raster = rasterize(mesh, [Camera(np.array([0.0, 0.0, 3.0]), np.zeros(3), np.array([0.0, 1.0, 0.0]))], 32)
    views = render(mesh.texture, raster, 0.0)
    centre = views[0, :, 16, 16] / raster.shade[0, 16, 16]
    assert torch.allclose(centre, torch.from_numpy(COLORS[4]), atol=0.02)  # +z faces the camera


def test_an_atlas_maker_that_crashes_or_hangs_is_one_sentence_and_this_process_lives_on(tmp_path, monkeypatch):
    # xatlas 0.0.11 dies of a segmentation fault on an 81,920-triangle icosphere; it runs in a child process
    import trimesh

    from backends.mesh import atlas

    trimesh.creation.box().export(tmp_path / "plain.glb")  # no UVs: needs an atlas
    monkeypatch.setattr(atlas, "_ATLAS_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(InputError, match=r"^The mesh 'plain.glb' has no UV map, and making one failed \(xatlas "
                                         r"ended with signal 11\); upload it with a UV map\.$"):
        load_mesh(tmp_path / "plain.glb")
    monkeypatch.setattr(atlas, "_ATLAS_CHILD", "import time; time.sleep(30)")
    monkeypatch.setattr(atlas, "ATLAS_TIMEOUT_S", 0.5)
    with pytest.raises(InputError, match=r"took over 0.5 s; upload it with a UV map\.$"):
        load_mesh(tmp_path / "plain.glb")
