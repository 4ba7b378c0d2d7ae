"""Textured meshes for 3D edits: load one (bounded), place cameras around it, rasterize once, render a texture
through the raster differentiably, fit a texture to edited views, and save the result as a GLB.

    mesh = load_mesh("chair.glb")
    raster = rasterize(mesh, orbit(mesh, 8), 256)
    views = render(mesh.texture, raster)              # (8, 3, 256, 256), edit these ...
    texture, rms = fit_texture(edited, raster, mesh.texture)
    save_glb(mesh, texture, "chair-edited.glb")
"""
from .gltf import placed_copy
from .matching import correspondence
from .io import (MAX_MESH_BYTES, MAX_TEXTURE_SIDE, MAX_TRIANGLES, Geometry, Mesh, bake_atlas, is_mesh_file,
                 load_geometry, load_mesh, mesh_texels, save_glb)
from .raster import (Camera, Raster, check_drawable, fit_levels, fit_texture, held_out_residual, orbit, rasterize,
                     render, residual, seen_texels, visible_texels)

__all__ = [
    "MAX_MESH_BYTES", "MAX_TEXTURE_SIDE", "MAX_TRIANGLES", "Camera", "Geometry", "Mesh", "Raster", "bake_atlas",
    "check_drawable", "correspondence", "fit_levels", "fit_texture", "held_out_residual", "is_mesh_file",
    "load_geometry", "load_mesh",
    "mesh_texels", "orbit", "placed_copy", "rasterize", "render", "residual", "save_glb", "seen_texels", "visible_texels",
]
