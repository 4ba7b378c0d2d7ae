"""The frozen UNet's inference call, captured once per input shape as a CUDA graph and replayed.

Why: at batch 2 the SD 1.5 UNet spends most of its eager time launching kernels (H200: 25.5 ms eager, 10.1 ms
replayed as a graph), and `torch.compile(mode="reduce-overhead")` buys the same graphs for 40-50 s of warm-up
before the first step. A manual capture is a few warm-up calls plus one recorded call: seconds.

`GraphedUNet(unet)` is a drop-in for `unet(x, t, encoder_hidden_states=text, return_dict=False)[0]` under
`torch.no_grad()`:

- per input signature (shapes, strides, dtypes, device of x, t, text) it warms up on a side stream, captures a
  `torch.cuda.CUDAGraph` over static input buffers, and keeps it in a small LRU (default 8 graphs: the text prior
  uses batch 2B, InstructPix2Pix 3B with 8 input channels, and a run sees only a few batch sizes);
- every call copies the inputs into the static buffers, replays, and returns a *clone* of the static output;
- all graphs share one memory pool (`torch.cuda.graph_pool_handle()`), so eight graphs cost about one graph's
  activations, not eight. A later capture may place its tensors in memory an earlier graph uses for its
  intermediates. That is safe here because the graphs replay one at a time on one stream, every replay writes its
  intermediates before reading them, the static inputs live outside the pool (allocated before capture), and
  the static output, which is in the pool, is cloned before any other replay can overwrite it. Hence
  `clone_output=False` (no copy) returns a buffer that is valid only until the wrapper's next call, of any shape;
- it falls back to the eager call, once and with one warning, where graphs cannot run: no CUDA, inputs not on a
  CUDA device, ZeroGPU (env `SPACES_ZERO_GPU`: its worker processes do not keep device state between calls),
  `DISTILL_CUDA_GRAPHS=0`, or a capture failure (a model that syncs with the host, say). After a fallback it
  stays eager: a model that cannot be captured once will not be captured for the next shape either.

Its truthiness is refused (`bool(graphed)` raises TypeError): an earlier `compiled or unet` on a compiled module
raised deep inside torch, so callers must test `graphed is None`, and this wrapper never asks the truthiness or
`len()` of the module it wraps.
"""
from __future__ import annotations

import os
import threading
import time
import warnings
from collections import OrderedDict
from typing import Callable, Hashable

import torch

from ..core.devices import on_zero_gpu
from ..core.settings import FALSE_WORDS

ENV_SWITCH = "DISTILL_CUDA_GRAPHS"  # "0" (any of settings.FALSE_WORDS) turns graphs off
DEFAULT_MAX_GRAPHS = 8
# What the app's status says while the first step of a run captures (the runner shows it when the prior's
# `switches` include "cuda_graph"): each new batch size is a few warm-up calls and one capture, seconds in all.
CAPTURE_STATUS = ("first step: capturing the UNet as a CUDA graph (a few seconds, once per batch size; "
                  "later steps replay it)")
DEFAULT_WARMUP = 3  # side-stream calls before capture: cuDNN/cuBLAS pick their algorithms and workspaces here


def disabled_reason(device: torch.device | str | None = None) -> str | None:
    """Why CUDA graphs cannot be used on `device` in this process, or None when they can.

    Reads the environment at each call: `DISTILL_CUDA_GRAPHS=0` (or any word `settings.FALSE_WORDS` holds) and
    ZeroGPU (`devices.on_zero_gpu`: `SPACES_ZERO_GPU` read by `settings.truthy`) switch graphs off; so do a missing
    CUDA runtime and a non-CUDA device.
    """
    switch = os.environ.get(ENV_SWITCH, "").strip()
    if switch.lower() in FALSE_WORDS:
        return f"{ENV_SWITCH}={switch}"
    if on_zero_gpu():
        return "ZeroGPU (SPACES_ZERO_GPU) gives each call a fresh GPU worker, which cannot keep captured graphs"
    if not torch.cuda.is_available():
        return "CUDA is not available"
    if device is not None and torch.device(device).type != "cuda":
        return f"the UNet's inputs are on {torch.device(device)}, not a CUDA device"
    return None


def as_timesteps(t: torch.Tensor | int | float, x: torch.Tensor) -> torch.Tensor:
    """Timesteps as a (B,) tensor on x's device, B = x.shape[0]; a number or a 0-d/1-element tensor is expanded.

    Graphs need this: a Python number would be baked into the captured kernels as a constant, and a CPU tensor
    would be an unrecordable host-to-device copy inside the UNet. The UNet itself expands t the same way, so the
    eager result does not change.
    """
    t = torch.as_tensor(t, device=x.device)
    if t.dim() == 0 or t.numel() == 1:
        t = t.reshape(1).expand(x.shape[0])
    if t.shape != (x.shape[0],):
        raise ValueError(f"timesteps of shape {tuple(t.shape)} for a batch of {x.shape[0]}: give one or one per sample")
    return t.contiguous()


def signature(x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> tuple:
    """The key one captured graph serves: shape, stride, dtype and device of each input. Strides are part of it
    because a graph's kernels were chosen for its static buffers' memory format (channels_last or not)."""
    return tuple((tuple(v.shape), tuple(v.stride()), v.dtype, v.device) for v in (x, t, text))


class GraphCache:
    """A bounded mapping key -> graph that forgets the least recently used entry beyond `max_size`.

    Dropping an entry drops the last reference to its graph and static buffers, which returns their memory to the
    shared pool for the next capture.
    """

    def __init__(self, max_size: int = DEFAULT_MAX_GRAPHS):
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size}")
        self.max_size = max_size
        self._items: OrderedDict[Hashable, object] = OrderedDict()

    def get(self, key: Hashable):
        """The entry for key (now the most recently used), or None."""
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: Hashable, value) -> list[Hashable]:
        """Store value under key as the most recently used; returns the keys evicted to stay within max_size."""
        self._items[key] = value
        self._items.move_to_end(key)
        evicted = []
        while len(self._items) > self.max_size:
            evicted.append(self._items.popitem(last=False)[0])
        return evicted

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        return list(self._items)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


class _Captured:
    """One captured graph and the static buffers it reads and writes."""

    def __init__(self, graph: torch.cuda.CUDAGraph, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        self.graph, self.inputs, self.output = graph, inputs, output

    def replay(self, *values: torch.Tensor) -> torch.Tensor:
        for static, v in zip(self.inputs, values):
            static.copy_(v)
        self.graph.replay()
        return self.output


class GraphedUNet:
    """`unet(x, t, encoder_hidden_states=text, return_dict=False)[0]` without gradients, replayed from CUDA graphs
    where it can be, eager where it cannot (see the module docstring).

    unet: a frozen diffusers UNet2DConditionModel (or any module with that call), already on its device and dtype.
    max_graphs: graphs kept (LRU). warmup: eager side-stream calls before each capture. clone_output: return a
    copy of the output (default) rather than the static buffer, which the next call (any shape) may overwrite.

    Call: x (B, C, h, w), t (B,) integer timesteps or one number, text (B, L, D) in the UNet's dtype ->
    (B, C_out, h, w) noise prediction in the UNet's dtype. Attributes for benchmarks and tests: `reason` (why it
    runs eagerly, None while graphs are on), `captures` (graphs captured so far), `capture_seconds` (their total
    wall time), `replays`.
    """

    def __init__(self, unet: torch.nn.Module | Callable, *, max_graphs: int = DEFAULT_MAX_GRAPHS,
                 warmup: int = DEFAULT_WARMUP, clone_output: bool = True):
        self.unet = unet
        self.warmup = int(warmup)
        self.clone_output = clone_output
        self.graphs = GraphCache(max_graphs)
        self.reason: str | None = disabled_reason()
        self._warned = False
        self._pool = None  # created at the first capture: graph_pool_handle() needs a CUDA context
        # Two runs in two app threads must not interleave copy-in, replay and clone on the same static buffers.
        self._lock = threading.Lock()
        self.captures = 0
        self.capture_seconds = 0.0
        self.replays = 0

    def __bool__(self):
        raise TypeError("GraphedUNet has no truth value: test `graphed is None` (an `a or b` on a wrapped or "
                        "compiled module asks the module itself and can fail)")

    def __repr__(self) -> str:
        state = f"eager: {self.reason}" if self.reason is not None else f"{len(self.graphs)} graphs"
        return f"GraphedUNet({type(self.unet).__name__}, {state})"

    @property
    def enabled(self) -> bool:
        """Whether calls still try graphs (False after any fallback)."""
        return self.reason is None

    def eager(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        """The plain call this wrapper stands in for."""
        with torch.no_grad():
            return self.unet(x, t, encoder_hidden_states=text, return_dict=False)[0]

    def __call__(self, x: torch.Tensor, t: torch.Tensor | int, text: torch.Tensor) -> torch.Tensor:
        t = as_timesteps(t, x)
        if self.reason is None and x.device.type != "cuda":
            self._fall_back(disabled_reason(x.device))
        if self.reason is not None:
            self._warn_once()
            return self.eager(x, t, text)
        with self._lock:
            if self.reason is not None:  # another thread's capture failed meanwhile
                return self.eager(x, t, text)
            key = signature(x, t, text)
            captured = self.graphs.get(key)
            if captured is None:
                captured = self._capture(x, t, text)
                if captured is None:  # the capture failed: this call and all later ones run eagerly
                    return self.eager(x, t, text)
                self.graphs.put(key, captured)
            out = captured.replay(x, t, text)
            self.replays += 1
            return out.clone() if self.clone_output else out

    def _capture(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> _Captured | None:
        start = time.perf_counter()
        # Static buffers with the inputs' own layout (empty_like keeps dense strides, e.g. channels_last), so the
        # graph's kernels are those an eager call would pick.
        static = tuple(torch.empty_like(v) for v in (x, t, text))
        for s, v in zip(static, (x, t, text)):
            s.copy_(v)
        # Warm-up off the default stream (as torch.cuda.graphs' own recipe): lazy initialisations, autotuning and
        # workspace allocations happen here, not inside the capture. An error here is the model's own (it would fail
        # eagerly too), so it propagates.
        side = torch.cuda.Stream(device=x.device)
        side.wait_stream(torch.cuda.current_stream(x.device))
        with torch.cuda.stream(side):
            for _ in range(self.warmup):
                self.eager(*static)
        torch.cuda.current_stream(x.device).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: a Gradio worker thread that allocates or syncs meanwhile must neither break this
            # capture nor be recorded into it.
            with torch.cuda.graph(graph, pool=self._pool, capture_error_mode="thread_local"):
                output = self.eager(*static)
            graph.replay()  # the capture only recorded the kernels; this fills `output`
            torch.cuda.current_stream(x.device).synchronize()  # surface an asynchronous replay error here
        except Exception as err:  # noqa: BLE001 - any capture failure must cost speed, never the run
            del graph
            self._fall_back(f"capturing the UNet call failed ({type(err).__name__}: {err})")
            self._warn_once()
            try:
                torch.cuda.synchronize(x.device)
            except Exception:  # noqa: BLE001 - a broken capture can leave an error to collect; the eager call reports real ones
                pass
            return None
        self.captures += 1
        self.capture_seconds += time.perf_counter() - start
        return _Captured(graph, static, output)

    def _fall_back(self, reason: str | None) -> None:
        self.reason = reason or "CUDA graphs are unavailable"
        self.graphs.clear()

    def _warn_once(self) -> None:
        if not self._warned:
            self._warned = True
            warnings.warn(f"UNet CUDA graphs are off ({self.reason}); running the UNet eagerly", stacklevel=3)
