"""Seconds per CSD-Edit step: N particles of 512x512 (N = 1, 4, 8, 16; 16 is a 16-frame clip), the per-item
baseline at N = 16, and a 512x2048 panorama (16 windows of 64x64 latent cells at stride 16), with peak GPU memory.

    python -m benchmarks.csd_edit_step                  # full-size InstructPix2Pix architecture, CUDA if present
    python -m benchmarks.csd_edit_step --prior ip2p     # the real weights instead (when they are in the cache)
    python -m benchmarks.csd_edit_step --quick          # the tiny random-weight model at 64 px (exercise it on a CPU)

A step is exactly what the backends run: one UNet call over all particles and both prompts (3 guidance branches
each, fp16 UNet on CUDA), the kernel, the SDS-edit/CSD gradient, backward into the latents and an SGD step.
Without real weights the full-size architecture is built from InstructPix2Pix's config with random weights (the
UNet, VAE and a CLIP ViT-L/14 text encoder): timings do not depend on weight values, and the output says which was
used. Each figure is the median of --repeats steps after --warmup. Prints a table and appends it to
benchmarks/RESULTS.md and benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from backends.csd_edit import panorama, windows
from backends.csd_edit.csd import CSDEdit, items_step
from backends.csd_edit.panorama import PanoramaCSDSettings
from backends.csd_edit.video import VideoCSDSettings
from backends.core.settings import resolve_auto


def random_full_ip2p(device: torch.device):
    """InstructPix2Pix's architecture (SD 1.5 UNet with 8 input channels, SD VAE, CLIP ViT-L/14 text encoder) with
    random weights, behind the same DiffusersPrior the app uses. The tokenizer is the tiny model's (token ids only
    index the embedding table, so its vocabulary size does not change the timing)."""
    from diffusers import DDPMScheduler
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    from backends.priors.diffusers_prior import DiffusersPrior
    from backends.priors.tiny import ensure_tiny

    from .archs import build

    half = device.type == "cuda"
    unet, vae, _, _ = build("ip2p", device, unet_dtype=torch.float16 if half else torch.float32)
    tokenizer = CLIPTokenizer.from_pretrained(ensure_tiny("ip2p") / "tokenizer")
    text = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                        num_attention_heads=12, max_position_embeddings=77,
                                        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                        pad_token_id=tokenizer.pad_token_id)).to(device, unet.dtype)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False)
    return DiffusersPrior(unet, vae, text, tokenizer, sched, kind="instruct", device=device,
                          name="InstructPix2Pix architecture (random weights)")


def load(args, device):
    if args.quick:
        from backends.priors import load_prior

        return load_prior("tiny-ip2p", device), "tiny random-weight InstructPix2Pix (quick)", 64
    if args.prior == "random":
        return random_full_ip2p(device), "InstructPix2Pix architecture, random weights (real weights not used)", 512
    from backends.priors import load_prior

    return load_prior(args.prior, device), f"{args.prior} (real weights)", 512


def time_steps(step, z, warmup: int, repeats: int, device) -> float:
    """Median seconds of one optimization step (loss, backward into the latents, SGD)."""
    opt = torch.optim.SGD([z], lr=0.5)

    def one(i):
        opt.zero_grad(set_to_none=True)
        step(i).loss.backward()
        opt.step()

    for i in range(warmup):
        one(i)
    times = []
    for i in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        one(i)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench(prior, px: int, args, device) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    rows = []

    def record(case, n, method, seconds):
        peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
        rows.append(dict(case=case, particles=n, method=method, seconds=seconds, peak_gib=peak))
        mem = f", peak {peak:.1f} GiB" if peak is not None else ""
        print(f"{case} [{method}]: {seconds:.3f} s/step{mem}", flush=True)

    for n, method in [(1, "csd"), (4, "csd"), (8, "csd"), (16, "csd"), (16, "per-item")]:
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        s, _ = resolve_auto(VideoCSDSettings(prompt="make it snowy", chunk=args.chunk), "full")  # as the runner does
        sources = torch.rand(n, 3, px, px, generator=g).to(device)
        edit = CSDEdit(prior, s, sources, method=method)
        z = edit.source_latents.clone().requires_grad_(True)
        case = f"{n} frame{'s' if n > 1 else ''} {px}x{px}" + (" (a 16-frame clip)" if n == 16 else "")
        record(case, n, method, time_steps(items_step(edit, z), z, args.warmup, args.repeats, device))
        del edit, z, sources

    for method in ("csd", "per-item"):
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
        s, _ = resolve_auto(PanoramaCSDSettings(prompt="make it snowy", chunk=args.chunk), "full")
        scale = prior.latent_scale
        window, stride = min(s.window, px) // scale, min(s.stride, px // 4) // scale
        sources = torch.rand(1, 3, px, 4 * px, generator=g).to(device)
        edit = CSDEdit(prior, s, sources, method=method)
        pano = edit.source_latents.clone().requires_grad_(True)
        boxes, _ = windows.window_boxes(pano.shape[2], pano.shape[3], window, stride)
        step = panorama.make_step(edit, pano, boxes, s.particles)
        used = min(s.particles, len(boxes))
        record(f"panorama {px}x{4 * px}, {used} windows", used, method,
               time_steps(step, pano, args.warmup, args.repeats, device))
        del edit, pano, sources
    return rows


def _gib(value) -> str:
    return "n/a (CPU)" if value is None else f"{value:.1f} GiB"


def main(argv=None) -> list[dict]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the tiny model at 64 px (for a CPU)")
    p.add_argument("--prior", default="random", help="'random' (full-size architecture, random weights), or a prior "
                                                     "name such as ip2p")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--chunk", type=int, default=0, help="latents per UNet call (0: all in one)")
    p.add_argument("--size", type=int, default=None, help="frame side / panorama height in pixels (default 512, "
                                                          "64 with --quick)")
    p.add_argument("--accelerate", default="auto", help="prior.accelerate mode: auto (graph on CUDA), eager, graph, "
                                                        "channels_last, compile")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    prior, what, px = load(args, device)
    if hasattr(prior, "accelerate"):
        what += f", accelerate {args.accelerate}: {prior.accelerate(args.accelerate) or ['none']}"
    px = args.size or px
    print(f"prior: {what}; device: {device}")
    rows = bench(prior, px, args, device)
    lines = ["| case | method | s / step | peak GPU memory |", "|---|---|---|---|"]
    lines += [f"| {r['case']} | {r['method']} | {r['seconds']:.3f} | {_gib(r['peak_gib'])} |" for r in rows]
    table = "\n".join(lines)
    print(table)
    if not args.no_record:
        from .common import append_results, device_name

        append_results(f"csd_edit_step ({what})", table,
                       [dict(metric=f"{r['case']}/{r['method']}/s_per_step", value=r["seconds"], unit="s") for r in rows]
                       + [dict(metric=f"{r['case']}/{r['method']}/peak_memory", value=r["peak_gib"], unit="GiB")
                          for r in rows if r["peak_gib"] is not None],
                       device=device_name(device), notes=[f"Prior: {what}; chunk {args.chunk} (0: one UNet call)."])
    return rows


if __name__ == "__main__":
    main()
