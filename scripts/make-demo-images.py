#!/usr/bin/env python3
r"""Make the demo images and questions in data/demo/ (committed; rerun only
to change them).  Needs the venv (Pillow 13, scikit-image) and Debian's
dataset-fashion-mnist.

  circles.png   a scene drawn by gen-demo-bench.py's renderer with its own
                seed (no benchmark split uses it): 4 circles
  star.png      one large blue star, the same renderer
  sneaker.png   the first Fashion-MNIST t10k sneaker (label 7) that the
                committed test split does not use, 28 x 28 as stored

questions.tsv: images<TAB>expected answer<TAB>question, one per line.  The
expected answers come from how each image was made (the shape drawn, the
star's colour, the Fashion-MNIST label).  They are questions the committed
projector answers correctly (tests/tools/demo.sh asserts them); the
questions it does not (the number of circles, which of two images has more
circles, the colour of the cup in scikit-image's coffee photo) were dropped
from the demo: data/README.md reports the benchmark's accuracy per category.
"""
import importlib.util
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
spec = importlib.util.spec_from_file_location("gen_demo_bench", os.path.join(HERE, "gen-demo-bench.py"))
gb = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gb)


def main():
    from PIL import Image
    out = os.path.join(ROOT, "data", "demo")
    os.makedirs(out, exist_ok=True)
    rng = random.Random(4 * 1000003)
    n_circ = 4
    cols = ["red", "blue", "green", "orange"]
    im, _ = gb.scene(rng, [("circle", cols[i], rng.uniform(8, 10)) for i in range(n_circ)])
    im.save(os.path.join(out, "circles.png"), optimize=True)
    star_col = "blue"
    im, _ = gb.scene(rng, [("star", star_col, 26.0)])
    im.save(os.path.join(out, "star.png"), optimize=True)
    with open(os.path.join(ROOT, "data", "demo-bench", "items.jsonl")) as f:
        used = {p for line in f for p in json.loads(line)["images"]}
    imgs, labels = gb.fmnist("t10k")
    idx = next(i for i in range(len(labels)) if labels[i] == 7 and "img/fmnist-t10k-%05d.png" % i not in used)
    Image.fromarray(imgs[idx], "L").save(os.path.join(out, "sneaker.png"), optimize=True)
    g = gb.GARMENTS
    choices = ["sandal", g[7], "bag", "shirt"]  # named, as the benchmark's garment items are
    rows = [
        ("star.png", "star", "What shape is shown in <image 1>?"),
        ("star.png", star_col, "What colour is the star in <image 1>?"),
        ("star.png", star_col, "What color is the star in <image 1>?"),
        ("circles.png", "circle", "What shape are the objects in <image 1>?"),
        ("sneaker.png", g[7], "What is this piece of clothing? <image 1>"),
        ("sneaker.png", g[7], "<image 1> What kind of clothing is shown? Is it %s?" % gb.either(choices)),
    ]
    with open(os.path.join(out, "questions.tsv"), "w") as f:
        f.write("# images\texpected\tquestion  (scripts/make-demo-images.py; scripts/demo, tests/tools/demo.sh)\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    print("sneaker: t10k index %d" % idx, file=sys.stderr)


if __name__ == "__main__":
    main()
