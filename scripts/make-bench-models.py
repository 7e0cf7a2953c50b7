#!/usr/bin/env python3
"""Write the GGUF models `make bench` times, into the cache (never the repo).

  smollm2-135m-{q4_1,q8_0,f16,bf16}.gguf   SmolLM2-135M-Instruct: the real Q4_1
                                      file, and Q8_0 / F16 / BF16 made from it with
                                      llama-quantize --allow-requantize (the
                                      weights are then Q4_1-valued; speed is
                                      what matters here)
  llama-1b-random-q4_1.gguf           a ~1.2B Llama-3.2-1B-shaped model with
                                      random F16 weights (n_embd 2048, 16
                                      layers, 32 heads, 8 KV heads, ffn 8192),
                                      SmolLM2's tokenizer, then quantized to
                                      Q4_1 by llama-quantize

Run:  $(scripts/venv)/bin/python scripts/make-bench-models.py
Needs: scripts/fetch-models, scripts/build-peer (llama-quantize).
Prints the directory holding the models.
"""
import os
import subprocess
import sys

import numpy as np
import gguf

here = os.path.dirname(os.path.abspath(__file__))
cache = subprocess.check_output([os.path.join(here, "cache-dir")], text=True).strip()
peer = subprocess.check_output([os.path.join(here, "build-peer")], text=True).strip()
src = subprocess.check_output([os.path.join(here, "fetch-models")], text=True).strip()
out = os.path.join(cache, "bench-models")
os.makedirs(out, exist_ok=True)
quantize = os.path.join(peer, "llama-quantize")


def run_quantize(inp, dst, ftype):
    if os.path.exists(dst):
        return
    tmp = dst + ".tmp"
    subprocess.check_call([quantize, "--allow-requantize", inp, tmp, ftype],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.replace(tmp, dst)


q41 = os.path.join(out, "smollm2-135m-q4_1.gguf")
if not os.path.exists(q41):
    os.symlink(src, q41)
run_quantize(src, os.path.join(out, "smollm2-135m-q8_0.gguf"), "Q8_0")
run_quantize(src, os.path.join(out, "smollm2-135m-f16.gguf"), "F16")
run_quantize(src, os.path.join(out, "smollm2-135m-bf16.gguf"), "BF16")

big_f16 = os.path.join(out, "llama-1b-random-f16.gguf")
big_q41 = os.path.join(out, "llama-1b-random-q4_1.gguf")
if not os.path.exists(big_q41):
    r = gguf.GGUFReader(src)
    fields = {f.name: f for f in r.fields.values()}

    def field_value(name):
        f = fields[name]
        if f.types[0] == gguf.GGUFValueType.ARRAY:
            if f.types[-1] == gguf.GGUFValueType.STRING:
                return [bytes(f.parts[i]).decode("utf-8", "surrogateescape") for i in f.data]
            return [f.parts[i].tolist()[0] for i in f.data]
        if f.types[0] == gguf.GGUFValueType.STRING:
            return bytes(f.parts[f.data[0]]).decode()
        return f.parts[f.data[0]].tolist()[0]

    n_embd, n_layer, n_head, n_kv, n_ff = 2048, 16, 32, 8, 8192
    tokens = field_value("tokenizer.ggml.tokens")
    n_vocab = len(tokens)
    w = gguf.GGUFWriter(big_f16 + ".tmp", "llama")
    w.add_name("llama-1b-random")
    w.add_context_length(8192)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_rope_dimension_count(n_embd // n_head)
    w.add_rope_freq_base(500000.0)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    w.add_tokenizer_model(field_value("tokenizer.ggml.model"))
    w.add_tokenizer_pre(field_value("tokenizer.ggml.pre"))
    w.add_token_list(tokens)
    w.add_token_types(field_value("tokenizer.ggml.token_type"))
    w.add_token_merges(field_value("tokenizer.ggml.merges"))
    w.add_bos_token_id(field_value("tokenizer.ggml.bos_token_id"))
    w.add_eos_token_id(field_value("tokenizer.ggml.eos_token_id"))
    rng = np.random.default_rng(0)

    def rand(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float16)

    hd = n_embd // n_head
    w.add_tensor("token_embd.weight", rand(n_vocab, n_embd))
    w.add_tensor("output_norm.weight", np.ones(n_embd, np.float32))
    for i in range(n_layer):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(p + "attn_q.weight", rand(n_embd, n_embd))
        w.add_tensor(p + "attn_k.weight", rand(n_kv * hd, n_embd))
        w.add_tensor(p + "attn_v.weight", rand(n_kv * hd, n_embd))
        w.add_tensor(p + "attn_output.weight", rand(n_embd, n_embd))
        w.add_tensor(p + "ffn_norm.weight", np.ones(n_embd, np.float32))
        w.add_tensor(p + "ffn_gate.weight", rand(n_ff, n_embd))
        w.add_tensor(p + "ffn_up.weight", rand(n_ff, n_embd))
        w.add_tensor(p + "ffn_down.weight", rand(n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(big_f16 + ".tmp", big_f16)
    run_quantize(big_f16, big_q41, "Q4_1")
    os.remove(big_f16)
print(out)
