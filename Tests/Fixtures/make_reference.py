#!/usr/bin/env python3
"""Reference outputs for Fusion's parity tests (PyTorch).

Builds the same small decoder as Fusion's `DecoderLM` (pre-norm RMSNorm blocks, fused QKV,
QK-norm, rotate-half RoPE with per-document positions, SwiGLU with fused [gate|up], final norm,
LM head) and runs it on a packed batch whose attention mask follows the Transfusion rule
(causal, bidirectional inside spans, no attention across packed documents). Saves:

  decoder_weights.safetensors    initial weights under Fusion's parameter names
  decoder_reference.safetensors  inputs (ids, targets, documents, spans, positions), logits,
                                 loss, every parameter gradient ("grad.<name>"), and an AdamW
                                 trajectory: per-step losses ("adamw.losses") and the weights
                                 after the last step ("adamw.final.<name>")

Regenerate (needs torch and safetensors; CI never runs this):
    python3 Tests/Fixtures/make_reference.py
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.use_deterministic_algorithms(True)
DT = torch.float64  # compute the reference in float64; Fusion runs float32

V, D, L, H, HID, B, T = 64, 32, 2, 4, 48, 2, 16
EPS = 1e-6
STEPS, LR, WD, CLIP = 5, 1e-2, 0.1, 0.5
HERE = os.path.dirname(os.path.abspath(__file__))


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, pos, base=10000.0):
    # x (B, T, H, Dh); pos (B, T)
    dh = x.shape[-1]
    half = dh // 2
    inv = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / dh)
    ang = pos.to(torch.float64)[..., None] * inv  # (B, T, half)
    cos, sin = ang.cos().to(x.dtype)[:, :, None, :], ang.sin().to(x.dtype)[:, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def names():
    out = ["embed.weight"]
    for i in range(L):
        p = f"decoder.blocks.{i}."
        out += [p + "attnNorm.weight", p + "attn.qkv.weight", p + "attn.proj.weight",
                p + "attn.qNorm.weight", p + "attn.kNorm.weight",
                p + "mlpNorm.weight", p + "mlp.w13.weight", p + "mlp.w2.weight"]
    return out + ["decoder.norm.weight", "head.weight"]


def init_weights():
    g = torch.Generator().manual_seed(1)
    w = {}
    for n in names():
        if n == "embed.weight":
            shape = (V, D)
        elif n == "head.weight":
            shape = (V, D)
        elif n.endswith("qkv.weight"):
            shape = (3 * D, D)
        elif n.endswith("proj.weight"):
            shape = (D, D)
        elif n.endswith("w13.weight"):
            shape = (2 * HID, D)
        elif n.endswith("w2.weight"):
            shape = (D, HID)
        elif n.endswith("qNorm.weight") or n.endswith("kNorm.weight"):
            shape = (D // H,)
        else:
            shape = (D,)
        if len(shape) == 1:
            w[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        else:
            w[n] = torch.randn(shape, generator=g) * (0.3 / math.sqrt(shape[-1]))
    return {k: v.to(torch.float32) for k, v in w.items()}


def forward(w, ids, mask, pos):
    x = w["embed.weight"][ids]
    dh = D // H
    for i in range(L):
        p = f"decoder.blocks.{i}."
        h = rms_norm(x, w[p + "attnNorm.weight"])
        q, k, v = (h @ w[p + "attn.qkv.weight"].T).split(D, -1)
        q, k, v = (t.reshape(B, T, H, dh) for t in (q, k, v))
        q, k = rms_norm(q, w[p + "attn.qNorm.weight"]), rms_norm(k, w[p + "attn.kNorm.weight"])
        q, k = rope(q, pos), rope(k, pos)
        s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dh)
        s = s.masked_fill(~mask[:, None], float("-inf"))
        y = torch.einsum("bhts,bshd->bthd", s.softmax(-1), v).reshape(B, T, D)
        x = x + y @ w[p + "attn.proj.weight"].T
        h = rms_norm(x, w[p + "mlpNorm.weight"])
        gate, up = (h @ w[p + "mlp.w13.weight"].T).chunk(2, -1)
        x = x + (F.silu(gate) * up) @ w[p + "mlp.w2.weight"].T
    x = rms_norm(x, w["decoder.norm.weight"])
    return x @ w["head.weight"].T


def batch():
    g = torch.Generator().manual_seed(2)
    ids = torch.randint(0, V, (B, T), generator=g)
    targets = torch.randint(0, V, (B, T), generator=g)
    docs = torch.tensor([[0] * 7 + [1] * 9, [0] * 16], dtype=torch.int32)
    spans = torch.tensor([[-1, 0, 0, 0, -1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1],
                          [-1] * 10 + [0] * 6], dtype=torch.int32)
    targets[spans >= 0] = -1  # no text loss inside spans
    pos = torch.zeros(B, T, dtype=torch.int32)
    for b in range(B):
        for t in range(T):
            pos[b, t] = 0 if t == 0 or docs[b, t] != docs[b, t - 1] else pos[b, t - 1] + 1
    i = torch.arange(T)
    same_doc = docs[:, :, None] == docs[:, None, :]
    same_span = (spans[:, :, None] == spans[:, None, :]) & (spans[:, :, None] >= 0)
    mask = same_doc & ((i[None, None, :] <= i[None, :, None]) | same_span)
    return ids, targets, docs, spans, pos, mask


def main():
    w32 = init_weights()
    ids, targets, docs, spans, pos, mask = batch()
    w = {k: v.to(DT).requires_grad_(True) for k, v in w32.items()}
    logits = forward(w, ids, mask, pos)
    loss = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    ref = {"ids": ids.to(torch.int32), "targets": targets.to(torch.int32), "documents": docs,
           "spans": spans, "positions": pos, "logits": logits.detach().float(),
           "loss": loss.detach().float().reshape(1)}
    for k, v in w.items():
        ref["grad." + k] = v.grad.float()

    # AdamW trajectory with decoupled decay on matrices (not norms/embeddings) and clipping.
    params = {k: v.detach().clone().requires_grad_(True) for k, v in w32.items()}
    params = {k: v.to(DT).detach().requires_grad_(True) for k, v in params.items()}
    decay = [v for k, v in params.items() if v.dim() >= 2 and k != "embed.weight"]
    no_decay = [v for k, v in params.items() if not (v.dim() >= 2 and k != "embed.weight")]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WD},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95), eps=1e-8)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        l = F.cross_entropy(forward(params, ids, mask, pos).reshape(-1, V), targets.reshape(-1), ignore_index=-1)
        l.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), CLIP)
        opt.step()
        losses.append(l.item())
    ref["adamw.losses"] = torch.tensor(losses, dtype=torch.float32)
    for k, v in params.items():
        ref["adamw.final." + k] = v.detach().float()

    meta = {"vocab": str(V), "dim": str(D), "layers": str(L), "heads": str(H), "hidden": str(HID),
            "steps": str(STEPS), "lr": str(LR), "weight_decay": str(WD), "clip": str(CLIP),
            "beta1": "0.9", "beta2": "0.95", "eps": "1e-8"}
    save_file(w32, os.path.join(HERE, "decoder_weights.safetensors"), metadata=meta)
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(HERE, "decoder_reference.safetensors"), metadata=meta)
    print(f"loss {loss.item():.6f}; AdamW losses {[round(x, 6) for x in losses]}")


if __name__ == "__main__":
    main()
