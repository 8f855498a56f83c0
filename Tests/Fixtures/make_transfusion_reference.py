#!/usr/bin/env python3
"""Reference outputs for the Transfusion parity test (PyTorch, float64).

The same small model as Fusion's `Transfusion` with the linear patchifier: token embedding,
patches of VAE latents through a linear layer plus a timestep embedding (sinusoidal features ->
Linear -> SiLU -> Linear) plus a learned in-span position, spliced into the sequence at the image
span positions; pre-norm decoder blocks (RMSNorm, fused QKV, rotate-half RoPE with per-document
positions, SwiGLU with fused [gate|up]); the Transfusion mask (causal, bidirectional inside an
image span, nothing across packed documents); LM head on positions with a text target; patch
output layer back to latents. Loss = cross-entropy + 5 * MSE. Saves one file:

  transfusion_reference.safetensors  "weight.<name>" (float32 initial weights under Fusion's
      names), inputs (ids, targets, documents, spans, positions, latents, timesteps, span_starts,
      image_targets), outputs (hidden, images), losses (total, text, image) and "grad.<name>"

A second model, with the U-Net patchifier and audio spans, writes a second file on the same
plan (its batch adds an audio span to the image-first row):

  transfusion_unet_audio_reference.safetensors  the same keys plus audio, audio_timesteps,
      audio_starts, audio_targets and the audio predictions; losses (total, text, image, audio)

Regenerate (needs torch and safetensors; CI never runs this):
    python3 Tests/Fixtures/make_transfusion_reference.py                   # both files
    python3 Tests/Fixtures/make_transfusion_reference.py --unet-audio-only # the second only (the
        first was written with an earlier torch; its header bytes, not its values, would change)
"""
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.use_deterministic_algorithms(True)
DT = torch.float64
V, D, L, H, HID = 40, 32, 2, 4, 48
C, S, P = 2, 4, 2                 # latent channels, latent side, patch size
G = S // P                        # patch grid side
NP, PD = G * G, C * P * P         # patches per image, values per patch
FEAT = 256                        # timestep features
B, T = 2, 16
LAMBDA = 5.0
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


def timestep_features(t):
    half = FEAT // 2
    f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=DT) / half)
    a = t[:, None].to(DT) * f[None]
    return torch.cat([a.cos(), a.sin()], -1)


def shapes():
    s = {"embed.weight": (V, D), "head.weight": (V, D), "decoder.norm.weight": (D,),
         "timeEmbed.fc1.weight": (D, FEAT), "timeEmbed.fc1.bias": (D,),
         "timeEmbed.fc2.weight": (D, D), "timeEmbed.fc2.bias": (D,),
         "spanPosition": (NP, D), "patchIn.weight": (D, PD), "patchIn.bias": (D,),
         "patchOut.weight": (PD, D), "patchOut.bias": (PD,)}
    for i in range(L):
        p = f"decoder.blocks.{i}."
        s.update({p + "attnNorm.weight": (D,), p + "attn.qkv.weight": (3 * D, D), p + "attn.proj.weight": (D, D),
                  p + "mlpNorm.weight": (D,), p + "mlp.w13.weight": (2 * HID, D), p + "mlp.w2.weight": (D, HID)})
    return s


def init_weights():
    g = torch.Generator().manual_seed(1)
    w = {}
    for n, shape in sorted(shapes().items()):
        if n.endswith("Norm.weight") or n == "decoder.norm.weight":
            w[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            w[n] = 0.1 * torch.randn(shape, generator=g)
        else:
            w[n] = torch.randn(shape, generator=g) * (0.5 / math.sqrt(shape[-1]))
    return {k: v.to(torch.float32) for k, v in w.items()}


def layout(rows, span_rows, doc_rows):
    """Ids, next-token targets (text to text inside a document, else -1), per-document positions
    and the Transfusion mask (causal, bidirectional inside a span, nothing across documents)."""
    ids = torch.tensor(rows)
    spans = torch.tensor(span_rows, dtype=torch.int32)
    docs = torch.tensor(doc_rows, dtype=torch.int32)
    targets = torch.full((B, T), -1)
    for b in range(B):
        for t in range(T - 1):
            if spans[b, t] < 0 and spans[b, t + 1] < 0 and docs[b, t] == docs[b, t + 1]:
                targets[b, t] = ids[b, t + 1]
    pos = torch.zeros(B, T, dtype=torch.int32)
    for b in range(B):
        for t in range(T):
            pos[b, t] = 0 if t == 0 or docs[b, t] != docs[b, t - 1] else pos[b, t - 1] + 1
    i = torch.arange(T)
    same_doc = docs[:, :, None] == docs[:, None, :]
    same_span = (spans[:, :, None] == spans[:, None, :]) & (spans[:, :, None] >= 0)
    mask = same_doc & ((i[None, None, :] <= i[None, :, None]) | same_span)
    return ids, targets, docs, spans, pos, mask


def batch():
    """Row 0: two documents (caption-first with an image, then text only). Row 1: image first."""
    row0 = [BOS, 10, 11, BOI] + [PAD] * NP + [EOI, EOS] + [BOS, 12, 13, 14, 15, EOS]
    span0 = [-1, -1, -1, -1] + [0] * NP + [-1, -1] + [-1] * 6
    doc0 = [0] * 10 + [1] * 6
    row1 = [BOS, BOI] + [PAD] * NP + [EOI] + [16, 17, 18, 19, 20, 21, 22, 23, EOS]
    span1 = [-1, -1] + [0] * NP + [-1] * 10
    doc1 = [0] * 16
    ids, targets, docs, spans, pos, mask = layout([row0, row1], [span0, span1], [doc0, doc1])
    starts = torch.tensor([4, T + 2], dtype=torch.int32)            # flat b*T + start
    g = torch.Generator().manual_seed(2)
    latents = torch.randn(2, C, S, S, generator=g)
    image_targets = torch.randn(2, C, S, S, generator=g)
    timesteps = torch.tensor([120.0, 870.0])
    return ids, targets, docs, spans, pos, mask, starts, latents, image_targets, timesteps


def patchify(x):
    n = x.shape[0]
    return x.reshape(n, C, G, P, G, P).permute(0, 2, 4, 1, 3, 5).reshape(n * NP, PD)


def unpatchify(x, n):
    return x.reshape(n, G, G, C, P, P).permute(0, 3, 1, 4, 2, 5).reshape(n, C, S, S)


def decoder_stack(w, x, mask, pos):
    dh = D // H
    for i in range(L):
        p = f"decoder.blocks.{i}."
        h = rms_norm(x, w[p + "attnNorm.weight"])
        q, k, v = (h @ w[p + "attn.qkv.weight"].T).split(D, -1)
        q, k, v = (t.reshape(B, T, H, dh) for t in (q, k, v))
        q, k = rope(q, pos), rope(k, pos)
        s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(dh)
        s = s.masked_fill(~mask[:, None], float("-inf"))
        y = torch.einsum("bhts,bshd->bthd", s.softmax(-1), v).reshape(B, T, D)
        x = x + y @ w[p + "attn.proj.weight"].T
        h = rms_norm(x, w[p + "mlpNorm.weight"])
        gate, up = (h @ w[p + "mlp.w13.weight"].T).chunk(2, -1)
        x = x + (F.silu(gate) * up) @ w[p + "mlp.w2.weight"].T
    return rms_norm(x, w["decoder.norm.weight"])


def forward(w, ids, mask, pos, starts, latents, timesteps):
    n = latents.shape[0]
    x = w["embed.weight"][ids].reshape(B * T, D)
    temb = timestep_features(timesteps) @ w["timeEmbed.fc1.weight"].T + w["timeEmbed.fc1.bias"]
    temb = F.silu(temb) @ w["timeEmbed.fc2.weight"].T + w["timeEmbed.fc2.bias"]
    patches = patchify(latents) @ w["patchIn.weight"].T + w["patchIn.bias"]
    patches = patches.reshape(n, NP, D) + temb[:, None, :] + w["spanPosition"][None]
    rows = torch.cat([torch.arange(int(s), int(s) + NP) for s in starts])
    x = x.index_put((rows,), patches.reshape(n * NP, D))
    hidden = decoder_stack(w, x.reshape(B, T, D), mask, pos)
    out = hidden.reshape(B * T, D)[rows] @ w["patchOut.weight"].T + w["patchOut.bias"]
    return hidden, unpatchify(out, n)


def main():
    w32 = init_weights()
    ids, targets, docs, spans, pos, mask, starts, latents, image_targets, timesteps = batch()
    w = {k: v.to(DT).requires_grad_(True) for k, v in w32.items()}
    hidden, images = forward(w, ids, mask, pos, starts, latents.to(DT), timesteps)
    flat = targets.reshape(-1)
    text_rows = (flat >= 0).nonzero().squeeze(1)
    logits = hidden.reshape(B * T, D)[text_rows] @ w["head.weight"].T
    text = F.cross_entropy(logits, flat[text_rows])
    image = F.mse_loss(images, image_targets.to(DT))
    total = text + LAMBDA * image
    total.backward()
    ref = {"ids": ids.to(torch.int32), "targets": flat.to(torch.int32), "documents": docs, "spans": spans,
           "positions": pos.reshape(-1), "span_starts": starts, "latents": latents, "timesteps": timesteps,
           "image_targets": image_targets, "hidden": hidden.detach().float(), "images": images.detach().float(),
           "loss": torch.tensor([total.item(), text.item(), image.item()], dtype=torch.float32)}
    for k, v in w32.items():
        ref["weight." + k] = v
    for k, v in w.items():
        ref["grad." + k] = v.grad.float()
    meta = {"vocab": str(V), "dim": str(D), "layers": str(L), "heads": str(H), "hidden": str(HID),
            "latent_channels": str(C), "latent_size": str(S), "patch_size": str(P), "lambda": str(LAMBDA)}
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(HERE, "transfusion_reference.safetensors"),
              metadata=meta)
    print(f"loss {total.item():.6f} = text {text.item():.6f} + {LAMBDA} * image {image.item():.6f}")


# MARK: - U-Net patchifier and audio spans

CH = 16                           # U-Net width (GroupNorm: 8 groups)
GROUPS = 8
LA, DA = 3, 5                     # audio span length, values per audio patch
BOA, EOA = 5, 6


def shapes_unet_audio():
    s = shapes()
    for k in ["patchIn.weight", "patchIn.bias", "patchOut.weight", "patchOut.bias"]:
        del s[k]
    s.update({"patchIn.weight": (D, CH), "patchIn.bias": (D,), "patchOut.weight": (CH, D), "patchOut.bias": (CH,),
              "audioIn.weight": (D, DA), "audioIn.bias": (D,), "audioOut.weight": (DA, D), "audioOut.bias": (DA,),
              "audioPosition": (LA, D),
              "unet.stem.weight": (CH, C, 3, 3), "unet.stem.bias": (CH,),
              "unet.outNorm.weight": (CH,), "unet.outNorm.bias": (CH,),
              "unet.outConv.weight": (C, CH, 3, 3), "unet.outConv.bias": (C,),
              "unet.downs.0.down.weight": (CH, CH, 3, 3), "unet.downs.0.down.bias": (CH,),
              "unet.ups.0.up.weight": (CH, CH, 3, 3), "unet.ups.0.up.bias": (CH,)})
    for p, cin in [("unet.downs.0.res.", CH), ("unet.ups.0.res.", 2 * CH)]:
        s.update({p + "norm1.weight": (cin,), p + "norm1.bias": (cin,), p + "conv1.weight": (CH, cin, 3, 3),
                  p + "conv1.bias": (CH,), p + "temb.weight": (CH, D), p + "temb.bias": (CH,),
                  p + "norm2.weight": (CH,), p + "norm2.bias": (CH,), p + "conv2.weight": (CH, CH, 3, 3),
                  p + "conv2.bias": (CH,)})
        if cin != CH:
            s.update({p + "skip.weight": (CH, cin, 1, 1), p + "skip.bias": (CH,)})
    return s


def init_weights_unet_audio():
    g = torch.Generator().manual_seed(3)
    w = {}
    for n, shape in sorted(shapes_unet_audio().items()):
        if len(shape) == 1 and n.lower().endswith("norm.weight") or "norm1.weight" in n or "norm2.weight" in n \
                or n == "decoder.norm.weight":
            w[n] = 1.0 + 0.1 * torch.randn(shape, generator=g)
        elif len(shape) == 1:
            w[n] = 0.1 * torch.randn(shape, generator=g)
        else:
            w[n] = torch.randn(shape, generator=g) * (0.5 / math.sqrt(math.prod(shape[1:])))
    return {k: v.to(torch.float32) for k, v in w.items()}


def batch_unet_audio():
    """Row 0 as in `batch`. Row 1: image first, then speech: BOS BOI [image] EOI BOA [audio] EOA text EOS."""
    row0 = [BOS, 10, 11, BOI] + [PAD] * NP + [EOI, EOS] + [BOS, 12, 13, 14, 15, EOS]
    span0 = [-1, -1, -1, -1] + [0] * NP + [-1, -1] + [-1] * 6
    doc0 = [0] * 10 + [1] * 6
    row1 = [BOS, BOI] + [PAD] * NP + [EOI, BOA] + [PAD] * LA + [EOA, 16, 17, 18, EOS]
    span1 = [-1, -1] + [0] * NP + [-1, -1] + [1] * LA + [-1] * 5
    doc1 = [0] * 16
    ids, targets, docs, spans, pos, mask = layout([row0, row1], [span0, span1], [doc0, doc1])
    starts = torch.tensor([4, T + 2], dtype=torch.int32)
    audio_starts = torch.tensor([T + 2 + NP + 2], dtype=torch.int32)
    g = torch.Generator().manual_seed(4)
    latents = torch.randn(2, C, S, S, generator=g)
    image_targets = torch.randn(2, C, S, S, generator=g)
    audio = torch.randn(1, LA, DA, generator=g)
    audio_targets = torch.randn(1, LA, DA, generator=g)
    return (ids, targets, docs, spans, pos, mask, starts, latents, image_targets, torch.tensor([120.0, 870.0]),
            audio_starts, audio, audio_targets, torch.tensor([430.0]))


def conv(w, p, x, stride=1, padding=1):
    return F.conv2d(x, w[p + ".weight"], w[p + ".bias"], stride=stride, padding=padding)


def res_block(w, p, x, t):
    h = conv(w, p + "conv1", F.silu(F.group_norm(x, min(GROUPS, x.shape[1]), w[p + "norm1.weight"], w[p + "norm1.bias"])))
    h = h + (F.silu(t) @ w[p + "temb.weight"].T + w[p + "temb.bias"])[:, :, None, None]
    h = conv(w, p + "conv2", F.silu(F.group_norm(h, GROUPS, w[p + "norm2.weight"], w[p + "norm2.bias"])))
    skip = conv(w, p + "skip", x, padding=0) if p + "skip.weight" in w else x
    return skip + h


def forward_unet_audio(w, ids, mask, pos, starts, latents, timesteps, audio_starts, audio, audio_timesteps):
    n, m = latents.shape[0], audio.shape[0]

    def time_embed(t):
        e = timestep_features(t) @ w["timeEmbed.fc1.weight"].T + w["timeEmbed.fc1.bias"]
        return F.silu(e) @ w["timeEmbed.fc2.weight"].T + w["timeEmbed.fc2.bias"]

    x = w["embed.weight"][ids].reshape(B * T, D)
    temb = time_embed(timesteps)
    h = conv(w, "unet.stem", latents)
    h = res_block(w, "unet.downs.0.res.", h, temb)
    skip = h
    grid = conv(w, "unet.downs.0.down", h, stride=2)                          # (n, CH, G, G)
    tokens = grid.permute(0, 2, 3, 1).reshape(n * NP, CH)
    patches = (tokens @ w["patchIn.weight"].T + w["patchIn.bias"]).reshape(n, NP, D) + temb[:, None] + w["spanPosition"][None]
    rows = torch.cat([torch.arange(int(s), int(s) + NP) for s in starts])
    x = x.index_put((rows,), patches.reshape(n * NP, D))
    aemb = time_embed(audio_timesteps)
    frames = (audio.reshape(m * LA, DA) @ w["audioIn.weight"].T + w["audioIn.bias"]).reshape(m, LA, D) \
        + aemb[:, None] + w["audioPosition"][None]
    arows = torch.cat([torch.arange(int(s), int(s) + LA) for s in audio_starts])
    x = x.index_put((arows,), frames.reshape(m * LA, D))
    hidden = decoder_stack(w, x.reshape(B, T, D), mask, pos)
    flat = hidden.reshape(B * T, D)
    out = flat[rows] @ w["patchOut.weight"].T + w["patchOut.bias"]              # (n·NP, CH)
    h = out.reshape(n, G, G, CH).permute(0, 3, 1, 2)
    h = conv(w, "unet.ups.0.up", F.interpolate(h, scale_factor=2, mode="nearest"))
    h = res_block(w, "unet.ups.0.res.", torch.cat([h, skip], 1), temb)
    images = conv(w, "unet.outConv", F.silu(F.group_norm(h, GROUPS, w["unet.outNorm.weight"], w["unet.outNorm.bias"])))
    speech = (flat[arows] @ w["audioOut.weight"].T + w["audioOut.bias"]).reshape(m, LA, DA)
    return hidden, images, speech


def main_unet_audio():
    w32 = init_weights_unet_audio()
    (ids, targets, docs, spans, pos, mask, starts, latents, image_targets, timesteps,
     audio_starts, audio, audio_targets, audio_timesteps) = batch_unet_audio()
    w = {k: v.to(DT).requires_grad_(True) for k, v in w32.items()}
    hidden, images, speech = forward_unet_audio(w, ids, mask, pos, starts, latents.to(DT), timesteps,
                                                audio_starts, audio.to(DT), audio_timesteps)
    flat = targets.reshape(-1)
    text_rows = (flat >= 0).nonzero().squeeze(1)
    text = F.cross_entropy(hidden.reshape(B * T, D)[text_rows] @ w["head.weight"].T, flat[text_rows])
    image = F.mse_loss(images, image_targets.to(DT))
    sound = F.mse_loss(speech, audio_targets.to(DT))
    total = text + LAMBDA * image + LAMBDA * sound
    total.backward()
    ref = {"ids": ids.to(torch.int32), "targets": flat.to(torch.int32), "documents": docs, "spans": spans,
           "positions": pos.reshape(-1), "span_starts": starts, "latents": latents, "timesteps": timesteps,
           "image_targets": image_targets, "audio": audio, "audio_timesteps": audio_timesteps,
           "audio_starts": audio_starts, "audio_targets": audio_targets,
           "hidden": hidden.detach().float(), "images": images.detach().float(), "speech": speech.detach().float(),
           "loss": torch.tensor([total.item(), text.item(), image.item(), sound.item()], dtype=torch.float32)}
    for k, v in w32.items():
        ref["weight." + k] = v
    for k, v in w.items():
        ref["grad." + k] = v.grad.float()
    meta = {"vocab": str(V), "dim": str(D), "layers": str(L), "heads": str(H), "hidden": str(HID),
            "latent_channels": str(C), "latent_size": str(S), "patch_size": str(P), "unet_channels": str(CH),
            "audio_dim": str(DA), "audio_length": str(LA), "lambda": str(LAMBDA)}
    save_file({k: v.contiguous() for k, v in ref.items()},
              os.path.join(HERE, "transfusion_unet_audio_reference.safetensors"), metadata=meta)
    print(f"unet+audio loss {total.item():.6f} = text {text.item():.6f} + {LAMBDA} * (image {image.item():.6f}"
          f" + audio {sound.item():.6f})")


if __name__ == "__main__":
    import sys
    if "--unet-audio-only" not in sys.argv:
        main()
    main_unet_audio()
