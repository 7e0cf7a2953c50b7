#!/usr/bin/env python3
r"""Accuracy of a VLM on the demo benchmark through weft's real pipeline
(Python standard library only; it just runs the tools):

    tokenize -m LLM --chat QUESTION | encode-image --mmproj MMPROJ IMAGES...
      | prefill -m LLM | decode -m LLM --greedy -n 8

    eval-demo-bench.py [--bench data/demo-bench] [--llm M] [--mmproj P]
                       [--limit N] [--every K] [--answers FILE.jsonl] [--peer DIR]
                       [--questions data/demo/questions.tsv]

Scoring (data/README.md): "exact" - the answer's first words (lower-cased,
letters, digits and hyphens; as many words as the expected answer has:
"ankle boot", "T-shirt") equal the expected answer; "mc" - the
first letter A-D standing alone at the start equals the expected letter.
Prints accuracy per category (and for questions worded as no training item
was), the mean time per stage, and with --answers writes every item's
output.  With --peer DIR (llama.cpp's bin directory) the same questions go
to llama-mtmd-cli too (greedy, -n 8, its own chat formatting: ChatML
without a system message, as weft's tokenize --chat renders it; image N
for <image N>): accuracy per category and how often the two engines give
identical text and the same first word / letter.  --every K takes every
K-th item (the test split cycles through its 10 categories: a K prime to
10 samples all of them, K = 10 only colour); --questions TSV asks the demo's
questions (images<TAB>expected<TAB>question, images relative to the TSV's
directory; an expected answer A-D is a letter, scored mc) instead.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def first_words(text, n=1):
    return " ".join(re.findall(r"[a-z0-9][a-z0-9-]*", text.lower())[:n])


def extract(item, text):
    """The answer a reply gives: its option letter (mc) or first words."""
    if item["metric"] == "mc":
        m = re.match(r"^\W*([A-Z])(?![a-z])", text.strip())
        return m.group(1) if m else ""
    return first_words(text, len(item["answer"].split()))


def score(item, text):
    return extract(item, text) == (item["answer"] if item["metric"] == "mc" else item["answer"].lower())


def cache_dir():
    return subprocess.check_output([os.path.join(HERE, "cache-dir")], text=True).strip()


def run_weft(item, bench, llm, mmproj, tmp, system=None, threads=None):
    b = os.path.join(ROOT, "bin")
    th = ["-t", str(threads)] if threads else []
    times = {}
    t0 = time.time()
    cmd = [os.path.join(b, "tokenize"), "-m", llm, "--chat"] + (["--system", system] if system else []) + \
        ["-o", tmp + ".tok", item["question"]]
    subprocess.run(cmd, check=True)
    times["tokenize"] = time.time() - t0
    t0 = time.time()
    subprocess.run([os.path.join(b, "encode-image"), "--mmproj", mmproj, "-i", tmp + ".tok", "-o", tmp + ".emb"] + th +
                   [os.path.join(bench, p) for p in item["images"]], check=True)
    times["encode-image"] = time.time() - t0
    t0 = time.time()
    subprocess.run([os.path.join(b, "prefill"), "-m", llm, "-o", tmp + ".kv"] + th + [tmp + ".emb"], check=True)
    times["prefill"] = time.time() - t0
    t0 = time.time()
    out = subprocess.run([os.path.join(b, "decode"), "-m", llm, "--greedy", "-n", "8"] + th + [tmp + ".kv"],
                         check=True, capture_output=True, text=True).stdout
    times["decode"] = time.time() - t0
    return out, times


def run_peer(item, bench, llm, mmproj, peer):
    """llama-mtmd-cli, greedy, 8 tokens; images replace <image N> markers."""
    q = item["question"]
    # llama-mtmd-cli: one marker per --image, in order of the --image options
    order = [int(n) for n in re.findall(r"<image (\d+)>", q)]
    q2 = re.sub(r"<image \d+>", "<__media__>", q)
    imgs = []
    for n in order:
        imgs += ["--image", os.path.join(bench, item["images"][n - 1])]
    cmd = [os.path.join(peer, "llama-mtmd-cli"), "-m", llm, "--mmproj", mmproj, "-p", q2, "--temp", "0",
           "-n", "8", "--no-warmup", "-t", "2"] + imgs
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        return "<error: %s>" % r.stderr.strip().splitlines()[-1:]
    return r.stdout.strip()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default=os.path.join(ROOT, "data", "demo-bench"))
    ap.add_argument("--llm", default=None)
    ap.add_argument("--mmproj", default=None)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--answers", default=None)
    ap.add_argument("--peer", default=None)
    ap.add_argument("--categories", default=None)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--questions", default=None)
    a = ap.parse_args()
    c = cache_dir()
    llm = a.llm or os.path.join(c, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    mmproj = a.mmproj or os.path.join(c, "models", "weft-demo-mmproj.gguf")
    for f in (llm, mmproj):
        if not os.path.exists(f):
            sys.exit("eval-demo-bench: %s absent (scripts/fetch-models --vlm)" % f)
    if a.questions:
        a.bench = os.path.dirname(os.path.abspath(a.questions))
        items = []
        with open(a.questions) as f:
            for line in f:
                if line.startswith("#") or not line.strip():
                    continue
                imgs, want, q = line.rstrip("\n").split("\t")
                items.append({"id": "demo-%d" % (len(items) + 1), "category": "demo", "question": q,
                              "images": imgs.split(","), "answer": want,
                              "metric": "mc" if re.fullmatch("[A-D]", want) else "exact"})
    else:
        with open(os.path.join(a.bench, "items.jsonl")) as f:
            items = [json.loads(x) for x in f if x.strip()]
    items = items[::a.every]
    if a.categories:
        keep = set(a.categories.split(","))
        items = [it for it in items if it["category"] in keep]
    if a.limit:
        items = items[:a.limit]
    tmpd = tempfile.mkdtemp(prefix="weft-eval-")
    tmp = os.path.join(tmpd, "x")
    stats, tsum, rows = {}, {}, []
    agree = agree_ans = n_peer = 0
    t_all = time.time()
    for i, it in enumerate(items):
        out, times = run_weft(it, a.bench, llm, mmproj, tmp, threads=a.threads)
        ok = score(it, out)
        row = {"id": it["id"], "category": it["category"], "answer": it["answer"], "weft": out, "correct": ok}
        for k, v in times.items():
            tsum[k] = tsum.get(k, 0.0) + v
        for key in (it["category"], "all", ("new wording" if it.get("wording") == "new" else None)):
            if key:
                s = stats.setdefault(key, [0, 0])
                s[0] += ok
                s[1] += 1
        if a.peer:
            po = run_peer(it, a.bench, llm, mmproj, a.peer)
            row.update(peer=po, peer_correct=score(it, po))
            n_peer += 1
            agree += out.strip() == po.strip()
            agree_ans += extract(it, out) == extract(it, po)
            for key in ("peer " + it["category"], "peer all"):
                s = stats.setdefault(key, [0, 0])
                s[0] += row["peer_correct"]
                s[1] += 1
        rows.append(row)
        if (i + 1) % 50 == 0:
            print("%d/%d items, %.0f s" % (i + 1, len(items), time.time() - t_all), file=sys.stderr, flush=True)
    for f in os.listdir(tmpd):
        os.unlink(os.path.join(tmpd, f))
    os.rmdir(tmpd)
    print("demo benchmark %s: %d items, llm %s, mmproj %s" % (a.bench, len(items), os.path.basename(llm),
                                                             os.path.basename(mmproj)))
    cats = [k for k in stats if not k.startswith("peer") and k not in ("all", "new wording")]
    for k in sorted(cats) + ["new wording", "all"] + sorted(k for k in stats if k.startswith("peer")):
        if k in stats:
            s = stats[k]
            print("  %-22s %4d / %4d  %5.1f %%" % (k, s[0], s[1], 100.0 * s[0] / s[1]))
    n = len(items)
    print("  mean time per item: " + ", ".join("%s %.3f s" % (k, v / n) for k, v in tsum.items()))
    if a.peer:
        print("  weft and llama-mtmd-cli: identical text on %d / %d items, the same scored answer on %d / %d"
              % (agree, n_peer, agree_ans, n_peer))
    if a.answers:
        with open(a.answers, "w") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
