# inspect.sh - inspect on GGUF files and streams, whole and broken.
suite=inspect
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize
I=$WEFT_BIN/inspect

printf 'plain text, not a stream\n' >"$TMP/text"
expect_error text_stream "inspect: $TMP/text: frame 0: not a weft stream (input starts with text)" "$I" "$TMP/text"
expect_error text_stdin "inspect: <stdin>: frame 0: not a weft stream (input starts with text)" sh -c "\"$I\" <\"$TMP/text\""
: >"$TMP/empty"
expect_error empty_stream "inspect: $TMP/empty: empty stream (no frames)" "$I" "$TMP/empty"
expect_error dev_null "inspect: /dev/null: empty stream (no frames)" "$I" /dev/null
expect_error directory "inspect: $TMP: is a directory" "$I" "$TMP"
expect_error missing_file "inspect: $TMP/none: No such file or directory" "$I" "$TMP/none"

if [ -z "$SHARED" ]; then
	skip stream_and_gguf "../shared absent"
	exit $status
fi
V=$SHARED/vocab/ggml-vocab-gpt-2.gguf

# GGUF: text and JSON agree with facts of the file
"$I" -T "$V" >"$TMP/g.txt" || fail gguf_text "exit $?"
grep -q 'GGUF v3, .* 0 tensors' "$TMP/g.txt" && grep -q 'tokenizer.ggml.model = string "gpt2"' "$TMP/g.txt" &&
	grep -q 'tokenizer.ggml.tokens = string\[50257\]' "$TMP/g.txt" && pass gguf_text || fail gguf_text "$(head -c 300 "$TMP/g.txt")"
"$I" --json -n 2 "$V" >"$TMP/g.json" || fail gguf_json "exit $?"
grep -q '"format": "gguf"' "$TMP/g.json" && grep -q '"tokenizer.ggml.pre": "gpt-2"' "$TMP/g.json" && pass gguf_json ||
	fail gguf_json "$(head -c 300 "$TMP/g.json")"

# hostile GGUF: truncated in the middle of the token array
head -c 5000 "$V" >"$TMP/cut.gguf"
expect_error gguf_truncated "inspect: $TMP/cut.gguf: truncated file: metadata 'tokenizer.ggml.tokens' array count 50257 exceeds remaining 4496 bytes" "$I" "$TMP/cut.gguf"
# a giant tensor count in a GGUF header
{ printf 'GGUF\003\000\000\000\377\377\377\377\377\377\377\177\000\000\000\000\000\000\000\000'; } >"$TMP/giant.gguf"
expect_error gguf_giant_count "inspect: $TMP/giant.gguf: n_tensors 9223372036854775807 exceeds limit 1048576" "$I" "$TMP/giant.gguf"

# streams: whole, truncated, corrupted
"$T" -m "$V" 'one <image> two' >"$TMP/s.wst"
"$I" "$TMP/s.wst" >"$TMP/s.txt" && grep -q '^frame 1: image' "$TMP/s.txt" && grep -q ': 3 frames$' "$TMP/s.txt" &&
	grep -q '^  ids I32 \[2\] = 505 ' "$TMP/s.txt" && pass stream_text || fail stream_text "$(head -c 400 "$TMP/s.txt")"
n=$("$I" --json "$TMP/s.wst" | wc -l)
[ "$n" -eq 3 ] && pass stream_jsonl || fail stream_jsonl "expected 3 JSON lines, got $n"
size=$(wc -c <"$TMP/s.wst")
head -c $((size - 3)) "$TMP/s.wst" >"$TMP/t.wst"
expect_error stream_truncated "inspect: $TMP/t.wst: frame 2: truncated: 1 of 4 data bytes" "$I" "$TMP/t.wst"
cp "$TMP/s.wst" "$TMP/c.wst"
printf '\001' | dd of="$TMP/c.wst" bs=1 seek=$((size - 1)) conv=notrunc 2>/dev/null
expect_error stream_bad_crc "inspect: $TMP/c.wst: frame 2: bad CRC32 (header says" "$I" "$TMP/c.wst"
sed 's/"weft.version":"1"/"weft.version":"7"/' "$TMP/s.wst" >"$TMP/v.wst"
expect_error stream_version "inspect: $TMP/v.wst: frame 0: unsupported stream version '7' (this reader supports 1)" "$I" "$TMP/v.wst"
exit $status
