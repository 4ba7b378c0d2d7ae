"""The shared score-distillation engine: pure functions (SDS, CSD, guidance, schedules, DDIM), one step and one loop.

Every backend uses these; none re-derives SDS. The formulas: DreamFusion (Poole et al. 2022) for SDS,
Collaborative Score Distillation (Kim et al. 2023) for CSD, InstructPix2Pix (Brooks et al. 2023) for its guidance.
"""
from .guidance import cfg, ip2p_guidance
from .loop import Step, distill, seed_everything
from .step import distillation_grad, distillation_loss, draw_noise, noise
from .schedule import WEIGHTINGS, sample_timesteps, step_decay, warmup_cosine, weighting
from .sampling import ddim, ddim_sample, ddim_timesteps
from .sds import (Correspondence, add_noise, csd_grad, grad_to_loss, median_bandwidth, pairwise_sq_dists, sds_grad,
                  svgd_kernel)

__all__ = [
    "cfg", "ip2p_guidance", "Step", "distill", "seed_everything", "WEIGHTINGS", "sample_timesteps", "step_decay",
    "warmup_cosine", "weighting", "Correspondence", "add_noise", "csd_grad", "grad_to_loss", "median_bandwidth",
    "pairwise_sq_dists", "sds_grad", "svgd_kernel", "ddim", "ddim_sample", "ddim_timesteps", "distillation_grad",
    "distillation_loss", "draw_noise", "noise",
]
