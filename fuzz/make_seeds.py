#!/usr/bin/env python3
"""Writes the small seed inputs of fuzz/corpus/<target>/ that the CLI does not (run from the repo root).

Not a fuzzer: it only writes valid files in the variants the readers support (dtypes, PNG colour
types and bit depths, WAV encodings), so libFuzzer starts from every code path. Standard library only.
The seeds named shapes-*, speech-* and fusion-* were written by the fusion CLI (see fuzz/README.md).
"""
import json, os, struct, wave, zlib

def out(target, name, data):
    os.makedirs(f"fuzz/corpus/{target}", exist_ok=True)
    with open(f"fuzz/corpus/{target}/{name}", "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())

# safetensors: 8-byte header size, JSON header, data.
def safetensors(tensors, metadata=None):
    header, body = {}, b""
    if metadata: header["__metadata__"] = metadata
    for name, (dtype, shape, raw) in tensors.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(body), len(body) + len(raw)]}
        body += raw
    h = json.dumps(header, sort_keys=True).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + body

out("safetensors", "f32.safetensors", safetensors(
    {"w": ("F32", [2, 3], struct.pack("<6f", *range(6))), "b": ("F32", [3], struct.pack("<3f", .5, -1, 2))},
    {"step": "1", "config": "{\"dim\": 8}"}))
out("safetensors", "mixed.safetensors", safetensors({
    "h": ("F16", [2, 2], struct.pack("<4e", 1, -2, .25, 65504)),
    "bf": ("BF16", [3], struct.pack("<3H", 0x3F80, 0xC000, 0x7FC0)),
    "i": ("I32", [2], struct.pack("<2i", 7, -7)),
    "l": ("I64", [1, 2], struct.pack("<2q", 1 << 40, -3)),
    "empty": ("F32", [0, 4], b""), "scalar": ("F32", [], struct.pack("<f", 3))}))

# PNG: IHDR, optional PLTE/tRNS/gAMA, IDAT, IEND.
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

def png(w, h, depth, ctype, rows, extra=b"", interlace=0):
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, interlace)
    raw = b"".join(b"\0" + r for r in rows)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

out("png", "gray8.png", png(4, 3, 8, 0, [bytes([x * 60 + y for x in range(4)]) for y in range(3)]))
out("png", "gray1.png", png(8, 2, 1, 0, [b"\xa5", b"\x5a"]))
out("png", "rgb8-gamma.png", png(3, 2, 8, 2, [bytes(range(y, y + 9)) for y in range(2)],
                                 extra=chunk(b"gAMA", struct.pack(">I", 45455))))
out("png", "rgba8.png", png(2, 2, 8, 6, [bytes([255, 0, 0, 128, 0, 255, 0, 255])] * 2))
out("png", "graya16.png", png(2, 1, 16, 4, [struct.pack(">4H", 65535, 32768, 0, 0)]))
out("png", "rgb16.png", png(1, 2, 16, 2, [struct.pack(">3H", 1, 2, 3), struct.pack(">3H", 60000, 0, 9)]))
out("png", "palette-trns.png", png(4, 1, 2, 3, [bytes([0b00011011])],
                                   extra=chunk(b"PLTE", bytes([255, 0, 0, 0, 255, 0, 0, 0, 255, 9, 9, 9]))
                                   + chunk(b"tRNS", bytes([0, 128]))))
out("png", "interlaced.png", png(1, 1, 8, 0, [b"\x80"], interlace=1))

# WAV: PCM 8/16/24-bit and 32-bit float, mono and stereo (float by hand: the wave module is PCM only).
def wav(name, rate, channels, width, frames):
    import io
    b = io.BytesIO()
    with wave.open(b, "wb") as w:
        w.setnchannels(channels); w.setsampwidth(width); w.setframerate(rate); w.writeframes(frames)
    out("wav", name, b.getvalue())

wav("pcm16-mono.wav", 16000, 1, 2, struct.pack("<8h", 0, 1000, -1000, 32767, -32768, 5, -5, 0))
wav("pcm8-stereo.wav", 8000, 2, 1, bytes([128, 128, 255, 0, 100, 150]))
wav("pcm24-mono.wav", 22050, 1, 3, b"\x00\x00\x40\x00\x00\xc0\xff\xff\x7f")
data = struct.pack("<4f", 0, .5, -.5, 1)
fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
out("wav", "float32-mono.wav", b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(data)) + b"WAVE"
    + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data)

# metadata.jsonl: pairs, edits, audio, blank lines, extra keys, unicode.
out("metadata", "pairs.jsonl", '{"file_name": "0001.png", "text": "a large red circle"}\n'
    '{"file_name": "sub/0002.png", "text": "two blue squares", "objects": [{"shape": "square"}]}\n\n')
out("metadata", "edits.jsonl", '{"source_file": "a.png", "instruction": "make it blue", "target_file": "b.png"}\n'
    '{"file_name": "clip.wav", "text": "caf\\u00e9 \u00e9t\u00e9"}\n')

# tokenizer.json (Fusion's format: 7 specials, 256 bytes, then merges producing ids 263, 264, ...).
specials = ["<bos>", "<eos>", "<pad>", "<boi>", "<eoi>", "<boa>", "<eoa>"]
def tokenizer(merges):
    return json.dumps({"format": "fusion-bpe", "version": 1, "specialTokens": specials,
                       "vocabSize": 263 + len(merges), "merges": merges}, sort_keys=True)
b = lambda ch: 7 + ord(ch)
out("tokenizer", "empty.json", tokenizer([]))
out("tokenizer", "small.json", tokenizer([[b("e"), b(" ")], [b("r"), b("e")], [263, b("d")], [b("c"), b("i")], [266, b("r")]]))

# corpus: the first byte picks the format (odd: JSONL) and the chunk size (1 + (byte >> 1) % 64).
out("corpus", "plain.txt", bytes([0x10]) + "line one café\nline two 東京 🦊\n".encode())
out("corpus", "lines.jsonl", bytes([0x21]) + b'{"text": "first doc"}\n{"text": "second, longer document", "id": 2}\n\n{"text": ""}\n')
