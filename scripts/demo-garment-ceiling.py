#!/usr/bin/env python3
r"""What each half of the demo VLM can do on the test split's 60 garment
items (Fashion-MNIST, four options named in the question, answered by
name), and why the items name their options instead of lettering them.

    demo-garment-ceiling.py [--bench data/demo-bench] [--llm M] [--mmproj P]
                            [--threads N] [--features DIR]

1. The LLM alone, told the answer: each garment question asked with
   lettered options (A. coat ...; the benchmark's wording before it named
   them), its image replaced by the sentence "The picture shows a <gold
   garment>.", run text-only through eval-interleaved on SmolLM2 (greedy,
   -n 8), and in three simpler letter formats.  Scored by the first
   standalone letter A-D of the reply (more lenient than the MMMU rule).
   This bounds what any projector can reach on lettered items with the LLM
   frozen: the letter has to come from the LLM.
2. The whole VLM: the benchmark's items as they are (options named,
   answered by name); the same questions lettered (A. coat ..., the MMMU
   rule); asked openly, "What garment is this? Answer with its name.",
   scored by exact match with the gold garment (10-way, no options); and
   the open question with the four option names scored by likelihood
   (eval-interleaved --mc-score likelihood, SEED-Bench-2's protocol:
   nothing generated).
3. The encoder's features alone (with --features, the training cache's
   feats-{train,val}-*.npy written by train-demo-projector.py): a ridge
   probe on the mean and max of the patch features of the Fashion-MNIST
   images of the training split, scored on those of the validation split,
   10-way and 4-way (three random distractors, seeded).

Needs bin/eval-interleaved (make) and the models (scripts/fetch-models
--vlm); part 3 needs numpy (scripts/venv).  Prints one line per figure.
"""
import argparse
import glob
import gzip
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
GARMENTS = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]


def cache_dir():
    return subprocess.check_output([os.path.join(HERE, "cache-dir")], text=True).strip()


def run(items, bench_dir, args, mmproj, extra=()):
    """eval-interleaved run over items (written next to the benchmark so
    image paths resolve); the records."""
    fd, path = tempfile.mkstemp(suffix=".jsonl", prefix=".ceiling-", dir=bench_dir)
    out = path + ".run"
    try:
        with os.fdopen(fd, "w") as f:
            for it in items:
                f.write(json.dumps(it) + "\n")
        cmd = [os.path.join(ROOT, "bin", "eval-interleaved"), "run", "-m", args.llm, "-n", "8",
               "-t", str(args.threads), path, "-o", out]
        if mmproj:
            cmd[4:4] = ["--mmproj", mmproj]
        cmd[4:4] = list(extra)
        rc = subprocess.run(cmd, stdout=subprocess.DEVNULL).returncode  # the summary
        if rc not in (0, 3):
            sys.exit("demo-garment-ceiling: eval-interleaved failed (status %d)" % rc)
        with open(out) as f:
            return [json.loads(l) for l in f][1:]
    finally:
        for p in (path, out):
            if os.path.exists(p):
                os.unlink(p)


def letter_score(recs, items):
    gold = {it["id"]: it["answer"] for it in items}
    right, picks = 0, {}
    for r in recs:
        m = re.search(r"\b([ABCD])\b", r.get("prediction") or "")
        p = m.group(1) if m else "-"
        picks[p] = picks.get(p, 0) + 1
        right += p == gold[r["id"]]
    return right, len(recs), picks


def name_score(recs, items):
    gold = {it["id"]: it["gold"] for it in items}
    right = sum((r.get("prediction") or "").strip().strip(".").lower() == gold[r["id"]].lower() for r in recs)
    return right, len(recs)


STEM = re.compile(r"\n(Options:|Is it |Choose one:|Which one:)")


def lettered(it):
    """The item's question with its options lettered instead of named."""
    return STEM.split(it["question"])[0] + "\n" + opts(it["choices"], "%s. %s") + "\nAnswer with the option's letter."


def opts(ch, fmt):
    return "\n".join(fmt % (chr(65 + i), c) for i, c in enumerate(ch))


def text_formats():
    """name -> function(question, gold, choices) giving the text-only question"""
    return {
        "lettered items' wording": lambda q, g, ch: q.replace("<image 1>", "The picture shows a %s." % g),
        "(A) options": lambda q, g, ch: "The picture shows a %s.\nWhat kind of clothing is shown?\n%s\n"
                                         "Answer with the letter." % (g, opts(ch, "(%s) %s")),
        "options first": lambda q, g, ch: "Options:\n%s\nThe picture shows a %s. Which option is it? "
                                           "Reply with one letter." % (opts(ch, "%s. %s"), g),
        "which letter is X": lambda q, g, ch: "%s\nWhich letter is %s?" % (opts(ch, "%s: %s"), g),
    }


def probe(fdir):
    import numpy as np
    lab_path = os.path.join(os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist"),
                            "train-labels-idx1-ubyte.gz")
    with gzip.open(lab_path) as f:
        labels = np.frombuffer(f.read()[8:], np.uint8)

    def load(split):
        npys = sorted(glob.glob(os.path.join(fdir, "feats-%s-*.npy" % split)), key=os.path.getsize)
        if not npys:
            return None, None
        F = np.load(npys[-1], mmap_mode="r")
        with open(npys[-1][:-4] + ".json") as f:
            idx = json.load(f)
        X, Y = [], []
        for p, i in idx.items():
            m = re.match(r"img/fmnist-train-(\d+)\.png$", p)
            if m:
                x = np.asarray(F[i], np.float32)
                X.append(np.concatenate([x.mean(0), x.max(0)]))
                Y.append(labels[int(m.group(1))])
        return np.array(X), np.array(Y)

    Xtr, Ytr = load("train")
    Xva, Yva = load("val")
    if Xtr is None or Xva is None or not len(Xtr) or not len(Xva):
        print("3. encoder probe: no cached features in %s (train-demo-projector.py writes them): skipped" % fdir)
        return
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    Xtr, Xva = (Xtr - mu) / sd, (Xva - mu) / sd
    W = np.linalg.solve(Xtr.T @ Xtr + 100.0 * np.eye(Xtr.shape[1]), Xtr.T @ np.eye(10)[Ytr])
    S = Xva @ W
    rng = np.random.default_rng(0)
    four = 0
    for s, y in zip(S, Yva):
        o = np.r_[y, rng.choice([k for k in range(10) if k != y], 3, replace=False)]
        four += o[s[o].argmax()] == y
    print("3. encoder features, ridge probe (%d train / %d val images): 10-way %.1f %%, 4-way %.1f %%"
          % (len(Ytr), len(Yva), 100 * (S.argmax(1) == Yva).mean(), 100 * four / len(Yva)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bench", default=os.path.join(ROOT, "data", "demo-bench"))
    ap.add_argument("--llm", default=None)
    ap.add_argument("--mmproj", default=None)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--features", default=None, help="the training cache (default: CACHE/demo-train)")
    args = ap.parse_args()
    cdir = cache_dir()
    args.llm = args.llm or os.path.join(cdir, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    args.mmproj = args.mmproj or os.path.join(cdir, "models", "weft-demo-mmproj.gguf")
    for p in (args.llm, args.mmproj):
        if not os.path.exists(p):
            sys.exit("demo-garment-ceiling: %s not found (scripts/fetch-models --vlm)" % p)
    with open(os.path.join(args.bench, "items.jsonl")) as f:
        items = [json.loads(l) for l in f]
    garment = [it for it in items if it["category"] == "garment"]
    for it in garment:
        it["gold"] = it["answer"]
        it["letter"] = "ABCD"[it["choices"].index(it["gold"])]
    print("%d garment test items (%s)" % (len(garment), os.path.join(args.bench, "items.jsonl")))

    bench_dir = os.path.abspath(args.bench)
    for name, fmt in text_formats().items():
        q = [{"id": it["id"], "question": fmt(lettered(it), it["gold"], it["choices"]),
              "choices": it["choices"], "answer": it["letter"]} for it in garment]
        right, n, picks = letter_score(run(q, bench_dir, args, None), q)
        print("1. LLM alone, told the answer, %-24s %2d/%d = %5.1f %%  (letters picked: %s)"
              % (name + ":", right, n, 100 * right / n,
                 ", ".join("%s %d" % kv for kv in sorted(picks.items()))))
    def vlm(name, right, n):
        print("2. the VLM, %-28s %2d/%d = %5.1f %%" % (name + ":", right, n, 100 * right / n))

    def scored(recs):
        return sum(r["score"] == 1.0 for r in recs), len(recs)

    vlm("the benchmark's items", *scored(run(garment, bench_dir, args, args.mmproj)))
    ql = [{"id": it["id"], "images": it["images"], "choices": it["choices"], "answer": it["letter"],
           "question": lettered(it)} for it in garment]
    vlm("options lettered (MMMU rule)", *scored(run(ql, bench_dir, args, args.mmproj)))
    qi = [{"id": it["id"], "images": it["images"], "metric": "exact", "answer": it["gold"], "gold": it["gold"],
           "question": "<image 1>\nWhat garment is this? Answer with its name."} for it in garment]
    vlm("open, 10-way", *name_score(run(qi, bench_dir, args, args.mmproj), qi))
    # the four options' names scored by likelihood after the open question
    # (SEED-Bench-2's protocol: no letters, nothing generated)
    ql = [{"id": it["id"], "images": it["images"], "choices": it["choices"], "answer": it["letter"],
           "question": "<image 1>\nWhat garment is this? Answer with its name."} for it in garment]
    vlm("open, options by likelihood", *scored(run(ql, bench_dir, args, args.mmproj, ("--mc-score", "likelihood"))))
    try:
        probe(args.features or os.path.join(cdir, "demo-train"))
    except ImportError:
        print("3. encoder probe: needs numpy (scripts/venv): skipped")


if __name__ == "__main__":
    main()
