#!/usr/bin/env python3
"""PyTorch CPU eager twin of `fusion-bench vae` (benchmarks only; never tests).

Encode (posterior mean × latent scale) and decode of 64 images of 32×32 through the ImageVAE of
checkpoints/vae-shapes.safetensors (config from fusion-bench's dump; random weights, which do
not change the time).

    .build/release/fusion-bench vae --dump=/tmp/vae.json
    python3 bench/torch_vae.py --batch /tmp/vae.json --threads 2
"""
import torch

from torch_common import MemoryProbe, VAEDecoder, VAEEncoder, load_batch, parse_args, report, timed

args = parse_args(steps=5)
dumped = load_batch(args.batch)
cfg, N = dumped["config"], dumped["batch"]
enc, dec = VAEEncoder(cfg).eval(), VAEDecoder(cfg).eval()
images = torch.rand(N, cfg["imageChannels"], 32, 32) * 2 - 1
probe = MemoryProbe()
probe.start()
with torch.inference_mode():
    z = enc(images)
    te = timed(lambda: enc(images), args.steps, warmup=1)
    td = timed(lambda: dec(z), args.steps, warmup=1)
mem = probe.finish()
print(f"torch-vae threads={args.threads}  encode {te * 1e3:.1f} ms ({N / te:.0f} images/s)  decode {td * 1e3:.1f} ms ({N / td:.0f} images/s)")
report("vae-encode", dict(mem, ms=te * 1e3, images_per_s=N / te))
report("vae-decode", dict(mem, ms=td * 1e3, images_per_s=N / td))
