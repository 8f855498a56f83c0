#!/usr/bin/env python3
"""Reference outputs for Fusion's image tokenizer parity tests (PyTorch).

Builds the same tiny ImageVAE and VQTokenizer as Tests/ModelsTests/ParityTests.swift (the
LDM-style conv backbone: ResBlocks with GroupNorm and SiLU, stride-2 downsampling, nearest
upsampling; the VQ model with a pixel-unshuffle stem) under Fusion's parameter names, runs them
in float64 on fixed inputs and saves, in tokenizer_reference.safetensors:

  vae.weight.<name> / vq.weight.<name>   the float32 weights both sides use
  vae.images, vae.noise                  inputs (noise is the ε of the reparameterisation)
  vae.mean, vae.logvar, vae.decoded      posterior and decoder(μ + σ·ε)
  vae.loss (total, reconstruction, kl)   and vae.grad.<name> for every parameter
  vq.images, vq.ids, vq.decoded          nearest codes and decoder(z_q)
  vq.loss (total, reconstruction, codebook, commitment) and vq.grad.<name>

Regenerate (needs torch and safetensors; CI never runs this):
    python3 Tests/Fixtures/make_tokenizer_reference.py
"""
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
DT = torch.float64
HERE = os.path.dirname(os.path.abspath(__file__))
GROUPS = 4


class ResBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.norm1 = nn.GroupNorm(min(GROUPS, cin), cin, eps=1e-5)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(min(GROUPS, cout), cout, eps=1e-5)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class DownBlock(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.res = ResBlock(cin, cout)
        self.down = nn.Conv2d(cout, cout, 3, stride=2, padding=1)

    def forward(self, x):
        return self.down(self.res(x))


class Upsample(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class Encoder(nn.Module):
    def __init__(self, cimg, widths, cout, patch):
        super().__init__()
        self.patch = patch
        self.convIn = nn.Conv2d(cimg * patch * patch, widths[0], 3, padding=1)
        self.down = nn.ModuleList([DownBlock(widths[max(i - 1, 0)], widths[i]) for i in range(len(widths) - 1)])
        self.last = ResBlock(widths[max(len(widths) - 2, 0)], widths[-1])
        self.mid = ResBlock(widths[-1], widths[-1])
        self.normOut = nn.GroupNorm(GROUPS, widths[-1], eps=1e-5)
        self.convOut = nn.Conv2d(widths[-1], cout, 3, padding=1)

    def forward(self, x):
        h = self.convIn(F.pixel_unshuffle(x, self.patch) if self.patch > 1 else x)
        for b in self.down:
            h = b(h)
        h = self.mid(self.last(h))
        return self.convOut(F.silu(self.normOut(h)))


class Decoder(nn.Module):
    def __init__(self, cin, widths, cimg, patch):
        super().__init__()
        self.patch = patch
        self.convIn = nn.Conv2d(cin, widths[-1], 3, padding=1)
        self.mid = ResBlock(widths[-1], widths[-1])
        self.blocks = nn.ModuleList([ResBlock(widths[i], widths[i]) for i in reversed(range(len(widths)))])
        self.ups = nn.ModuleList([Upsample(widths[i], widths[i - 1]) for i in reversed(range(1, len(widths)))])
        self.normOut = nn.GroupNorm(GROUPS, widths[0], eps=1e-5)
        self.convOut = nn.Conv2d(widths[0], cimg * patch * patch, 3, padding=1)

    def forward(self, z):
        h = self.mid(self.convIn(z))
        for j, b in enumerate(self.blocks):
            h = b(h)
            if j < len(self.ups):
                h = self.ups[j](h)
        y = self.convOut(F.silu(self.normOut(h)))
        return F.pixel_shuffle(y, self.patch) if self.patch > 1 else y


class VAE(nn.Module):
    def __init__(self, widths, latent, patch=1):
        super().__init__()
        self.latent = latent
        self.encoder = Encoder(3, widths, 2 * latent, patch)
        self.decoder = Decoder(latent, widths, 3, patch)


class Quantizer(nn.Module):
    def __init__(self, codes, dim):
        super().__init__()
        self.codebook = nn.Parameter(torch.randn(codes, dim))


class VQ(nn.Module):
    def __init__(self, widths, codes, dim, patch=1):
        super().__init__()
        self.encoder = Encoder(3, widths, dim, patch)
        self.quantizer = Quantizer(codes, dim)
        self.decoder = Decoder(dim, widths, 3, patch)


def randomise(model):
    """Non-trivial norms and biases, so their gradients are checked too."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn_like(p))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn_like(p))


def weights(model, prefix):
    return {f"{prefix}.weight.{k}": v.detach().float().contiguous() for k, v in model.state_dict().items()}


def grads(model, prefix):
    return {f"{prefix}.grad.{k}": p.grad.detach().float().contiguous() for k, p in model.named_parameters()}


out = {}

# ImageVAE: channels 4, multipliers [1, 2, 2], latent 4, downsample 4, L1, klWeight 0.1.
vae = VAE([4, 8, 8], 4)
randomise(vae)
out.update(weights(vae, "vae"))
vae = vae.to(DT)
x = torch.rand(2, 3, 16, 16, dtype=DT) * 2 - 1
eps = torch.randn(2, 4, 4, 4, dtype=DT)
moments = vae.encoder(x)
mean, logvar = moments[:, :4], moments[:, 4:].clamp(min=-30)
decoded = vae.decoder(mean + torch.exp(0.5 * logvar) * eps)
recon = (decoded - x).abs().mean()
kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
total = recon + 0.1 * kl
total.backward()
out.update({"vae.images": x, "vae.noise": eps, "vae.mean": mean, "vae.logvar": logvar, "vae.decoded": decoded,
            "vae.loss": torch.stack([total, recon, kl])})
out.update(grads(vae, "vae"))

# VQTokenizer: channels 4, multipliers [1, 2], pixel-unshuffle 2, downsample 4, 16 codes of
# dimension 4, β = 0.25, MSE reconstruction.
vq = VQ([4, 8], 16, 4, patch=2)
randomise(vq)
out.update(weights(vq, "vq"))
vq = vq.to(DT)
x = torch.rand(2, 3, 16, 16, dtype=DT) * 2 - 1
z = vq.encoder(x)                                            # (N, D, h, w)
flat = z.permute(0, 2, 3, 1).reshape(-1, 4)                  # (M, D)
book = vq.quantizer.codebook
dist = (flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1)[None])
top2 = dist.topk(2, dim=1, largest=False).values
assert (top2[:, 1] - top2[:, 0]).min() > 1e-3, "near tie in the nearest-code search: change the seed"
ids = dist.argmin(1)
zq = book[ids]                                               # (M, D)
codebook_loss = (zq - flat.detach()).pow(2).mean()
commitment = (flat - zq.detach()).pow(2).mean()
st = flat + (zq - flat).detach()
decoded = vq.decoder(st.reshape(2, 4, 4, 4).permute(0, 3, 1, 2))
recon = (decoded - x).pow(2).mean()
total = recon + codebook_loss + 0.25 * commitment
total.backward()
out.update({"vq.images": x, "vq.ids": ids.reshape(2, 4, 4).to(torch.int32), "vq.decoded": decoded,
            "vq.loss": torch.stack([total, recon, codebook_loss, commitment])})
out.update(grads(vq, "vq"))

out = {k: (v.detach().float() if v.dtype == DT else v.detach()).contiguous() for k, v in out.items()}
save_file(out, os.path.join(HERE, "tokenizer_reference.safetensors"))
print(f"wrote {len(out)} tensors to tokenizer_reference.safetensors")
