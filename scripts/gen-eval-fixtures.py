#!/usr/bin/env python3
r"""Write eval-interleaved's small committed fixtures (tests/data/eval/):
images (tiny PNGs, written here with zlib: no imaging library), and one
small benchmark per input format plus bad inputs.  Deterministic; rerun
only to change them:

    python3 scripts/gen-eval-fixtures.py tests/data/eval

  img/red.png, wide.png, tall.png  24x24, 48x16, 16x40 RGB gradients
  img/corrupt.png                  a PNG cut short (decoding fails)
  weft.jsonl     weft's schema (man 5 weft-bench): mc by letter and by
                 option text, content parts, bare <image>, exact, vqa with
                 10 answers, anls, a text-only item, an unknown field
  mmmu.jsonl     MMMU-style: options as a Python repr string, image_N, an
                 image as an option, an open question
  muir.jsonl     MuirBench-style: image_list, <image> in the options too
  bench.tsv      VLMEvalKit TSV: base64 images, a row referring to another
                 row's image by index, a two-image list row, a broken
                 base64 cell, a hint
  bad.jsonl      one bad item per line (malformed JSON, count mismatches,
                 a missing and a corrupt image, a duplicate id, an answer
                 outside the options, an unknown metric) and good ones
  preds.jsonl    predictions for weft.jsonl (eval-interleaved score)
  short.jsonl    short prompts for the pipeline-equivalence test (each
                 fits the tiny models' 256-token context with 16 new tokens)
"""
import base64
import json
import os
import struct
import sys
import zlib


def png(w, h, fn):
    raw = b"".join(b"\0" + bytes(v for x in range(w) for v in fn(x, y)) for y in range(h))
    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xffffffff)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def jsonl(path, rows):
    with open(path, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False))
            f.write("\n")


def main(out):
    os.makedirs(os.path.join(out, "img"), exist_ok=True)
    images = {
        "red": png(24, 24, lambda x, y: (200 + x, 10 * (y % 3), 20)),
        "wide": png(48, 16, lambda x, y: (5 * x, 255 - 10 * y, 128)),
        "tall": png(16, 40, lambda x, y: (30, 6 * y, 15 * x)),
    }
    for k, v in images.items():
        with open(os.path.join(out, "img", k + ".png"), "wb") as f:
            f.write(v)
    with open(os.path.join(out, "img", "corrupt.png"), "wb") as f:
        f.write(images["red"][:60])

    ten = ["red"] * 6 + ["dark red"] * 3 + ["maroon"]
    jsonl(os.path.join(out, "weft.jsonl"), [
        {"id": "color-1", "category": "color", "question": "What colour is <image 1>?", "images": ["img/red.png"],
         "choices": ["red", "green", "blue"], "answer": "A", "metric": "mc", "wording": "seen"},
        {"id": "shape-1", "category": "shape",
         "content": ["Compare", {"image": "img/wide.png"}, "and", {"type": "image", "image": "img/tall.png"},
                     ". Which is wider?"],
         "choices": ["the first", "the second"], "answer": "the first"},
        {"id": "count-1", "category": "count", "question": "How many stripes? <image>", "images": ["img/tall.png"],
         "answer": "3"},
        {"id": "vqa-1", "category": "color", "question": "<image 1> What colour?", "images": ["img/red.png"],
         "answer": ten, "metric": "vqa"},
        {"id": "doc-1", "category": "doc", "question": "Read <image 1>.", "images": ["img/wide.png"],
         "answer": ["hello world", "hello"], "metric": "anls"},
        {"id": "text-1", "category": "text", "question": "What is 2+2?", "answer": "4"},
        {"id": "multi-1", "category": "color", "question": "<image> then <image>: same colour?",
         "images": ["img/red.png", "img/red.png"], "choices": ["yes", "no"], "answer": "A"},
    ])
    jsonl(os.path.join(out, "preds.jsonl"), [
        {"id": "color-1", "prediction": "The answer is (A) red."},
        {"id": "shape-1", "prediction": "B"},
        {"id": "count-1", "prediction": "3."},
        {"id": "vqa-1", "prediction": "Red"},
        {"id": "doc-1", "prediction": "helo world"},
        {"id": "text-1", "response": "four"},
        {"id": "multi-1", "prediction": "I cannot tell"},
    ])
    jsonl(os.path.join(out, "mmmu.jsonl"), [
        {"id": "validation_Art_1", "question": "Which colour is shown in <image 1>?",
         "options": "['red', \"green\", 'it\\'s blue']", "answer": "A", "image_1": "img/red.png",
         "question_type": "multiple-choice", "explanation": ""},
        {"question": "<image 1> is wider than which?", "options": ["<image 2>", "nothing"], "answer": "A",
         "image_1": "img/wide.png", "image_2": "img/tall.png"},
        {"id": "validation_Math_3", "question": "How many sides has <image 1>?", "answer": "['4', 'four']",
         "image_1": "img/red.png", "question_type": "open"},
    ])
    jsonl(os.path.join(out, "muir.jsonl"), [
        {"idx": "muir_1", "task": "Image-Text Matching", "question": "Which image matches <image>?",
         "options": ["<image>", "<image>"], "answer": "B",
         "image_list": ["img/red.png", "img/wide.png", "img/red.png"], "image_relation": "similar"},
        {"idx": "muir_2", "task": "Counting", "question": "How many images show red? <image> <image>",
         "options": ["one", "two"], "answer": "B", "image_list": ["img/red.png", "img/tall.png"]},
    ])
    b = {k: base64.b64encode(v).decode() for k, v in images.items()}
    rows = [
        ["index", "image", "question", "hint", "A", "B", "C", "answer", "category", "split"],
        ["1", b["red"], "What colour is it?", "Look closely.", "red", "green", "", "A", "color", "dev"],
        ["2", "1", "Is it red?", "", "yes", "no", "", "A", "color", "dev"],
        ["3", str([b["wide"], b["tall"]]), "Is <image 1> wider than <image 2>?", "", "yes", "no", "maybe", "A",
         "shape", "dev"],
        ["4", "!" * 80, "Broken image?", "", "yes", "no", "", "B", "bad", "dev"],
        ["5", b["tall"], "Say \"tall\"\tquoted", "", "", "", "", "tall", "text", "dev"],
    ]
    with open(os.path.join(out, "bench.tsv"), "w", encoding="utf-8") as f:
        for r in rows:
            f.write("\t".join('"' + c.replace('"', '""') + '"' if any(ch in c for ch in '"\t\n') else c
                              for c in r) + "\n")
    jsonl(os.path.join(out, "bad.jsonl"), [
        {"id": "ok-1", "question": "What colour is <image 1>?", "images": ["img/red.png"],
         "choices": ["red", "green"], "answer": "A"},
        '{"id": "broken", "question": "no closing brace"',
        {"id": "count", "question": "<image 1> and <image 2>", "images": ["img/red.png"], "answer": "x"},
        {"id": "unused", "question": "Only <image 1>", "images": ["img/red.png", "img/tall.png"], "answer": "x"},
        {"id": "missing", "question": "What is <image 1>?", "images": ["img/missing.png"], "answer": "x"},
        {"id": "corrupt", "question": "What is <image 1>?", "images": ["img/corrupt.png"], "answer": "x"},
        {"id": "ok-1", "question": "Again?", "answer": "x"},
        {"id": "letter", "question": "Pick", "choices": ["a", "b"], "answer": "D"},
        {"id": "metric", "question": "Score me", "answer": "x", "metric": "bleu"},
        "[1, 2, 3]",
        {"id": "ok-2", "question": "What is 1+1?", "answer": "2"},
    ])
    jsonl(os.path.join(out, "short.jsonl"), [
        {"id": "s1", "question": "Colour of <image 1>?", "images": ["img/red.png"], "answer": "red"},
        {"id": "s2", "question": "<image 1> or <image 2>?", "images": ["img/wide.png", "img/tall.png"],
         "answer": "wide"},
        {"id": "s3", "question": "Say hi.", "answer": "hi"},
    ])


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/eval")
