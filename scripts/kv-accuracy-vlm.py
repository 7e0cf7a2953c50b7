#!/usr/bin/env python3
r"""Image questions with compressed KV caches: the demo VLM (SmolLM2-135M-
Instruct + the demo mmproj, scripts/fetch-models --vlm) on the demo
benchmark's val split (its items.jsonl in the cache, from the vlm work's
gen-demo-bench.py), through weft's real pipeline (Python standard library
only; it just runs the tools):

    tokenize -m LLM --chat QUESTION | encode-image --mmproj MMPROJ IMAGE
      | prefill -m LLM --window-q 16 | kvcompress -m LLM --method M ...
      | decode -m LLM --greedy -n 8

Forms: the uncompressed cache; methods at a uniform ratio; the same with
--image-ratio (image rows compressed harder, text rows at a lower ratio);
KIVI.  Scoring as the demo benchmark's "exact" metric: the first word of
the answer, lower-cased, equals the expected one.  Prints a table (form,
right / total, mean rows kept as a fraction of F16 bytes).

    scripts/kv-accuracy-vlm.py [--items N] [--bench DIR] [--out FILE.tsv]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FORMS = [
    ("none", None),
    ("snapkv 0.5", ["--method", "snapkv:window=16", "--ratio", "0.5"]),
    ("snapkv 0.75", ["--method", "snapkv:window=16", "--ratio", "0.75"]),
    ("snapkv text 0.25, image 0.75", ["--method", "snapkv:window=16", "--ratio", "0.25", "--image-ratio", "0.75"]),
    ("snapkv text 0, image 0.9", ["--method", "snapkv:window=16", "--ratio", "0", "--image-ratio", "0.9"]),
    ("streamingllm 0.5", ["--method", "streamingllm", "--ratio", "0.5"]),
    ("streamingllm 0.75", ["--method", "streamingllm", "--ratio", "0.75"]),
    ("knorm 0.5", ["--method", "knorm", "--ratio", "0.5"]),
    ("knorm text 0, image 0.75", ["--method", "knorm", "--ratio", "0", "--image-ratio", "0.75"]),
    ("random 0.5", ["--method", "random", "--ratio", "0.5"]),
    ("adakv 0.5", ["--method", "adakv:window=16", "--ratio", "0.5"]),
    ("kivi4", ["--method", "kivi4:residual=32"]),
    ("kivi2", ["--method", "kivi2:residual=32"]),
]


def first_word(text):
    m = re.search(r"[a-z0-9]+", text.lower())
    return m.group(0) if m else ""


def main():
    cache = subprocess.check_output([os.path.join(HERE, "cache-dir")], text=True).strip()
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(cache, "demo-bench", "val"))
    ap.add_argument("--llm", default=os.path.join(cache, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    ap.add_argument("--mmproj", default=os.path.join(cache, "models", "weft-demo-mmproj.gguf"))
    ap.add_argument("--items", type=int, default=80)
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "kv-accuracy-vlm.tsv"))
    a = ap.parse_args()
    b = os.environ.get("WEFT_BIN", os.path.join(ROOT, "bin"))
    for f in (a.llm, a.mmproj, os.path.join(a.bench, "items.jsonl")):
        if not os.path.exists(f):
            sys.exit(f"kv-accuracy-vlm: {f} absent (scripts/fetch-models --vlm; the demo bench's gen-demo-bench.py)")
    items = [json.loads(l) for l in open(os.path.join(a.bench, "items.jsonl"))]
    items = [it for it in items if it["metric"] == "exact" and len(it["images"]) == 1][: a.items]
    right = {f: 0 for f, _ in FORMS}
    frac = {f: 0.0 for f, _ in FORMS}
    with tempfile.TemporaryDirectory() as tmp:
        c = os.path.join(tmp, "c.wst")
        for n, it in enumerate(items):
            q = it["question"]
            p1 = subprocess.run([os.path.join(b, "tokenize"), "-m", a.llm, "--chat", q], capture_output=True, check=True)
            p2 = subprocess.run([os.path.join(b, "encode-image"), "--mmproj", a.mmproj,
                                 os.path.join(a.bench, it["images"][0])], input=p1.stdout, capture_output=True,
                                check=True)
            with open(c, "wb") as f:
                subprocess.run([os.path.join(b, "prefill"), "-m", a.llm, "-t", "1", "--window-q", "16"],
                               input=p2.stdout, stdout=f, check=True)
            for form, args in FORMS:
                if args is None:
                    data, fr = open(c, "rb").read(), 1.0
                else:
                    r = subprocess.run([os.path.join(b, "kvcompress"), "-m", a.llm, "-v"] + args + [c],
                                       capture_output=True)
                    if r.returncode:
                        sys.exit(f"{form}: {r.stderr.decode().strip()}")
                    data = r.stdout
                    m = re.search(r", ([0-9.]+) of F16\)", r.stderr.decode())
                    fr = float(m.group(1)) if m else float("nan")
                out = subprocess.run([os.path.join(b, "decode"), "-m", a.llm, "-t", "1", "--greedy", "-n", "8"],
                                     input=data, capture_output=True, check=True).stdout.decode(errors="replace")
                right[form] += first_word(out) == it["answer"].lower()
                frac[form] += fr
            print(f"{n + 1}/{len(items)}", file=sys.stderr)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    with open(a.out, "w") as f:
        for form, _ in FORMS:
            line = f"{form}\t{right[form]}\t{len(items)}\t{frac[form] / len(items):.4f}"
            f.write(line + "\n")
            print(line)


if __name__ == "__main__":
    main()
