"""Full-size diffusion architectures with random weights, for timing when real weights are absent.

Timings do not depend on weight values, so a UNet / VAE built from the published configs times exactly like
the released model. `--quick` configs are tiny stand-ins so the scripts can be exercised on a CPU.
"""
from __future__ import annotations

import torch

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
                 up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
                 cross_attention_dim=768, attention_head_dim=8)
SD21_UNET = dict(SD15_UNET, cross_attention_dim=1024, attention_head_dim=(5, 10, 20, 20), use_linear_projection=True)
IP2P_UNET = dict(SD15_UNET, in_channels=8)
SD_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
              block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
              up_block_types=("UpDecoderBlock2D",) * 4, scaling_factor=0.18215)
TINY_UNET = dict(sample_size=8, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64),
                 down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32, attention_head_dim=4,
                 norm_num_groups=8)
TINY_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, sample_size=64,
                block_out_channels=(16, 32), down_block_types=("DownEncoderBlock2D",) * 2,
                up_block_types=("UpDecoderBlock2D",) * 2, norm_num_groups=8, scaling_factor=0.18215)

TEXT_DIM = {"sd15": 768, "sd21": 1024, "ip2p": 768, "tiny": 32}


def build(arch: str, device: torch.device, *, unet_dtype: torch.dtype, seed: int = 0):
    """(unet, vae, text_dim, pixel_size) for arch in {"sd15", "sd21", "ip2p", "tiny", "tiny-ip2p"}, random weights."""
    from diffusers import AutoencoderKL, UNet2DConditionModel

    torch.manual_seed(seed)
    tiny = arch.startswith("tiny")
    cfg = {"sd15": SD15_UNET, "sd21": SD21_UNET, "ip2p": IP2P_UNET, "tiny": TINY_UNET,
           "tiny-ip2p": dict(TINY_UNET, in_channels=8)}[arch]
    unet = UNet2DConditionModel(**cfg).to(device, unet_dtype).eval().requires_grad_(False)
    vae = AutoencoderKL(**(TINY_VAE if tiny else SD_VAE)).to(device).eval().requires_grad_(False)
    return unet, vae, TEXT_DIM["tiny" if tiny else arch], 64 if tiny else 512
