#!/usr/bin/env python3
"""Generate tests/data/kvc/kvpress-kept.txt: the rows NVIDIA's kvpress keeps
(PyPI kvpress 0.5.5, run here; its code is not copied into weft) on the
committed tiny random Llama model tests/data/llm/tiny-llama-f32.gguf, loaded
into transformers as scripts/gen-llm-fixtures.py made it (Q/K rows
un-permuted), for one prompt of random token ids, per press and ratio.

Each press runs as kvpress runs it: a forward hook compresses each layer's
cache during the prefill.  The kept rows are read back black-box: a row is
kept when its original key (from a run without a press) is among the
compressed cache's keys (they are copies); AdaKV and DuoAttention only mask,
so their masked_key_indices are read instead; ThinK zeroes key channels,
so the all-zero channels are the dropped ones.

Presses and weft methods:
  knorm, streamingllm, observed (ObservedAttentionPress, eager attention),
  snapkv, pyramidkv, tova, expected-attention, keydiff, adakv (AdaKVPress
  around SnapKVPress), think (ThinKPress): kvpress itself (SnapKV's window
  32 here, weft's snapkv:window=32).
  duo: kvpress's DuoAttentionPress, with head scores from weft's documented
  definition (kvpress's on-the-fly scoring with this prompt as the
  calibration text and the mean query over tokens 4 on, as prefill
  --q-stats records it): kvpress would download BookSum, and Hugging Face
  is out of reach.  sink 4, recent 16 (the prompt is short).
  random: not compared (kvpress draws with torch; weft with its own
  generator).

Output: "prompt T id..." then per case
  "case METHOD RATIO layer L head H kept j..."   (row indices = positions)
  "channels think RATIO layer L head H kept c..." (weft's channel order:
                                                   the GGUF's permuted one)

kvpress pins transformers < 5.3, which the fixture venv (scripts/venv) does
not; this script runs in a venv layered on it:
    V=$(scripts/cache-dir)/venv-kvpress
    python3 -m venv $V
    echo $(scripts/venv)/lib/python3*/site-packages > $V/lib/python3*/site-packages/weft-base.pth
    $V/bin/pip install kvpress==0.5.5 'transformers<5.3' 'kernels<0.11'
    $V/bin/python scripts/gen-kvpress-fixtures.py
"""
import os
import sys

import numpy as np
import torch
import gguf
from transformers import DynamicCache, LlamaConfig, LlamaForCausalLM
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

import kvpress
from kvpress import (AdaKVPress, DuoAttentionPress, ExpectedAttentionPress, KeyDiffPress, KnormPress,
                     ObservedAttentionPress, PyramidKVPress, SnapKVPress, StreamingLLMPress, ThinKPress,
                     TOVAPress)
from kvpress.presses import duo_attention_press

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.dirname(here)
gguf_path = os.path.join(root, "tests", "data", "llm", "tiny-llama-f32.gguf")
out_path = os.path.join(root, "tests", "data", "kvc", "kvpress-kept.txt")
torch.set_num_threads(1)
T = 150            # prompt tokens (> SnapKV's window of 64; the model's context is 256)
RATIOS = (0.25, 0.5, 0.75)
# SnapKV's window (default 64) below the rows kept at every ratio: a window
# longer than the budget makes kvpress choose among tied rows (max + 1)
WINDOW = 32


def unpermute(w, n_head):  # inverse of convert_hf_to_gguf.py LlamaModel.permute
    return (w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def permutation(head_dim):
    """perm[c]: the GGUF channel of a head that holds HF channel c (llama's Q/K permutation)."""
    idx = np.arange(head_dim, dtype=np.float64)[:, None]
    return unpermute(idx, 1)[:, 0].astype(int)


def load_model():
    r = gguf.GGUFReader(gguf_path)
    f = {k: r.fields[k] for k in r.fields}

    def val(k):
        fl = f[k]
        return fl.parts[fl.data[0]][0].item()
    cfg = LlamaConfig(vocab_size=int(val("llama.vocab_size")), hidden_size=int(val("llama.embedding_length")),
                      intermediate_size=int(val("llama.feed_forward_length")),
                      num_hidden_layers=int(val("llama.block_count")),
                      num_attention_heads=int(val("llama.attention.head_count")),
                      num_key_value_heads=int(val("llama.attention.head_count_kv")),
                      max_position_embeddings=int(val("llama.context_length")), hidden_act="silu",
                      rms_norm_eps=float(val("llama.attention.layer_norm_rms_epsilon")), tie_word_embeddings=False,
                      rope_parameters={"rope_type": "linear", "factor": float(val("llama.rope.scaling.factor")),
                                       "rope_theta": float(val("llama.rope.freq_base"))})
    t = {ti.name: np.array(ti.data, dtype=np.float32).reshape([int(x) for x in reversed(ti.shape.tolist())])
         for ti in r.tensors}
    m = LlamaForCausalLM(cfg)
    sd = {}
    names = {"input_layernorm.weight": "attn_norm.weight", "self_attn.q_proj.weight": "attn_q.weight",
             "self_attn.k_proj.weight": "attn_k.weight", "self_attn.v_proj.weight": "attn_v.weight",
             "self_attn.o_proj.weight": "attn_output.weight", "post_attention_layernorm.weight": "ffn_norm.weight",
             "mlp.gate_proj.weight": "ffn_gate.weight", "mlp.up_proj.weight": "ffn_up.weight",
             "mlp.down_proj.weight": "ffn_down.weight"}
    for k in m.state_dict():
        if k == "model.embed_tokens.weight":
            a = t["token_embd.weight"]
        elif k == "model.norm.weight":
            a = t["output_norm.weight"]
        elif k == "lm_head.weight":
            a = t["output.weight"]
        else:
            i = int(k.split(".")[2])
            g = names[".".join(k.split(".")[3:])]
            a = t[f"blk.{i}.{g}"]
            if g == "attn_q.weight":
                a = unpermute(a, cfg.num_attention_heads)
            elif g == "attn_k.weight":
                a = unpermute(a, cfg.num_key_value_heads)
        sd[k] = torch.from_numpy(np.ascontiguousarray(a))
    m.load_state_dict(sd)
    return m.eval()


def prefill(model, ids, press=None, attn="sdpa"):
    model.set_attn_implementation(attn)
    cache = DynamicCache()
    with torch.no_grad():
        if press is None:
            model(input_ids=ids, past_key_values=cache, use_cache=True)
        else:
            with press(model):
                model(input_ids=ids, past_key_values=cache, use_cache=True)
    return cache


def kept_rows(orig, cache, n_layer):
    """Per layer, per KV head: the original rows whose key is in the compressed cache."""
    res = []
    for l in range(n_layer):
        k0, k1 = orig.layers[l].keys[0], cache.layers[l].keys[0]
        heads = []
        for h in range(k0.shape[0]):
            rows = []
            for j in range(k0.shape[1]):
                if (k1[h] == k0[h, j]).all(dim=-1).any():
                    rows.append(j)
            assert len(rows) == k1.shape[1], f"layer {l} head {h}: {len(rows)} rows match, {k1.shape[1]} kept"
            heads.append(rows)
        res.append(heads)
    return res


def masked_rows(model, press, ids, n_layer, n_kv, attn="sdpa"):
    """Rows left unmasked by a head-wise press (masked_key_indices of each layer)."""
    seen = {}
    orig = press.compress

    def capture(module, *a, **kw):
        out = orig(module, *a, **kw)
        mi = getattr(module, "masked_key_indices", None)
        seen[module.layer_idx] = None if mi is None else tuple(x.clone() for x in mi)
        return out
    press.compress = capture
    prefill(model, ids, press, attn)
    res = []
    for l in range(n_layer):
        masked = [set() for _ in range(n_kv)]
        if seen.get(l) is not None:
            mi = seen[l]
            heads, rows = (mi[1], mi[2]) if len(mi) == 3 else (mi[1], mi[2])
            for h, j in zip(heads.tolist(), rows.tolist()):
                masked[h].add(j)
        res.append([[j for j in range(ids.shape[1]) if j not in masked[h]] for h in range(n_kv)])
    return res


def duo_scores(model, ids):
    """weft's duo scores: kvpress's duo_attention_on_the_fly with this prompt as the
    calibration text and the mean query over tokens 4 on (prefill --q-stats)."""
    cfg = model.config
    rep = cfg.num_attention_heads // cfg.num_key_value_heads
    q_len = 500
    with torch.no_grad():
        hs = model(input_ids=ids, output_hidden_states=True).hidden_states[:-1]
        scores = torch.zeros((cfg.num_hidden_layers, cfg.num_key_value_heads))
        pos = torch.arange(q_len).unsqueeze(0)
        for l, h in enumerate(hs):
            mod = model.model.layers[l]
            d = mod.self_attn.head_dim
            h = mod.input_layernorm(h)
            q = mod.self_attn.q_proj(h).view(1, h.shape[1], -1, d)[:, 4:].mean(dim=1, keepdim=True)
            q = q.repeat(1, q_len, 1, 1).transpose(1, 2)
            k = mod.self_attn.k_proj(h).view(1, h.shape[1], -1, d).mean(dim=1, keepdim=True)
            k = k.repeat(1, q_len, 1, 1).transpose(1, 2)
            cos, sin = model.model.rotary_emb(h, pos)
            q, k = apply_rotary_pos_emb(q, k, cos, sin)
            k = k.repeat_interleave(rep, dim=1)
            w = torch.matmul(q[:, :, -1:, :], k.transpose(2, 3)) / (d ** 0.5)
            w = w.softmax(dim=-1, dtype=torch.float32).squeeze()
            s = torch.cumsum(w, dim=1).mean(1).view(-1, rep).mean(1)
            scores[l] = s
    return scores.numpy()


def main():
    model = load_model()
    cfg = model.config
    L, H, hd = cfg.num_hidden_layers, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    rng = np.random.RandomState(4242)
    # distinct tokens: a repeated token has the same layer-0 key norm (RoPE
    # keeps norms), a tie kvpress's topk breaks its own way
    ids_np = rng.choice(np.arange(3, cfg.vocab_size), size=T, replace=False)
    ids = torch.from_numpy(ids_np.astype(np.int64))[None, :]
    origs = {"sdpa": prefill(model, ids), "eager": prefill(model, ids, attn="eager")}
    lines = [f"# kvpress {kvpress.__version__ if hasattr(kvpress, '__version__') else '0.5.5'} kept rows on "
             f"tests/data/llm/tiny-llama-f32.gguf (scripts/gen-kvpress-fixtures.py)",
             "prompt %d %s" % (T, " ".join(str(int(x)) for x in ids_np))]
    presses = {
        "knorm": lambda r: KnormPress(compression_ratio=r),
        "streamingllm": lambda r: StreamingLLMPress(compression_ratio=r),
        "observed": lambda r: ObservedAttentionPress(compression_ratio=r),
        "snapkv": lambda r: SnapKVPress(compression_ratio=r, window_size=WINDOW),
        "pyramidkv": lambda r: PyramidKVPress(compression_ratio=r, window_size=WINDOW),
        "tova": lambda r: TOVAPress(compression_ratio=r),
        "expected-attention": lambda r: ExpectedAttentionPress(compression_ratio=r),
        "keydiff": lambda r: KeyDiffPress(compression_ratio=r),
    }
    for name, make in presses.items():
        for r in RATIOS:
            attn = "eager" if name == "observed" else "sdpa"
            cache = prefill(model, ids, make(r), attn)
            for l, heads in enumerate(kept_rows(origs[attn], cache, L)):
                for h, rows in enumerate(heads):
                    lines.append(f"case {name} {r} layer {l} head {h} kept " + " ".join(map(str, rows)))
    for r in RATIOS:
        res = masked_rows(model, AdaKVPress(SnapKVPress(compression_ratio=r, window_size=WINDOW)), ids, L, H)
        for l, heads in enumerate(res):
            for h, rows in enumerate(heads):
                lines.append(f"case adakv {r} layer {l} head {h} kept " + " ".join(map(str, rows)))
    scores = duo_scores(model, ids)
    lines.append("duo_scores " + " ".join("%.9g" % x for x in scores.reshape(-1)))
    for r in (0.25, 0.5, 0.75):
        duo_attention_press.duo_attention_on_the_fly = lambda m, *a, **k: scores
        press = DuoAttentionPress(head_compression_ratio=r, on_the_fly_scoring=True)
        orig_post = press.post_init_from_model

        def post(m, orig_post=orig_post, press=press):
            orig_post(m)
            press.sink_size, press.recent_size = 4, 16
        press.post_init_from_model = post
        res = masked_rows(model, press, ids, L, H)
        for l, heads in enumerate(res):
            for h, rows in enumerate(heads):
                lines.append(f"case duo {r} layer {l} head {h} kept " + " ".join(map(str, rows)))
    perm = permutation(hd)  # HF channel c is GGUF channel perm[c]
    for r in (0.25, 0.5):
        cache = prefill(model, ids, ThinKPress(key_channel_compression_ratio=r))
        for l in range(L):
            k = cache.layers[l].keys[0]
            for h in range(H):
                zero = (k[h] == 0).all(dim=0).numpy()
                kept = sorted(int(perm[c]) for c in range(hd) if not zero[c])
                lines.append(f"channels think {r} layer {l} head {h} kept " + " ".join(map(str, kept)))
    os.makedirs(os.path.dirname(out_path), exist_ok=True)
    with open(out_path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out_path}: {len(lines)} lines")


if __name__ == "__main__":
    sys.exit(main())
