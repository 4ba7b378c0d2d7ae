"""3D-view editing: CSD-Edit treats several views of one object as particles (a perceptual distance in the
kernel), so the edited views stay consistent; the baseline edits view by view. A textured mesh is edited the same
way through views rendered around it, and the edit is carried into its one texture: the edited mesh comes back.
Gallery + zip + turntable, and the 3D viewer for a mesh."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import gradio as gr

from backends.core.files import JobDir
from backends.mesh import load_mesh, mesh_texels, save_glb

from .examples import Example
from .tab import InputSlot, TabSpec, input_slot

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "views3d"


def examples() -> list[Example]:
    views = sorted(p for p in EXAMPLES.iterdir() if p.suffix.lower() in (".png", ".jpg")) if EXAMPLES.is_dir() else []
    zips = sorted(EXAMPLES.glob("*.zip")) if EXAMPLES.is_dir() else []
    meshes = sorted(EXAMPLES.glob("*.glb")) if EXAMPLES.is_dir() else []
    out = []
    if len(views) >= 2:
        views = views[:8]
        out.append(Example(f"{len(views)} views: old sepia photo", "csd-edit", prompt="make it an old sepia photo",
                           inputs={"images": [str(p) for p in views]}, shows="sepia"))
        out.append(Example(f"{len(views)} views: night, vs. per-view", "csd-edit", prompt="make it night",
                           inputs={"images": [str(p) for p in views]}, compare=True,
                           shows="night"))
    for z in zips:
        out.append(Example(f"{z.stem}: watercolour", "csd-edit", prompt="turn it into a watercolour painting",
                           inputs={"images": [str(z)]}, shows="watercolour"))
    for m in meshes:
        out.append(Example(f"Mesh ({m.stem}): night, vs. per-view", "csd-edit-mesh", prompt="make it night",
                           inputs={"mesh": str(m)}, compare=True, shows="night"))
    return out


def mesh_view(path: str, job_root: str | None) -> str:
    """What the 3D viewer shows of an uploaded mesh: a .glb or .gltf as uploaded (the browser reads it), a zipped
    .obj read as a run reads it (bounded, given an atlas if it has no UVs) and written as a .glb in a job folder.
    A .glb or .gltf passes every check a run makes from its headers first: the viewer's framing reads it whole with
    trimesh (its textures decoded), so a refusal here hides the viewer instead."""
    if Path(path).suffix.lower() in (".glb", ".gltf"):
        mesh_texels(path)
        return path
    mesh = load_mesh(path)
    glb, _ = save_glb(mesh, mesh.texture, JobDir(job_root, prefix="view").path / "upload.glb")
    return glb


SPEC = TabSpec(
    name="views3d",
    task="views3d",
    title="3D-view edit",
    intro=("**3D-view editing.** Give views of one object (images or a zip), or a textured mesh with a *-mesh* "
           "method, and an instruction. CSD-Edit edits the views together as one set of particles, so they take one "
           "edit; the baseline edits each view alone. A mesh comes back edited, its texture fitted to the views. "
           "Each result measures how much the edit differs between views."),
    inputs=[InputSlot("images", "Views", lambda: gr.File(
                label="Views: several images or one .zip", file_count="multiple",
                file_types=["image", ".zip"], height=160, elem_id="views3d-input")),
            replace(input_slot("mesh", "views3d-mesh"), label="Mesh", viewer=mesh_view)],
    method=("csd-edit",),
    baseline=("per-view", "per-view-mesh"),
    media=("gallery", "video", "model3d"),
    media_labels={"gallery": "edited views", "video": "turntable", "model3d": "edited mesh"},
    prompt_label="Instruction (e.g. 'turn it into a bronze statue')",
    examples=examples,
)
