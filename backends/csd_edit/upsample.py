"""The edit, carried from the working size to the visitor's own pixels: guided upsampling by a local affine colour
model (the fast guided filter, He and Sun 2015; bilateral guided upsampling, Chen et al. 2016, fits the same kind of
model on a grid).

At the working size, around every pixel, the edit E is fitted as an affine function of the source S's colour over a
(2r+1)^2 window (ridge `eps`): E ~ A S + b, A a 3x3 matrix and b a colour per pixel, then A and b are averaged over
the same window. The model is applied at full size to the full-size input I, with A and b upsampled bilinearly:
the result's detail is the input's own detail, coloured as the edit coloured it. What the model cannot express
(snow on a lit edge, a posterized step) is the residual E - (A S + b), upsampled and added back.

Why this and not a resize: a resize of the working-size edit keeps only the working size's detail (a 1482x500
photo edited at 384x128: high-pass correlation with the input 0.53); a colour model applied at full size keeps the
input's (0.9 and more for colour edits; docs/edit_fidelity.md). Why this and not kornia's `guided_blur`: that
filters at one size; the fast guided filter's point is to fit small and apply large, and the few box filters it
needs are written here once. A clip's frames between keyframes take the keyframes' models interpolated in time
(`ColourModel.blend`), applied to their own pixels.

`resize` stays as the named fallback (`method="resize"`).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

METHODS = ("guided", "resize")
# Bytes per full-size pixel while an image is brought back (the work budget's term, `backends.core.budget`): the input
# and the result in float32 (24), the band's upsampled model (bounded), the detail figure's high-pass maps (24) and
# the delivered metrics' tiles (12), rounded up.
BYTES_PER_PIXEL = 64
RIDGE = 1e-3  # (pixel units in [0, 1])^2: a window whose colours vary less than ~0.03 takes a flat colour shift


def box(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over a (2r+1)^2 window, (B, C, h, w) -> same; windows cut by the border average what they cover."""
    if r <= 0:
        return x
    return F.avg_pool2d(x, 2 * r + 1, stride=1, padding=r, count_include_pad=False)


def radius_for(size: tuple[int, int]) -> int:
    """The window radius at a working size (W, H): 1/32 of the short side, at least 2 px (3 px at 96 px, 4 at 128)."""
    return max(2, round(min(size) / 32))


@dataclass
class ColourModel:
    """A local affine colour model at the working size, for B images.

    a: (B, 3, 3, h, w), a[:, c, k] the weight of input channel k in output channel c; b: (B, 3, h, w) the offset;
    residual: (B, 3, h, w) what the model leaves of the edit at the working size. All float32, pixel units [0, 1].
    """

    a: torch.Tensor
    b: torch.Tensor
    residual: torch.Tensor

    def __len__(self) -> int:
        return self.a.shape[0]

    def take(self, i: int) -> "ColourModel":
        return ColourModel(self.a[i:i + 1], self.b[i:i + 1], self.residual[i:i + 1])

    @staticmethod
    def blend(first: "ColourModel", second: "ColourModel", t: float) -> "ColourModel":
        """(1 - t) first + t second, term by term: a frame between two keyframes, t its place between them."""
        return ColourModel(torch.lerp(first.a, second.a, t), torch.lerp(first.b, second.b, t),
                           torch.lerp(first.residual, second.residual, t))


def fit(source: torch.Tensor, edited: torch.Tensor, radius: int, eps: float = RIDGE) -> ColourModel:
    """The model that maps source (B, 3, h, w) to edited (B, 3, h, w), both in [0, 1] at the working size.

    source is the guide: for a VAE prior, the *decoded* source latents, so the VAE's own loss is not taken for
    part of the edit. radius: the window's half side in working pixels; eps: the ridge on the colour covariance.
    """
    guide, target = source.float(), edited.float()
    n, _, h, w = guide.shape
    mean_i, mean_p = box(guide, radius), box(target, radius)
    # per-pixel covariances: var_i (B, 3, 3, h, w) of the guide, cov_ip (B, 3 out, 3 in, h, w)
    var_i = box(torch.einsum("bkhw,blhw->bklhw", guide, guide).reshape(n, 9, h, w), radius).reshape(n, 3, 3, h, w)
    var_i = var_i - torch.einsum("bkhw,blhw->bklhw", mean_i, mean_i)
    cov = box(torch.einsum("bchw,bkhw->bckhw", target, guide).reshape(n, 9, h, w), radius).reshape(n, 3, 3, h, w)
    cov = cov - torch.einsum("bchw,bkhw->bckhw", mean_p, mean_i)
    eye = torch.eye(3, dtype=guide.dtype, device=guide.device)
    # a = cov (var_i + eps I)^-1, solved per pixel: pixels become the batch of 3x3 systems
    lhs = (var_i.permute(0, 3, 4, 1, 2) + eps * eye)  # (B, h, w, 3, 3), symmetric
    rhs = cov.permute(0, 3, 4, 2, 1)  # (B, h, w, 3 in, 3 out)
    a = torch.linalg.solve(lhs, rhs).permute(0, 4, 3, 1, 2)  # (B, 3 out, 3 in, h, w)
    b = mean_p - torch.einsum("bckhw,bkhw->bchw", a, mean_i)
    a = box(a.reshape(n, 9, h, w), radius).reshape(n, 3, 3, h, w)
    b = box(b, radius)
    residual = target - (torch.einsum("bckhw,bkhw->bchw", a, guide) + b)
    return ColourModel(a, b, residual)


def _rows_grid(rows: range, width: int, height: int, device) -> torch.Tensor:
    """grid_sample's grid for output rows `rows` of a (height, width) image: pixel centres in [-1, 1], which with
    align_corners=False is F.interpolate's bilinear convention, so a band equals that part of the whole."""
    ys = (torch.arange(rows.start, rows.stop, device=device, dtype=torch.float32) + 0.5) / height * 2 - 1
    xs = (torch.arange(width, device=device, dtype=torch.float32) + 0.5) / width * 2 - 1
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([gx, gy], -1)[None]


def apply(model: ColourModel, image: torch.Tensor, band: int = 256) -> torch.Tensor:
    """The edit at the image's own size: (1, 3, H, W) in [0, 1] -> (1, 3, H, W) in [0, 1], float32.

    model: one image's model (len 1). Computed in bands of `band` rows, so the upsampled model's 15 channels are
    never held for the whole image (a 4096x4096 photo: 1 GB whole, 60 MB a band).
    """
    if len(model) != 1 or image.shape[0] != 1:
        raise ValueError("apply takes one image and its one model")
    _, _, height, width = image.shape
    small = torch.cat([model.a.flatten(1, 2), model.b, model.residual], 1).to(image.device)  # (1, 15, h, w)
    out = torch.empty(1, 3, height, width, dtype=torch.float32, device=image.device)
    for y0 in range(0, height, band):
        rows = range(y0, min(height, y0 + band))
        up = F.grid_sample(small, _rows_grid(rows, width, height, small.device), mode="bilinear",
                           padding_mode="border", align_corners=False)[0]
        a, b, residual = up[:9].reshape(3, 3, len(rows), width), up[9:12], up[12:15]
        px = image[0, :, rows.start:rows.stop].float()
        out[0, :, rows.start:rows.stop] = (torch.einsum("ckhw,khw->chw", a, px) + b + residual).clamp(0, 1)
    return out


def resize(edited: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """The fallback: the working-size edit (1, 3, h, w) resized to size=(W, H) (bicubic, antialiased), in [0, 1]."""
    return F.interpolate(edited.float(), size=(size[1], size[0]), mode="bicubic", align_corners=False,
                         antialias=True).clamp(0, 1)


def upsample(source: torch.Tensor, edited: torch.Tensor, image: torch.Tensor, method: str = "guided",
             radius: int | None = None) -> torch.Tensor:
    """One image's edit at its own size: source, edited (1, 3, h, w) at the working size; image (1, 3, H, W) the
    full-size input; all in [0, 1]. method "guided" (the colour model, see the module) or "resize"."""
    if method == "resize":
        return resize(edited, (image.shape[-1], image.shape[-2]))
    if method != "guided":
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    r = radius_for((source.shape[-1], source.shape[-2])) if radius is None else radius
    return apply(fit(source, edited, r), image)
