#!/usr/bin/env python3
"""Generate the tiny LLM fixtures in tests/data/llm/ (committed; rerun only to
change them).

Builds small random-init Hugging Face models with fixed seeds (transformers,
CPU, float32), converts them to GGUF with llama.cpp's tensor names and keys
(our own few-line converter, mirroring convert_hf_to_gguf.py), and saves
transformers' logits for fixed prompts (token id lists) as references:

  tiny-llama-f32.gguf   LlamaForCausalLM: vocab 320, d 64, 2 layers, 4 heads,
                        2 KV heads (GQA), ffn 128, rope_theta 10000 with
                        linear RoPE scaling x2, RMS eps 1e-5, separate output
                        head.  Q/K rows permuted as LlamaModel.permute does.
  tiny-qwen2-f32.gguf   Qwen2ForCausalLM: vocab 288, d 64, 2 layers, 4 heads,
                        2 KV heads, ffn 96, rope_theta 10000, RMS eps 1e-6,
                        q/k/v biases, tied embeddings (no output.weight).
  tiny-{llama,qwen2}-{f16,q8_0,q4_0,q4_1}.gguf
                        the same weights, every 2-D matrix (token_embd and
                        output included) converted with gguf-py's quants
                        module (round-to-nearest, as llama.cpp's reference
                        quantizers); norms and biases stay F32.
  tiny-llama256-q4_k_m.gguf
                        a d 256, ffn 256, 1-layer llama (4 heads, 2 KV heads,
                        vocab 320, tied) quantized by llama.cpp's
                        llama-quantize Q4_K_M (Q4_K and Q6_K tensors; gguf-py
                        cannot quantize K-quants).  Skipped, keeping any
                        committed copy, when the peer build is absent.
  <model>.ref           reference logits (format below) for the prompts
                        (5 token id lists of 1, 2, 7, 16, 40 tokens), in
                        named sets:
                          "f16kv"     transformers with keys (after RoPE)
                                      and values rounded to IEEE half, as
                                      llama.cpp's and weft's default F16
                                      KV cache holds them (-f32 files,
                                      and the Q4_K_M file);
                          "f32"       plain float32 transformers (-f32);
                          "f16kv-deq" the same as f16kv, on the quantized
                                      file's dequantized weights (quantized
                                      files): isolates the activations'
                                      rounding to the vec_dot type from the
                                      weights' rounding.

Weights are drawn N(0, 1/fan_in) (Q/K projections x qk_scale), embeddings
N(0, 1), norm weights U(0.5, 1.5), biases 0.5 N(0, 1): logits of a few units
and non-uniform attention, yet a model calm enough that one half-precision
rounding tie in the cache moves logits by well under 1e-4 of their range.

Reference file format (little-endian): magic "WREF", u32 version 1, u32
n_vocab, u32 n_prompts, u32 n_sets; per set: 16-byte NUL-padded name; per
prompt: u32 T, T x i32 token ids, then per set T x n_vocab f32 logits (all
positions).

Every GGUF carries a trivial SentencePiece vocabulary (<unk> <s> </s>, the
256 byte tokens, filler pieces) only because llama.cpp refuses files without
one; weft's model loader does not read it.  When the llama.cpp peer is built
(scripts/build-peer), each file is also run through llama-completion to check
that llama.cpp accepts it.

Run (from the repository root):
    $(scripts/venv)/bin/python scripts/gen-llm-fixtures.py
"""
import os
import struct
import subprocess
import sys
import tempfile

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as QT
from transformers import (AttentionInterface, LlamaConfig, LlamaForCausalLM, Qwen2Config,
                          Qwen2ForCausalLM)
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import AttentionMaskInterface, sdpa_mask

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
out_dir = os.path.join(root, "tests", "data", "llm")
torch.set_num_threads(1)


def f16kv_attention(module, query, key, value, attention_mask, **kw):
    """sdpa with keys (after RoPE) and values rounded to IEEE half, as they
    are in llama.cpp's (and weft's) default F16 KV cache."""
    return sdpa_attention_forward(module, query, key.half().float(), value.half().float(),
                                  attention_mask, **kw)


AttentionInterface.register("f16kv", f16kv_attention)
AttentionMaskInterface.register("f16kv", sdpa_mask)


def peer_dir():
    try:
        cache = subprocess.check_output([os.path.join(here, "cache-dir")], text=True).strip()
    except Exception:
        cache = os.path.expanduser("~/.cache/weft")
    d = os.path.join(cache, "peer", "llama.cpp-0.3.36", "bin")
    return d if os.path.isdir(d) else None


def randomize(model, seed, qk_scale):
    """Replace HF's N(0, 0.02) init with weights that give peaky attention
    and logits of a few units, so the comparisons mean something."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(0.5 + torch.rand(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                p.copy_(torch.randn(p.shape, generator=g))
            else:
                s = 1.0 / np.sqrt(p.shape[1])
                if "q_proj" in name or "k_proj" in name:
                    s *= qk_scale
                p.copy_(s * torch.randn(p.shape, generator=g))


def permute(w, n_head, n_head_kv):  # convert_hf_to_gguf.py LlamaModel.permute
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def unpermute(w, n_head, n_head_kv):
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def gguf_tensors(model, arch):
    """(gguf name, float32 numpy array in HF [out, in] layout) pairs."""
    c = model.config
    sd = {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()}
    t = [("token_embd.weight", sd["model.embed_tokens.weight"])]
    for i in range(c.num_hidden_layers):
        p = f"model.layers.{i}."
        q = sd[p + "self_attn.q_proj.weight"]
        k = sd[p + "self_attn.k_proj.weight"]
        if arch == "llama":
            q = permute(q, c.num_attention_heads, c.num_attention_heads)
            k = permute(k, c.num_attention_heads, c.num_key_value_heads)
        b = f"blk.{i}."
        t += [(b + "attn_norm.weight", sd[p + "input_layernorm.weight"]),
              (b + "attn_q.weight", q), (b + "attn_k.weight", k),
              (b + "attn_v.weight", sd[p + "self_attn.v_proj.weight"])]
        if arch == "qwen2":
            t += [(b + "attn_q.bias", sd[p + "self_attn.q_proj.bias"]),
                  (b + "attn_k.bias", sd[p + "self_attn.k_proj.bias"]),
                  (b + "attn_v.bias", sd[p + "self_attn.v_proj.bias"])]
        t += [(b + "attn_output.weight", sd[p + "self_attn.o_proj.weight"]),
              (b + "ffn_norm.weight", sd[p + "post_attention_layernorm.weight"]),
              (b + "ffn_gate.weight", sd[p + "mlp.gate_proj.weight"]),
              (b + "ffn_up.weight", sd[p + "mlp.up_proj.weight"]),
              (b + "ffn_down.weight", sd[p + "mlp.down_proj.weight"])]
    t.append(("output_norm.weight", sd["model.norm.weight"]))
    if not c.tie_word_embeddings:
        t.append(("output.weight", sd["lm_head.weight"]))
    return t


FTYPES = {"f32": (QT.F32, 0), "f16": (QT.F16, 1), "q4_0": (QT.Q4_0, 2),
          "q4_1": (QT.Q4_1, 3), "q8_0": (QT.Q8_0, 7)}


def write_gguf(path, model, arch, ftype, name):
    c = model.config
    qtype, file_type = FTYPES[ftype]
    w = gguf.GGUFWriter(path, arch)
    w.add_name(name)
    w.add_context_length(c.max_position_embeddings)
    w.add_embedding_length(c.hidden_size)
    w.add_block_count(c.num_hidden_layers)
    w.add_feed_forward_length(c.intermediate_size)
    w.add_rope_dimension_count(c.hidden_size // c.num_attention_heads)
    w.add_head_count(c.num_attention_heads)
    w.add_head_count_kv(c.num_key_value_heads)
    w.add_layer_norm_rms_eps(c.rms_norm_eps)
    rp = c.rope_parameters
    w.add_rope_freq_base(float(rp["rope_theta"]))
    if rp.get("rope_type") == "linear":
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(float(rp["factor"]))
    w.add_vocab_size(c.vocab_size)
    w.add_file_type(file_type)
    # trivial SentencePiece vocabulary so that llama.cpp loads the file
    toks = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    toks += [f"\u2581t{i}" for i in range(c.vocab_size - len(toks))]
    types = [2, 3, 3] + [6] * 256 + [1] * (c.vocab_size - 259)
    w.add_tokenizer_model("llama")
    w.add_token_list(toks)
    w.add_token_scores([0.0] * 259 + [-float(i) for i in range(c.vocab_size - 259)])
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(False)
    for tname, arr in gguf_tensors(model, arch):
        if arr.ndim == 2 and qtype != QT.F32:
            if qtype == QT.F16:
                w.add_tensor(tname, arr.astype(np.float16))
            else:
                w.add_tensor(tname, gguf.quants.quantize(arr, qtype), raw_dtype=qtype)
        else:
            w.add_tensor(tname, arr.astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_dequantized(model, path, arch):
    """A copy of model whose weights are the GGUF file's, dequantized."""
    c = model.config
    r = gguf.GGUFReader(path)
    t = {}
    for ti in r.tensors:
        a = gguf.quants.dequantize(ti.data, ti.tensor_type).astype(np.float32)
        t[ti.name] = a.reshape([int(x) for x in reversed(ti.shape.tolist())])
    m = type(model)(c)
    sd = m.state_dict()
    names = dict((hf, g) for hf, g in hf_names(c, arch))
    new = {}
    for hf in sd:
        g = names[hf]
        a = t[g]
        if arch == "llama" and g.endswith("attn_q.weight"):
            a = unpermute(a, c.num_attention_heads, c.num_attention_heads)
        elif arch == "llama" and g.endswith("attn_k.weight"):
            a = unpermute(a, c.num_attention_heads, c.num_key_value_heads)
        new[hf] = torch.from_numpy(np.ascontiguousarray(a)).reshape(sd[hf].shape)
    m.load_state_dict(new)
    return m.eval()


def hf_names(c, arch):
    yield "model.embed_tokens.weight", "token_embd.weight"
    for i in range(c.num_hidden_layers):
        p, b = f"model.layers.{i}.", f"blk.{i}."
        for hf, g in [("input_layernorm.weight", "attn_norm.weight"),
                      ("self_attn.q_proj.weight", "attn_q.weight"),
                      ("self_attn.k_proj.weight", "attn_k.weight"),
                      ("self_attn.v_proj.weight", "attn_v.weight"),
                      ("self_attn.q_proj.bias", "attn_q.bias"),
                      ("self_attn.k_proj.bias", "attn_k.bias"),
                      ("self_attn.v_proj.bias", "attn_v.bias"),
                      ("self_attn.o_proj.weight", "attn_output.weight"),
                      ("post_attention_layernorm.weight", "ffn_norm.weight"),
                      ("mlp.gate_proj.weight", "ffn_gate.weight"),
                      ("mlp.up_proj.weight", "ffn_up.weight"),
                      ("mlp.down_proj.weight", "ffn_down.weight")]:
            yield p + hf, b + g
    yield "model.norm.weight", "output_norm.weight"
    yield "lm_head.weight", "token_embd.weight" if c.tie_word_embeddings else "output.weight"


def prompts_for(vocab, seed):
    rng = np.random.RandomState(seed)
    return [rng.randint(0, vocab, size=n).astype(np.int32) for n in (1, 2, 7, 16, 40)]


def logits_of(model, ids, attn):
    model.set_attn_implementation(attn)
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(ids.astype(np.int64))[None, :])
    return out.logits[0].float().numpy()


def write_ref(path, vocab, prompts, sets):
    """sets: list of (name, model)."""
    with open(path, "wb") as f:
        f.write(b"WREF" + struct.pack("<IIII", 1, vocab, len(prompts), len(sets)))
        for name, _ in sets:
            f.write(name.encode().ljust(16, b"\0"))
        for ids in prompts:
            f.write(struct.pack("<I", len(ids)) + ids.astype("<i4").tobytes())
            for sname, m in sets:
                lg = logits_of(m, ids, "f16kv" if sname.startswith("f16kv") else "sdpa")
                assert lg.shape == (len(ids), vocab)
                f.write(lg.astype("<f4").tobytes())


def check_llama_cpp(peer, path):
    if not peer:
        return "not checked (no peer build)"
    cmd = [os.path.join(peer, "llama-completion"), "-m", path, "-p", "ab", "-n", "4",
           "--temp", "0", "-no-cnv", "--ignore-eos", "-t", "1", "-c", "128"]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=120)
    if r.returncode != 0:
        sys.exit(f"llama.cpp rejects {path}:\n{r.stderr[-2000:]}")
    return "llama.cpp loads and runs it"


def make(arch, cfg_cls, model_cls, cfg, seed, peer, quants=("f16", "q8_0", "q4_0", "q4_1"),
         base=None):
    torch.manual_seed(seed)
    model = model_cls(cfg_cls(**cfg)).eval()
    randomize(model, seed, qk_scale=1.0)
    base = base or f"tiny-{arch}"
    prompts = prompts_for(cfg["vocab_size"], seed + 1)
    f32 = os.path.join(out_dir, f"{base}-f32.gguf")
    write_gguf(f32, model, arch, "f32", base)
    write_ref(f32[:-5] + ".ref", cfg["vocab_size"], prompts, [("f16kv", model), ("f32", model)])
    print(f"{os.path.basename(f32)}: {check_llama_cpp(peer, f32)}")
    for q in quants:
        path = os.path.join(out_dir, f"{base}-{q}.gguf")
        write_gguf(path, model, arch, q, base)
        write_ref(path[:-5] + ".ref", cfg["vocab_size"], prompts,
                  [("f16kv-deq", load_dequantized(model, path, arch))])
        print(f"{os.path.basename(path)}: {check_llama_cpp(peer, path)}")
    return model, prompts


def main():
    os.makedirs(out_dir, exist_ok=True)
    peer = peer_dir()
    common = dict(hidden_size=64, intermediate_size=128, num_attention_heads=4,
                  num_key_value_heads=2, max_position_embeddings=256, hidden_act="silu")
    make("llama", LlamaConfig, LlamaForCausalLM,
         dict(common, vocab_size=320, num_hidden_layers=2, rms_norm_eps=1e-5,
              tie_word_embeddings=False,
              rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 10000.0}),
         seed=1234, peer=peer)
    make("qwen2", Qwen2Config, Qwen2ForCausalLM,
         dict(common, vocab_size=288, num_hidden_layers=2, intermediate_size=96, rms_norm_eps=1e-6,
              tie_word_embeddings=True, use_sliding_window=False,
              rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         seed=5678, peer=peer)

    # K-quants: llama-quantize on a d-256 model (only the .gguf and .ref kept)
    quantize = os.path.join(peer, "llama-quantize") if peer else None
    if not quantize or not os.path.exists(quantize):
        print("tiny-llama256-q4_k_m.gguf: skipped (needs llama-quantize from scripts/build-peer)")
        return
    cfg = dict(common, hidden_size=256, intermediate_size=256, vocab_size=320,
               num_hidden_layers=1, rms_norm_eps=1e-5, tie_word_embeddings=True,
               rope_parameters={"rope_type": "default", "rope_theta": 10000.0})
    torch.manual_seed(91)
    model = LlamaForCausalLM(LlamaConfig(**cfg)).eval()
    randomize(model, 91, qk_scale=1.0)
    prompts = prompts_for(320, 92)
    with tempfile.TemporaryDirectory() as tmp:
        f32 = os.path.join(tmp, "f32.gguf")
        write_gguf(f32, model, "llama", "f32", "tiny-llama256")
        dst = os.path.join(out_dir, "tiny-llama256-q4_k_m.gguf")
        subprocess.check_call([quantize, f32, dst + ".tmp", "Q4_K_M", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.replace(dst + ".tmp", dst)
    write_ref(dst[:-5] + ".ref", 320, prompts,  # no -f32 file: both sets here
              [("f16kv", model), ("f16kv-deq", load_dequantized(model, dst, "llama"))])
    types = sorted({t.tensor_type.name for t in gguf.GGUFReader(dst).tensors})
    print(f"tiny-llama256-q4_k_m.gguf ({', '.join(types)}): {check_llama_cpp(peer, dst)}")


if __name__ == "__main__":
    main()
