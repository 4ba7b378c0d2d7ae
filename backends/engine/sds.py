"""Score Distillation Sampling and Collaborative Score Distillation as pure tensor functions.

Notation (DreamFusion; Kim et al. 2023): z_t = a_t z + s_t eps, a_t = sqrt(alphabar_t), s_t = sqrt(1 - alphabar_t).
Gradients here are gradients *of a loss* (to be descended), with respect to the clean latents z.
"""
from __future__ import annotations

import math

import warnings

import torch


def add_noise(z: torch.Tensor, eps: torch.Tensor, alphas_cumprod_t: torch.Tensor) -> torch.Tensor:
    """Forward diffusion z_t = sqrt(ab) z + sqrt(1 - ab) eps; alphas_cumprod_t has shape (B,) or broadcasts."""
    ab = _per_sample(alphas_cumprod_t, z)
    return ab.sqrt() * z + (1.0 - ab).sqrt() * eps


def sds_grad(eps_hat: torch.Tensor, eps: torch.Tensor, weight: torch.Tensor | float) -> torch.Tensor:
    """SDS gradient w(t) * (eps_hat - eps) (DreamFusion eq. 3 without the UNet Jacobian).

    eps_hat, eps: (B, C, H, W); weight: scalar or (B,) per sample. Returns (B, C, H, W).
    """
    return _per_sample(weight, eps_hat) * (eps_hat - eps)


def grad_to_loss(z: torch.Tensor, grad: torch.Tensor, reduction: str = "sum") -> torch.Tensor:
    """A loss whose gradient with respect to z is exactly `grad` (reduction="sum") or grad / B ("batch").

    0.5 * ||z - (z - grad).detach()||^2 has d/dz = z - (z - grad) = grad. The UNet is never differentiated.
    """
    target = (z - grad).detach()
    loss = 0.5 * (z - target).pow(2).sum()
    if reduction == "sum":
        return loss
    if reduction == "batch":
        return loss / z.shape[0]
    raise ValueError(f"unknown reduction {reduction!r}: use 'sum' or 'batch'")


def pairwise_sq_dists(x: torch.Tensor) -> torch.Tensor:
    """(N, ...) -> (N, N) squared Euclidean distances between flattened rows (exactly 0 on the diagonal)."""
    flat = _at_least_fp32(x.reshape(x.shape[0], -1))
    # the direct formula, not |a|^2 + |b|^2 - 2ab, which cancels badly for nearby particles
    d = torch.cdist(flat, flat, compute_mode="donot_use_mm_for_euclid_dist").pow(2)
    return d.fill_diagonal_(0.0)


def median_bandwidth(sq_dists: torch.Tensor, eps: float = 1e-8, scale: float = 1.0) -> torch.Tensor:
    """Median heuristic h = scale * med^2 / log N, med the median pairwise distance between *distinct* particles.

    scale 1 is the heuristic itself: a pair at the median distance weighs 1/N against a particle's own score, so
    particles that look less alike than most barely share scores. A larger scale widens the kernel (CSD-Edit on
    views of different sides of one object: see `csd_edit.csd.kernel_width_option`).

    The zero diagonal is left out of the median: with two particles it would make the median 0 and the kernel
    exp(-d / 0) = NaN. N = 1 has no pairs; then h = 1 (the kernel is the constant 1 on the diagonal anyway).
    """
    n = sq_dists.shape[0]
    if n < 2:
        return sq_dists.new_ones(())
    off = sq_dists[~torch.eye(n, dtype=torch.bool, device=sq_dists.device)]
    med_sq = off.sqrt().median().pow(2)
    # log N is 0.69 for N = 2, so h stays finite; a floor keeps coincident particles from dividing by zero.
    return (scale * med_sq / math.log(n)).clamp_min(eps)


def svgd_kernel(x: torch.Tensor, bandwidth: torch.Tensor | float | None = None, bandwidth_scale: float = 1.0):
    """RBF kernel k(x_j, x_i) = exp(-||x_j - x_i||^2 / h) and its gradient with respect to x_j.

    x: (N, ...); bandwidth: h, or None for the median heuristic times bandwidth_scale. Returns (K, grad_K, h): K (N, N) symmetric; grad_K[i] = sum_j d k(x_j, x_i) / d x_j, shape of x,
    which points from the other particles towards x_i (d/dx_j exp(-|x_j - x_i|^2/h) = 2 (x_i - x_j) k / h).
    """
    n = x.shape[0]
    d2 = pairwise_sq_dists(x)
    h = median_bandwidth(d2, scale=bandwidth_scale) if bandwidth is None else torch.as_tensor(bandwidth, dtype=d2.dtype, device=d2.device)
    k = torch.exp(-d2 / h)
    flat = _at_least_fp32(x.reshape(n, -1))
    # sum_j 2 k_ji (x_i - x_j) / h = 2/h * (x_i * sum_j k_ji - sum_j k_ji x_j)
    grad_k = (2.0 / h) * (flat * k.sum(dim=0, keepdim=True).T - k.T @ flat)
    return k, grad_k.reshape(x.shape).to(x.dtype), h


def csd_grad(
    z_t: torch.Tensor,
    eps_hat: torch.Tensor,
    eps_base: torch.Tensor,
    weight: torch.Tensor | float,
    *,
    bandwidth: torch.Tensor | float | None = None,
    bandwidth_scale: float = 1.0,
    repulsion: float = 1.0,
    kernel_features: torch.Tensor | None = None,
    kernel: tuple[torch.Tensor, torch.Tensor] | None = None,
    correspondence: "Correspondence | None" = None,
) -> torch.Tensor:
    """Collaborative Score Distillation gradient, one per particle (Kim et al. 2023, SVGD over SDS).

    z_t: (N, C, H, W) noisy latents of the N particles (the kernel's inputs); eps_hat: (N, C, H, W) guided noise
    predictions; eps_base: (N, C, H, W) the baseline subtracted from them (the sampled noise for CSD, the prior's
    source-conditional estimate for CSD-Edit); weight: w(t), scalar or (N,).

    grad_i = w / N * sum_j [ k(z_j, z_i) (eps_hat_j - eps_base_j) - repulsion * d k(z_j, z_i) / d z_j ]

    The kernel term's sign makes the particles repel: descending grad_i moves z_i away from its neighbours
    (SVGD's repulsive force). The paper prints "+ grad k" next to (eps_hat - eps), which is *minus* the score, so
    taken literally it would attract. With N = 1 this is exactly `sds_grad`. `kernel_features`, if given
    ((N, ...) e.g. perceptual features), replaces z_t as the kernel's input; its gradient term then uses the
    features' own differences and so is only defined when they live in the latent space (same shape as z_t).
    `kernel`, if given, is a precomputed (K (N, N), grad_K (N, ...)) pair as `svgd_kernel` returns it (e.g. a
    perceptual kernel whose gradient was carried back to the latents); it replaces the RBF on z_t.

    `correspondence`, if given (a `Correspondence` of index and valid, (N, N, h*w)): particle i takes particle j's
    score at cell index[j, i, p] for its cell p, where valid (views of one mesh: the cell of view j that shows the same
    surface point), not at p itself. Where some j have no such cell, the others' scores are weighted up so every
    cell keeps the kernel's total weight sum_j k(z_j, z_i):

    mixed_i[p] = sum_j k_ji valid_jip s_j[index_jip] * (sum_j k_ji) / (sum_j k_ji valid_jip)

    With index[j, i] = every cell itself and valid everywhere this is the plain sum above.
    """
    n = z_t.shape[0]
    scores = eps_hat - eps_base
    if n == 1:
        return sds_grad(eps_hat, eps_base, weight)
    if kernel is not None:
        k, grad_k = kernel
    else:
        feats = z_t if kernel_features is None else kernel_features
        k, grad_k, _ = svgd_kernel(feats.detach(), bandwidth, bandwidth_scale)
    if grad_k.shape != z_t.shape:
        raise ValueError("kernel_features must have the latents' shape to give a repulsive direction")
    w = _per_sample(weight, scores)
    if correspondence is None:
        mixed = torch.einsum("ji,j...->i...", k.to(scores.dtype), w * scores)
    else:
        mixed = correspondence.mix(k, w * scores)
    return (mixed - repulsion * w * grad_k.to(scores.dtype)) / n


class Correspondence:
    """Where each particle's latent cells are in the others, for `csd_grad`'s shared scores.

    index, valid: (N, N, h*w) int64 and bool; index[j, i, p] is the cell of particle j that shows what cell p of
    particle i shows, valid where particle j has one (valid[i, i] must be all true). Kept as one sparse matrix
    over all particles' cells, built once: each step only fills in the kernel's values, and the sum over j is one
    sparse product (a gather per particle pair was 100x the plain sum's time; this is a few times it)."""

    def __init__(self, index: torch.Tensor, valid: torch.Tensor):
        n, n2, hw = valid.shape
        if n != n2 or index.shape != valid.shape:
            raise ValueError(f"index and valid must both be (N, N, h*w), not {tuple(index.shape)} and "
                             f"{tuple(valid.shape)}")
        if not bool(valid[torch.arange(n), torch.arange(n)].all()):
            raise ValueError("every cell corresponds to itself: valid[i, i] must be all true")
        j, i, p = valid.nonzero(as_tuple=True)
        rows = i * hw + p
        order = torch.argsort(rows, stable=True)
        self.n, self.cells = n, hw
        self.pair = (j * n + i)[order]  # which kernel entry k[j, i] each stored value is
        self.col = (j * hw + index[j, i, p])[order]
        self.crow = torch.zeros(n * hw + 1, dtype=torch.int64)
        self.crow[1:] = torch.cumsum(torch.bincount(rows, minlength=n * hw), 0)

    def to(self, device) -> "Correspondence":
        for name in ("pair", "col", "crow"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def mix(self, k: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """mixed_i[p] = sum_j k_ji valid_jip s_j[index_jip] * (sum_j k_ji) / (sum_j k_ji valid_jip).
        k: (N, N); scores: (N, C, h, w). Returns (N, C, h, w)."""
        n, c = scores.shape[:2]
        if (n, scores[0, 0].numel()) != (self.n, self.cells):
            raise ValueError(f"the correspondence is for {self.n} particles of {self.cells} cells, not "
                             f"{n} of {scores[0, 0].numel()}")
        # in float32 whatever the scores' dtype: a half-precision sparse product is not on every device
        k, dtype, scores = k.float(), scores.dtype, scores.float()
        with warnings.catch_warnings():  # "sparse CSR support is in beta": the product used here is long stable
            warnings.simplefilter("ignore", UserWarning)
            matrix = torch.sparse_csr_tensor(self.crow, self.col, k.reshape(-1)[self.pair], (n * self.cells,) * 2,
                                             dtype=scores.dtype, device=scores.device, check_invariants=False)
        # the scores cell by cell, with a column of ones: the same product gives each cell's weight sum_j k_ji valid
        flat = torch.cat([scores.reshape(n, c, -1).transpose(1, 2), scores.new_ones(n, self.cells, 1)], dim=2)
        out = (matrix @ flat.reshape(n * self.cells, c + 1)).reshape(n, self.cells, c + 1)
        total = k.sum(0).view(n, 1, 1)
        mixed = out[..., :c] * (total / out[..., c:])
        return mixed.transpose(1, 2).reshape(scores.shape).to(dtype)


def _at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _per_sample(v: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """Broadcast a scalar or (B,) tensor against a (B, ...) tensor."""
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    if v.dim() == 0:
        return v
    return v.reshape(-1, *([1] * (like.dim() - 1)))
