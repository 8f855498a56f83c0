#!/usr/bin/env python3
"""PyTorch CPU eager twin of Fusion's reference decoder step (benchmarks only; never tests).

Same model and step as `fusion-bench decoder`: d=256, 6 layers, 4 heads, T=128, batch 16,
vocab 512, RMSNorm, SwiGLU (hidden 4d), causal attention (SDPA), RoPE, AdamW; forward, backward
and optimizer update. Prints the median step time and GFLOP/s on the same analytic FLOP count.

    python3 bench/torch_decoder.py --threads 2 --steps 10
"""
import argparse
import contextlib
import json
import resource

import torch
import torch.nn.functional as F

from torch_common import rss_mib, timed

p = argparse.ArgumentParser()
p.add_argument("--threads", type=int, default=2)
p.add_argument("--steps", type=int, default=10)
p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
               help="bf16: forward and loss under CPU autocast to bfloat16 (Fusion's matmul_precision bf16)")
args = p.parse_args()
torch.set_num_threads(args.threads)
torch.manual_seed(0)

D, L, H, T, B, V = 256, 6, 4, 128, 16, 512
HID, DH = 4 * D, D // H


class RMSNorm(torch.nn.Module):
    def __init__(self, d):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def rope_tables():
    inv = 10000.0 ** (-2.0 * torch.arange(DH // 2, dtype=torch.float64) / DH)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv
    return ang.cos().float()[None, :, None, :], ang.sin().float()[None, :, None, :]


COS, SIN = rope_tables()


def rope(x):
    x1, x2 = x[..., : DH // 2], x[..., DH // 2:]
    return torch.cat([x1 * COS - x2 * SIN, x2 * COS + x1 * SIN], -1)


class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.n1, self.n2 = RMSNorm(D), RMSNorm(D)
        self.qkv = torch.nn.Linear(D, 3 * D, bias=False)
        self.proj = torch.nn.Linear(D, D, bias=False)
        self.w13 = torch.nn.Linear(D, 2 * HID, bias=False)
        self.w2 = torch.nn.Linear(HID, D, bias=False)

    def forward(self, x):
        q, k, v = self.qkv(self.n1(x)).view(B, T, 3, H, DH).unbind(2)
        q, k = rope(q), rope(k)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True)
        x = x + self.proj(y.transpose(1, 2).reshape(B, T, D))
        g, u = self.w13(self.n2(x)).chunk(2, -1)
        return x + self.w2(F.silu(g) * u)


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(V, D)
        self.blocks = torch.nn.ModuleList(Block() for _ in range(L))
        self.norm = RMSNorm(D)
        self.head = torch.nn.Linear(D, V, bias=False)

    def forward(self, ids):
        x = self.embed(ids)
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x))


model = LM()
opt = torch.optim.AdamW(model.parameters(), lr=3e-4, weight_decay=0.1)
ids = torch.randint(0, V, (B, T))
targets = torch.randint(0, V, (B, T))


def autocast():
    return torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else contextlib.nullcontext()


def step():
    opt.zero_grad(set_to_none=True)
    with autocast():
        loss = F.cross_entropy(model(ids).view(-1, V), targets.view(-1))
    loss.backward()
    opt.step()
    return loss.item()


before = rss_mib()
s = timed(step, args.steps)
tokens = B * T
flops = 6.0 * L * (4 * D * D + 3 * D * HID) * tokens + 3.0 * 4.0 * (T + 1) / 2 * D * L * tokens + 6.0 * V * D * tokens
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"torch-decoder-step threads={args.threads} precision={args.precision}  step {s * 1e3:.1f} ms  {tokens / s:.0f} tokens/s  {flops / s / 1e9:.1f} GFLOP/s  (peak RSS {peak:.0f} MiB)")
print("BENCH " + json.dumps({"name": "decoder-step", "ms": s * 1e3, "gflops": flops / s / 1e9, "peak_rss_mib": peak,
                             "step_rss_mib": max(0.0, peak - before), "threads": args.threads,
                             "precision": args.precision}, sort_keys=True))
