"""One SDS step (render-free): VAE encoder forward+backward, UNet with CFG (batch 2), SDS loss, backward.

    python -m benchmarks.sds_step                 # SD 1.5 and 2.1 shapes, 512 px, on CUDA if present
    python -m benchmarks.sds_step --quick         # tiny stand-in architectures (exercise the script on a CPU)

Full-size architectures are built with random weights (timings do not depend on weight values). Each
figure is the median of --repeats timed steps after --warmup steps. Prints a table and appends it to
benchmarks/RESULTS.md and benchmarks/results.jsonl.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from backends import engine
from backends.priors.base import Cond

from .archs import build


def make_prior(arch: str, device: torch.device, fast: str):
    from diffusers import DDPMScheduler

    from backends.priors.diffusers_prior import DiffusersPrior

    half = device.type == "cuda"
    unet, vae, text_dim, px = build(arch, device, unet_dtype=torch.float16 if half else torch.float32)
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    prior = DiffusersPrior(unet, vae, torch.nn.Identity(), None, sched, kind="instruct" if "ip2p" in arch else "text",
                           device=device, name=f"{arch} (random weights)")
    if fast != "eager":
        if not hasattr(prior, "accelerate"):
            raise SystemExit("this prior has no accelerate(); only --modes eager is available")
        prior.accelerate(fast)
    return prior, text_dim, px


def timer(device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter()


def time_fn(fn, device, warmup: int, repeats: int) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = timer(device)
        fn()
        times.append((timer(device) - t0) * 1000)
    return statistics.median(times)


def bench_arch(arch: str, device: torch.device, mode: str, warmup: int, repeats: int) -> list[dict]:
    prior, text_dim, px = make_prior(arch, device, mode)
    g = torch.Generator(device).manual_seed(0)
    emb = torch.randn(1, 77, text_dim, device=device, generator=g).to(prior.dtype)
    rows = []
    for batch in (2, 8, 16):
        cond = Cond(text=emb.expand(batch // 2, -1, -1), uncond=torch.zeros_like(emb).expand(batch // 2, -1, -1),
                    guidance=torch.full((batch // 2,), 7.5, device=device))
        z = torch.randn(batch // 2, 4, px // 8, px // 8, device=device, generator=g)
        t = torch.full((batch // 2,), 500, device=device)
        ms = time_fn(lambda: prior.predict_eps(z, t, cond), device, warmup, repeats)
        rows.append(dict(metric=f"unet_cfg_fwd_batch{batch}", value=ms))
    image = torch.rand(1, 3, px, px, device=device, generator=g, requires_grad=True)

    def enc_fwd_bwd():
        prior.encode(image).sum().backward()

    rows.append(dict(metric="vae_encoder_fwd_bwd", value=time_fn(enc_fwd_bwd, device, warmup, repeats)))
    cond = Cond(text=emb, uncond=torch.zeros_like(emb), guidance=torch.full((1,), 100.0, device=device))

    def sds_step():
        z = prior.encode(image)
        tt = engine.sample_timesteps(1, 50, 950, generator=g, device=device)
        loss, _ = engine.distillation_loss(prior, z, cond, tt, generator=g)
        loss.backward()

    rows.append(dict(metric="sds_step", value=time_fn(sds_step, device, warmup, repeats)))
    if device.type == "cuda":
        rows.append(dict(metric="peak_memory", value=torch.cuda.max_memory_allocated() / 2**20, unit="MiB"))
    for r in rows:
        r.update(arch=arch, mode=mode)
        r.setdefault("unit", "ms")
    return rows


def icon_targets(size: int, device) -> torch.Tensor:
    """The shipped example icons (examples/svg/*.png) as (B, 3, size, size) float32 in [0, 1] on device."""
    from pathlib import Path

    import numpy as np
    from PIL import Image

    files = sorted((Path(__file__).resolve().parents[1] / "examples" / "svg").glob("*.png"))
    ims = [np.asarray(Image.open(f).convert("RGB").resize((size, size), Image.LANCZOS)) for f in files]
    return torch.from_numpy(np.stack(ims)).permute(0, 3, 1, 2).float().div(255).to(device)


def encoder_fidelity_rows(prior, *, size: int, steps: int) -> list[dict]:
    """What the fast encoder costs in results: `fast_vae.encoder_fidelity` on the example icons, the analytic prior
    centred on the KL encoder's posterior mean (equal targets for both encoders), `steps` SDS steps each.
    prior: a DiffusersPrior whose `fast_vae()` loads ($DISTILL_FAST_VAE or madebyollin/taesd).
    Rows: metric "kl" / "fast" psnr_db and latent_rmse, and "fast - kl" psnr_db."""
    from backends.priors.fast_vae import encoder_fidelity

    targets = icon_targets(size, prior.device)
    kl = lambda x: prior.encode(x, mode="mean")  # noqa: E731 - the reference and the "kl" encoder
    res = encoder_fidelity({"kl": kl, "fast": prior.fast_vae().encode}, targets, kl, steps=steps)
    rows = [dict(metric=f"{name}/{k}", value=v, unit="dB" if k.endswith("db") else "")
            for name, r in res.items() for k, v in r.items()]
    rows.append(dict(metric="fast-kl/psnr_db", value=res["fast"]["psnr_db"] - res["kl"]["psnr_db"], unit="dB"))
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny architectures (for a CPU)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--modes", default="eager", help="comma list: eager, and the prior's accelerate() modes")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args(argv)
    device = torch.device(args.device)
    archs = ["tiny"] if args.quick else ["sd15", "sd21"]
    rows = []
    for arch in archs:
        for mode in args.modes.split(","):
            rows += bench_arch(arch, device, mode, args.warmup, args.repeats)
    lines = ["| arch | mode | metric | value |", "|---|---|---|---|"]
    lines += [f"| {r['arch']} | {r['mode']} | {r['metric']} | {r['value']:.1f} {r['unit']} |" for r in rows]
    table = "\n".join(lines)
    note = " (tiny stand-in architectures, random weights)" if args.quick else " (full-size architectures, random weights)"
    print(table)
    if not args.no_record:
        from .common import append_results, device_name

        append_results("sds_step" + note, table, [dict(bench="sds_step", metric=f"{r['arch']}/{r['mode']}/{r['metric']}",
                                                     value=r["value"], unit=r["unit"]) for r in rows],
                       device=device_name(device))


if __name__ == "__main__":
    main()
