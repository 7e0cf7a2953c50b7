#!/usr/bin/env python3
"""Plot scripts/kv-accuracy's table (set, method, ratio, right, total,
fraction of F16) as a PNG: one panel per retrieval set, accuracy against the
ratio of rows removed, one line per eviction method; the quantizers, the
packed forms and the uncompressed cache as labelled points at their byte
fraction's ratio (1 - fraction).  Pillow only (in the fixture venv):

    $(scripts/venv)/bin/python scripts/plot-kv-accuracy.py build/kv-accuracy.tsv doc/kvcompress-accuracy.png
"""
import sys

from PIL import Image, ImageDraw, ImageFont

COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
          (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207), (0, 0, 0), (120, 60, 200)]


def main():
    src, dst = sys.argv[1], sys.argv[2]
    rows = [l.rstrip("\n").split("\t") for l in open(src) if l.strip()]
    sets = sorted({r[0] for r in rows})
    W, H, M = 640, 420, 60
    img = Image.new("RGB", (W * len(sets), H + 150), "white")
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default()
    methods = sorted({r[1] for r in rows if r[2] != "-"})
    fixed = sorted({r[1] for r in rows if r[2] == "-"})
    for si, s in enumerate(sets):
        x0 = si * W

        def px(ratio, acc):
            return x0 + M + ratio * (W - 2 * M), H - M + 20 - acc * (H - 2 * M)
        d.rectangle([px(0, 0)[0], px(0, 1)[1], px(1, 0)[0], px(1, 0)[1]], outline="black")
        for t in (0, 0.25, 0.5, 0.75, 0.9, 1):
            x, y = px(t, 0)
            d.line([x, y, x, y + 4], fill="black")
            d.text((x - 10, y + 6), f"{t:g}", fill="black", font=font)
        for a in (0, 0.25, 0.5, 0.75, 1):
            x, y = px(0, a)
            d.line([x - 4, y, x, y], fill="black")
            d.text((x - 34, y - 5), f"{int(a * 100)}%", fill="black", font=font)
        d.text((x0 + W // 2 - 90, 8), f"{s}: accuracy vs rows removed", fill="black", font=font)
        d.text((x0 + W // 2 - 60, H - M + 40), "ratio removed (1 - bytes for quantizers)", fill="black", font=font)
        for mi, m in enumerate(methods):
            pts = sorted((float(r[2]), int(r[3]) / int(r[4])) for r in rows if r[0] == s and r[1] == m)
            c = COLORS[mi % len(COLORS)]
            d.line([px(*p) for p in pts], fill=c, width=2)
            for p in pts:
                x, y = px(*p)
                d.ellipse([x - 3, y - 3, x + 3, y + 3], fill=c)
        for fi, m in enumerate(fixed):
            for r in rows:
                if r[0] == s and r[1] == m:
                    x, y = px(max(0.0, 1 - float(r[5])), int(r[3]) / int(r[4]))
                    d.rectangle([x - 3, y - 3, x + 3, y + 3], outline="black")
                    d.text((x + 5, y - 12 + 10 * (fi % 3)), m, fill="black", font=font)
    for mi, m in enumerate(methods):  # legend
        x, y = 10 + (mi % 4) * 300, H + 70 + (mi // 4) * 16
        d.line([x, y + 5, x + 24, y + 5], fill=COLORS[mi % len(COLORS)], width=3)
        d.text((x + 30, y), m, fill="black", font=font)
    img.save(dst, optimize=True)
    print(dst)


if __name__ == "__main__":
    main()
