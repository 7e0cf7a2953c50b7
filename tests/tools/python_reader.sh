# python_reader.sh - the Python reader printed in weft-stream(5) reads a real
# stream.  Python is optional: skipped (visibly) without python3 + numpy.
suite=stream_python
. tests/tools/lib.sh
py=
for p in "${WEFT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}/venv/bin/python" python3; do
	if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import numpy' 2>/dev/null; then py=$p; break; fi
done
if [ -z "$py" ]; then skip man_page_reader "no python3 with numpy (scripts/venv makes one)"; exit 0; fi
if [ -z "$SHARED" ]; then skip man_page_reader "../shared absent"; exit 0; fi
# the example as the man page renders it, between its markers
sed -n '/^\.\\" begin python-example/,/^\.\\" end python-example/p' man/weft-stream.5 |
	sed -e '/^\.\\"/d' -e '/^\.RS/d' -e '/^\.RE/d' -e '/^\.EX/d' -e '/^\.EE/d' -e 's/\\(aq/'"'"'/g' -e 's/\\e/\\/g' >"$TMP/reader.py"
V=$SHARED/vocab/ggml-vocab-gpt-2.gguf
"$WEFT_BIN/tokenize" -m "$V" 'Hello world <image 2> again' >"$TMP/s.wst"
"$py" "$TMP/reader.py" <"$TMP/s.wst" >"$TMP/out" 2>"$TMP/err"
# ids checked against llama.cpp: llama-tokenize -m ggml-vocab-gpt-2.gguf -p "Hello world " --ids --no-bos -> [15496, 995, 220]; " again" -> [757]
want="tokens {'ids': [15496, 995, 220]}
image {}
tokens {'ids': [757]}"
if [ "$(cat "$TMP/out")" = "$want" ]; then pass man_page_reader; else fail man_page_reader "got: $(cat "$TMP/out" "$TMP/err" | head -c 300)"; fi
# and it detects corruption through the CRC
size=$(wc -c <"$TMP/s.wst")
printf '\001' | dd of="$TMP/s.wst" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
if "$py" "$TMP/reader.py" <"$TMP/s.wst" >/dev/null 2>"$TMP/err"; then fail man_page_reader_crc "corruption not detected"
else grep -q 'bad CRC' "$TMP/err" && pass man_page_reader_crc || fail man_page_reader_crc "$(tail -n 1 "$TMP/err")"; fi
exit $status
