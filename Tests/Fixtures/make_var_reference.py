#!/usr/bin/env python3
"""Reference outputs for the VAR parity test (PyTorch, float64).

The same small model as Fusion's `VAR`: token embedding for text; at image positions the code
vectors VAR reads through a linear layer (its word embedding) plus a learned slot embedding;
pre-norm decoder blocks with QK-norm (RMSNorm, fused QKV, rotate-half RoPE with per-document
positions, SwiGLU with fused [gate|up]); the block-causal mask (causal over text and across scales,
bidirectional inside each scale's block and inside a context map, nothing across packed
documents); LM head on the positions with a target; cross-entropy with z-loss.

The code vectors are computed here from a codebook and code maps, independently of Fusion's
tokenizer: for a generated image, scale k's block reads f_{k-1} = sum over coarser scales of
F.interpolate(codes, full, "bilinear", align_corners=False), resized to scale k with
F.interpolate(mode="area") (zeros for the first scale); an image read as context reads the full
map after the last scale. Saves one file:

  var_reference.safetensors  "weight.<name>" (float32 initial weights under Fusion's names),
      codebook, maps.<image>.<scale> (Int32 code maps), inputs (ids, targets, documents, spans,
      positions), outputs (vectors, hidden), losses (total, text, image) and "grad.<name>"

Regenerate (needs torch and safetensors; CI never runs this):
    python3 Tests/Fixtures/make_var_reference.py
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.use_deterministic_algorithms(True)
DT = torch.float64
TV, K, CD = 24, 6, 3                  # text vocabulary, codebook, code dimension
V = TV + K
SCALES = [1, 2, 4]
NB = sum(s * s for s in SCALES)       # positions of a generated image (21)
NC = SCALES[-1] ** 2                  # positions of an image read as context (16)
D, L, H, HID = 32, 2, 4, 48
B, T = 2, 32
ZLOSS = 1e-3
EPS = 1e-6
BOS, EOS, PAD, BOI, EOI = 0, 1, 2, 3, 4
HERE = os.path.dirname(os.path.abspath(__file__))


def rms_norm(x, w):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS) * w


def rope(x, pos, base=10000.0):
    dh = x.shape[-1]
    half = dh // 2
    inv = base ** (-2.0 * torch.arange(half, dtype=DT) / dh)
    ang = pos.to(DT)[..., None] * inv
    cos, sin = ang.cos()[:, :, None, :], ang.sin()[:, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


def shapes():
    s = {"lm.embed.weight": (V, D), "lm.head.weight": (V, D), "lm.decoder.norm.weight": (D,),
         "codeIn.weight": (D, CD), "codeIn.bias": (D,), "slots.weight": (NB + NC, D)}
    for i in range(L):
        p = f"lm.decoder.blocks.{i}."
        s.update({p + "attnNorm.weight": (D,), p + "attn.qkv.weight": (3 * D, D), p + "attn.proj.weight": (D, D),
                  p + "attn.qNorm.weight": (D // H,), p + "attn.kNorm.weight": (D // H,),
                  p + "mlpNorm.weight": (D,), p + "mlp.w13.weight": (2 * HID, D), p + "mlp.w2.weight": (D, HID)})
    return s


def init_weights():
    g = torch.Generator().manual_seed(1)
    w = {}
    for n, shape in sorted(shapes().items()):
        if n.endswith("Norm.weight") or n.endswith("norm.weight"):
            w[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            w[n] = 0.1 * torch.randn(shape, generator=g)
        else:
            w[n] = torch.randn(shape, generator=g) * (0.5 / math.sqrt(shape[-1]))
    return {k: v.to(torch.float32) for k, v in w.items()}


def upsample(codebook, ids):
    """Code ids (s, s) -> their vectors bilinearly upsampled to the full grid, (CD, h, h)."""
    x = codebook[ids.long()].permute(2, 0, 1)[None]
    return F.interpolate(x, size=(SCALES[-1], SCALES[-1]), mode="bilinear", align_corners=False)[0]


def block_inputs(codebook, maps):
    """A generated image's rows: per scale, the coarser scales' sum area-resized to it (zeros first)."""
    rows, partial = [], torch.zeros(CD, SCALES[-1], SCALES[-1], dtype=DT)
    for k, s in enumerate(SCALES):
        if k == 0:
            rows.append(torch.zeros(s * s, CD, dtype=DT))
        else:
            down = F.interpolate(partial[None], size=(s, s), mode="area")[0]
            rows.append(down.permute(1, 2, 0).reshape(s * s, CD))
        partial = partial + upsample(codebook, maps[k])
    return torch.cat(rows), partial


def context_inputs(codebook, maps):
    _, full = block_inputs(codebook, maps)
    return full.permute(1, 2, 0).reshape(NC, CD)


def batch():
    """Row 0: a caption-first document with a generated image, then a text document. Row 1: an
    image read as context before its caption, then a text document."""
    g = torch.Generator().manual_seed(2)
    codebook = torch.randn(K, CD, generator=g)
    maps = [[torch.randint(0, K, (s, s), generator=g, dtype=torch.int32) for s in SCALES] for _ in range(2)]

    row0 = [BOS, 10, 11, BOI] + [PAD] * NB + [EOI, EOS] + [BOS, 12, 13, 14, EOS]
    span0 = [-1] * 4 + sum(([k] * (s * s) for k, s in enumerate(SCALES)), []) + [-1] * 7
    doc0 = [0] * 27 + [1] * 5
    row1 = [BOS, BOI] + [PAD] * NC + [EOI, 15, 16, 17, EOS] + [BOS, 18, 19, 20, 21, 22, EOS, PAD, PAD]
    span1 = [-1] * 2 + [0] * NC + [-1] * 14
    doc1 = [0] * 23 + [1] * 7 + [2] * 2
    ids = torch.tensor([row0, row1])
    spans = torch.tensor([span0, span1], dtype=torch.int32)
    docs = torch.tensor([doc0, doc1], dtype=torch.int32)
    assert ids.shape == (B, T) and spans.shape == (B, T) and docs.shape == (B, T)

    # Text predicts the next text id inside its document (BOI included, nothing after it); each
    # block position its own scale's code; context positions and padding nothing.
    targets = torch.full((B, T), -1)
    for b in range(B):
        for t in range(T - 1):
            if spans[b, t] < 0 and spans[b, t + 1] < 0 and docs[b, t] == docs[b, t + 1] and ids[b, t] != BOI \
                    and ids[b, t + 1] != PAD:
                targets[b, t] = ids[b, t + 1]
    flat_codes = torch.cat([m.reshape(-1) for m in maps[0]]) + TV
    targets[0, 4:4 + NB] = flat_codes
    pos = torch.zeros(B, T, dtype=torch.int32)
    for b in range(B):
        for t in range(T):
            pos[b, t] = 0 if t == 0 or docs[b, t] != docs[b, t - 1] else pos[b, t - 1] + 1
    i = torch.arange(T)
    same_doc = docs[:, :, None] == docs[:, None, :]
    same_span = (spans[:, :, None] == spans[:, None, :]) & (spans[:, :, None] >= 0)
    mask = same_doc & ((i[None, None, :] <= i[None, :, None]) | same_span)

    cb = codebook.to(DT)
    blocks, _ = block_inputs(cb, maps[0])
    vectors = torch.cat([blocks, context_inputs(cb, maps[1])])
    rows = torch.cat([torch.arange(4, 4 + NB), torch.arange(T + 2, T + 2 + NC)])
    slots = torch.cat([torch.arange(NB), NB + torch.arange(NC)])
    return ids, targets, docs, spans, pos, mask, codebook, maps, vectors, rows, slots


def forward(w, ids, mask, pos, vectors, rows, slots):
    x = w["lm.embed.weight"][ids].reshape(B * T, D)
    x = x.index_put((rows,), vectors @ w["codeIn.weight"].T + w["codeIn.bias"] + w["slots.weight"][slots])
    x = x.reshape(B, T, D)
    dh = D // H
    for i in range(L):
        p = f"lm.decoder.blocks.{i}."
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
    return rms_norm(x, w["lm.decoder.norm.weight"])


def main():
    w32 = init_weights()
    ids, targets, docs, spans, pos, mask, codebook, maps, vectors, rows, slots = batch()
    w = {k: v.to(DT).requires_grad_(True) for k, v in w32.items()}
    hidden = forward(w, ids, mask, pos, vectors, rows, slots)
    flat = targets.reshape(-1)
    scored = (flat >= 0).nonzero().squeeze(1)
    logits = hidden.reshape(B * T, D)[scored] @ w["lm.head.weight"].T
    picked = flat[scored]
    lse = logits.logsumexp(-1)
    total = F.cross_entropy(logits, picked) + ZLOSS * (lse ** 2).mean()
    total.backward()
    with torch.no_grad():
        is_text = (picked < TV) & (picked != EOI)
        text = F.cross_entropy(logits[is_text], picked[is_text])
        image = F.cross_entropy(logits[picked >= TV], picked[picked >= TV])
    ref = {"ids": ids.to(torch.int32), "targets": flat.to(torch.int32), "documents": docs, "spans": spans,
           "positions": pos.reshape(-1), "codebook": codebook, "vectors": vectors.float(),
           "hidden": hidden.detach().float(),
           "loss": torch.tensor([total.item(), text.item(), image.item()], dtype=torch.float32)}
    for i, image_maps in enumerate(maps):
        for k, m in enumerate(image_maps):
            ref[f"maps.{i}.{k}"] = m
    for k, v in w32.items():
        ref["weight." + k] = v
    for k, v in w.items():
        ref["grad." + k] = v.grad.float()
    meta = {"text_vocab": str(TV), "codebook": str(K), "code_dim": str(CD), "scales": ",".join(map(str, SCALES)),
            "dim": str(D), "layers": str(L), "heads": str(H), "hidden": str(HID), "z_loss": str(ZLOSS)}
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(HERE, "var_reference.safetensors"), metadata=meta)
    print(f"loss {total.item():.6f}: text {text.item():.6f}, image {image.item():.6f}")


if __name__ == "__main__":
    main()
