"""Shared pieces of Fusion's PyTorch twins (benchmarks only; never tests): the decoder blocks as
Fusion builds them (pre-norm RMSNorm, fused QKV, optional QK-norm, rotate-half RoPE, SwiGLU with
fused [gate|up]), the U-Net patch blocks, timing, and the memory probe. Each twin prints one
`BENCH {json}` line, with the same fields as fusion-bench, for bench/run.py.
"""
import argparse
import contextlib
import json
import math
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def parse_args(steps=10):
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch", help="JSON batch written by fusion-bench --dump")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                   help="bf16: forward and loss under CPU autocast to bfloat16 (Fusion's matmul_precision bf16)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    global PRECISION
    PRECISION = args.precision
    return args


PRECISION = "fp32"


def autocast():
    """PyTorch's mixed precision on the CPU when the twin runs with --precision bf16."""
    return torch.autocast("cpu", dtype=torch.bfloat16) if PRECISION == "bf16" else contextlib.nullcontext()


def load_batch(path):
    with open(path) as f:
        return json.load(f)


def timed(fn, steps, warmup=2):
    """Median seconds of `steps` runs of `fn` after `warmup`. With FUSION_BENCH_LOCKSTEP=1 the
    driver says when each runs, as in fusion-bench: READY, then one run per `step` line on stdin
    (answered `STEP <ms>`) until `done`."""
    for _ in range(warmup):
        fn()
    times = []
    if os.environ.get("FUSION_BENCH_LOCKSTEP") == "1":
        print("READY", flush=True)
        while sys.stdin.readline().strip() == "step":
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
            print(f"STEP {times[-1] * 1e3:.3f}", flush=True)
        return statistics.median(times) if times else float("nan")
    for _ in range(steps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1048576


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class MemoryProbe:
    """Peak RSS of the process, and that peak above the RSS before the timed region."""

    def start(self):
        self.before = rss_mib()

    def finish(self):
        peak = peak_rss_mib()
        return {"peak_rss_mib": peak, "step_rss_mib": max(0.0, peak - self.before)}


def report(name, fields):
    fields = dict(fields, name=name, threads=torch.get_num_threads(), precision=PRECISION)
    print("BENCH " + json.dumps(fields, sort_keys=True))


# MARK: decoder

def report_training_step(name, step, steps, flops, threads, last):
    """Times `step` (after warm-up), measures its peak memory, prints the human line and reports
    the JSON row of benchmark `name` (e.g. "chameleon-step"); `last[0]` holds the step's loss."""
    probe = MemoryProbe()
    probe.start()
    s = timed(step, steps)
    mem = probe.finish()
    print(f"torch-{name} threads={threads}  step {s * 1e3:.1f} ms  {flops / s / 1e9:.1f} GFLOP/s  "
          f"(peak RSS {mem['peak_rss_mib']:.0f} MiB, loss {last[0]:.3f})")
    report(name, dict(mem, ms=s * 1e3, gflops=flops / s / 1e9, loss=last[0]))


class RMSNorm(torch.nn.Module):
    def __init__(self, d, eps=1e-6):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(positions, dh, base=10000.0):
    """cos, sin of shape (B or 1, T, 1, dh/2) for integer positions (T) or (B, T)."""
    inv = base ** (-2.0 * torch.arange(dh // 2, dtype=torch.float64) / dh)
    pos = positions.to(torch.float64)
    if pos.dim() == 1:
        pos = pos[None]
    ang = pos[..., None] * inv
    return ang.cos().float()[:, :, None, :], ang.sin().float()[:, :, None, :]


def rope(x, cos, sin):
    h = x.shape[-1] // 2
    x1, x2 = x[..., :h], x[..., h:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Block(torch.nn.Module):
    def __init__(self, d, heads, hidden, qk_norm=False):
        super().__init__()
        self.d, self.h, self.dh = d, heads, d // heads
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.qkv = torch.nn.Linear(d, 3 * d, bias=False)
        self.proj = torch.nn.Linear(d, d, bias=False)
        self.qn = RMSNorm(self.dh) if qk_norm else None
        self.kn = RMSNorm(self.dh) if qk_norm else None
        self.w13 = torch.nn.Linear(d, 2 * hidden, bias=False)
        self.w2 = torch.nn.Linear(hidden, d, bias=False)

    def forward(self, x, cos, sin, mask=None, causal=False, cache=None):
        """x (B, T, d); mask: bool (B, 1, T, S) where True attends; cache: (k, v) prefix (B, S0, H, D)."""
        b, t, _ = x.shape
        q, k, v = self.qkv(self.n1(x)).view(b, t, 3, self.h, self.dh).unbind(2)
        if self.qn is not None:
            q, k = self.qn(q), self.kn(k)
        q, k = rope(q, cos, sin), rope(k, cos, sin)
        if cache is not None:
            k, v = torch.cat([cache[0], k], 1), torch.cat([cache[1], v], 1)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2),
                                           attn_mask=mask, is_causal=causal and mask is None)
        x = x + self.proj(y.transpose(1, 2).reshape(b, t, self.d))
        g, u = self.w13(self.n2(x)).chunk(2, -1)
        return x + self.w2(F.silu(g) * u), (k, v)


class Decoder(torch.nn.Module):
    def __init__(self, d, layers, heads, hidden, qk_norm=False):
        super().__init__()
        self.blocks = torch.nn.ModuleList(Block(d, heads, hidden, qk_norm) for _ in range(layers))
        self.norm = RMSNorm(d)
        self.dh = d // heads

    def forward(self, x, positions, mask=None, causal=False, caches=None):
        cos, sin = rope_tables(positions, self.dh)
        new = []
        for i, blk in enumerate(self.blocks):
            x, kv = blk(x, cos, sin, mask, causal, None if caches is None else caches[i])
            new.append(kv)
        return self.norm(x), new


def mask_from_ranges(lo, hi, b, t, s=None):
    """The block mask of Fusion's AttentionMask: query i of row r sees keys lo..hi-1. (B, 1, T, S) bool."""
    s = s or t
    lo = torch.tensor(lo).view(b, t, 1)
    hi = torch.tensor(hi).view(b, t, 1)
    j = torch.arange(s).view(1, 1, s)
    return ((j >= lo) & (j < hi))[:, None]


def adamw(model, lr, weight_decay, beta2=0.999, no_decay=()):
    """AdamW with Fusion's default decay set: matrices and conv kernels decay, embeddings and vectors not."""
    decay, rest = [], []
    for n, p in model.named_parameters():
        (decay if p.dim() >= 2 and not any(n.startswith(x) for x in no_decay) else rest).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, beta2))


def cross_entropy_z(logits, targets, z_loss):
    """Mean cross-entropy over targets ≥ 0 plus z_loss·mean(logsumexp²), as Fusion's fused loss."""
    keep = targets >= 0
    logits, targets = logits[keep], targets[keep]
    loss = F.cross_entropy(logits, targets)
    if z_loss > 0:
        loss = loss + z_loss * torch.logsumexp(logits, -1).pow(2).mean()
    return loss


# MARK: U-Net patches

def timestep_features(t, dim=256, max_period=10000.0):
    half = dim // 2
    f = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float64) / half)
    a = t[:, None].to(torch.float64) * f[None]
    return torch.cat([a.cos(), a.sin()], -1).float()


class TimestepEmbedding(torch.nn.Module):
    def __init__(self, d, features=256):
        super().__init__()
        self.fc1, self.fc2, self.features = torch.nn.Linear(features, d), torch.nn.Linear(d, d), features

    def forward(self, t):
        return self.fc2(F.silu(self.fc1(timestep_features(t, self.features))))


class ResBlock(torch.nn.Module):
    def __init__(self, cin, cout, time_dim=None, groups=8):
        super().__init__()
        self.norm1 = torch.nn.GroupNorm(min(groups, cin), cin)
        self.conv1 = torch.nn.Conv2d(cin, cout, 3, padding=1)
        self.temb = torch.nn.Linear(time_dim, cout) if time_dim else None
        self.norm2 = torch.nn.GroupNorm(min(groups, cout), cout)
        self.conv2 = torch.nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = torch.nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, t=None):
        h = self.conv1(F.silu(self.norm1(x)))
        if self.temb is not None and t is not None:
            h = h + self.temb(F.silu(t))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return (x if self.skip is None else self.skip(x)) + h


class PatchUNet(torch.nn.Module):
    """Fusion's PatchUNet: stem, `levels` down blocks (ResBlock + stride-2 conv), up blocks
    (nearest ×2, conv, concat skip, ResBlock), GroupNorm, SiLU, output conv."""

    def __init__(self, latent, ch, levels, time_dim, groups=8):
        super().__init__()
        self.stem = torch.nn.Conv2d(latent, ch, 3, padding=1)
        self.down_res = torch.nn.ModuleList(ResBlock(ch, ch, time_dim, groups) for _ in range(levels))
        self.down = torch.nn.ModuleList(torch.nn.Conv2d(ch, ch, 3, stride=2, padding=1) for _ in range(levels))
        self.up = torch.nn.ModuleList(torch.nn.Conv2d(ch, ch, 3, padding=1) for _ in range(levels))
        self.up_res = torch.nn.ModuleList(ResBlock(2 * ch, ch, time_dim, groups) for _ in range(levels))
        self.out_norm = torch.nn.GroupNorm(min(groups, ch), ch)
        self.out_conv = torch.nn.Conv2d(ch, latent, 3, padding=1)

    def encode(self, x, t):
        h, skips = self.stem(x), []
        for res, down in zip(self.down_res, self.down):
            h = res(h, t)
            skips.append(h)
            h = down(h)
        return h, skips

    def decode(self, h, skips, t):
        for up, res, skip in zip(self.up, self.up_res, reversed(skips)):
            h = res(torch.cat([up(F.interpolate(h, scale_factor=2, mode="nearest")), skip], 1), t)
        return self.out_conv(F.silu(self.out_norm(h)))


class Transfusion(torch.nn.Module):
    """Fusion's Transfusion with the U-Net patchifier (Models/Transfusion/Transfusion.swift)."""

    def __init__(self, cfg):
        super().__init__()
        d, self.d = cfg["dim"], cfg["dim"]
        self.c, self.s, self.p = cfg["latent_channels"], cfg["latent_size"], cfg["patch_size"]
        self.g = self.s // self.p
        self.np = self.g * self.g
        ch = cfg["unet_channels"]
        self.embed = torch.nn.Embedding(cfg["vocab"], d)
        self.decoder = Decoder(d, cfg["layers"], cfg["heads"], cfg["mlp_hidden"], cfg["qk_norm"])
        self.head = torch.nn.Linear(d, cfg["vocab"], bias=False)
        self.time = TimestepEmbedding(d)
        self.span_position = torch.nn.Parameter(0.02 * torch.randn(self.np, d))
        self.unet = PatchUNet(self.c, ch, int(math.log2(self.p)), d)
        self.patch_in = torch.nn.Linear(ch, d)
        self.patch_out = torch.nn.Linear(d, ch)
        self.timestep_scale = cfg["timestep_scale"]

    def forward(self, ids, positions, mask, latents, timesteps, span_starts, caches=None):
        """Hidden states (B, T, d) and image predictions (n, C, h, w); span_starts are flat b·T + t."""
        b, t = ids.shape
        n, d = latents.shape[0], self.d
        temb = self.time(timesteps * self.timestep_scale)                     # (n, d)
        grid, skips = self.unet.encode(latents, temb)                          # (n, ch, g, g)
        tokens = grid.permute(0, 2, 3, 1).reshape(n * self.np, -1)
        patches = self.patch_in(tokens).view(n, self.np, d) + temb[:, None] + self.span_position
        rows = torch.cat([torch.arange(s, s + self.np) for s in span_starts])
        x = self.embed(ids).view(b * t, d).index_copy(0, rows, patches.reshape(n * self.np, d)).view(b, t, d)
        hidden, kv = self.decoder(x, positions, mask=mask, caches=caches)
        out = self.patch_out(hidden.reshape(b * t, d)[rows])                  # (n·np, ch)
        grid = out.view(n, self.g, self.g, -1).permute(0, 3, 1, 2)
        return hidden, self.unet.decode(grid, skips, temb), kv

    def prefix(self, ids):
        """Text rows (B, T) from position 0, causal: their per-layer (k, v) for a cache."""
        _, kv = self.decoder(self.embed(ids), torch.arange(ids.shape[1]), causal=True)
        return kv

    def span(self, latents, timesteps, cache):
        """One image span per row after the cached prefix (bidirectional inside, sees all the prefix)."""
        n, start, d = latents.shape[0], cache[0][0].shape[1], self.d
        temb = self.time(timesteps * self.timestep_scale)
        grid, skips = self.unet.encode(latents, temb)
        tokens = grid.permute(0, 2, 3, 1).reshape(n * self.np, -1)
        x = self.patch_in(tokens).view(n, self.np, d) + temb[:, None] + self.span_position
        hidden, _ = self.decoder(x, torch.arange(start, start + self.np), caches=cache)
        out = self.patch_out(hidden.reshape(n * self.np, d))
        return self.unet.decode(out.view(n, self.g, self.g, -1).permute(0, 3, 1, 2), skips, temb)


# MARK: VAE

class VAEEncoder(torch.nn.Module):
    """ImageVAE's encoder for the single-level backbone of vae-shapes: pixel-unshuffle, conv, two
    ResBlocks, GroupNorm, SiLU, conv to 2L moments; returns the posterior mean × latent scale."""

    def __init__(self, cfg):
        super().__init__()
        assert cfg["downsample"] == cfg["patchSize"] and (cfg.get("channelMultipliers") or [1]) == [1], \
            "the twin mirrors the single-level backbone of vae-shapes (downsample = patch size)"
        p, w, l, g, c = cfg["patchSize"], cfg["channels"], cfg["latentChannels"], cfg["groups"], cfg["imageChannels"]
        self.p, self.l, self.scale = p, l, cfg["latentScale"]
        self.conv_in = torch.nn.Conv2d(c * p * p, w, 3, padding=1)
        self.last, self.mid = ResBlock(w, w, groups=g), ResBlock(w, w, groups=g)
        self.norm = torch.nn.GroupNorm(g, w)
        self.conv_out = torch.nn.Conv2d(w, 2 * l, 3, padding=1)

    def forward(self, x):
        h = self.mid(self.last(self.conv_in(F.pixel_unshuffle(x, self.p))))
        return self.conv_out(F.silu(self.norm(h)))[:, :self.l] * self.scale


class VAEDecoder(torch.nn.Module):
    def __init__(self, cfg):
        super().__init__()
        p, w, l, g, c = cfg["patchSize"], cfg["channels"], cfg["latentChannels"], cfg["groups"], cfg["imageChannels"]
        self.p, self.scale = p, cfg["latentScale"]
        self.conv_in = torch.nn.Conv2d(l, w, 3, padding=1)
        self.mid, self.block = ResBlock(w, w, groups=g), ResBlock(w, w, groups=g)
        self.norm = torch.nn.GroupNorm(g, w)
        self.conv_out = torch.nn.Conv2d(w, c * p * p, 3, padding=1)

    def forward(self, z):
        h = self.block(self.mid(self.conv_in(z / self.scale)))
        return F.pixel_shuffle(self.conv_out(F.silu(self.norm(h))), self.p)
