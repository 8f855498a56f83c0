#!/usr/bin/env python3
"""PyTorch CPU eager twin of `fusion-bench transfusion` (benchmarks only; never tests).

One Transfusion training step (recipes/compare/transfusion-unet-tiny.yaml: tiny decoder with
QK-norm, U-Net patches, z-loss, λ = 5) on the batch fusion-bench packed and dumped: same ids,
mask, positions, span starts and timesteps; forward, backward, grad-norm clipping and AdamW.

    .build/release/fusion-bench transfusion --dump=/tmp/tf.json
    python3 bench/torch_transfusion.py --batch /tmp/tf.json --threads 2 --steps 10
"""
import torch
import torch.nn.functional as F

from torch_common import Transfusion, adamw, autocast, cross_entropy_z, load_batch, mask_from_ranges, parse_args, report_training_step

args = parse_args()
cfg = load_batch(args.batch)
B, T, N = cfg["batch"], cfg["seq"], cfg["images"]
model = Transfusion(cfg)
opt = adamw(model, cfg["lr"], cfg["weight_decay"], cfg["beta2"], no_decay=("embed.",))
ids = torch.tensor(cfg["ids"]).view(B, T)
targets = torch.tensor(cfg["targets"])
positions = torch.tensor(cfg["positions"]).view(B, T)
mask = mask_from_ranges(cfg["lo"], cfg["hi"], B, T)
latents = torch.randn(N, cfg["latent_channels"], cfg["latent_size"], cfg["latent_size"])
image_targets = torch.randn_like(latents)
timesteps = torch.tensor(cfg["timesteps"])
params = list(model.parameters())
last = [0.0]


def step():
    opt.zero_grad(set_to_none=True)
    with autocast():
        hidden, images, _ = model(ids, positions, mask, latents, timesteps, cfg["span_starts"])
        keep = (targets >= 0).nonzero().squeeze(1)
        logits = model.head(hidden.reshape(B * T, -1)[keep])
        text = cross_entropy_z(logits, targets[keep], cfg["z_loss"])
        loss = text + cfg["loss_weight"] * F.mse_loss(images.float(), image_targets)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg["grad_clip"])
    opt.step()
    last[0] = loss.item()


report_training_step("transfusion-step", step, args.steps, cfg["flops"], args.threads, last)
