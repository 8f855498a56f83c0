"""Fusion models in PyTorch, from a `fusion export` folder, with no Swift needed.

    import fusion_torch
    model = fusion_torch.load("checkpoints/shapes-tiny")        # Transfusion, Chameleon or lm
    ids = [fusion_torch.BOS] + model.tokenizer.encode("two blue squares")
    logits = model.logits(ids)                                   # (T, vocab), causal over ids
    x = torch.randn(1, *model.latent_shape)                      # Transfusion: noise at t = 1
    x = model.euler_step(ids, x, t=1.0, t_next=0.9, cfg=3.0)    # one guided sampling step
    v = model.span_prediction(ids, x, t=0.9)                     # the flow velocity of the span

What it reproduces, and how (Fusion's Sources/NN/Transformer.swift, Sources/Models/Transfusion/Transfusion.swift,
Sources/Models/Chameleon/Chameleon.swift, Sources/Text/BPETokenizer.swift): the decoder (pre-norm RMSNorm
blocks, fused QKV, optional per-head QK-norm before rotate-half RoPE, SwiGLU with fused [gate|up]);
Transfusion's linear patchifier (patches of VAE latents → a linear layer, plus the timestep
embedding and a learned in-span position), its mask (causal text, bidirectional inside an image
span) and Euler steps of the flow ODE with classifier-free guidance against BOS; Chameleon's
image codes (ids after the text vocabulary) decoded with guidance in logit space; the byte-level
BPE tokenizer. Not here: the U-Net patchifier, audio spans, the VAE/VQ decoders (pixels), KV
caching (each call runs the whole sequence: fine at these sizes).
"""
import json
import math
import os

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

BOS, EOS, PAD, BOI, EOI, BOA, EOA = range(7)
SPECIALS = ["<bos>", "<eos>", "<pad>", "<boi>", "<eoi>", "<boa>", "<eoa>"]


# ---------------------------------------------------------------------------------------------
# Tokenizer

class Tokenizer:
    """Fusion's byte-level BPE: ids 0..6 special, 7 + b for byte b, 263 + k for merge k. Text is
    split into words first (a whitespace run joins the run of one byte class after it; classes:
    ASCII letters/digits and bytes >= 0x80, ASCII punctuation/control), merges never cross words,
    and inside a word the lowest-ranked adjacent pair merges first."""

    BYTE_BASE, MERGE_BASE = 7, 263

    def __init__(self, data):
        self.merges = [tuple(m) for m in data["merges"]]
        self.ranks = {m: k for k, m in enumerate(self.merges)}
        self.bytes = [b""] * self.BYTE_BASE + [bytes([b]) for b in range(256)]
        for a, b in self.merges:
            self.bytes.append(self.bytes[a] + self.bytes[b])

    @staticmethod
    def _class(b):
        if b in (0x20, 0x09, 0x0A, 0x0B, 0x0C, 0x0D):
            return 0
        if 0x30 <= b <= 0x39 or 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A or b >= 0x80:
            return 1
        return 2

    def _words(self, data):
        start, previous = 0, None
        for i, b in enumerate(data):
            c = self._class(b)
            if previous is not None and c != previous and previous != 0:
                yield data[start:i]
                start = i
            previous = c
        if data:
            yield data[start:]

    def encode(self, text):
        out = []
        for word in self._words(text.encode("utf-8")):
            tokens = [self.BYTE_BASE + b for b in word]
            while len(tokens) > 1:
                pairs = [(self.ranks.get((a, b), math.inf), i) for i, (a, b) in enumerate(zip(tokens, tokens[1:]))]
                rank, i = min(pairs)
                if rank == math.inf:
                    break
                tokens[i:i + 2] = [self.MERGE_BASE + rank]
            out += tokens
        return out

    def decode(self, ids):
        return b"".join(self.bytes[i] for i in ids if 0 <= i < len(self.bytes)).decode("utf-8", errors="replace")


# ---------------------------------------------------------------------------------------------
# The decoder

def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def rope(x, positions, base):
    """Rotate-half RoPE. x (B, T, H, D), positions (B, T)."""
    half = x.shape[-1] // 2
    inv = base ** (-2.0 * torch.arange(half, dtype=torch.float64) / x.shape[-1])
    angle = positions.to(torch.float64)[..., None] * inv
    cos, sin = angle.cos().to(x.dtype)[:, :, None, :], angle.sin().to(x.dtype)[:, :, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], -1)


class Decoder:
    """Fusion's decoder stack over weights named as in its checkpoints (`prefix` + decoder...)."""

    def __init__(self, config, weights, prefix=""):
        self.dim, self.layers, self.heads = config["dim"], config["layers"], config["heads"]
        self.qk_norm, self.eps, self.base = config["qkNorm"], config["normEps"], config["ropeBase"]
        self.w = {k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)}

    def __call__(self, x, mask, positions):
        """x (B, T, d); mask (B, T, T) bool, True where a query sees a key; positions (B, T)."""
        w, (b, t, d), h = self.w, x.shape, self.heads
        for i in range(self.layers):
            p = f"decoder.blocks.{i}."
            y = rms_norm(x, w[p + "attnNorm.weight"], self.eps)
            q, k, v = (y @ w[p + "attn.qkv.weight"].T).split(d, -1)
            q, k, v = (z.reshape(b, t, h, d // h) for z in (q, k, v))
            if self.qk_norm:
                q, k = rms_norm(q, w[p + "attn.qNorm.weight"], self.eps), rms_norm(k, w[p + "attn.kNorm.weight"], self.eps)
            q, k = rope(q, positions, self.base), rope(k, positions, self.base)
            s = torch.einsum("bthd,bshd->bhts", q, k) / math.sqrt(d // h)
            s = s.masked_fill(~mask[:, None], float("-inf"))
            x = x + torch.einsum("bhts,bshd->bthd", s.softmax(-1), v).reshape(b, t, d) @ w[p + "attn.proj.weight"].T
            y = rms_norm(x, w[p + "mlpNorm.weight"], self.eps)
            gate, up = (y @ w[p + "mlp.w13.weight"].T).chunk(2, -1)
            x = x + (F.silu(gate) * up) @ w[p + "mlp.w2.weight"].T
        return rms_norm(x, w["decoder.norm.weight"], self.eps)


def causal(t):
    return torch.tril(torch.ones(t, t, dtype=torch.bool))


class LanguageModel:
    """Token embedding → decoder → head: Fusion's `lm` kind, and Chameleon's backbone."""

    def __init__(self, config, weights, prefix, tokenizer):
        self.decoder = Decoder(config, weights, prefix)
        self.embed, self.head = weights[prefix + "embed.weight"], weights[prefix + "head.weight"]
        self.tokenizer = tokenizer

    @torch.no_grad()
    def logits(self, ids):
        """Logits (T, vocab) of one causal sequence of ids from position 0."""
        t = len(ids)
        x = self.embed[torch.tensor(ids)][None]
        return (self.decoder(x, causal(t)[None], torch.arange(t)[None]) @ self.head.T)[0]


class Chameleon(LanguageModel):
    """A decoder over text ids, then the image codes (id = text_vocab + code)."""

    def __init__(self, config, weights, tokenizer):
        m = config["model"]
        super().__init__(m["decoder"], weights, "lm.", tokenizer)
        self.text_vocab, self.codebook, self.grid = m["textVocab"], m["codebookSize"], m["gridSize"]
        self.cfg = config.get("cfg", 1.0)

    @torch.no_grad()
    def guided_code_logits(self, prompt, cfg=None, unconditional=(BOS,)):
        """The code logits (codebook,) of the next image position after `prompt` (which ends
        inside an image span, BOI included), guided as l_u + s·(l_c − l_u)."""
        cfg = self.cfg if cfg is None else cfg
        codes = slice(self.text_vocab, self.text_vocab + self.codebook)
        cond = self.logits(list(prompt))[-1, codes]
        if cfg <= 1:
            return cond
        span = prompt[prompt.index(BOI):] if BOI in prompt else []
        uncond = self.logits(list(unconditional) + span)[-1, codes]
        return uncond + cfg * (cond - uncond)

    def greedy_codes(self, prompt, cfg=None, unconditional=(BOS,)):
        """The image codes (grid·grid,) after `prompt` (BOS + caption ids), each position the
        argmax of its guided code logits: Fusion's sampler with top_k 1."""
        seq, codes = list(prompt) + [BOI], []
        for _ in range(self.grid * self.grid):
            code = int(self.guided_code_logits(seq, cfg, unconditional).argmax())
            codes.append(code)
            seq.append(self.text_vocab + code)
        return codes


class Transfusion:
    """Text tokens and image-latent patches in one decoder (the linear patchifier)."""

    def __init__(self, config, weights, tokenizer):
        m = config["model"]
        if m["patchifier"] != "linear":
            raise NotImplementedError(f"patchifier {m['patchifier']}: fusion_torch reads the linear patchifier only")
        self.decoder = Decoder(m["decoder"], weights)
        self.w, self.tokenizer = weights, tokenizer
        self.channels, self.size, self.patch = m["latentChannels"], m["latentSize"], m["patchSize"]
        self.grid = self.size // self.patch
        self.timestep_scale = m["timestepScale"]
        self.cfg = config["diffusion"].get("cfg", 1.0)
        self.latent_shape = (self.channels, self.size, self.size)

    def _patchify(self, x):
        n, c, g, p = x.shape[0], self.channels, self.grid, self.patch
        return x.reshape(n, c, g, p, g, p).permute(0, 2, 4, 1, 3, 5).reshape(n * g * g, c * p * p)

    def _unpatchify(self, x, n):
        c, g, p = self.channels, self.grid, self.patch
        return x.reshape(n, g, g, c, p, p).permute(0, 3, 1, 4, 2, 5).reshape(n, c, g * p, g * p)

    def _time_embedding(self, t):
        half = 128                                         # 256 sinusoidal features
        f = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
        a = torch.tensor(t, dtype=torch.float64)[:, None] * f[None]
        feats = torch.cat([a.cos(), a.sin()], -1).float()
        w = self.w
        h = F.silu(feats @ w["timeEmbed.fc1.weight"].T + w["timeEmbed.fc1.bias"])
        return h @ w["timeEmbed.fc2.weight"].T + w["timeEmbed.fc2.bias"]

    @torch.no_grad()
    def logits(self, ids):
        """Text logits (T, vocab) of one causal sequence of ids (no image span)."""
        t, w = len(ids), self.w
        x = w["embed.weight"][torch.tensor(ids)][None]
        return (self.decoder(x, causal(t)[None], torch.arange(t)[None]) @ w["head.weight"].T)[0]

    @torch.no_grad()
    def span_prediction(self, prompt, x, t):
        """The model's prediction (the flow velocity for flow-trained models) for latents
        x (n, C, h, w) at time t in [0, 1], in an image span after `prompt` + BOI: the span sees the
        prompt and itself (both directions), the prompt sees only what precedes it."""
        w, n, np_ = self.w, x.shape[0], self.grid * self.grid
        prefix = list(prompt) + [BOI]
        k, total = len(prefix), len(prefix) + np_
        temb = self._time_embedding([t * self.timestep_scale] * n)
        patches = (self._patchify(x) @ w["patchIn.weight"].T + w["patchIn.bias"]).reshape(n, np_, -1)
        patches = patches + temb[:, None, :] + w["spanPosition"][None]
        text = w["embed.weight"][torch.tensor(prefix)][None].expand(n, -1, -1)
        seq = torch.cat([text, patches], 1)
        mask = causal(total)
        mask[k:, k:] = True
        hidden = self.decoder(seq, mask[None].expand(n, -1, -1), torch.arange(total)[None].expand(n, -1))
        out = hidden[:, k:].reshape(n * np_, -1) @ w["patchOut.weight"].T + w["patchOut.bias"]
        return self._unpatchify(out, n)

    def guided_prediction(self, prompt, x, t, cfg=None, unconditional=(BOS,)):
        """Classifier-free guidance: u + s·(c − u), the unconditional prompt BOS alone."""
        cfg = self.cfg if cfg is None else cfg
        cond = self.span_prediction(prompt, x, t)
        if cfg <= 1:
            return cond
        uncond = self.span_prediction(list(unconditional), x, t)
        return uncond + cfg * (cond - uncond)

    def euler_step(self, prompt, x, t, t_next, cfg=None, unconditional=(BOS,)):
        """One step of the flow ODE from t to t_next < t: x + (t_next − t)·v̂ (Fusion's EulerSampler)."""
        return x + (t_next - t) * self.guided_prediction(prompt, x, t, cfg, unconditional)


# ---------------------------------------------------------------------------------------------

def load(folder):
    """A `fusion export` folder (or one checkpoint folder) as a Transfusion, Chameleon or
    LanguageModel. Weights are read in float32 (exports keep float16: the same rounded values
    Fusion reads)."""
    with open(os.path.join(folder, "config.json")) as f:
        config = json.load(f)
    weights = {k: v.float() for k, v in load_file(os.path.join(folder, "model.safetensors")).items()}
    tokenizer = Tokenizer(json.loads(config["tokenizer"])) if "tokenizer" in config else None
    kind = config.get("kind")
    if kind == "transfusion":
        if config["model"].get("audioDim", 0) > 0:
            raise NotImplementedError("audio spans are not in fusion_torch")
        return Transfusion(config, weights, tokenizer)
    if kind == "chameleon":
        return Chameleon(config, weights, tokenizer)
    if kind == "lm":
        return LanguageModel(config["decoder"], weights, "", tokenizer)
    raise ValueError(f"{folder}/config.json: kind {kind!r} is not a Fusion model fusion_torch reads (transfusion, chameleon, lm)")
