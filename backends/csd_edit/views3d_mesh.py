"""`views3d/csd-edit-mesh` and `views3d/per-view-mesh`: edit a textured mesh; the edit lands in its one texture,
so it is the same from every side.

The mesh (.glb, a .gltf with embedded data, or a zip of one .obj with its .mtl and texture; `backends.mesh`
reads it, bounded, and gives a mesh without UVs an atlas) is rendered from `particles` cameras on an orbit around
its bounding box (alternating `elevation_swing` degrees below and above `elevation`), square, at the working size
(`short_side`), over white. Each view is a particle of CSD-Edit; views3d/per-view-mesh SDS-edits each view on its
own (the baseline, same budget). CSD-Edit shares scores between the views' cells that show the same surface point
(`backends.mesh.correspondence`), not between cells at the same place: views of a mesh are not aligned as frames
are, and shared by place a neighbour's backdrop edit left ghosts of its outline on a view's walls.

The edit is carried into the texture as the paper carries its edit into its NeRF (Instruct-NeRF2NeRF's iterative
dataset update): every `sync_every` steps the particles are decoded, one texture is fitted to all of them
(`backends.mesh.fit_texture`: least squares through the renderer, only texels some view shows change), and its
renders, over each view's own edited background, are encoded back as the particles. After the last step the same
fit makes the final texture. Both methods run the same fits, so their textures differ only by their edits.

Outputs: edited.glb (the input's geometry with the new texture) and edited.png (that texture), turntable.gif /
turntable.mp4 (the edited mesh on a denser orbit, `turntable_side` px, drawn from the full texture at 1.5x and scaled
down), views.zip (the edited views the texture was fitted to) and
comparison.png (the source's renders, the edited views, the edited mesh's renders). result.json's metrics add
`fit_residual`: the RMS, over covered pixels and channels, between the final texture's renders and the edited
views; `held_out_residual`: the same for a texture fitted to half the views, measured on the other half
(`backends.mesh.held_out_residual`; the fair figure of how far the views are from one texture, as a texture
larger than the views can meet views that disagree each on texels of its own); `sync_residuals`, each carry's
fit residual.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core import budget
from .. import engine
from ..inputs import media
from ..core.pixels import save_png, to_uint8
from ..mesh import (check_drawable, correspondence, fit_texture, held_out_residual, load_geometry, load_mesh, orbit,
                    rasterize, render, save_glb)
from ..mesh.matching import silhouette_margin
from ..core.registry import register
from ..core.settings import option
from ..core.types import Result
from . import csd, metrics, outputs

TURNTABLE_FPS = 12.0
BACKGROUND = 1.0  # white, the usual backdrop of a product shot; uncovered pixels are the prior's to edit
RASTER_BYTES_PER_PIXEL = 21  # uv 8, shade 4, face 8, mask 1
# per texel of the texture, over the whole run: its copies as loaded (uint8, float), the fits' float32 RGB (the
# texture, its change, CGLS's search vectors, gradients), the held-out fit's, the outputs'. Measured: a run's peak
# (CLI, edits prior, 8 views of 128 px, 2 steps, CPU) was 993 MB with a 256x256 texture, 1.77 GB with 2048x2048 and
# 3.26 GB with 4096x4096: 124-208 bytes a texel more; 200 keeps it an upper bound, so a 4096x4096 texture is not
# let through a budget it would overrun
FIT_BYTES_PER_TEXEL = 200
# Seconds a texel costs (the 2-core reference CPU), added to the expectation (`Work.seconds`), not scaled with the
# views' work: the texture's decode, the last fit and the held-out pair, and its PNG written twice (TEXEL_S), and
# each carry's fit (CARRY_TEXEL_S). Measured (CPU seconds, 1 thread, edits prior, 8 views of 128 px, machine
# shared): 4096x4096 over 512x512 on the example house, 2 steps, +1.6 to +2.2 s; over 256x256 on a 1280-triangle
# sphere with a noise texture (more texels seen, PNG incompressible), +5.7 s at 2 steps (TEXEL_S near the two's
# geometric mean, so that each is within 2x of it). The
# carries' share is from +13.2 s at 40 steps (2 carries) measured on fits that made three texture-sized copies
# where they make one: an upper bound
TEXEL_S = 0.2e-6
CARRY_TEXEL_S = 0.12e-6
# CSD's correspondence, per (view, view, latent cell): its index and valid while built (8 + 1), then at most one
# stored entry each: a column and a kernel entry (8 + 8)
CORRESPONDENCE_BYTES = 25


@dataclass
class MeshSettings(csd.EditSettings):
    particles: int = option(8, "views rendered around the mesh and edited together", lo=2, hi=media.MAX_VIEWS)
    elevation: float = option(20.0, "degrees above the mesh's centre the cameras look from", lo=-80.0, hi=80.0,
                              advanced=True)
    elevation_swing: float = option(15.0, "the views alternate this many degrees below and above `elevation`, so "
                                    "tops and lower sides are both seen", lo=0.0, hi=60.0, advanced=True)
    sync_every: int = option(20, "steps between carrying the edited views into the one texture and rendering them "
                             "back (0: once, after the last step)", lo=0, hi=5000, advanced=True)
    fit_steps: int = option(30, "conjugate-gradient iterations of each texture fit", lo=1, hi=1000, advanced=True)
    turntable_frames: int = option(24, "frames of the turntable (one turn)", lo=4, hi=120, advanced=True)
    turntable_side: int = option(512, "side of the turntable's frames in pixels, drawn from the full texture at 1.5x "
                                 "and scaled down (anti-aliased edges)", lo=32, hi=2048, advanced=True)


@dataclass
class MeshCSDSettings(MeshSettings):
    repulsion: float = csd.repulsion_option()
    # views3d's 4. At 1 (the paper's heuristic) a view weighs mostly its own score, divided by N: measured on the
    # example house at 128 px, 40 steps, 'make it night', with scores shared place by place, the edit was half as
    # strong in the same steps (edit strength 0.16 against 0.31). Shared at the same surface points, the scores
    # of a width of 4 leave no ghosts
    kernel_width: float = csd.kernel_width_option(4.0)
    settle_scale: float = csd.settle_scale_option()


_last: tuple[tuple, object] | None = None  # (file identity, Geometry): estimated again as settings change


def read_geometry(path: str):
    """`backends.mesh.load_geometry(path)` (the triangles and the texture's size from its header; no texture is
    decoded), kept for the next estimate of the same unchanged file."""
    global _last
    st = os.stat(path)
    key = (os.path.realpath(path), st.st_size, st.st_mtime_ns)
    found = _last[1] if _last is not None and _last[0] == key else load_geometry(path)
    _last = (key, found)
    return found


def work_side(s: MeshSettings, multiple: int) -> int:
    """The views' side in pixels: short_side (512 when unset) rounded down to the prior's multiple."""
    short = s.short_side or 512
    return budget.working_size((short, short), short, multiple)[0]


def cameras(s: MeshSettings, mesh):
    """(the edited views' cameras, the turntable's)."""
    return (orbit(mesh, s.particles, s.elevation, swing=s.elevation_swing),
            orbit(mesh, s.turntable_frames, s.elevation))


SUPERSAMPLE = 1.5  # the turntable is drawn this much larger and scaled down: edges without stair steps


def turntable_raster_side(s: MeshSettings) -> int:
    """The side the turntable is rasterized at: turntable_side x SUPERSAMPLE."""
    return round(s.turntable_side * SUPERSAMPLE)


def draw_turntable(mesh, texture: torch.Tensor, cameras, s: MeshSettings, batch: int = 1) -> np.ndarray:
    """The textured mesh from each camera, (T, side, side, 3) uint8 at s.turntable_side: rasterized at
    `turntable_raster_side` from the full texture, `batch` cameras at a time (the rasters and renders held are one
    frame's: at 512 px, 74 MiB above what the run holds where four frames' were 160, in the same time), then
    scaled down with an antialiasing filter."""
    side, big = s.turntable_side, turntable_raster_side(s)
    frames = []
    for i in range(0, len(cameras), batch):
        drawn = render(texture, rasterize(mesh, cameras[i:i + batch], big).to(texture.device), BACKGROUND)
        frames.append(to_uint8(F.interpolate(drawn.float(), size=(side, side), mode="bilinear", antialias=True,
                                             align_corners=False)))
    return np.concatenate(frames)


def camera_record(camera) -> dict:
    """One camera for result.json: eye, target and up in the mesh's world units, vertical field of view."""
    return {"eye": [round(float(v), 6) for v in camera.eye], "target": [round(float(v), 6) for v in camera.target],
            "up": [round(float(v), 6) for v in camera.up], "fov": float(camera.fov)}


class _MeshEdit(csd.EditBackend):
    inputs = "mesh"

    @classmethod
    def estimate(cls, s: MeshSettings, inputs, facts):
        """The work budget's estimate, before any texture is decoded: the mesh's triangles read (its bounds
        checked from headers first), both camera sets checked drawable, then the views' pixels, the rasters and
        the texture fit, its texels from the texture's header (FIT_BYTES_PER_TEXEL each); the texture's time
        apart (`Work.seconds`: TEXEL_S a texel, CARRY_TEXEL_S more for each carry), as the views' work does not
        scale it."""
        geometry = read_geometry(inputs[0])
        side = work_side(s, facts.size_multiple)
        views, turntable = cameras(s, geometry)
        check_drawable(geometry, views, side)
        check_drawable(geometry, turntable, turntable_raster_side(s))
        work = budget.edit_work([(side, side)] * s.particles, side, facts, "view")
        views_bytes = work.bytes + (s.particles * side * side + min(4, s.turntable_frames)
                                    * turntable_raster_side(s) ** 2) * RASTER_BYTES_PER_PIXEL
        if cls.method == "csd":
            cells = (side // facts.latent_scale) ** 2
            views_bytes += s.particles ** 2 * cells * CORRESPONDENCE_BYTES
        texels = geometry.texels
        total = views_bytes + texels * FIT_BYTES_PER_TEXEL
        carries = (s.steps or 0) // s.sync_every if s.sync_every else 0
        seconds = texels * (TEXEL_S + carries * CARRY_TEXEL_S)
        if texels * FIT_BYTES_PER_TEXEL > views_bytes:  # the texture's share is the larger: it is named
            width, height = geometry.texture_size or (0, 0)
            texture = f"a {width}x{height} texture" if width else f"textures of {texels:,} texels"
            return budget.Work(total, f"{work.what} and {texture}", "the texture's size (scale it down) or short_side",
                               views_bytes, seconds)
        return budget.Work(total, work.what, work.lower, views_bytes, seconds)

    def load(self, s: MeshSettings, prior, inputs):
        mesh = load_mesh(inputs[0])
        side = work_side(s, prior.size_multiple)
        views, turntable = cameras(s, mesh)
        check_drawable(mesh, turntable, turntable_raster_side(s))  # refused now, not after the edit
        raster = rasterize(mesh, views, side).to(prior.device)
        # the run's texture is facts["texture"] from here, which each carry replaces: the mesh keeps its geometry
        # only, not the source texture beside it (200 MB as float at 4096x4096)
        texture, mesh.texture = mesh.texture.to(prior.device), None
        return csd.Sources(render(texture, raster, BACKGROUND), dict(mesh=mesh, raster=raster, texture=texture,
                                                                     size=side, cameras=(views, turntable), syncs=[]))

    def correspondence(self, s: MeshSettings, prior, src: csd.Sources):
        """The views' latent cells that show the same surface point (and the backdrop cell by cell): CSD shares
        scores between those, not between cells at the same place in views that show different things there.
        Cells beside a silhouette share none (`silhouette_margin`): their edit holds some of what lies across it."""
        side = src.facts["size"] // prior.latent_scale
        views, _ = src.facts["cameras"]
        raster = src.facts["raster"] if side == src.facts["size"] else rasterize(src.facts["mesh"], views, side)
        margin = silhouette_margin(prior.latent_scale)
        return engine.Correspondence(*correspondence(src.facts["mesh"], views, raster, margin)).to(prior.device)

    def step(self, s: MeshSettings, edit: csd.CSDEdit, z: torch.Tensor, src: csd.Sources):
        inner = csd.items_step(edit, z)

        def step(i: int):
            if s.sync_every and i and i % s.sync_every == 0:
                self.carry(s, edit.prior, z, src)
            return inner(i)

        return step

    @staticmethod
    def carry(s: MeshSettings, prior, z: torch.Tensor, src: csd.Sources) -> None:
        """The particles into one texture and back: decode, fit the texture, render it over each view's edited
        background, encode into z (in place; SGD keeps no state that this would make stale)."""
        raster = src.facts["raster"]
        views = csd.decode(prior, z.detach())
        texture, residual = fit_texture(views, raster, src.facts["texture"], steps=s.fit_steps)
        src.facts["texture"] = texture
        src.facts["syncs"].append(residual)
        with torch.no_grad():
            z.copy_(csd.encode(prior, render(texture, raster, views)))

    def preview(self, prior, z, source, src):
        return outputs.labelled_rows([("source", outputs.strip(to_uint8(source), max_items=8)),
                                      (f"{self.key} step", outputs.strip(to_uint8(csd.decode_preview(prior, z)),
                                                                         max_items=8))])

    def outputs(self, s, prior, edit, edited, source, src, last, out_dir):
        mesh, raster, side = src.facts["mesh"], src.facts["raster"], src.facts["size"]
        views, turntable_cameras = src.facts["cameras"]
        # the held-out pair first: the last fit's source is then let go as it returns, not held (200 MB at
        # 4096x4096) beside the new texture through the files written from it
        held_out = held_out_residual(edited, raster, src.facts["texture"], steps=s.fit_steps)
        texture, residual = fit_texture(edited, raster, src.facts.pop("texture"), steps=s.fit_steps)
        glb, png = save_glb(mesh, texture, out_dir / "edited.glb")
        fitted = render(texture, raster, BACKGROUND)
        turntable = draw_turntable(mesh, texture, turntable_cameras, s)
        figure = outputs.labelled_rows([("source", outputs.strip(to_uint8(src.images))),
                                        (f"{self.key}: edited views", outputs.strip(to_uint8(edited))),
                                        ("edited mesh (the fitted texture)", outputs.strip(to_uint8(fitted)))])
        files = {
            "glb": glb,
            "texture": png,
            "gif": outputs.write_gif(turntable, TURNTABLE_FPS, out_dir / "turntable.gif"),
            "mp4": outputs.write_mp4(turntable, TURNTABLE_FPS, out_dir / "turntable.mp4"),
            "zip": outputs.write_zip(to_uint8(edited), out_dir / "views.zip"),
            "comparison": save_png(figure, out_dir / "comparison.png"),
        }
        count = edited.shape[0]
        found, notes = outputs.result_metrics(s, prior, edited, source, metrics.sequence_pairs(count, cyclic=True),
                                              last)
        found["fit_residual"] = residual
        th, tw = texture.shape[:2]
        found["held_out_residual"] = held_out
        meta = {"metrics": found, "method": self.method, "views": count, "triangles": int(len(mesh.faces)),
                "cameras": [camera_record(c) for c in views],
                "texture_size": [int(tw), int(th)], "work_size": [side, side],
                "turntable_size": [s.turntable_side, s.turntable_side],
                "sync_residuals": [round(r, 5) for r in src.facts["syncs"]],
                "kernel_distance": "latent" if self.method == "csd" else None, "unet_chunk": edit.chunk,
                "notes": notes, "warnings": []}
        return Result(files=files, preview=outputs.fit_width(figure), metadata=meta)


@register("views3d", "csd-edit-mesh")
class MeshCSDEdit(_MeshEdit):
    Settings = MeshCSDSettings
    description = "CSD-Edit of a textured mesh: its rendered views are SVGD particles, carried into one texture"
    method = "csd"


@register("views3d", csd.per_item_name("view") + "-mesh")
class MeshPerItem(_MeshEdit):
    Settings = MeshSettings
    description = "Baseline: SDS-edit of each rendered view on its own, carried into the texture by the same fits"
    method = csd.PER_ITEM
