"""How consistent an edit came out, and how well it follows the instruction.

- `residual_consistency` needs no weights: the edit residual r_i = edited_i - source_i of each particle, compared
  between neighbouring particles (adjacent frames, overlapping panorama windows, neighbouring views). A consistent
  edit changes neighbours the same way, so their residuals agree. The figure is reported with the edit strength
  (the mean `colour_change` of r) and their ratio, because "no edit at all" is perfectly consistent.
- `colour_map_variation` compares how neighbouring windows change the *same source colour*: on a panorama,
  neighbouring windows cover different pixels, so the per-pixel figure above is dominated by the edit's own
  texture and by the content under each window (one variant applied everywhere already scores about 0.02), and
  cannot see that one window turned teal and the next pink. Comparing the windows' changes colour by colour, each
  against the image's own colour map, keeps the look and drops the content.
- CLIP directional similarity (`backends.measures.clip.directional_similarity`, the one CLIP loader's) and
  `neighbour_similarity`: need an OpenCLIP model in the local cache (or the tiny random one, whose numbers mean
  nothing).
- `load_lpips`: LPIPS (AlexNet) when the `lpips` package and its weights are present; a clear error when not.
  Nothing here downloads or imitates missing weights.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

from ..core.errors import ModelUnavailableError


def sequence_pairs(n: int, cyclic: bool = False) -> list[tuple[int, int]]:
    """Neighbours in a sequence: (0, 1), (1, 2), ...; with cyclic=True also (n-1, 0) (a closed orbit)."""
    pairs = [(i, i + 1) for i in range(n - 1)]
    if cyclic and n > 2:
        pairs.append((n - 1, 0))
    return pairs


def grid_pairs(rows: int, cols: int) -> list[tuple[int, int]]:
    """Horizontal and vertical neighbours of a row-major grid of rows x cols windows."""
    pairs = [(r * cols + c, r * cols + c + 1) for r in range(rows) for c in range(cols - 1)]
    return pairs + [(r * cols + c, (r + 1) * cols + c) for r in range(rows - 1) for c in range(cols)]


def colour_change(x: torch.Tensor) -> torch.Tensor:
    """(..., 3, H, W) colour differences -> (..., H, W): each pixel's change as one length, the RMS over its three
    channels (in [0, 1] pixel units), so a change counts the same whichever way it turns the colour.

    Why not the mean absolute value per channel: for one length, it is larger for a change along a diagonal of the
    RGB cube than along an axis (by up to sqrt(3)), so it ranks the direction of an edit, not its size. The `edits`
    prior's three sepia looks of the example views are equally far from the source at every pixel (0.161 by this
    figure, each), yet scored 0.112, 0.136 and 0.146 per channel: CSD-Edit's views, which take one look together,
    then measured 0.77x to 1.05x the per-view baseline's strength by which look they took, not by how far they got
    (docs/edit_fidelity.md, "Views at seed 2")."""
    return x.float().pow(2).mean(dim=-3).sqrt()


def residual_consistency(edited: torch.Tensor, source: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> dict:
    """edited, source: (N, 3, H, W) in [0, 1]; pairs: indices of neighbouring particles.

    residual_variation: mean over pairs and pixels of `colour_change`(r_i - r_j) (lower = more consistent);
    edit_strength: the mean `colour_change`(r); residual_variation_rel: their ratio (the variation per unit of edit).
    """
    r = edited.float() - source.float()
    strength = float(colour_change(r).mean())
    if not pairs:
        return {"residual_variation": 0.0, "edit_strength": strength, "residual_variation_rel": 0.0}
    a, b = zip(*pairs)
    variation = float(colour_change(r[list(a)] - r[list(b)]).mean())
    return {"residual_variation": variation, "edit_strength": strength,
            "residual_variation_rel": variation / max(strength, 1e-8)}


def colour_map_variation(edited: torch.Tensor, source: torch.Tensor, pairs: Sequence[tuple[int, int]],
                         centre: float = 0.5, levels: int = 8, min_pixels: int = 4, ridge: float = 1e-4) -> dict:
    """How differently neighbouring windows change the same source colour: an edit's consistency, blind to what the
    edit does to each colour and to what lies under each window.

    edited, source: (N, 3, H, W) in [0, 1], windows of one image (e.g. half-overlapping panorama windows);
    pairs: neighbouring windows; centre: side of the central box used, as a fraction of the window (0.5 with
    half-overlapping windows: neighbours' centres tile the image without overlap, so the figure compares adjacent
    regions, not shared pixels).

    The image's own colour map first: the source's colours fall in levels^3 bins, and in each bin one affine map
    from the source colour to the residual r = edited - source is fitted over every window's centre (least squares,
    a small ridge on the slope: a bin with few pixels falls back to its mean change). One edit applied the same way
    everywhere, whatever it does to each colour (snow on bright pixels, a warmer shadow), is such a map, up to
    what it reads of a pixel's neighbours. Each window's deviation from the map is then averaged per bin, and two
    neighbours are compared on the bins both hold (at least min_pixels each, weighted by the smaller count): one
    window turned teal and the next pink differ by the gap; one look everywhere differs by nearly nothing.

    colour_map_variation: mean over the pairs that share a colour of the weighted RMS (over channels) difference
    of their deviations, in [0, 1] pixel units (lower = more consistent); colour_map_variation_rel: its ratio to
    the mean `colour_change` of the centres, since "no edit" is perfectly consistent too. Pairs that share no
    colour are left out; when none share one, both figures are 0.

    Why not the residual's mean colour per window (the figure this replaced): an edit's change depends on the
    content under each window, so one look applied uniformly to the example landscape already scored 0.018-0.024
    for winter and 0.016-0.021 for sunset, as much as per-patch edits whose windows visibly disagreed. On the same
    windows this figure gives a uniform look 0.0006-0.0009 (sunset) and 0.0035-0.0037 (winter: its snow reads the
    pixel below), and two looks split down the middle 0.007-0.009 (tests/test_eval_panorama_consistency.py).
    """
    if not 0.0 < centre <= 1.0:
        raise ValueError(f"centre must be in (0, 1], not {centre}")
    n, _, h, w = edited.shape
    ch, cw = max(1, round(h * centre)), max(1, round(w * centre))
    y, x = (h - ch) // 2, (w - cw) // 2
    s = source.float()[..., y:y + ch, x:x + cw].permute(0, 2, 3, 1).reshape(-1, 3)  # (P, 3), window-major
    r = edited.float()[..., y:y + ch, x:x + cw].permute(0, 2, 3, 1).reshape(-1, 3) - s
    bins = levels ** 3
    q = (s * levels).long().clamp(0, levels - 1)
    colour = (q[:, 0] * levels + q[:, 1]) * levels + q[:, 2]  # (P,)
    # the image's colour map: per bin, least squares r ~ [s, 1] M (M: 4 x 3), from the bin's normal equations
    s1 = torch.cat([s, s.new_ones(len(s), 1)], dim=1)
    gram = s.new_zeros(bins, 4, 4).index_add_(0, colour, s1[:, :, None] * s1[:, None, :])
    moment = s.new_zeros(bins, 4, 3).index_add_(0, colour, s1[:, :, None] * r[:, None, :])
    count = gram[:, 3, 3]
    penalty = torch.diag(s.new_tensor((ridge, ridge, ridge, 0.0)))
    empty = torch.eye(4, dtype=s.dtype, device=s.device) * (count == 0).to(s.dtype)[:, None, None]  # solvable: 0
    fitted = torch.linalg.solve(gram + count[:, None, None] * penalty + empty, moment)  # (bins, 4, 3)
    deviation = r - torch.einsum("pi,pij->pj", s1, fitted[colour])
    # each window's mean deviation per bin
    cell = torch.arange(n, device=s.device).repeat_interleave(ch * cw) * bins + colour
    counts = s.new_zeros(n * bins).index_add_(0, cell, s.new_ones(len(s))).reshape(n, bins)
    means = s.new_zeros(n * bins, 3).index_add_(0, cell, deviation).reshape(n, bins, 3)
    means = means / counts.clamp_min(1)[..., None]
    strength = float(r.pow(2).mean(-1).sqrt().mean())  # the mean `colour_change` (r is (pixels, 3) here)
    a, b = (list(v) for v in zip(*pairs)) if pairs else ([], [])
    weight = torch.minimum(counts[a], counts[b]) * ((counts[a] >= min_pixels) & (counts[b] >= min_pixels))
    shared = weight.sum(-1)  # (pairs,)
    if not bool((shared > 0).any()):
        return {"colour_map_variation": 0.0, "colour_map_variation_rel": 0.0}
    gap = (means[a] - means[b]).pow(2).mean(-1).sqrt()  # (pairs, bins)
    per_pair = (gap * weight).sum(-1)[shared > 0] / shared[shared > 0]
    variation = float(per_pair.mean())
    return {"colour_map_variation": variation, "colour_map_variation_rel": variation / max(strength, 1e-8)}


def neighbour_similarity(scorer, images: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> float:
    """Mean CLIP image-embedding cosine between neighbouring particles (the paper's "CLIP consistency"); scorer: a
    `backends.measures.clip.ClipScorer` (the project's one CLIP loader)."""
    if not pairs:
        return 1.0
    f = scorer.embed_images(images)
    a, b = zip(*pairs)
    return float((f[list(a)] * f[list(b)]).sum(-1).mean())


def load_lpips(device="cpu") -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """LPIPS (AlexNet) as d(a, b) -> (N,) for image batches in [0, 1], differentiable in both.

    Raises ModelUnavailableError when the lpips package or its weights (AlexNet from torchvision's cache plus the
    package's linear layers) are missing: the perceptual distance is never replaced by something else silently.
    """
    try:
        import lpips
    except ImportError:
        raise ModelUnavailableError(
            "The LPIPS distance needs the lpips package and its AlexNet weights, which are not installed here: "
            "install lpips (and let it fetch its weights once), or use kernel_distance=latent."
        ) from None
    try:
        net = lpips.LPIPS(net="alex", verbose=False)
    except Exception as err:
        raise ModelUnavailableError(
            f"The LPIPS weights could not be loaded ({type(err).__name__}): fetch them once with network access "
            "(torchvision's AlexNet goes to the torch hub cache), or use kernel_distance=latent."
        ) from None
    net = net.to(device).eval().requires_grad_(False)
    return lambda a, b: net(a * 2.0 - 1.0, b * 2.0 - 1.0).reshape(-1)


def high_pass_luma(images: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    """(B, 3, H, W) in [0, 1] -> (B, H, W): Rec. 601 luma minus its Gaussian blur (sigma in pixels), the detail a
    resize loses and a colour transform keeps."""
    import kornia

    w = images.new_tensor((0.299, 0.587, 0.114)).reshape(1, 3, 1, 1)
    luma = (images.float() * w).sum(1, keepdim=True)
    k = 2 * round(3 * sigma) + 1
    return (luma - kornia.filters.gaussian_blur2d(luma, (k, k), (sigma, sigma), border_type="reflect"))[:, 0]


class DetailCorrelation:
    """Pearson correlation of the high-pass luma (`high_pass_luma`) of a result with its input's, accumulated over
    images or frames of any size, one at a time (a clip's frames stream through it). 1: the input's detail is all
    there (a pure colour transform scores 0.999); a resize down to the working size and back scored 0.53 on a
    1482x500 photo."""

    def __init__(self):
        self.n = 0
        self.sums = torch.zeros(5, dtype=torch.float64)  # x, y, xx, yy, xy

    def add(self, result: torch.Tensor, source: torch.Tensor) -> None:
        """result, source: (B, 3, H, W) in [0, 1], the same size."""
        x, y = high_pass_luma(result).double().flatten(), high_pass_luma(source).double().flatten()
        self.n += x.numel()
        self.sums += torch.stack([x.sum(), y.sum(), (x * x).sum(), (y * y).sum(), (x * y).sum()]).cpu()

    def value(self) -> float:
        sx, sy, sxx, syy, sxy = (float(v) / max(self.n, 1) for v in self.sums)
        var = (sxx - sx * sx) * (syy - sy * sy)
        return (sxy - sx * sy) / var ** 0.5 if var > 0 else 0.0


def detail_correlation(result: torch.Tensor, source: torch.Tensor) -> float:
    """`DetailCorrelation` of one batch: result, source (B, 3, H, W) in [0, 1]."""
    acc = DetailCorrelation()
    acc.add(result, source)
    return acc.value()
