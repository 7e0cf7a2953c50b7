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
(scripts/kv-accuracy runs the pipeline and scores).  Run:
    python3 scripts/gen-kv-retrieval.py        (standard library only)
"""
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
out_dir = os.path.join(os.path.dirname(here), "tests", "data", "kvc")
FILLER = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again."
MATERIALS = ["silver", "wooden", "paper", "glass", "copper", "stone", "velvet", "iron"]
OBJECTS = ["violin", "compass", "lantern", "hammer", "teapot", "feather", "ribbon", "candle", "mirror", "basket"]


def passkey(rng, i):
    n = rng.randint(25, 75)
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
    return f"passkey-{i:02d}", key, " ".join(parts)


def facts(rng, i):
    mats = rng.sample(MATERIALS, 6)
    objs = rng.sample(OBJECTS, 6)
    n = 40
    slots = sorted(rng.sample(range(n), 6))
    parts = ["Read the notes and remember where each object is."]
    k = 0
    for j in range(n):
        parts.append(FILLER)
        if k < 6 and j == slots[k]:
            parts.append(f"Note: the {mats[k]} box holds a {objs[k]}.")
            k += 1
    q = rng.randrange(6)
    parts.append(f"Question: what does the {mats[q]} box hold? Answer: the {mats[q]} box holds a")
    return f"facts-{i:02d}", objs[q], " ".join(parts)


def main():
    os.makedirs(out_dir, exist_ok=True)
    for name, make, n in (("passkey", passkey, 16), ("facts", facts, 16)):
        rng = random.Random(13 if name == "passkey" else 29)
        path = os.path.join(out_dir, f"retrieval-{name}.tsv")
        with open(path, "w") as f:
            for i in range(n):
                iid, ans, prompt = make(rng, i)
                f.write(f"{iid}\t{ans}\t{prompt}\n")
        print(f"{path}: {n} items")


if __name__ == "__main__":
    main()
