#!/usr/bin/env python3
"""PyTorch CPU eager twin of `fusion-bench chameleon` (benchmarks only; never tests).

One Chameleon training step (recipes/compare/chameleon-tiny.yaml: VQ codes appended to the text
vocabulary, tiny decoder with QK-norm, causal attention within packed documents, cross-entropy
with z-loss everywhere, the text and image parts reported as Fusion's loss does) on the batch
fusion-bench packed and dumped; forward, backward, grad-norm clipping and AdamW.

    .build/release/fusion-bench chameleon --dump=/tmp/ch.json
    python3 bench/torch_chameleon.py --batch /tmp/ch.json --threads 2 --steps 10
"""
import torch

from torch_common import Decoder, adamw, autocast, cross_entropy_z, load_batch, mask_from_ranges, parse_args, report_training_step

args = parse_args()
cfg = load_batch(args.batch)
B, T, V, TV = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["text_vocab"]


class LM(torch.nn.Module):
    def __init__(self):
        super().__init__()
        d = cfg["dim"]
        self.embed = torch.nn.Embedding(V, d)
        self.decoder = Decoder(d, cfg["layers"], cfg["heads"], cfg["mlp_hidden"], cfg["qk_norm"])
        self.head = torch.nn.Linear(d, V, bias=False)

    def forward(self, ids, positions, mask):
        return self.head(self.decoder(self.embed(ids), positions, mask=mask)[0])


model = LM()
opt = adamw(model, cfg["lr"], cfg["weight_decay"], cfg["beta2"], no_decay=("embed.",))
ids = torch.tensor(cfg["ids"]).view(B, T)
targets = torch.tensor(cfg["targets"])
positions = torch.tensor(cfg["positions"]).view(B, T)
mask = mask_from_ranges(cfg["lo"], cfg["hi"], B, T)
params = list(model.parameters())
last = [0.0]


def step():
    opt.zero_grad(set_to_none=True)
    with autocast():
        logits = model(ids, positions, mask).view(B * T, V)
        loss = cross_entropy_z(logits, targets, cfg["z_loss"])
    with torch.no_grad():  # the reported parts, as Chameleon.loss computes them
        cross_entropy_z(logits, torch.where(targets < TV, targets, -1), 0)
        cross_entropy_z(logits, torch.where(targets >= TV, targets, -1), 0)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, cfg["grad_clip"])
    opt.step()
    last[0] = loss.item()


report_training_step("chameleon-step", step, args.steps, cfg["flops"], args.threads, last)
