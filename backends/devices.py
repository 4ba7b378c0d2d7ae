"""Moving host tensors to the run's device without making the host wait: the one pinned copy every module uses."""
from __future__ import annotations

import torch


def to_device(x: torch.Tensor, device) -> torch.Tensor:
    """A host tensor on `device` without blocking the host: on CUDA a plain `.to()` from pageable memory waits for
    the GPU to finish all queued work (a host sync every step); a pinned copy with non_blocking does not, and the
    caching host allocator keeps the pinned block alive until the copy is done. Elsewhere: `.to(device)`."""
    device = torch.device(device)
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
