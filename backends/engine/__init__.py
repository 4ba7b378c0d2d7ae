"""The shared score-distillation engine: pure functions (SDS, CSD, guidance, schedules) and one loop.

Every backend uses these; none re-derives SDS. See DESIGN.md for the formulas.
"""
from .guidance import cfg, ip2p_guidance
from .loop import Step, distill, seed_everything
from .schedule import WEIGHTINGS, sample_timesteps, step_decay, warmup_cosine, weighting
from .sds import add_noise, csd_grad, grad_to_loss, median_bandwidth, pairwise_sq_dists, sds_grad, svgd_kernel

__all__ = [
    "cfg", "ip2p_guidance", "Step", "distill", "seed_everything", "WEIGHTINGS", "sample_timesteps", "step_decay",
    "warmup_cosine", "weighting", "add_noise", "csd_grad", "grad_to_loss", "median_bandwidth", "pairwise_sq_dists",
    "sds_grad", "svgd_kernel",
]
