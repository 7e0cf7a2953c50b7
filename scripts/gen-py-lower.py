#!/usr/bin/env python3
"""Write tests/data/eval/py-lower.txt: every code point whose str.lower()
is not itself, as hex code points "C: L1 [L2]", from the running Python
(its unicodedata version in the first line).  The oracle of test
eval.py_lower (ev_py_lower, the lower case of the scoring rules).

    scripts/gen-py-lower.py > tests/data/eval/py-lower.txt
"""
import sys
import unicodedata

print("# str.lower() of Python %d.%d, Unicode %s: code point: its lower case" %
      (sys.version_info[0], sys.version_info[1], unicodedata.unidata_version))
for c in range(0x80, 0x110000):
    if 0xD800 <= c < 0xE000:
        continue
    lo = chr(c).lower()
    if lo != chr(c):
        print("%04X: %s" % (c, " ".join("%04X" % ord(x) for x in lo)))
