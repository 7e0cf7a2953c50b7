#!/usr/bin/env python3
"""Generate the KV-compression retrieval sets (tests/data/kvc/retrieval-*.tsv):
plain-completion prompts for SmolLM2-135M-Instruct (its chat template makes
this small model answer in prose; a completion prompt lets it retrieve),
deterministic (seeded), one item per line: id <TAB> answer <TAB> prompt.

  passkey  a 5-digit pass key hidden at a random depth in 600-1700 tokens of
           the classic filler ("The grass is green. ..."), asked for at the
           end ("What is the pass key? The pass key is").
  facts    six notes "the <material> box holds a <object>." at random depths
           in about 1000 tokens of filler; one of them asked for at the end
           ("... Answer: the <material> box holds a"): multi-fact retrieval.

The answer is correct when the greedy continuation contains it
(scripts/kv-accuracy runs the pipeline and scores).  Each set is also
written in weft-bench(5) JSONL (tests/data/kvc/retrieval-*.jsonl: id,
question = the prompt, answer, category = the set, metric exact) for
eval-interleaved run --no-chat --stop . (the continuation up to its first
full stop is the answer: " 12345." / " violin."), which
scripts/kv-accuracy runs.  Run:
    python3 scripts/gen-kv-retrieval.py        (standard library only)
"""
import json
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(os.path.dirname(here), "tests", "data", "kvc")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
MATERIALS = ["silver", "wooden", "paper", "glass", "copper", "stone", "velvet", "iron"]
OBJECTS = ["violin", "compass", "lantern", "hammer", "teapot", "feather", "ribbon", "candle", "mirror", "basket"]


def passkey(rng, i, lo=25, hi=75):
    n = rng.randint(lo, hi)
    depth = rng.randint(0, n)
    key = str(rng.randint(10000, 99999))
    parts = ["There is an important pass key hidden inside a lot of irrelevant text. "
             "Find it and memorize it. I will quiz you about it."]
    for j in range(n + 1):
        if j == depth:
            parts.append(f"The pass key is {key}. Remember it. {key} is the pass key.")
        if j < n:
            parts.append(FILLER)
    parts.append("What is the pass key? The pass key is")
    return f"passkey-{i:02d}" if hi == 75 else f"passkey-s{i:02d}", key, " ".join(parts)


def facts(rng, i, n=40, k_notes=6):
    mats = rng.sample(MATERIALS, k_notes)
    objs = rng.sample(OBJECTS, k_notes)
    slots = sorted(rng.sample(range(n), k_notes))
    parts = ["Read the notes and remember where each object is."]
    k = 0
    for j in range(n):
        parts.append(FILLER)
        if k < k_notes and j == slots[k]:
            parts.append(f"Note: the {mats[k]} box holds a {objs[k]}.")
            k += 1
    q = rng.randrange(k_notes)
    parts.append(f"Question: what does the {mats[q]} box hold? Answer: the {mats[q]} box holds a")
    return f"facts-{i:02d}" if n == 40 else f"facts-s{i:02d}", objs[q], " ".join(parts)


def main():
    os.makedirs(out_dir, exist_ok=True)
    # the short sets (150-500 tokens, facts with 3 notes; other seeds): the eval-interleaved
    # sweep of scripts/kv-accuracy, affordable on a small machine
    sets = (("passkey", passkey, 16, 13), ("facts", facts, 16, 29),
            ("passkey-short", lambda rng, i: passkey(rng, i, 6, 18), 8, 113),
            ("facts-short", lambda rng, i: facts(rng, i, 16, 3), 8, 129))
    short = []
    for name, make, n, seed in sets:
        rng = random.Random(seed)
        path = os.path.join(out_dir, f"retrieval-{name}.tsv")
        items = [make(rng, i) for i in range(n)]
        lines = [json.dumps({"id": iid, "question": prompt, "answer": ans, "category": name.split("-")[0],
                             "metric": "exact"}) + "\n" for iid, ans, prompt in items]
        if name.endswith("-short"):  # both short sets in one file: retrieval-short.jsonl
            short += lines
            continue
        with open(path, "w") as f:
            for iid, ans, prompt in items:
                f.write(f"{iid}\t{ans}\t{prompt}\n")
        with open(path[:-4] + ".jsonl", "w") as f:
            f.writelines(lines)
        print(f"{path}: {n} items (and .jsonl)")
    path = os.path.join(out_dir, "retrieval-short.jsonl")
    with open(path, "w") as f:
        f.writelines(short)
    print(f"{path}: {len(short)} items")


if __name__ == "__main__":
    main()
