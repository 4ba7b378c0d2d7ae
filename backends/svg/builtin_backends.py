"""The built-in SVG backends; importing this module registers them (the registry imports it by name).

    svg/vectorfusion           text -> SVG by SDS through the vector renderer (VectorFusion)
    svg/csd                    text -> K diverse SVGs, optimized together as CSD particles
    svg/raster-then-vectorize  the paper's baseline: K raster samples -> best by CLIP -> LIVE vectorization
    svg/vectorize              image -> SVG (LIVE-style), no diffusion model
"""
# imported for their @register side effect
from . import baseline, csd_vectorfusion, vectorfusion, vectorize  # noqa: F401
