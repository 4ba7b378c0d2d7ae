"""CSD-Edit: consistent instruction-guided editing of panoramas, videos and sets of 3D views.

Collaborative Score Distillation (Kim et al., NeurIPS 2023) edits a *set* of images at once: each image (a
panorama window, a video frame, a view) is one SVGD particle, its latents are optimized directly, and each
particle's update mixes the InstructPix2Pix edit scores of similar particles through an RBF kernel, so the edit
comes out the same across the set. Without the kernel it is per-item "SDS-edit", the baseline each task shows
beside it.

    csd.py        the method, once: settings, conditions, the prior calls, the CSD-Edit / per-item gradient, the loop
    windows.py    the panorama's overlapping windows and tiled decoding
    outputs.py    working sizes, before/after figures, mp4 / GIF / zip writers, the metrics every result carries
    panorama.py   panorama/csd-edit and panorama/per-patch (overlapping windows of one panorama latent)
    video.py      video/csd-edit and video/per-frame (frames are the particles)
    views3d.py    views3d/csd-edit and views3d/per-view (views of one object or scene are the particles)
    views3d_mesh.py  views3d/csd-edit-mesh and views3d/per-view-mesh (a textured mesh's rendered views are the
                  particles; the edit lands in its one texture)
    metrics.py    consistency figure (no weights needed), CLIP directional similarity, LPIPS when available
    samples.py    the procedurally generated example inputs (python -m backends.csd_edit.samples examples)
"""
