#!/usr/bin/env python3
"""gen-image-fixtures.py - reference outputs of the Hugging Face image
processors for the shared real images, for tests/unit/test_image.c.

    scripts/venv/bin/python scripts/gen-image-fixtures.py [SHARED_DATA] > tests/data/image/hf-preprocess.txt
    scripts/gen-image-fixtures.py --compare DUMP_DIR [SHARED_DATA]

Pipelines (transformers' PIL backends, which resample with Pillow):
  llava15  LLaVA-1.5: Image.open(f).convert("RGB") (alpha dropped, no EXIF
           transpose), expand2square with int(mean*255), then
           CLIPImageProcessorPil(size shortest_edge 336, crop 336, bicubic).
  smolvlm  Idefics3ImageProcessorPil with HuggingFaceTB/SmolVLM-256M-Instruct's
           preprocessor_config (size longest_edge 2048, max_image_size 512,
           resample 1 = LANCZOS, mean = std = 0.5) on Image.open(f) as is
           (its convert_to_rgb composites alpha onto white).

Output, one block per (pipeline, image):
  image PIPE RELPATH N H W ROWS COLS CRC32 MEAN
  s INDEX VALUE      (SAMPLES values at fixed flat indexes, %.9g)
CRC32 (zlib) is over the float32 tensor's little-endian bytes, so a bit-exact
implementation matches it; the samples measure the error otherwise.

--compare reads DUMP_DIR/PIPE.BASENAME.f32 (raw float32, as written by
test_image with WEFT_IMAGE_DUMP=DUMP_DIR) and prints the max abs difference
of every tensor against the processors' full output.
"""
import glob
import os
import sys
import zlib

import numpy as np
from PIL import Image
from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil
from transformers.models.idefics3.image_processing_pil_idefics3 import Idefics3ImageProcessorPil

SAMPLES = 96


def expand2square(img, bg):
    """LLaVA's llava/mm_utils.py expand2square."""
    w, h = img.size
    if w == h:
        return img
    s = max(w, h)
    out = Image.new(img.mode, (s, s), bg)
    out.paste(img, (0, (w - h) // 2) if w > h else ((h - w) // 2, 0))
    return out


def llava15(path):
    proc = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                 resample=3, image_mean=OPENAI_CLIP_MEAN, image_std=OPENAI_CLIP_STD)
    img = Image.open(path).convert("RGB")
    img = expand2square(img, tuple(int(x * 255) for x in OPENAI_CLIP_MEAN))
    px = np.asarray(proc(img, return_tensors="np")["pixel_values"], dtype=np.float32)
    return px, 0, 0


def smolvlm(path):
    proc = Idefics3ImageProcessorPil(size={"longest_edge": 2048}, max_image_size={"longest_edge": 512},
                                     resample=1, image_mean=[0.5] * 3, image_std=[0.5] * 3,
                                     do_image_splitting=True)
    out = proc(Image.open(path), return_tensors="np", return_row_col_info=True)
    px = np.asarray(out["pixel_values"], dtype=np.float32)[0]  # (n, 3, 512, 512)
    return px, out["rows"][0][0], out["cols"][0][0]


PIPES = {"llava15": llava15, "smolvlm": smolvlm}


def images(shared):
    out = [os.path.join(shared, "images", "apple.jpg")]
    out += sorted(glob.glob(os.path.join(shared, "mmmu-pro-sample", "images", "*.png")))
    return out


def main():
    args = sys.argv[1:]
    compare = None
    if args[:1] == ["--compare"]:
        compare = args[1]
        args = args[2:]
    shared = args[0] if args else os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")
    worst = 0.0
    for path in images(shared):
        rel = os.path.relpath(path, shared)
        for name, fn in PIPES.items():
            px, rows, cols = fn(path)
            flat = px.reshape(-1)
            if compare:
                f = os.path.join(compare, "%s.%s.f32" % (name, os.path.basename(path)))
                got = np.fromfile(f, dtype="<f4")
                if got.size != flat.size:
                    print("%s %s: size %d, expected %d" % (name, rel, got.size, flat.size))
                    worst = float("inf")
                    continue
                d = float(np.abs(got - flat).max())
                worst = max(worst, d)
                print("%s %s: max abs diff %.3g (%d of %d values differ)" % (name, rel, d, int((got != flat).sum()), flat.size))
                continue
            n, c, h, w = px.shape
            print("image %s %s %d %d %d %d %d %08x %.9g" % (name, rel, n, h, w, rows, cols,
                                                             zlib.crc32(flat.astype("<f4").tobytes()), float(flat.astype(np.float64).mean())))
            idx = np.linspace(0, flat.size - 1, SAMPLES).astype(np.int64)
            idx = np.unique((idx + (np.arange(SAMPLES) * 7919) % 1021) % flat.size)
            for i in idx:
                print("s %d %.9g" % (i, flat[i]))
    if compare:
        print("worst max abs diff: %.3g" % worst)


if __name__ == "__main__":
    main()
