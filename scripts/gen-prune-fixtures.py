#!/usr/bin/env python3
r"""Generate the pruning methods' fidelity fixtures in tests/data/prune/
(committed; rerun only to change them).

Each embd-stage method of lib/prune_<name>.c is restated here from its
authors' repository (the file and function named at each transcription;
torch code kept as the reference wrote it, on one image, float64), run on
fixed random inputs, and its kept token indices (and merged rows) written
out.  tests/unit/test_prune.c runs weft's C code on the same inputs and
compares: kept indices identical, merged rows within 1e-5.

Inputs (inputs.wst, a weft stream: embd frames as encode-image writes them,
plus one test-only frame of kind "text_embd"):
  llava    one tile: 24 x 24 tokens (patch side 24, merge 1) of width 96;
           saliency (kind cls_attn) [3, 576]; attn_recv [3, 576]; keys
           [576, 16].  Embeddings are 24 cluster centres plus noise, keys a
           random projection of them plus noise, attention heavy-tailed
           (softmax of 2.5 N(0, 1)), so merges and outliers are exercised.
  smolvlm  one image of 3 tiles (1 x 2 grid + global), each 32 x 32 patches
           merged 4 x 4 into 8 x 8 tokens of width 96; saliency (kind
           attn_recv) [3, 1024]; keys [1024, 8].  A token's saliency is the
           sum of its 16 patches', its key their mean (as prune_unit.c
           documents); the three tiles form one unit (scope image), per-tile
           methods splitting the budget by largest remainder.
  text     [12, 96]: the prompt's text embeddings for cdpruner.

Expected results (expect.wst), one frame of kind "expect" per case with
metadata weft.case (llava / smolvlm), weft.method, weft.keep, weft.params
(what prune-tokens -P takes) and tensors tile I32 [k], kept I32 [k] (the
kept tokens: tile within the image, token within the tile; ascending) and,
for methods that merge, embd F32 [k, 96] (the rows, in that order).

Where weft's budget semantics or the stream differ from the reference (see
each method's C file and prune-tokens(1)), the transcription follows the
reference's code with the documented adaptation, marked ADAPT.

In-LLM methods (llm.wst): transformers' LlamaForCausalLM (5.x, eager,
float32) loaded from the committed tiny LLaVA language model
(tests/data/vlm/tiny-llava-llm-f32.gguf, 2 layers; transformers' own GGUF
loader undoes the converter's Q/K permutation) runs a prompt of 12 text
tokens, 16 image rows and 14 text tokens layer by layer; before a layer a
method may drop rows (hidden states and position ids gathered, a new causal
mask over the rest, as FastV's modeling_llama.py does), scoring with
attention weights computed from that layer's (or the previous one's)
q_proj/k_proj and apply_rotary_pos_emb, softmax in float32 over the causal
row.  Frames: one "llm_input" (ids I32 [46], -1 at image rows; image F32
[16, 64]) and one "llm_expect" per case (weft.method, weft.keep,
weft.params; kept I32: the image rows left after the last drop, as input
indices; logits F32 [320] of the last token).  Cases: unpruned; positions
kept (rows 0, 3, 5, ... of the image fed at their own position ids, as
prefill feeds a tile pruned with --positions keep); fastv (layer 1, the last
token's attention at layer 0); pdrop (layers 1: layer 1's own attention
from its input); dart (layer 1: keys of layer 0, final-normed hidden
states, pivots 2 + 2); sparsevlm (after 0, with and without recycling).

FlowCut (inside the encoder): flowcut-mmproj.gguf, a random CLIP tower
written here with gguf-py in llama.cpp's mmproj layout (projector mlp, class
token, pre-LN, quick-GELU, 6 blocks of width 32, 4 heads, 84 px, patch 14:
36 patches; mlp projector 32 -> 48 -> 48), so FlowCut's adaptive steps
(rpl 4, 2, 0) all run.  A numpy/torch float64 restatement of the CLIP
forward runs it on fixed pixels with the FlowCut steps of
flowcut/modeling_clip_flowcut.py and utils_flowcut.py after each block;
flowcut.wst holds the pixels ("flowcut_input": pixels F32 [3, 84, 84]),
the unpruned tower's statistics that encode-image --stats exports
("stats_expect": keys F32 [36, 32] of the last block, attn_recv F32 [6, 36])
and per budget ("flowcut_expect", weft.keep) the kept patches and the
projector's rows.

Run (from the repository root):
    $(scripts/venv)/bin/python scripts/gen-prune-fixtures.py
"""
import json
import math
import os
import struct
import zlib

import numpy as np
import torch

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(os.path.dirname(here), "tests", "data", "prune")
D = 96

# ---------------------------------------------------------------- weft stream writer


def frame(kind, meta, tensors):
    """One weft frame: safetensors blob with weft.* metadata and CRC."""
    order = sorted(tensors.items(), key=lambda kv: -kv[1].dtype.itemsize)
    dtn = {np.dtype(np.float32): "F32", np.dtype(np.int32): "I32"}
    hdr, data, off = {}, b"", 0
    for name, a in order:
        b = np.ascontiguousarray(a).tobytes()
        hdr[name] = {"dtype": dtn[a.dtype], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        data += b
        off += len(b)
    m = {"weft.version": "1", "weft.kind": kind, "weft.tool": "gen-prune-fixtures.py",
         "weft.crc32": "%08x" % zlib.crc32(data)}
    m.update({k: str(v) for k, v in meta.items()})
    hdr["__metadata__"] = m
    h = json.dumps(hdr, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


# ---------------------------------------------------------------- inputs


def softmax(x):
    e = np.exp(x - x.max())
    return e / e.sum()


def make_inputs(rng):
    # llava-shaped
    n = 576
    centres = rng.normal(size=(24, D))
    lab = rng.integers(0, 24, size=n)
    emb = centres[lab] + 0.6 * rng.normal(size=(n, D))
    proj = rng.normal(size=(D, 16)) / math.sqrt(D)
    keys = emb @ proj + 0.3 * rng.normal(size=(n, 16))
    sal = np.stack([softmax(2.5 * rng.normal(size=n)) for _ in range(3)])
    recv = np.stack([softmax(1.5 * rng.normal(size=n)) for _ in range(3)])
    llava = dict(emb=emb.astype(np.float32), sal=sal.astype(np.float32), recv=recv.astype(np.float32),
                 keys=keys.astype(np.float32), side=24, merge=1, tiles=1)
    # smolvlm-shaped: 3 tiles of 32 x 32 patches, 4 x 4 per token
    tiles = []
    for t in range(3):
        centres = rng.normal(size=(8, D))
        lab = rng.integers(0, 8, size=64)
        emb = centres[lab] + 0.5 * rng.normal(size=(64, D))
        pk = rng.normal(size=(1024, 8))
        sal = np.stack([softmax(2.0 * rng.normal(size=1024)) for _ in range(3)])
        tiles.append(dict(emb=emb.astype(np.float32), sal=sal.astype(np.float32), keys=pk.astype(np.float32),
                          side=32, merge=4))
    text = rng.normal(size=(12, D)).astype(np.float32)
    return llava, tiles, text


def tok_sal(t, layer):
    """Token-level saliency of a smolvlm tile: sum over its 4 x 4 patches."""
    s = t["sal"][layer].reshape(8, 4, 8, 4).astype(np.float64)
    return s.sum(axis=(1, 3)).reshape(64)


def tok_keys(t):
    k = t["keys"].reshape(8, 4, 8, 4, -1).astype(np.float64)
    return k.mean(axis=(1, 3)).reshape(64, -1)


# ---------------------------------------------------------------- transcriptions
# Each takes token-level float64 tensors of one unit and returns (kept
# indices, rows or None); rows follow the ascending kept indices.
T = torch.float64


def cls_select(sal, B):
    # FasterVLM: image_attentions[:, :, 0, 1:].mean(heads); topk(budget)
    return torch.tensor(sal).topk(B).indices.sort().values.tolist(), None


def divprune_select(emb, B):
    # vbdi/divprune LLaVA/llava/model/llava_arch.py DivPrune()
    x = torch.tensor(emb, dtype=T)
    norm = x / x.norm(dim=1, keepdim=True)
    cosine_matrix = 1.0 - norm @ norm.t()
    s = torch.empty(B, dtype=torch.long)
    for i in range(B):
        if i == 0:
            m2 = cosine_matrix
            scores = torch.topk(m2, 2, dim=0, largest=False).values[1, :]
        else:
            m2 = torch.index_select(cosine_matrix, 0, s[:i])
            scores = torch.min(m2, dim=0).values
        s[i] = torch.argmax(scores)
    return sorted(s.tolist()), None


def vispruner_select(emb, sal, B, important_ratio=0.5):
    # Theia-4869/VisPruner llava/model/llava_arch.py encode_images (one image;
    # ADAPT: the projected embeddings stand for the tower's features)
    x = torch.tensor(emb, dtype=T)
    att = torch.tensor(sal, dtype=T)
    important_token_num = int(B * important_ratio)
    diverse_token_num = B - important_token_num
    token_indices = att.argsort(descending=True)
    important_indices = token_indices[:important_token_num]
    residual_indices = token_indices[important_token_num:]
    image_normalized = x / x.norm(dim=-1, keepdim=True)
    while diverse_token_num > 0:
        R = residual_indices.shape[0]
        r = min(8, R - diverse_token_num)
        if r <= 0:
            break
        residual_tokens = image_normalized[residual_indices]
        a, b = residual_tokens[::2, :], residual_tokens[1::2, :]
        scores = (a @ b.t()).max(dim=-1).values
        distinct_indices = scores.argsort(descending=True)[r:]
        residual_indices = torch.cat([residual_indices[::2][distinct_indices], residual_indices[1::2]])
    sel = torch.cat([important_indices, residual_indices]) if diverse_token_num > 0 else important_indices
    return sorted(sel.tolist()), None


def hiprune_select(shallow, deep, B, side, bounds, alpha=0.1):
    # Danielement321/HiPrune LLaVA/llava/model/llava_arch.py encode_images
    # (ADAPT: neighbours clamped to the token's own tile, bounds = [lo, hi))
    shallow = torch.tensor(shallow, dtype=T)
    deep = torch.tensor(deep, dtype=T).clone()
    shallow_token_num = round(B * alpha / 5)
    anchors = torch.topk(shallow, k=shallow_token_num).indices.tolist()
    chosen = set()
    for i in anchors:
        lo, hi = next((l, h) for l, h in bounds if l <= i < h)
        for j in (i, i - 1, i + 1, i - side, i + side):
            chosen.add(min(max(j, lo), hi - 1))
    deep_token_num = B - len(chosen)
    mask = torch.zeros(len(deep), dtype=T)
    mask[list(chosen)] = 1
    deep -= mask
    deep_idx = torch.topk(deep, k=deep_token_num).indices.tolist()
    return sorted(list(chosen) + deep_idx), None


def visionzip_select(emb, sal, keys, B, ctx=0.15625):
    # dvlab-research/VisionZip visionzip/clip_encoder.py forward (one image;
    # ADAPT: no [CLS] row, so all dominant slots are patches; projected rows)
    hidden = torch.tensor(emb, dtype=T)
    metric = torch.tensor(keys, dtype=T)
    contextual_num = int(math.floor(B * ctx + 0.5))
    dominant_num = B - contextual_num
    topk_indices = torch.tensor(sal, dtype=T).topk(dominant_num).indices
    mask = torch.ones(hidden.shape[0], dtype=torch.bool)
    mask[topk_indices] = False
    dom_idx = torch.nonzero(~mask).flatten()
    if contextual_num == 0:
        return dom_idx.tolist(), hidden[dom_idx].numpy()
    rest_idx = torch.nonzero(mask).flatten()
    metric_filtered = metric[mask]
    hidden_filtered = hidden[mask]
    metric_normalized = metric_filtered / metric_filtered.norm(dim=-1, keepdim=True)
    step = max(1, metric_normalized.shape[0] // contextual_num)
    target_indices = torch.arange(0, metric_normalized.shape[0], step)[:contextual_num]
    target_tokens = metric_normalized[target_indices, :]
    keep_merge = ~torch.isin(torch.arange(metric_normalized.shape[0]), target_indices)
    tokens_to_merge = metric_normalized[keep_merge, :]
    similarity = tokens_to_merge @ target_tokens.t()
    assign_one_hot = torch.zeros(tokens_to_merge.shape[0], contextual_num, dtype=T)
    assign_one_hot.scatter_(1, similarity.argmax(dim=1).unsqueeze(-1), 1)
    counts = assign_one_hot.sum(dim=0).clamp(min=1).unsqueeze(-1)
    hidden_to_merge = hidden_filtered[keep_merge, :]
    aggregated_hidden = (assign_one_hot.t() @ hidden_to_merge) / counts
    contextual_tokens = hidden_filtered[target_indices, :] + aggregated_hidden
    rows = {int(i): hidden[i].numpy() for i in dom_idx}
    for t, i in enumerate(rest_idx[target_indices].tolist()):
        rows[i] = contextual_tokens[t].numpy()
    kept = sorted(rows)
    return kept, np.stack([rows[i] for i in kept])


def prumerge_select(emb, sal, keys, B, knn=32, extra=1):
    # 42Shawn/LLaVA-PruMerge llava/model/multimodal_encoder/clip_encoder.py
    # token_prune_merge_advanced_plus (ADAPT: the budget caps the adaptive
    # count: the top min(k, B - extra) outliers and an even subsample of the
    # spatial samples; the extra row anchored at the last token not kept)
    x = torch.tensor(emb, dtype=T)
    cls_attn = torch.tensor(sal, dtype=T)
    K = torch.tensor(keys, dtype=T)
    N = x.shape[0]
    extra = 1 if extra and B > 1 else 0
    a = cls_attn.numpy()
    Q1, Q3 = np.percentile(a, 25), np.percentile(a, 75)
    upper = Q3 + 1.5 * (Q3 - Q1)
    n_out = int((a > upper).sum())
    reduction_ratio = max(n_out, 1) / N
    k = int(N * reduction_ratio)
    step_length = int(1 / reduction_ratio)
    stride = max(int(step_length / 3), 1)
    k = min(k, B - extra)
    idx = torch.topk(cls_attn, k).indices.tolist()
    spatial = [s for s in range(0, N - 1, stride) if s not in idx]
    want = min(B - extra - k, len(spatial))
    if want < len(spatial):
        spatial = [spatial[int(i * len(spatial) / want)] for i in range(want)]
    idx = idx + spatial
    kept = set(idx)
    compl = [j for j in range(N) if j not in kept]
    Kn = K / K.norm(dim=-1, keepdim=True)
    rows = {}
    for i, ti in enumerate(idx):
        rest = idx[:i] + idx[i + 1:] + compl
        cos_sim = Kn[rest] @ Kn[ti]
        cluster = torch.topk(cos_sim, k=min(knn, len(rest))).indices
        sel = [rest[c] for c in cluster.tolist()]
        rows[ti] = (x[ti] + (x[sel] * cls_attn[sel].unsqueeze(-1)).sum(0)).numpy()
    if extra:
        rows[compl[-1]] = (x[compl] * cls_attn[compl].unsqueeze(-1)).sum(0).numpy()
    kept = sorted(rows)
    return kept, np.stack([rows[i] for i in kept])


def cdpruner_select(emb, text, B, sign=-1.0):
    # Theia-4869/CDPruner llava/model/llava_arch.py encode_images (one image;
    # ADAPT: image_embeds = the projected embeddings, text_embeds = the LLM's
    # embeddings of the prompt's text tokens)
    image_features = torch.tensor(emb, dtype=T)[None]
    image_embeds = image_features
    text_embeds = torch.tensor(text, dtype=T)
    _, N, _ = image_features.shape
    image_normalized = image_features / image_features.norm(dim=-1, keepdim=True)
    similarity = image_normalized @ image_normalized.transpose(1, 2)
    image_embeds = image_embeds / image_embeds.norm(dim=-1, keepdim=True)
    text_embeds = text_embeds / text_embeds.norm(dim=-1, keepdim=True)
    relevance = image_embeds @ text_embeds.t()
    relevance = (sign * relevance).mean(dim=-1)
    relevance = (relevance - relevance.min() + 1e-6) / (relevance.max() - relevance.min())
    kernel = relevance.unsqueeze(2) * similarity * relevance.unsqueeze(1)
    cis = torch.zeros((B, 1, N), dtype=T)
    di2s = torch.diagonal(kernel, dim1=1, dim2=2).clone()
    select_idx = torch.empty((B, 1), dtype=torch.long)
    for i in range(B):
        j = torch.argmax(di2s, dim=-1)
        select_idx[i] = j
        eis = (kernel[torch.arange(1), j] - torch.einsum('tb,tbn->bn', cis[:i, torch.arange(1), j], cis[:i])) \
            / torch.sqrt(di2s[torch.arange(1), j]).unsqueeze(-1)
        cis[i, :, :] = eis
        di2s -= torch.square(eis)
        di2s[torch.arange(1), j] = -float('inf')
    return sorted(select_idx.flatten().tolist()), None


def pool_select(emb, side, B):
    # torch's adaptive_avg_pool2d to g x g, g = floor(sqrt(B)); anchors are
    # the bins' top-left tokens (floor(i H / g), floor(j W / g))
    g = min(int(math.floor(math.sqrt(B))), side)
    x = torch.tensor(emb, dtype=T).reshape(side, side, -1).permute(2, 0, 1)
    p = torch.nn.functional.adaptive_avg_pool2d(x[None], (g, g))[0].permute(1, 2, 0).reshape(g * g, -1)
    kept = [(i * side // g) * side + (j * side // g) for i in range(g) for j in range(g)]
    return kept, p.numpy()


# ---------------------------------------------------------------- cases


def split_budget(B, sizes):
    """weft's per-tile split: floors, then +1 by largest remainder (first on ties)."""
    N = sum(sizes)
    share = [B * s // N for s in sizes]
    rem = [B * s % N for s in sizes]
    bumped = set()
    for _ in range(B - sum(share)):
        best = max((t for t in range(len(sizes)) if t not in bumped), key=lambda t: (rem[t], -t))
        bumped.add(best)
        share[best] += 1
    return share


def run(method, unit, B, params):
    """Method on a unit (list of tiles, token-level arrays); returns
    [(tile, index)], rows or None."""
    sizes = [len(t["emb"]) for t in unit]
    starts = np.cumsum([0] + sizes[:-1]).tolist()
    per_tile = method in ("pool", "visionzip", "prumerge")
    if per_tile and len(unit) > 1:
        kept, rows = [], []
        for t, b in enumerate(split_budget(B, sizes)):
            if b == 0:
                continue
            k, r = run(method, [unit[t]], b, params)
            kept += [(t, i) for _, i in k]
            rows += list(r) if r is not None else [unit[t]["emb"][i] for _, i in k]
        return kept, np.stack(rows)
    emb = np.concatenate([t["emb"] for t in unit]).astype(np.float64)
    sal = np.concatenate([t["tsal"][-1] for t in unit])
    if method == "cls":
        k, r = cls_select(sal, B)
    elif method == "divprune":
        k, r = divprune_select(emb, B)
    elif method == "vispruner":
        k, r = vispruner_select(emb, sal, B)
    elif method == "hiprune":
        ol = int(params["object_layer"]) - 1
        shallow = np.concatenate([t["trecv"][ol] for t in unit])
        deep = np.concatenate([t["trecv"][-1] for t in unit])
        bounds = [(s, s + n) for s, n in zip(starts, sizes)]
        k, r = hiprune_select(shallow, deep, B, unit[0]["tside"], bounds)
    elif method == "visionzip":
        k, r = visionzip_select(emb, sal, unit[0]["tkeys"], B)
    elif method == "prumerge":
        k, r = prumerge_select(emb, sal, unit[0]["tkeys"], B)
    elif method == "cdpruner":
        k, r = cdpruner_select(emb, params["text"], B)
    elif method == "pool":
        k, r = pool_select(emb, unit[0]["tside"], B)
    out = []
    for i in k:
        t = max(j for j, s in enumerate(starts) if s <= i)
        out.append((t, i - starts[t]))
    return out, r


def main():
    rng = np.random.default_rng(20261206)
    llava, tiles, text = make_inputs(rng)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "inputs.wst"), "wb") as f:
        f.write(frame("embd", {"weft.image": 1, "weft.tile": 0, "weft.tiles": 1, "weft.rows": 0, "weft.cols": 0,
                               "weft.saliency": "cls_attn", "weft.patch_side": 24, "weft.merge": 1,
                               "weft.mmproj": "00000000000000aa", "weft.prefix": "", "weft.suffix": ""},
                      {"embd": llava["emb"], "saliency": llava["sal"], "attn_recv": llava["recv"],
                       "keys": llava["keys"]}))
        for t, tl in enumerate(tiles):
            f.write(frame("embd", {"weft.image": 2, "weft.tile": t, "weft.tiles": 3, "weft.rows": 1, "weft.cols": 2,
                                   "weft.saliency": "attn_recv", "weft.patch_side": 32, "weft.merge": 4,
                                   "weft.mmproj": "00000000000000bb", "weft.prefix": "", "weft.suffix": ""},
                          {"embd": tl["emb"], "saliency": tl["sal"], "keys": tl["keys"]}))
        f.write(frame("text_embd", {}, {"text": text}))
    # token-level views
    lv = dict(emb=llava["emb"], tsal=llava["sal"].astype(np.float64), trecv=llava["recv"].astype(np.float64),
              tkeys=llava["keys"].astype(np.float64), tside=24)
    sv = [dict(emb=t["emb"], tsal=np.stack([tok_sal(t, l) for l in range(3)]),
               trecv=np.stack([tok_sal(t, l) for l in range(3)]), tkeys=tok_keys(t), tside=8) for t in tiles]
    for t in sv:  # keys of a unit: concatenated
        pass
    sv_keys = np.concatenate([t["tkeys"] for t in sv])
    cases = []
    for name, unit, budgets in (("llava", [lv], (16, 64, 128)), ("smolvlm", sv, (16, 48))):
        for method in ("cls", "divprune", "vispruner", "hiprune", "visionzip", "prumerge", "cdpruner", "pool"):
            for B in budgets:
                if method == "cdpruner" and B > 64:
                    continue  # the kernel's rank is D = 96: beyond it the greedy MAP degenerates
                params = {"object_layer": 2, "text": text.astype(np.float64)}
                u = unit
                if name == "smolvlm" and method in ("visionzip", "prumerge"):
                    u = [dict(t) for t in unit]  # per tile: each its own keys
                if name == "smolvlm" and method not in ("visionzip", "prumerge", "pool"):
                    u = [dict(t) for t in unit]
                    u[0] = dict(u[0], tkeys=sv_keys)
                kept, rows = run(method, u, B, params)
                meta = {"weft.case": name, "weft.method": method, "weft.keep": B,
                        "weft.params": "object_layer=2" if method == "hiprune" else ""}
                tens = {"tile": np.array([t for t, _ in kept], np.int32), "kept": np.array([i for _, i in kept], np.int32)}
                if rows is not None and method in ("visionzip", "prumerge", "pool"):
                    tens["embd"] = np.asarray(rows, np.float32)
                cases.append(frame("expect", meta, tens))
                print(name, method, B, len(kept), "merged" if "embd" in tens else "")
    with open(os.path.join(out_dir, "expect.wst"), "wb") as f:
        for c in cases:
            f.write(c)


# ---------------------------------------------------------------- in-LLM methods

def load_llm():
    from transformers import LlamaForCausalLM
    vd = os.path.join(os.path.dirname(here), "tests", "data", "vlm")
    m = LlamaForCausalLM.from_pretrained(vd, gguf_file="tiny-llava-llm-f32.gguf", torch_dtype=torch.float32,
                                         attn_implementation="eager")
    return m.eval()


def layer_attn(model, l, h, pos):
    """Layer l's attention probabilities [H, T, T] (causal) and its rotated
    keys [G, T, hd] for input hidden states h [1, T, d] at position ids pos."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb
    layer = model.model.layers[l]
    cfg = model.config
    H, G, hd = cfg.num_attention_heads, cfg.num_key_value_heads, cfg.hidden_size // cfg.num_attention_heads
    x = layer.input_layernorm(h)
    T = x.shape[1]
    q = layer.self_attn.q_proj(x).view(1, T, H, hd).transpose(1, 2)
    k = layer.self_attn.k_proj(x).view(1, T, G, hd).transpose(1, 2)
    cos, sin = model.model.rotary_emb(x, pos[None])
    q, k = apply_rotary_pos_emb(q, k, cos, sin)
    kk = k.repeat_interleave(H // G, dim=1)
    w = (q @ kk.transpose(2, 3)) / math.sqrt(hd)
    w = w + torch.triu(torch.full((T, T), float("-inf")), diagonal=1)
    return torch.softmax(w.float(), dim=-1)[0], k[0]


def run_layers(model, h, pos, drop):
    """The forward pass, with drop(l, h, pos) -> kept row indices (or None)
    called before each layer; returns the last row's logits and the kept
    input indices of the rows reaching the last layer."""
    rows = torch.arange(h.shape[1])
    for l, layer in enumerate(model.model.layers):
        keep = drop(l, h, pos, rows)
        if keep is not None:
            keep = torch.tensor(sorted(keep))
            h, pos, rows = h[:, keep], pos[keep], rows[keep]
        T = h.shape[1]
        mask = torch.triu(torch.full((T, T), torch.finfo(torch.float32).min), diagonal=1)[None, None]
        pe = model.model.rotary_emb(h, pos[None])
        h = layer(h, attention_mask=mask, position_ids=pos[None], position_embeddings=pe)
        if isinstance(h, tuple):
            h = h[0]
    logits = model.lm_head(model.model.norm(h))[0, -1]
    return logits, rows


def llm_cases():
    model = load_llm()
    rng = np.random.default_rng(1206)
    pre, img, post = 12, 16, 14
    ids = np.concatenate([[1], rng.integers(3, 319, pre - 1), -np.ones(img, np.int64), rng.integers(3, 319, post)])
    image = rng.normal(size=(img, 64)).astype(np.float32)
    emb = model.model.embed_tokens.weight.detach()
    T = len(ids)
    x = torch.zeros(1, T, 64)
    for t, i in enumerate(ids):
        x[0, t] = emb[int(i)] if i >= 0 else torch.tensor(image[t - pre])
    is_vis = ids < 0
    vis = torch.tensor(is_vis)
    frames = [frame("llm_input", {}, {"ids": ids.astype(np.int32), "image": image})]

    def topk_vis(score, rows, k):
        """Text rows and the k best-scored visual rows (row indices)."""
        v = [j for j in range(len(rows)) if vis[rows[j]]]
        best = torch.tensor([float(score[j]) for j in v]).topk(k).indices.tolist()
        return [j for j in range(len(rows)) if not vis[rows[j]]] + [v[b] for b in best]

    def case(method, keep, params, drop, x_in=x, pos=None):
        with torch.no_grad():
            logits, rows = run_layers(model, x_in, torch.arange(x_in.shape[1]) if pos is None else pos, drop)
        kept = [int(r) for r in rows if vis[int(r)]] if pos is None else []
        frames.append(frame("llm_expect", {"weft.method": method, "weft.keep": keep, "weft.params": params},
                            {"logits": logits.numpy().astype(np.float32), "kept": np.array(kept, np.int32)}))
        print("llm", method, keep, params, "kept", kept)

    none = lambda l, h, pos, rows: None  # noqa: E731
    case("none", 0, "", none)
    # positions kept: image rows 0, 3, 6 ... fed at their own positions
    sub = list(range(0, img, 3))
    sel = list(range(pre)) + [pre + i for i in sub] + list(range(pre + img, T))
    frames.append(frame("llm_positions", {}, {"kept": np.array(sub, np.int32)}))
    case("positions", len(sub), "", none, x_in=x[:, sel], pos=torch.tensor(sel))

    # FastV: before layer K, the last token's attention at layer K - 1
    # (pkunlp-icler/FastV modeling_llama.py: mean over heads, topk, sort)
    saved = {}

    def fastv(l, h, pos, rows, K=1, keep=6):
        if l == K - 1:
            saved["a"] = layer_attn(model, l, h, pos)[0].mean(0)[-1]
        if l != K:
            return None
        return topk_vis(saved["a"], rows, keep)
    case("fastv", 6, "layer=1", fastv)

    # PDrop: before layer L, layer L's own attention of the last token
    # (Cooperx521/PyramidDrop pdrop_rank_drop; keep int(n lambda))
    def pdrop(l, h, pos, rows, keep=5):
        if l != 1:
            return None
        a = layer_attn(model, l, h, pos)[0].mean(0)[-1]
        return topk_vis(a, rows, int(math.floor(img * (keep / img) + 1e-9)))
    case("pdrop", 5, "layers=1", pdrop)

    # DART (llmc dart.py get_retained_image_token; ADAPT: pivots walked by
    # position, quotas filling the budget exactly)
    def dart(l, h, pos, rows, K=1, keep=7, pv=2, pt=2):
        if l == K - 1:
            saved["k"] = layer_attn(model, l, h, pos)[1]  # [G, T, hd]
        if l != K:
            return None
        ks = saved["k"].permute(1, 0, 2).reshape(h.shape[1], -1)
        l1 = ks.abs().sum(-1)
        vrows = [j for j in range(len(rows)) if vis[rows[j]]]
        last_vis = max(vrows)
        trows = [j for j in range(len(rows)) if j > last_vis]
        ipiv = [vrows[i] for i in l1[vrows].topk(pv).indices.tolist()]
        tpiv = [trows[i] for i in l1[trows].topk(pt).indices.tolist()]
        state = model.model.norm(h)[0].double()
        taken = set(ipiv)
        P, rest = pv + pt, keep - pv
        for pi, j in enumerate(sorted(ipiv + tpiv)):
            quota = rest // P + (1 if pi < rest % P else 0)
            valid = [t for t in vrows if t not in taken]
            cs = -torch.nn.functional.cosine_similarity(state[j][None], state[valid], dim=-1)
            taken.update(valid[i] for i in cs.topk(min(quota, len(valid))).indices.tolist())
        return [j for j in range(len(rows)) if not vis[rows[j]] or j in taken]
    case("dart", 7, "layer=1,pivots=2,text_pivots=2", dart)

    # SparseVLM v1.0 (Gumpest/SparseVLMs): raters from the input embeddings,
    # the raters' attention at layer L, prune its output; recycling by
    # DPC-kNN (cluster_and_merge without the random jitter)
    def sparsevlm(recycle):
        st = {}

        def drop(l, h, pos, rows, keep=6):
            if l == 0:
                v_t, t_t = h[0, pre:pre + img].double(), h[0, pre + img:].double()
                m = (v_t @ t_t.t()).softmax(1).mean(0)
                st["raters"] = [pre + img + i for i in torch.where(m > m.mean())[0].tolist()]
                st["a"] = layer_attn(model, 0, h, pos)[0].mean(0)
                return None
            if l != 1:
                return None
            rel = st["a"][st["raters"]].mean(0)  # rows == inputs before the first drop
            vrows = [j for j in range(len(rows)) if vis[rows[j]]]
            k = min(int(math.floor(300 * keep / 192 + 0.5)), len(vrows) - 1)
            keepr = topk_vis(rel, rows, k)
            if not recycle:
                return keepr
            dropped = [j for j in vrows if j not in keepr]
            m2 = int(len(dropped) * 0.3) + 1
            best = [dropped[i] for i in rel[dropped].topk(m2).indices.tolist()]
            xx = h[0, best].double()
            C = xx.shape[1]
            k2 = m2 // 10 + 1
            dist = torch.cdist(xx, xx) / math.sqrt(C)
            dn = dist.topk(k2, dim=-1, largest=False).values
            density = (-(dn ** 2).mean(-1)).exp()
            mask = (density[None, :] > density[:, None]).double()
            dmax = dist.max()
            dd = (dist * mask + dmax * (1 - mask)).min(dim=-1).values
            centres = (dd * density).topk(k2).indices
            assign = dist[centres].argmin(dim=0)
            assign[centres] = torch.arange(k2)
            cnt = torch.bincount(assign, minlength=k2).double() + 1e-6
            merged = torch.zeros(k2, C, dtype=torch.float64).index_add_(0, assign, xx / cnt[assign][:, None])
            for c in range(k2):
                h[0, best[int(centres[c])]] = merged[c].float()
            return keepr + [best[int(c)] for c in centres]
        return drop
    case("sparsevlm", 6, "after=0,recycle=0", sparsevlm(False))
    case("sparsevlm", 6, "after=0", sparsevlm(True))
    with open(os.path.join(out_dir, "llm.wst"), "wb") as f:
        for fr in frames:
            f.write(fr)


# ---------------------------------------------------------------- FlowCut


def make_flowcut_mmproj(path, rng):
    import gguf
    d, ff, L, H, S, P, hid, out = 32, 64, 6, 4, 84, 14, 48, 48
    w = gguf.GGUFWriter(path + ".tmp", arch="clip")
    w.add_string("general.name", "prune-flowcut-fixture")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_bool("clip.has_llava_projector", True)
    w.add_string("clip.projector_type", "mlp")
    for k, v in (("embedding_length", d), ("feed_forward_length", ff), ("block_count", L),
                 ("attention.head_count", H), ("image_size", S), ("patch_size", P), ("projection_dim", out)):
        w.add_uint32("clip.vision." + k, v)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.48145466, 0.4578275, 0.40821073])
    w.add_array("clip.vision.image_std", [0.26862954, 0.26130258, 0.27577711])
    W = {}

    def t(name, *shape, scale=None, base=0.0):
        fan = shape[-1] if len(shape) > 1 else 1
        a = (base + rng.normal(size=shape) * (scale if scale is not None else 1 / math.sqrt(fan))).astype(np.float32)
        W[name] = a.astype(np.float64)
        w.add_tensor(name, a)
    n = (S // P) ** 2
    t("v.class_embd", d, scale=1.0)
    t("v.patch_embd.weight", d, 3, P, P, scale=1 / math.sqrt(3 * P * P))
    t("v.position_embd.weight", n + 1, d, scale=0.5)
    t("v.pre_ln.weight", d, scale=0.2, base=1.0)
    t("v.pre_ln.bias", d, scale=0.2)
    for b in range(L):
        for x in ("q", "k", "v"):
            t(f"v.blk.{b}.attn_{x}.weight", d, d, scale=1.5 / math.sqrt(d))
            t(f"v.blk.{b}.attn_{x}.bias", d, scale=0.5)
        t(f"v.blk.{b}.attn_out.weight", d, d)
        t(f"v.blk.{b}.attn_out.bias", d, scale=0.5)
        t(f"v.blk.{b}.ln1.weight", d, scale=0.2, base=1.0)
        t(f"v.blk.{b}.ln1.bias", d, scale=0.2)
        t(f"v.blk.{b}.ffn_up.weight", ff, d)      # fc1: d -> ff (current naming)
        t(f"v.blk.{b}.ffn_up.bias", ff, scale=0.5)
        t(f"v.blk.{b}.ffn_down.weight", d, ff)    # fc2
        t(f"v.blk.{b}.ffn_down.bias", d, scale=0.5)
        t(f"v.blk.{b}.ln2.weight", d, scale=0.2, base=1.0)
        t(f"v.blk.{b}.ln2.bias", d, scale=0.2)
    t("mm.0.weight", hid, d)
    t("mm.0.bias", hid, scale=0.5)
    t("mm.2.weight", out, hid)
    t("mm.2.bias", out, scale=0.5)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)
    return W, dict(d=d, L=L, H=H, S=S, P=P)


def stats_forward(W, cfg, pixels):
    """The unpruned tower's statistics encode-image --stats exports: the last
    block's keys (k projection with its bias) of the patches, and per block
    the attention each patch key receives, mean over heads and all queries
    (the class token's included)."""
    d, L, H, P = cfg["d"], cfg["L"], cfg["H"], cfg["P"]
    hd = d // H
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    patches = torch.nn.functional.conv2d(T(pixels)[None], T(W["v.patch_embd.weight"]), stride=P)[0].flatten(1).t()
    x = torch.cat([T(W["v.class_embd"])[None], patches]) + T(W["v.position_embd.weight"])
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (d,), T(W[p + ".weight"]), T(W[p + ".bias"]), 1e-5)  # noqa: E731
    lin = lambda x, p: x @ T(W[p + ".weight"]).t() + T(W[p + ".bias"])  # noqa: E731
    x = ln(x, "v.pre_ln")
    recv = []
    for idx in range(L):
        b = f"v.blk.{idx}"
        h = ln(x, b + ".ln1")
        q, k, v = lin(h, b + ".attn_q"), lin(h, b + ".attn_k"), lin(h, b + ".attn_v")
        n = x.shape[0]
        qh, kh, vh = (z.view(n, H, hd).transpose(0, 1) for z in (q, k, v))
        attn = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(hd), dim=-1)
        recv.append(attn.mean(0).mean(0)[1:])
        x = x + lin((attn @ vh).transpose(0, 1).reshape(n, d), b + ".attn_out")
        h = lin(ln(x, b + ".ln2"), b + ".ffn_up")
        x = x + lin(h * torch.sigmoid(1.702 * h), b + ".ffn_down")
    return k[1:].numpy(), torch.stack(recv).numpy()


def flowcut_forward(W, cfg, pixels, target_num):
    """CLIP forward (transformers' CLIPVisionTransformer: embeddings, pre-LN,
    blocks; LLaVA's feature layer = the last block here, as weft runs every
    stored block) with FlowCut after each block; returns kept patch indices
    and the mlp projector's rows."""
    d, L, H, P = cfg["d"], cfg["L"], cfg["H"], cfg["P"]
    hd = d // H
    T = lambda a: torch.tensor(a, dtype=torch.float64)  # noqa: E731
    px = T(pixels)[None]
    patches = torch.nn.functional.conv2d(px, T(W["v.patch_embd.weight"]), stride=P)[0].flatten(1).t()
    x = torch.cat([T(W["v.class_embd"])[None], patches]) + T(W["v.position_embd.weight"])
    ln = lambda x, p: torch.nn.functional.layer_norm(x, (d,), T(W[p + ".weight"]), T(W[p + ".bias"]), 1e-5)  # noqa: E731
    lin = lambda x, p: x @ T(W[p + ".weight"]).t() + T(W[p + ".bias"])  # noqa: E731
    x = ln(x, "v.pre_ln")
    target = target_num + 1                 # apply_flowcut_config: target_tokens (patch select)
    select_layer = L - 1                    # the encoder's select_layer: the feature block's index
    keep_idx = torch.arange(x.shape[0])
    cum = None
    for idx in range(L):
        rpl = select_layer - idx - 1
        b = f"v.blk.{idx}"
        h = ln(x, b + ".ln1")
        q, k, v = lin(h, b + ".attn_q"), lin(h, b + ".attn_k"), lin(h, b + ".attn_v")
        n = x.shape[0]
        qh, kh, vh = (z.view(n, H, hd).transpose(0, 1) for z in (q, k, v))
        attn = torch.softmax(qh @ kh.transpose(1, 2) / math.sqrt(hd), dim=-1)       # [H, n, n]
        semantic_attn = torch.softmax(vh[:, :1] @ vh.transpose(1, 2), dim=-1)[:, 0]  # [H, n]
        value_metric = vh.mean(0)                                                    # [n, hd]
        o = (attn @ vh).transpose(0, 1).reshape(n, d)
        x = x + lin(o, b + ".attn_out")
        h = lin(ln(x, b + ".ln2"), b + ".ffn_up")
        h = h * torch.sigmoid(1.702 * h)
        x = x + lin(h, b + ".ffn_down")
        if x.shape[0] > target:
            cls_attention = attn[:, 0, 1:].mean(0)
            sem = semantic_attn.mean(0)[1:]
            vm = value_metric[1:]
            scores = (cls_attention / cls_attention.sum() + sem / sem.sum()) * vm.abs().sum(-1)
            cum = scores.clone() if cum is None else 0.5 * cum + 0.5 * scores
            if not rpl % 2:
                if rpl:
                    N = cls_attention.shape[-1]
                    prob = cls_attention / cls_attention.sum()
                    entropy = -(prob * prob.log()).sum()
                    er = entropy / math.log(N)
                    prune_num = int(torch.round((N - (target - 1)) / rpl ** 0.5 * (1 - er ** 2)))
                else:
                    prune_num = x.shape[0]
                tn = max(x.shape[0] - prune_num, target)
                ki = torch.topk(cum, tn - 1).indices.sort().values
                x = torch.cat([x[:1], x[1:][ki]])
                cum = cum[ki]
                keep_idx = torch.cat([keep_idx[:1], keep_idx[1:][ki]])
    feats = x[1:]
    y = lin(torch.nn.functional.gelu(lin(feats, "mm.0")), "mm.2")
    return (keep_idx[1:] - 1).tolist(), y.numpy()


def flowcut_cases():
    rng = np.random.default_rng(77)
    path = os.path.join(out_dir, "flowcut-mmproj.gguf")
    W, cfg = make_flowcut_mmproj(path, rng)
    pixels = rng.normal(size=(3, cfg["S"], cfg["S"])).astype(np.float32)
    frames = [frame("flowcut_input", {}, {"pixels": pixels})]
    keys, recv = stats_forward(W, cfg, pixels.astype(np.float64))
    frames.append(frame("stats_expect", {}, {"keys": keys.astype(np.float32), "attn_recv": recv.astype(np.float32)}))
    for keep in (4, 9, 20):
        kept, rows = flowcut_forward(W, cfg, pixels.astype(np.float64), keep)
        print("flowcut", keep, kept)
        frames.append(frame("flowcut_expect", {"weft.keep": keep},
                            {"kept": np.array(kept, np.int32), "embd": rows.astype(np.float32)}))
    with open(os.path.join(out_dir, "flowcut.wst"), "wb") as f:
        for fr in frames:
            f.write(fr)


if __name__ == "__main__":
    main()
    llm_cases()
    flowcut_cases()
