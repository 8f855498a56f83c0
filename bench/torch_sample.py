#!/usr/bin/env python3
"""PyTorch CPU eager twin of `fusion-bench sample` (benchmarks only; never tests).

Text-to-image sampling as Transfusion.sampleImages does it: the prompt (+ BOI) and the
unconditional prompt (BOS BOI) run once into per-layer KV caches for `count` rows each; then 50
Euler steps of the flow ODE, each running the noisy span after both cached prefixes and mixing
the two predictions with CFG; then the VAE decodes the latents. Model of
recipes/compare/transfusion-unet-tiny.yaml (random weights: the time does not depend on them).

    .build/release/fusion-bench sample --dump=/tmp/sample.json
    python3 bench/torch_sample.py --batch /tmp/sample.json --threads 2
"""
import torch

from torch_common import MemoryProbe, Transfusion, VAEDecoder, autocast, load_batch, parse_args, report, timed

args = parse_args(steps=3)
cfg = load_batch(args.batch)
model = Transfusion(cfg["model"]).eval()
vae = VAEDecoder(cfg["vae"]).eval()
n, steps, scale = cfg["count"], cfg["steps"], cfg["cfg"]
BOS, BOI = 0, 3
prompt = torch.tensor([[BOS] + [10] * (cfg["prompt_length"] - 1) + [BOI]] * n)
uncond = torch.tensor([[BOS, BOI]] * n)
c, s = cfg["model"]["latent_channels"], cfg["model"]["latent_size"]


def sample():
    cond_cache, uncond_cache = model.prefix(prompt), model.prefix(uncond)
    x = torch.randn(n, c, s, s)
    times = torch.linspace(1, 0, steps + 1)
    for t, nxt in zip(times[:-1], times[1:]):
        tt = t.repeat(n)
        vc = model.span(x, tt, cond_cache).float()
        vu = model.span(x, tt, uncond_cache).float()
        x = x + (vu + scale * (vc - vu)) * (nxt - t)
    return vae(x)


probe = MemoryProbe()
probe.start()
with torch.inference_mode(), autocast():
    sec = timed(sample, args.steps, warmup=1)
mem = probe.finish()
print(f"torch-sample threads={args.threads}  {n} images, {steps} steps, cfg {scale}  {sec * 1e3:.1f} ms")
report("sample-t2i", dict(mem, ms=sec * 1e3))
