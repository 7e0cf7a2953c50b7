#!/usr/bin/env python3
r"""Generate the demo VLM benchmark (data/README.md describes it): seeded,
deterministic, interleaved image + text questions with ground truth.

    gen-demo-bench.py --split test|val|train [--n N] [--out DIR] [--size S]
                      [--only CAT,... --fm-offset K]

Writes DIR/items.jsonl and DIR/img/*.png (DIR: data/demo-bench for test,
else $WEFT_CACHE/demo-bench/SPLIT).  Needs Pillow 13 (its built-in Aileron
font draws the characters) and numpy; Fashion-MNIST from Debian's
dataset-fashion-mnist (/usr/share/datasets/fashion-mnist, or $FASHION_MNIST).

Categories (equal shares; every question's wording drawn from several
templates, the test split also using templates that no other split uses):
  color          one shape: what colour is it (7 colours)          exact
  shape          one shape: which shape (5 shapes)                 exact
  count          1-9 shapes of one kind (sometimes with shapes of
                 another kind as distractors): how many             exact
  position       one shape among 9 cells of a 3 x 3 grid: where
                 (4 choices) or left/right, top/bottom             mc / exact
  size           two shapes of one kind, one clearly larger:
                 the colour of the larger / smaller one            exact
  small_object   a large shape and a small one (about half a patch):
                 the small one's colour                            exact
  text           a digit or capital letter drawn in the image      exact
  garment        a Fashion-MNIST image: which garment (4 choices,
                 named, answered by name)                          exact
  multi_count    two scenes: which has more of a shape             mc
  multi_garment  two Fashion-MNIST images: same kind of garment?   exact (yes/no)

Splits never share an image: synthetic scenes come from disjoint seeds and
every image's pixels are hashed against the test split's (and train's
against val's); Fashion-MNIST test items use its t10k set, val the last
5,000 training images, train the first 55,000 (a training image identical
to a t10k or val image is skipped).
"""
import argparse
import gzip
import hashlib
import json
import os
import random
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SIZE = 112           # the demo encoder's input (8 x 8 patches of 14 px)
SS = 4               # supersampling factor for antialiased drawing

COLORS = {
    "red": (215, 35, 35), "green": (35, 160, 60), "blue": (35, 75, 215), "yellow": (235, 200, 25),
    "purple": (135, 55, 185), "orange": (245, 135, 25), "black": (25, 25, 25),
}
SHAPES = ["circle", "square", "triangle", "star", "cross"]
PLURAL = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars", "cross": "crosses"}
CELLS = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
GARMENTS = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
CHARS = "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"   # no I/O/Q: too close to 1/0
CATEGORIES = ["color", "shape", "count", "position", "size", "small_object", "text", "garment",
              "multi_count", "multi_garment"]
SPLIT_SEED = {"train": 1, "val": 2, "test": 3}

# Question templates per category.  [seen, ...] are used by every split;
# NEW ones only by the test split (is a user's own wording understood?).
# {img} is the image placeholder, {s} the shape, {ss} its plural, {c} a colour.
T = {
    "color": (["What colour is the {s}?", "What color is the shape in {img}?", "{img}\nWhat is the colour of the shape?",
               "Which color is the {s} in {img}?", "{img} Tell me the color of the {s}.",
               "What colour is the object? {img}"],
              ["{img}\nName the colour of the {s} in one word.", "In {img}, the {s} has which color?"]),
    "shape": (["What shape is this?", "{img}\nWhat shape is shown?", "Which shape do you see in {img}?",
               "What kind of shape is in {img}?", "{img} Name the shape.", "What is the shape in the picture? {img}"],
              ["{img}\nIdentify the geometric shape.", "Which geometric figure is drawn in {img}?"]),
    "count": (["How many {ss} are there?", "{img}\nCount the {ss}.", "How many {ss} are in {img}?",
               "What is the number of {ss} in {img}?", "{img} How many {ss} can you see?",
               "Count the {ss} in the picture. {img}"],
              ["{img}\nHow many {ss} does the image contain?", "Tell me how many {ss} {img} shows."]),
    "position_mc": (["Where is the {s}?", "{img}\nWhere is the {c} {s} in the image?",
                     "In which part of {img} is the {s}?", "{img} Where is the {s} located?"],
                    ["{img}\nWhich region of the picture holds the {s}?"]),
    "position_lr": (["Is the {s} on the left or on the right?", "{img}\nIs the {c} {s} on the left or the right?",
                     "In {img}, is the {s} left or right?"],
                    ["{img}\nWhich side is the {s} on, left or right?"]),
    "position_tb": (["Is the {s} at the top or at the bottom?", "{img}\nIs the {c} {s} at the top or the bottom?",
                     "In {img}, is the {s} at the top or bottom?"],
                    ["{img}\nIs the {s} in the upper or lower half? Answer top or bottom."]),
    "size_big": (["What colour is the larger {s}?", "{img}\nWhich color is the bigger {s}?",
                  "In {img}, what color is the biggest shape?", "{img} What is the colour of the large {s}?"],
                 ["{img}\nOf the two {ss}, what colour is the bigger one?"]),
    "size_small": (["What colour is the smaller {s}?", "{img}\nWhich color is the smaller {s}?",
                    "In {img}, what color is the smallest shape?", "{img} What is the colour of the little {s}?"],
                   ["{img}\nOf the two {ss}, what colour is the smaller one?"]),
    "small_object": (["What colour is the small shape?", "{img}\nThere is a tiny shape. What color is it?",
                      "What color is the little {s} in {img}?", "{img} What is the colour of the small {s}?",
                      "Besides the big shape, {img} has a small one. Its colour?"],
                     ["{img}\nWhat colour is the tiny {s} next to the big shape?"]),
    "text_digit": (["What digit is written in the image?", "{img}\nWhich number is shown?",
                    "Read the digit in {img}.", "{img} What number is drawn?"],
                   ["{img}\nWhat is the digit in this picture?"]),
    "text_letter": (["What letter is written in the image?", "{img}\nWhich letter is shown?",
                     "Read the letter in {img}.", "{img} What letter is drawn?"],
                    ["{img}\nWhich capital letter does the picture show?"]),
    "garment": (["What garment is this?", "{img}\nWhat kind of clothing is shown?",
                 "Which item of clothing is in {img}?", "{img} What is this piece of clothing?",
                 "What is shown in {img}?"],
                ["{img}\nIdentify the fashion item."]),
    "multi_count": (["Which image has more {ss}, {img1} or {img2}?", "{img1}\n{img2}\nWhich picture shows more {ss}?",
                     "Compare {img1} and {img2}: where are there more {ss}?",
                     "Image one: {img1} Image two: {img2} Which one has more {ss}?"],
                    ["Look at {img1} and {img2}. Which contains a larger number of {ss}?"]),
    "multi_garment": (["Are {img1} and {img2} the same garment?", "{img1}\n{img2}\nDo these two images show the same kind of clothing?",
                       "Is the item in {img1} the same type of garment as the one in {img2}?",
                       "Do {img1} and {img2} show the same fashion item?"],
                      ["Compare {img1} with {img2}: same type of clothing or not?"]),
}
# answer-format hints appended to some questions
HINT_WORD = ["", "", " Answer with one word.", " Reply in one word.", " Answer briefly."]
HINT_NUM = ["", "", " Answer with a number.", " Reply with a digit."]
HINT_YN = ["", " Answer yes or no.", " Yes or no?"]
HINT_MC = ["\nAnswer with the letter.", "\nAnswer with the option's letter.", "\nReply with A, B, C or D.", ""]
# garment options are named, not lettered (four ways to list them), the
# answer is the name: SmolLM2-135M, frozen, cannot map a name to its letter
# even when told the answer (data/README.md, scripts/demo-garment-ceiling.py)
GARMENT_OPTS = ["\nOptions: {o}.\nAnswer with the garment's name.", "\nIs it {a}?",
                "\nChoose one: {o}.", "\nWhich one: {o}? Answer with its name."]


# ---- drawing ----

def light_background(rng):
    base = rng.randint(215, 250)
    return tuple(min(255, base + rng.randint(-8, 8)) for _ in range(3))


def jitter(c, rng, amount=18):
    return tuple(min(255, max(0, v + rng.randint(-amount, amount))) for v in c)


def shape_points(kind, cx, cy, r, rot):
    import math
    if kind == "square":
        h = r * 0.86
        pts = [(-h, -h), (h, -h), (h, h), (-h, h)]
    elif kind == "triangle":
        pts = [(r * 1.12 * math.cos(a), r * 1.12 * math.sin(a))
               for a in (math.radians(-90), math.radians(30), math.radians(150))]
        pts = [(x, y + r * 0.15) for x, y in pts]
    elif kind == "star":
        pts = []
        for i in range(10):
            a = math.radians(-90 + 36 * i)
            rr = r * 1.15 if i % 2 == 0 else r * 0.47
            pts.append((rr * math.cos(a), rr * math.sin(a)))
    elif kind == "cross":
        a, b = r * 0.33, r
        pts = [(-a, -b), (a, -b), (a, -a), (b, -a), (b, a), (a, a), (a, b), (-a, b), (-a, a), (-b, a), (-b, -a),
               (-a, -a)]
    else:
        raise ValueError(kind)
    c, s = math.cos(math.radians(rot)), math.sin(math.radians(rot))
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in pts]


def draw_shape(d, kind, cx, cy, r, color, rot=0.0):
    cx, cy, r = cx * SS, cy * SS, r * SS
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    else:
        d.polygon(shape_points(kind, cx, cy, r, rot), fill=color)


class Canvas:
    def __init__(self, rng, size=None):
        self.size = size or SIZE
        self.bg = light_background(rng)
        self.im = Image.new("RGB", (self.size * SS, self.size * SS), self.bg)
        self.d = ImageDraw.Draw(self.im)

    def shape(self, kind, cx, cy, r, color, rng):
        draw_shape(self.d, kind, cx, cy, r, jitter(color, rng), rng.uniform(-12, 12) if kind != "circle" else 0)

    def done(self):
        return self.im.resize((self.size, self.size), Image.LANCZOS)


def place(rng, radii, size, margin=2.0, tries=2000, box=None):
    """Non-overlapping centres for the given radii (None if it fails)."""
    out = []
    for r in radii:
        for _ in range(tries):
            if box:
                x0, y0, x1, y1 = box
            else:
                x0 = y0 = 0
                x1 = y1 = size
            lo_x, hi_x = x0 + r * 1.2 + 1, x1 - r * 1.2 - 1
            lo_y, hi_y = y0 + r * 1.2 + 1, y1 - r * 1.2 - 1
            if lo_x > hi_x or lo_y > hi_y:
                return None
            x, y = rng.uniform(lo_x, hi_x), rng.uniform(lo_y, hi_y)
            if all((x - a) ** 2 + (y - b) ** 2 > (r * 1.2 + rr * 1.2 + margin) ** 2 for a, b, rr in out):
                out.append((x, y, r))
                break
        else:
            return None
    return out


def scene(rng, objs, size=None):
    """objs: [(kind, color_name, r)] placed at random; returns (image, placed)."""
    size = size or SIZE
    while True:
        pl = place(rng, [o[2] for o in objs], size)
        if pl:
            break
    cv = Canvas(rng, size)
    for (kind, col, _), (x, y, r) in zip(objs, pl):
        cv.shape(kind, x, y, r, COLORS[col], rng)
    return cv.done(), pl


# ---- Fashion-MNIST ----

def fmnist_dir():
    return os.environ.get("FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def load_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    nd = magic & 0xff
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * nd).reshape(dims)


_FM = {}


def fmnist(which):
    """(images [n, 28, 28] uint8, labels [n]) for 'train' or 't10k'."""
    if which not in _FM:
        d = fmnist_dir()
        try:
            _FM[which] = (load_idx(os.path.join(d, "%s-images-idx3-ubyte.gz" % which)),
                          load_idx(os.path.join(d, "%s-labels-idx1-ubyte.gz" % which)))
        except OSError as e:
            sys.exit("gen-demo-bench: Fashion-MNIST not found (%s); apt-get install dataset-fashion-mnist "
                     "or set FASHION_MNIST" % e)
    return _FM[which]


def fmnist_pool(split):
    """Indices usable by a split: (set name, index list), test = t10k."""
    if split == "test":
        imgs, _ = fmnist("t10k")
        return "t10k", list(range(len(imgs)))
    if split == "val":
        return "train", list(range(55000, 60000))
    tr, _ = fmnist("train")
    te, _ = fmnist("t10k")
    held = {hashlib.sha1(x.tobytes()).digest() for x in te} | \
        {hashlib.sha1(tr[i].tobytes()).digest() for i in range(55000, 60000)}
    return "train", [i for i in range(55000) if hashlib.sha1(tr[i].tobytes()).digest() not in held]


def fmnist_image(which, i):
    imgs, labels = fmnist(which)
    # white garment on black, as the dataset stores it; 28 x 28 grey PNG
    return Image.fromarray(imgs[i], "L"), int(labels[i])


# ---- items ----

class Gen:
    def __init__(self, split, size=None):
        self.split = split
        self.size = size or SIZE
        self.rng = random.Random(SPLIT_SEED[split] * 1000003)
        self.fm_set, pool = fmnist_pool(split)
        self.rng.shuffle(pool)
        self.fm_pool = pool
        self.fm_next = 0
        _, labels = fmnist(self.fm_set)
        self.by_label = {}
        for i in pool:
            self.by_label.setdefault(int(labels[i]), []).append(i)
        self.bl_next = {k: 0 for k in self.by_label}

    def fm(self, label=None):
        if label is None:
            i = self.fm_pool[self.fm_next % len(self.fm_pool)]
            self.fm_next += 1
        else:
            lst = self.by_label[label]
            i = lst[self.bl_next[label] % len(lst)]
            self.bl_next[label] += 1
        return fmnist_image(self.fm_set, i) + ("fmnist-%s-%05d" % (self.fm_set, i),)

    def template(self, key, **kw):
        seen, new = T[key]
        pool = seen + new if self.split == "test" else seen
        t = self.rng.choice(pool)
        img = kw.pop("img", "<image 1>")
        q = t.format(img=img, img1="<image 1>", img2="<image 2>", **kw)
        if "<image" not in q:
            q = self.rng.choice(["<image 1>\n", "<image 1> "]) + q if self.rng.random() < 0.6 else q + " <image 1>"
        return q, ("new" if t in new else "seen")

    def hint(self, lst, q=""):
        h = self.rng.choice(lst)
        return "" if "one word" in q else h

    def mc(self, correct, options, n=4):
        """Choices text, choices list and the answer letter."""
        others = [o for o in options if o != correct]
        self.rng.shuffle(others)
        ch = others[:n - 1] + [correct]
        self.rng.shuffle(ch)
        letter = "ABCD"[ch.index(correct)]
        text = "".join("\n%s. %s" % ("ABCD"[i], c) for i, c in enumerate(ch))
        return text, ch, letter

    def item(self, cat):
        r = self.rng
        S = self.size
        k = S / 112.0
        if cat == "color":
            s, c = r.choice(SHAPES), r.choice(list(COLORS))
            im, _ = scene(r, [(s, c, r.uniform(16, 32) * k)], S)
            self.facts = {"shape": s, "color": c}
            q, w = self.template("color", s=s)
            return q + self.hint(HINT_WORD, q), [im], c, "exact", None, w
        if cat == "shape":
            s, c = r.choice(SHAPES), r.choice(list(COLORS))
            im, _ = scene(r, [(s, c, r.uniform(16, 32) * k)], S)
            self.facts = {"shape": s, "color": c}
            q, w = self.template("shape")
            return q + self.hint(HINT_WORD, q), [im], s, "exact", None, w
        if cat == "count":
            s, n = r.choice(SHAPES), r.randint(1, 9)
            same_col = r.random() < 0.5
            c0 = r.choice(list(COLORS))
            objs = [(s, c0 if same_col else r.choice(list(COLORS)), r.uniform(6.5, 10) * k) for _ in range(n)]
            if r.random() < 0.3 and n <= 7:  # distractors of another kind
                s2 = r.choice([x for x in SHAPES if x != s])
                objs += [(s2, r.choice(list(COLORS)), r.uniform(6.5, 10) * k) for _ in range(r.randint(1, 2))]
                r.shuffle(objs)
            im, _ = scene(r, objs, S)
            self.facts = {"count_shape": s, "count": n, "count_color": c0 if same_col else None,
                          "only_kind": len(objs) == n}
            q, w = self.template("count", ss=PLURAL[s])
            return q + self.hint(HINT_NUM), [im], str(n), "exact", None, w
        if cat == "position":
            s, c = r.choice(SHAPES), r.choice(list(COLORS))
            rad = r.uniform(9, 13) * k
            mode = r.choice(["mc", "mc", "lr", "tb"])
            cell = r.randrange(9)
            if mode == "lr":
                cell = r.choice([0, 2, 3, 5, 6, 8])
            if mode == "tb":
                cell = r.choice([0, 1, 2, 6, 7, 8])
            cy, cx = divmod(cell, 3)
            box = (cx * S / 3, cy * S / 3, (cx + 1) * S / 3, (cy + 1) * S / 3)
            pl = place(r, [rad], S, box=box)
            cv = Canvas(r, S)
            cv.shape(s, pl[0][0], pl[0][1], rad, COLORS[c], r)
            im = cv.done()
            self.facts = {"shape": s, "color": c, "cell": cell}
            if mode == "mc":
                q, w = self.template("position_mc", s=s, c=c)
                text, ch, letter = self.mc(CELLS[cell], CELLS)
                return q + text + self.hint(HINT_MC), [im], letter, "mc", ch, w
            if mode == "lr":
                q, w = self.template("position_lr", s=s, c=c)
                return q, [im], "left" if cx == 0 else "right", "exact", None, w
            q, w = self.template("position_tb", s=s, c=c)
            return q, [im], "top" if cy == 0 else "bottom", "exact", None, w
        if cat == "size":
            s = r.choice(SHAPES)
            c1, c2 = r.sample(list(COLORS), 2)
            big, small = r.uniform(18, 26) * k, r.uniform(7, 11) * k
            im, _ = scene(r, [(s, c1, big), (s, c2, small)], S)
            self.facts = {"pair_shape": s, "big_color": c1, "small_color": c2}
            if r.random() < 0.5:
                q, w = self.template("size_big", s=s, ss=PLURAL[s])
                return q + self.hint(HINT_WORD, q), [im], c1, "exact", None, w
            q, w = self.template("size_small", s=s, ss=PLURAL[s])
            return q + self.hint(HINT_WORD, q), [im], c2, "exact", None, w
        if cat == "small_object":
            s1, s2 = r.choice(SHAPES), r.choice(SHAPES)
            c1, c2 = r.sample(list(COLORS), 2)
            im, _ = scene(r, [(s1, c1, r.uniform(20, 30) * k), (s2, c2, r.uniform(3.5, 5) * k)], S)
            self.facts = {"big_shape": s1, "big_color": c1, "small_shape": s2, "small_color": c2}
            q, w = self.template("small_object", s=s2)
            return q + self.hint(HINT_WORD, q), [im], c2, "exact", None, w
        if cat == "text":
            ch = r.choice(CHARS)
            cv = Canvas(r, S)
            font = ImageFont.load_default(size=int(r.uniform(48, 80) * k * SS))
            cname = r.choice(["red", "green", "blue", "purple", "black", "black"])
            col = jitter(COLORS[cname], r)
            self.facts = {"char": ch, "char_color": cname}
            x0, y0, x1, y1 = cv.d.textbbox((0, 0), ch, font=font)
            W, H = x1 - x0, y1 - y0
            px = r.uniform(2 * SS, S * SS - W - 2 * SS) - x0 if S * SS - W > 4 * SS else (S * SS - W) / 2 - x0
            py = r.uniform(2 * SS, S * SS - H - 2 * SS) - y0 if S * SS - H > 4 * SS else (S * SS - H) / 2 - y0
            cv.d.text((px, py), ch, font=font, fill=col)
            im = cv.done()
            q, w = self.template("text_digit" if ch.isdigit() else "text_letter")
            return q + self.hint(HINT_WORD, q), [im], ch, "exact", None, w
        if cat == "garment":
            im, lab, src = self.fm()
            self.facts = {"garment": lab}
            q, w = self.template("garment")
            _, ch, _ = self.mc(GARMENTS[lab], GARMENTS)
            fmt = r.choice(GARMENT_OPTS)  # one draw, as the lettered hint took
            text = fmt.format(o=", ".join(ch), a=either(ch))
            return q + text, [(im, src)], GARMENTS[lab], "exact", ch, w
        if cat == "multi_count":
            s = r.choice(SHAPES)
            n1, n2 = r.sample(range(1, 10), 2)
            ims = []
            for n in (n1, n2):
                col = r.choice(list(COLORS))
                im, _ = scene(r, [(s, col, r.uniform(6.5, 10) * k) for _ in range(n)], S)
                ims.append(im)
            self.facts = {"count_shape": s, "n1": n1, "n2": n2}
            q, w = self.template("multi_count", ss=PLURAL[s])
            options = ["the first image", "the second image"]
            text = "\nA. %s\nB. %s" % tuple(options)
            return q + text + self.rng.choice(["\nAnswer with the letter.", "\nAnswer A or B.", ""]), ims, \
                "A" if n1 > n2 else "B", "mc", options, w
        if cat == "multi_garment":
            a, la, sa = self.fm()
            if r.random() < 0.5:
                b, lb, sb = self.fm(la)
                if sb == sa:
                    b, lb, sb = self.fm(la)
            else:
                b, lb, sb = self.fm(r.choice([x for x in range(10) if x != la]))
            self.facts = {"garment1": la, "garment2": lb}
            q, w = self.template("multi_garment")
            return q + self.hint(HINT_YN), [(a, sa), (b, sb)], "yes" if la == lb else "no", "exact", None, w
        raise ValueError(cat)


# Follow-up questions about the same image(s), for the training split's
# multi-turn conversations (the image is already in the conversation, so
# no placeholder); drawn with their own generator so the items themselves
# do not depend on them.
XQ = {
    "color": ["What colour is the {s}?", "What color is the shape?", "Which colour is it?"],
    "shape": ["What shape is it?", "Which shape is shown?", "What is the shape?"],
    "count": ["How many {ss} are there?", "Count the {ss}.", "How many {ss} do you see?"],
    "cell": ["Where is the {s}?", "In which part of the image is the {s}?"],
    "lr": ["Is the {s} on the left or on the right?"],
    "tb": ["Is the {s} at the top or at the bottom?"],
    "big_color": ["What colour is the larger {s}?", "What color is the big shape?"],
    "small_color": ["What colour is the smaller {s}?", "What color is the small shape?"],
    "big_shape": ["What shape is the big one?", "Which shape is the large object?"],
    "small_shape": ["What shape is the tiny one?", "Which shape is the small object?"],
    "char": ["What character is drawn?", "Which digit or letter is shown?"],
    "char_color": ["What colour is the character?", "What color is the text?"],
    "garment": ["What garment is this? Answer with its name.", "Which piece of clothing is it? Name it."],
    "garment_n": ["What garment is in the {nth} image? Answer with its name."],
    "count_n": ["How many {ss} are in the {nth} image?"],
}


def extras(cat, f, r):
    """[(question, answer)] follow-ups answerable from the facts f."""
    out = []

    def ask(key, ans, **kw):
        out.append((r.choice(XQ[key]).format(**kw), ans))
    if "shape" in f:
        ask("color", f["color"], s=f["shape"])
        ask("shape", f["shape"])
    if "cell" in f:
        cy, cx = divmod(f["cell"], 3)
        opts = [c for c in CELLS if c != CELLS[f["cell"]]]
        r.shuffle(opts)
        ch = opts[:3] + [CELLS[f["cell"]]]
        r.shuffle(ch)
        out.append((r.choice(XQ["cell"]).format(s=f["shape"]) + "".join(
            "\n%s. %s" % ("ABCD"[i], c) for i, c in enumerate(ch)), "ABCD"[ch.index(CELLS[f["cell"]])]))
        if cx != 1:
            ask("lr", "left" if cx == 0 else "right", s=f["shape"])
        if cy != 1:
            ask("tb", "top" if cy == 0 else "bottom", s=f["shape"])
    if "count" in f:
        ask("count", str(f["count"]), ss=PLURAL[f["count_shape"]])
        if f["only_kind"]:
            out.append((r.choice(["What shape are the objects?", "Which shape are they?"]), f["count_shape"]))
        if f["count_color"]:
            out.append((r.choice(["What colour are the {ss}?", "What color are the shapes?"]).format(
                ss=PLURAL[f["count_shape"]]), f["count_color"]))
    if "pair_shape" in f:
        ask("big_color", f["big_color"], s=f["pair_shape"])
        ask("small_color", f["small_color"], s=f["pair_shape"])
        out.append((r.choice(["What shape are the two objects?", "Which shape are both?"]), f["pair_shape"]))
    if "big_shape" in f:
        ask("small_color", f["small_color"], s=f["small_shape"])
        ask("big_color", f["big_color"], s=f["big_shape"])
        ask("big_shape", f["big_shape"])
        ask("small_shape", f["small_shape"])
    if "char" in f:
        ask("char", f["char"])
        ask("char_color", f["char_color"])
    if "garment" in f:
        ask("garment", GARMENTS[f["garment"]])
    if "n1" in f:
        for nth, n in (("first", f["n1"]), ("second", f["n2"])):
            ask("count_n", str(n), ss=PLURAL[f["count_shape"]], nth=nth)
    if "garment1" in f:
        for nth, g in (("first", f["garment1"]), ("second", f["garment2"])):
            ask("garment_n", GARMENTS[g], nth=nth)
    r.shuffle(out)
    return out


def either(names):
    """'a coat, a sneaker, an ankle boot or a sandal'."""
    a = [("an " if n[0] in "aeiou" else "a ") + n for n in names]
    return ", ".join(a[:-1]) + " or " + a[-1]


def png_bytes(im):
    import io
    b = io.BytesIO()
    im.save(b, format="PNG", optimize=True)
    return b.getvalue()


def generate(split, n, out, size=None, forbid=None, only=None, fm_offset=0):
    """Write n items (equal shares of every category, or of the categories
    in only, interleaved) to out; Fashion-MNIST images from fm_offset on in
    the split's shuffled pool."""
    g = Gen(split, size)
    g.fm_next = fm_offset
    os.makedirs(os.path.join(out, "img"), exist_ok=True)
    forbid = forbid or set()
    seen = {}
    items = []
    cats = [(only or CATEGORIES)[i % len(only or CATEGORIES)] for i in range(n)]
    for idx, cat in enumerate(cats):
        while True:
            q, ims, ans, metric, choices, wording = g.item(cat)
            files, ok = [], True
            blobs = []
            for j, im in enumerate(ims):
                src = None
                if isinstance(im, tuple):
                    im, src = im
                data = png_bytes(im)
                h = hashlib.sha1(im.tobytes() + im.mode.encode() + repr(im.size).encode()).hexdigest()
                if h in forbid:
                    ok = False
                    break
                name = src if src else "%s-%s-%05d-%d" % (split, cat, idx, j + 1)
                blobs.append((name, data, h))
            if ok:
                break
        for name, data, h in blobs:
            fn = "img/%s.png" % name
            if fn not in seen:
                with open(os.path.join(out, fn), "wb") as f:
                    f.write(data)
                seen[fn] = h
            files.append(fn)
        it = {"id": "%s-%05d" % (split, idx), "category": cat, "question": q, "images": files}
        if choices:
            it["choices"] = choices
        it["answer"] = ans
        it["metric"] = metric
        it["wording"] = wording
        if split != "test":  # follow-ups for multi-turn training conversations
            it["extra"] = extras(cat, g.facts, random.Random("%s-%d" % (split, idx)))
        items.append(it)
    tmp = os.path.join(out, "items.jsonl.tmp")
    with open(tmp, "w") as f:
        for it in items:
            f.write(json.dumps(it, ensure_ascii=False) + "\n")
    os.replace(tmp, os.path.join(out, "items.jsonl"))
    with open(os.path.join(out, "hashes.txt"), "w") as f:
        for fn, h in sorted(seen.items()):
            f.write("%s %s\n" % (h, fn))
    return items


def cache_dir():
    d = os.environ.get("WEFT_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or
                                                     os.path.expanduser("~/.cache"), "weft")
    return d


def read_hashes(d):
    p = os.path.join(d, "hashes.txt")
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return {line.split()[0] for line in f if line.strip()}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--split", required=True, choices=["train", "val", "test"])
    ap.add_argument("--n", type=int, default=None, help="items (default: test 600, val 1000, train 16000)")
    ap.add_argument("--out", default=None)
    ap.add_argument("--size", type=int, default=SIZE)
    ap.add_argument("--only", default=None, help="comma-separated categories (extra training data, e.g. garment)")
    ap.add_argument("--fm-offset", type=int, default=0,
                    help="start this far into the split's shuffled Fashion-MNIST pool (fresh images)")
    a = ap.parse_args()
    only = a.only.split(",") if a.only else None
    if only and (a.split == "test" or not a.out or set(only) - set(CATEGORIES)):
        sys.exit("gen-demo-bench: --only needs a train or val split, --out, and categories among %s" %
                 ", ".join(CATEGORIES))
    import PIL
    if int(PIL.__version__.split(".")[0]) != 13:
        sys.exit("gen-demo-bench: Pillow 13 needed for identical images (found %s)" % PIL.__version__)
    n = a.n or {"test": 600, "val": 1000, "train": 16000}[a.split]
    out = a.out or (os.path.join(ROOT, "data", "demo-bench") if a.split == "test"
                    else os.path.join(cache_dir(), "demo-bench", a.split))
    forbid = set()
    if a.split != "test":
        h = read_hashes(os.path.join(ROOT, "data", "demo-bench"))
        if h is None:
            sys.exit("gen-demo-bench: data/demo-bench/hashes.txt missing: generate the test split first")
        forbid |= h
    if a.split == "train":
        vd = os.path.join(cache_dir(), "demo-bench", "val")
        h = read_hashes(vd)
        if h is None:
            sys.exit("gen-demo-bench: %s/hashes.txt missing: generate the val split first" % vd)
        forbid |= h
    items = generate(a.split, n, out, a.size, forbid, only, a.fm_offset)
    print("%s: %d items, %d images -> %s" % (a.split, len(items), sum(len(i["images"]) for i in items), out))


if __name__ == "__main__":
    main()
