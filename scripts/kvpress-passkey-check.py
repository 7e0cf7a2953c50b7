#!/usr/bin/env python3
"""kvpress itself on the real SmolLM2-135M-Instruct (transformers' dequantization
of the cache's Q4_1 GGUF, float32): the first 8 passkey items of
tests/data/kvc/retrieval-short.jsonl, greedy 6 tokens, uncompressed and with
SnapKVPress(0.25, window 64), SnapKVPress(0.25, window 8), KnormPress(0.25).
A cross-check of kvcompress's ACCURACY table (is SnapKV's drop weft's or the
method's?).  Run in the kvpress venv:
    $(scripts/cache-dir)/venv-kvpress/bin/python scripts/kvpress-passkey-check.py"""
import json, os, subprocess, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache
from kvpress import KnormPress, SnapKVPress

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
cache = subprocess.run([os.path.join(root, "scripts", "cache-dir")], capture_output=True, text=True).stdout.strip()
mdir, mfile = os.path.join(cache, "models"), "SmolLM2-135M-Instruct.Q4_1.gguf"
m = AutoModelForCausalLM.from_pretrained(mdir, gguf_file=mfile, dtype=torch.float32)
tok = AutoTokenizer.from_pretrained(mdir, gguf_file=mfile)
items = [json.loads(l) for l in open(os.path.join(root, "tests", "data", "kvc", "retrieval-short.jsonl"))]
items = [it for it in items if it["category"] == "passkey"][:8]
presses = [("none", None), ("snapkv64", SnapKVPress(compression_ratio=0.25, window_size=64)),
           ("snapkv8", SnapKVPress(compression_ratio=0.25, window_size=8)), ("knorm", KnormPress(compression_ratio=0.25))]
for it in items:
    ids = tok(it["question"], return_tensors="pt").input_ids
    res = []
    for name, press in presses:
        cache_ = DynamicCache()
        with torch.no_grad():
            if press is None:
                out = m(ids, past_key_values=cache_, use_cache=True)
            else:
                with press(m):
                    out = m(ids, past_key_values=cache_, use_cache=True)
            gen, nxt, pos = [], out.logits[0, -1].argmax().item(), ids.shape[1]
            for _ in range(6):
                gen.append(nxt)
                o = m(torch.tensor([[nxt]]), past_key_values=cache_, use_cache=True,
                      position_ids=torch.tensor([[pos]]), cache_position=torch.tensor([pos]))
                pos += 1
                nxt = o.logits[0, -1].argmax().item()
        res.append("%s=%r" % (name, tok.decode(gen)))
    print(it["id"], it["answer"], " | ".join(res), flush=True)
