#!/usr/bin/env python3
"""make-seeds.py - tiny mmproj GGUFs as fuzzing seeds for fuzz_mmproj
(written next to this script; committed, a few KB each).

    $(scripts/venv)/bin/python tests/fuzz/seeds/mmproj/make-seeds.py

clip-mlp.gguf       CLIP + LLaVA mlp projector, as llama.cpp's legacy
                    converter names it (class token, pre-LN, fc1 stored as
                    ffn_down), F16 matrices
idefics3.gguf       SigLIP + idefics3 connector as convert_hf_to_gguf.py
                    writes it (post-LN, patch bias, scale factor 2), F32
feature-layer.gguf  CLIP mlp with clip.vision.feature_layer [1]
Shapes: embedding 8, feed-forward 16, 2 blocks, 2 heads, 8-pixel images of
4-pixel patches; random weights (seed 0)."""
import os

import numpy as np
import gguf

D, FF, L, H, IMG, P = 8, 16, 2, 2, 8, 4
rng = np.random.default_rng(0)


def r(*shape, dt=np.float32):
    return (rng.standard_normal(shape) * 0.5).astype(dt)


def write(path, proj, feature_layer=None):
    w = gguf.GGUFWriter(path, "clip")
    w.add_bool("clip.has_vision_encoder", True)
    w.add_string("clip.projector_type", proj)
    for k, v in [("image_size", IMG), ("patch_size", P), ("embedding_length", D),
                 ("feed_forward_length", FF), ("block_count", L), ("attention.head_count", H)]:
        w.add_uint32("clip.vision." + k, v)
    w.add_float32("clip.vision.attention.layer_norm_epsilon", 1e-5)
    w.add_array("clip.vision.image_mean", [0.5, 0.5, 0.5])
    w.add_array("clip.vision.image_std", [0.5, 0.5, 0.5])
    w.add_bool("clip.use_gelu", proj == "idefics3")
    if feature_layer is not None:
        w.add_array("clip.vision.feature_layer", [feature_layer])
    mat = np.float16 if proj == "mlp" else np.float32
    n_pos = (IMG // P) ** 2 + (1 if proj == "mlp" else 0)
    w.add_tensor("v.patch_embd.weight", r(D, 3, P, P, dt=np.float16))
    w.add_tensor("v.position_embd.weight", r(n_pos, D))
    if proj == "mlp":
        w.add_tensor("v.class_embd", r(D))
        w.add_tensor("v.pre_ln.weight", r(D))
        w.add_tensor("v.pre_ln.bias", r(D))
        up, down = "ffn_down", "ffn_up"  # the legacy converter's names
    else:
        w.add_tensor("v.patch_embd.bias", r(D))
        w.add_tensor("v.post_ln.weight", r(D))
        w.add_tensor("v.post_ln.bias", r(D))
        up, down = "ffn_up", "ffn_down"
    for i in range(L):
        for n in ("attn_q", "attn_k", "attn_v", "attn_out"):
            w.add_tensor(f"v.blk.{i}.{n}.weight", r(D, D, dt=mat))
            w.add_tensor(f"v.blk.{i}.{n}.bias", r(D))
        for n in ("ln1", "ln2"):
            w.add_tensor(f"v.blk.{i}.{n}.weight", r(D))
            w.add_tensor(f"v.blk.{i}.{n}.bias", r(D))
        w.add_tensor(f"v.blk.{i}.{up}.weight", r(FF, D, dt=mat))
        w.add_tensor(f"v.blk.{i}.{up}.bias", r(FF))
        w.add_tensor(f"v.blk.{i}.{down}.weight", r(D, FF, dt=mat))
        w.add_tensor(f"v.blk.{i}.{down}.bias", r(D))
    if proj == "mlp":
        w.add_tensor("mm.0.weight", r(12, D, dt=mat))
        w.add_tensor("mm.0.bias", r(12))
        w.add_tensor("mm.2.weight", r(6, 12, dt=mat))
        w.add_tensor("mm.2.bias", r(6))
    else:
        w.add_uint32("clip.vision.projector.scale_factor", 2)
        w.add_uint32("clip.vision.preproc_image_size", 16)
        w.add_tensor("mm.model.fc.weight", r(6, D * 4, dt=mat))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


here = os.path.dirname(os.path.abspath(__file__))
write(os.path.join(here, "clip-mlp.gguf"), "mlp")
write(os.path.join(here, "idefics3.gguf"), "idefics3")
write(os.path.join(here, "feature-layer.gguf"), "mlp", feature_layer=1)
