#!/usr/bin/env python3
"""Write the mmproj the pruning benchmark (tests/bench/prune.bench.sh) pairs
with the ~1B Llama-shaped bench LLM, into the cache (never the repo):

  bench-models/vision/smollm2-135m-smolvlm-grid-q4_1.gguf
      make-vision-bench-models.py's SmolLM2-135M text model (control tokens
      7, 8 renamed <fake_token_around_image>, <global-img>) with its last 16
      tokens renamed <row_R_col_C> (R, C = 1..4), the pieces SmolVLM's
      processor writes around a 4 x 4 grid of tiles, so prefill takes the
      SigLIP bench encoder's 17 tiles of a 512-px image (the idefics3
      preprocessor resizes it to 2048 first).
  bench-models/vision/clip-l14-336-mlp2048-mmproj-f16.gguf
      the CLIP-L/14-336 tower of make-vision-bench-models.py's
      clip-l14-336-mlp-mmproj-f16.gguf (every v.* tensor and clip.* key as
      llama.cpp's legacy converter wrote them) with a LLaVA-1.5 mlp
      projector sized to bench-models/llama-1b-random-q4_1.gguf's width:
      mm.0 1024 -> 2048, GELU, mm.2 2048 -> 2048 (LLaVA-1.5-7B's is
      1024 -> 4096 -> 4096), random N(0, 0.02) weights in the source file's
      types.  576 tokens per image, as LLaVA-1.5.

Needs the source mmproj (run make-vision-bench-models.py first) and gguf-py
(from the llama.cpp source scripts/build-peer unpacks).  An existing output
is kept.

Run:  $(scripts/venv)/bin/python scripts/make-prune-bench-models.py
"""
import os
import subprocess
import sys

import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
cache = subprocess.check_output([os.path.join(here, "cache-dir")], text=True).strip()
ver = os.environ.get("LLAMA_CPP_PYTHON_VERSION", "0.3.36")
sys.path.insert(0, os.path.join(cache, "src", f"llama_cpp_python-{ver}", "vendor", "llama.cpp", "gguf-py"))
import gguf  # noqa: E402

vdir = os.path.join(cache, "bench-models", "vision")
src = os.path.join(vdir, "clip-l14-336-mlp-mmproj-f16.gguf")
dst = os.path.join(vdir, "clip-l14-336-mlp2048-mmproj-f16.gguf")
WIDTH = 2048



def make_grid_text_model(path):
    from gguf.scripts.gguf_new_metadata import MetadataDetails, copy_with_new_metadata
    srcm = os.path.join(vdir, "smollm2-135m-smolvlm-tokens-q4_1.gguf")
    if not os.path.exists(srcm):
        sys.exit(f"make-prune-bench-models: {srcm} absent; run scripts/make-vision-bench-models.py first")
    r = gguf.GGUFReader(srcm)
    toks = r.get_field("tokenizer.ggml.tokens").contents()
    n = len(toks)
    for i, (rr, cc) in enumerate((rr, cc) for rr in range(1, 5) for cc in range(1, 5)):
        toks[n - 16 + i] = f"<row_{rr}_col_{cc}>"
    w = gguf.GGUFWriter(path + ".tmp", arch=r.get_field("general.architecture").contents())
    copy_with_new_metadata(r, w, {
        "tokenizer.ggml.tokens": MetadataDetails(gguf.GGUFValueType.ARRAY, toks, sub_type=gguf.GGUFValueType.STRING),
        "general.name": MetadataDetails(gguf.GGUFValueType.STRING, "SmolLM2 135M SmolVLM grid tokens"),
    }, [])
    os.replace(path + ".tmp", path)


grid = os.path.join(vdir, "smollm2-135m-smolvlm-grid-q4_1.gguf")
if not os.path.exists(grid):
    make_grid_text_model(grid)
print(grid, os.path.getsize(grid))
if os.path.exists(dst):
    print(dst, os.path.getsize(dst))
    sys.exit(0)
if not os.path.exists(src):
    sys.exit(f"make-prune-bench-models: {src} absent; run scripts/make-vision-bench-models.py first")

r = gguf.GGUFReader(src)
w = gguf.GGUFWriter(dst + ".tmp", arch="clip")
for f in r.fields.values():
    if f.name.startswith("GGUF.") or f.name == "general.architecture":
        continue
    t = f.types[0]
    if t == gguf.GGUFValueType.ARRAY:
        w.add_key_value(f.name, f.contents(), t, sub_type=f.types[-1])
    else:
        w.add_key_value(f.name, f.contents(), t)
rng = np.random.default_rng(2048)
for t in r.tensors:
    shape = [int(x) for x in reversed(t.shape)]  # numpy order
    if t.name.startswith("mm."):
        if t.name == "mm.0.weight":
            shape = [WIDTH, shape[1]]
        elif t.name == "mm.2.weight":
            shape = [WIDTH, WIDTH]
        else:
            shape = [WIDTH]
        dt = np.float16 if t.tensor_type == gguf.GGMLQuantizationType.F16 else np.float32
        w.add_tensor(t.name, (rng.normal(size=shape) * 0.02).astype(dt))
    else:
        w.add_tensor(t.name, np.asarray(t.data).reshape(shape), raw_dtype=t.tensor_type)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()
os.replace(dst + ".tmp", dst)
print(dst, os.path.getsize(dst))
