"""The project's judges of a picture, on the offline priors' own terms: does an SVG show the object its prompt names,
does an edited image show the edit its instruction names? Used by the browser test that runs every example
(tests/test_examples_browser.py) and open to the evaluations.

drawn_icon     the nearest shipped icon (L2 at 64 px over white) to a result picture, and whether its caption
               carries the wanted object ("fox", "red apple"): `backends.icon_judge`, where the grid report
               (`backends.compare`) finds it too.
likeness       the RMS difference of a result from its input (both over white, 64 px on the short side, [0, 1]
               units): a vectorized image or a reconstructed target must look like what it was made from.
shown_edit     which of the `edits` prior's known edits a result moved its source towards: the displacement
               result - source (both at 64 px on the short side, box-filtered) against each edit's variants'
               displacements T_k(source) - source. direction: the best cosine over an edit's variants; reach: how
               far along that variant's displacement the result went (1 = all the way to the variant's look).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from backends.icon_judge import DrawnIcon, drawn_icon, on_white as _on_white

LIKENESS = 0.08  # a result looks like its input within this RMS
EDIT_DIRECTION = 0.8  # an edit is shown when the result moved this closely along one of its variants...
EDIT_REACH = 0.4  # ...and at least this far towards it (a visible edit, not a faint tint)

__all__ = ["DrawnIcon", "drawn_icon", "likeness", "shown_edit", "ShownEdit", "LIKENESS"]


@dataclass(frozen=True)
class ShownEdit:
    edit: str  # the known edit the result moved towards most closely
    direction: float  # cosine between the result's displacement and that edit's nearest variant's
    reach: float  # the share of that variant's displacement the result went

    def shows(self, want: str) -> bool:
        return self.edit == want and self.direction >= EDIT_DIRECTION and self.reach >= EDIT_REACH


def _small(im: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    arr = np.asarray(_on_white(im).resize(size, Image.BOX), dtype=np.float32) / 255
    return torch.from_numpy(arr).permute(2, 0, 1)[None]


def _pair(source, result, short_side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(source, result) as (1, 3, h, w) tensors in [0, 1] at the result's aspect, `short_side` px on the short side."""
    res = result if isinstance(result, Image.Image) else Image.open(result)
    src = source if isinstance(source, Image.Image) else Image.open(source)
    scale = short_side / min(res.size)
    size = (max(1, round(res.size[0] * scale)), max(1, round(res.size[1] * scale)))
    return _small(src, size), _small(res, size)


def likeness(source: str | Path | Image.Image, result: str | Path | Image.Image, short_side: int = 64) -> float:
    """The RMS difference of `result` from `source` ([0, 1] units; 0: the same picture)."""
    x, y = _pair(source, result, short_side)
    return float((x - y).pow(2).mean().sqrt())


def shown_edit(source: str | Path | Image.Image, result: str | Path | Image.Image, short_side: int = 64) -> ShownEdit:
    """Which known edit `result` shows of `source` (the same picture before the edit; any sizes, same aspect)."""
    from backends.priors.edits import EDITS

    x, y = _pair(source, result, short_side)
    moved = (y - x).flatten()
    best = ShownEdit("", -1.0, 0.0)
    for edit in EDITS:
        toward = (edit.variants(x)[0] - x).flatten(1)  # (K, N): each variant's displacement
        cos = F.cosine_similarity(toward, moved[None], dim=1)
        k = int(cos.argmax())
        if float(cos[k]) > best.direction:
            best = ShownEdit(edit.name, float(cos[k]), float(toward[k] @ moved / (toward[k] @ toward[k]).clamp_min(1e-12)))
    return best
