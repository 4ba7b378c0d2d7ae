"""How consistent an edit came out, and how well it follows the instruction.

- `residual_consistency` needs no weights: the edit residual r_i = edited_i - source_i of each particle, compared
  between neighbouring particles (adjacent frames, overlapping panorama windows, neighbouring views). A consistent
  edit changes neighbours the same way, so their residuals agree. The figure is reported with the edit strength
  (mean |r|) and their ratio, because "no edit at all" is perfectly consistent.
- `residual_colour_variation` compares the *mean colour* of the residual at neighbouring windows' centres: on a
  panorama, neighbouring windows cover different pixels, so the per-pixel figure above is dominated by the edit's
  own texture (one variant applied everywhere already scores about 0.02) and cannot see that one window turned
  teal and the next pink. Averaging the residual over each window's centre keeps the colour and drops the texture.
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


def residual_consistency(edited: torch.Tensor, source: torch.Tensor, pairs: Sequence[tuple[int, int]]) -> dict:
    """edited, source: (N, 3, H, W) in [0, 1]; pairs: indices of neighbouring particles.

    residual_variation: mean over pairs of mean |r_i - r_j| (lower = more consistent), in [0, 1] pixel units;
    edit_strength: mean |r|; residual_variation_rel: their ratio (the variation per unit of edit).
    """
    r = edited.float() - source.float()
    strength = float(r.abs().mean())
    if not pairs:
        return {"residual_variation": 0.0, "edit_strength": strength, "residual_variation_rel": 0.0}
    a, b = zip(*pairs)
    variation = float((r[list(a)] - r[list(b)]).abs().mean())
    return {"residual_variation": variation, "edit_strength": strength,
            "residual_variation_rel": variation / max(strength, 1e-8)}


def residual_colour_variation(edited: torch.Tensor, source: torch.Tensor, pairs: Sequence[tuple[int, int]],
                              centre: float = 0.5) -> dict:
    """Colour consistency of an edit between neighbouring windows, blind to the edit's texture.

    edited, source: (N, 3, H, W) in [0, 1], windows of one image (e.g. half-overlapping panorama windows);
    pairs: neighbouring windows; centre: side of the central box averaged, as a fraction of the window (0.5 with
    half-overlapping windows: neighbours' centres tile the image without overlap, so the figure compares adjacent
    regions, not shared pixels). The mean residual colour m_i = mean over the centre box of edited_i - source_i
    (3,) is compared between neighbours.

    residual_colour_variation: mean over pairs of the RMS over channels of m_i - m_j, in [0, 1] pixel units (lower
    = more consistent; 0 when every window received the same colour change); residual_colour_variation_rel: its
    ratio to the mean |m_i| (the colour change itself), since "no edit" is perfectly consistent too.
    """
    if not 0.0 < centre <= 1.0:
        raise ValueError(f"centre must be in (0, 1], not {centre}")
    h, w = edited.shape[-2:]
    ch, cw = max(1, round(h * centre)), max(1, round(w * centre))
    y, x = (h - ch) // 2, (w - cw) // 2
    r = (edited.float() - source.float())[..., y:y + ch, x:x + cw]
    m = r.mean(dim=(-2, -1))  # (N, 3)
    strength = float(m.pow(2).mean(-1).sqrt().mean())
    if not pairs:
        return {"residual_colour_variation": 0.0, "residual_colour_variation_rel": 0.0}
    a, b = zip(*pairs)
    variation = float((m[list(a)] - m[list(b)]).pow(2).mean(-1).sqrt().mean())
    return {"residual_colour_variation": variation,
            "residual_colour_variation_rel": variation / max(strength, 1e-8)}


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
