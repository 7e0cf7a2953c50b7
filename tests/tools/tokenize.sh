# tokenize.sh - the tokenize tool end to end: outputs, round trips, and
# every bad input with its one-line message and exit status.
suite=tokenize
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize
I=$WEFT_BIN/inspect

# --- options every tool has ---
for tool in tokenize inspect; do
	if "$WEFT_BIN/$tool" --help | grep -q "^Usage: $tool" && "$WEFT_BIN/$tool" --version | grep -q "^$tool (weft) "; then
		pass "help_version_$tool"
	else
		fail "help_version_$tool" "--help or --version output wrong"
	fi
	"$WEFT_BIN/$tool" --no-such-option >/dev/null 2>"$TMP/err"
	[ $? -eq 2 ] && pass "usage_error_$tool" || fail "usage_error_$tool" "unknown option must exit 2"
done
for page in man/*.1 man/*.5; do
	if MANWIDTH=80 man -l "$page" >/dev/null 2>"$TMP/err" && [ ! -s "$TMP/err" ]; then
		pass "man_$(basename "$page")"
	else
		fail "man_$(basename "$page")" "man -l failed: $(head -c 200 "$TMP/err")"
	fi
done

expect_error no_model "tokenize: no model given (-m MODEL.gguf); see --help" "$T" hello
expect_error missing_model "tokenize: $TMP/nope.gguf: No such file or directory" "$T" -m "$TMP/nope.gguf" hello
printf 'this is not a gguf file at all\n' >"$TMP/text.gguf"
expect_error not_gguf "tokenize: $TMP/text.gguf: not a GGUF file" "$T" -m "$TMP/text.gguf" hello

if [ -z "$SHARED" ]; then
	skip vocab_tests "../shared absent"
	exit $status
fi
V=$SHARED/vocab/ggml-vocab-gpt-2.gguf
VS=$SHARED/vocab/ggml-vocab-llama-spm.gguf

# --- ids: the 12th test vector of gpt-2 is "Hello world" -> "15496 995" ---
want=$(sed -n 12p "$V.out" | sed 's/^ *//')
got=$("$T" -m "$V" --ids 'Hello world')
[ "$got" = "$want" ] && pass ids_text || fail ids_text "got '$got', want '$want'"
got=$(printf 'Hello world' | "$T" -m "$V" --ids)
[ "$got" = "$want" ] && pass ids_stdin || fail ids_stdin "got '$got', want '$want'"

# --- stream: frames in order, image numbering ---
"$T" -m "$V" 'A cat <image> and <image 3> then <image>.' >"$TMP/s.wst" || fail stream_write "exit $?"
kinds=$("$I" --json "$TMP/s.wst" | sed -n 's/.*"kind":"\([a-z]*\)".*/\1/p' | tr '\n' ' ')
[ "$kinds" = "tokens image tokens image tokens image tokens " ] && pass stream_kinds || fail stream_kinds "got '$kinds'"
nums=$("$I" --json "$TMP/s.wst" | sed -n 's/.*"weft.image":"\([0-9]*\)".*/\1/p' | tr '\n' ' ')
[ "$nums" = "1 3 4 " ] && pass image_numbers || fail image_numbers "got '$nums'"
text=$("$T" -m "$V" -d "$TMP/s.wst")
[ "$text" = 'A cat <image 1> and <image 3> then <image 4>.' ] && pass detok_stream || fail detok_stream "got '$text'"
"$T" -m "$V" --no-images --ids 'a <image> b' | grep -q '<image' && fail no_images "placeholder emitted" || pass no_images

# --- round trip through ids and through a stream, SentencePiece too ---
msg='Hello, world!  Tabs	and
newlines; ünïcödé 🦙 123456'
for v in "$V" "$VS"; do
	n=$(basename "$v" .gguf)
	got=$("$T" -m "$v" --ids "$msg" | "$T" -m "$v" -d)
	[ "$got" = "$msg" ] && pass "roundtrip_ids_$n" || fail "roundtrip_ids_$n" "got '$got'"
	got=$("$T" -m "$v" "$msg" | "$T" -m "$v" -d)
	[ "$got" = "$msg" ] && pass "roundtrip_stream_$n" || fail "roundtrip_stream_$n" "got '$got'"
done

# --- -o writes atomically ---
"$T" -m "$V" 'Hello world' >"$TMP/stdout.wst"
"$T" -m "$V" -o "$TMP/o.wst" 'Hello world' && cmp -s "$TMP/o.wst" "$TMP/stdout.wst" &&
	[ -z "$(ls "$TMP" | grep 'o.wst.tmp')" ] && pass output_file || fail output_file "-o file differs from stdout or temp left"

# --- bad inputs: one line, exit 1, no partial output ---
printf 'bad \377 byte' >"$TMP/bad.txt"
expect_error invalid_utf8 "tokenize: $TMP/bad.txt: invalid UTF-8 at byte 4" "$T" -m "$V" -f "$TMP/bad.txt" -o "$TMP/bad.wst"
if [ -e "$TMP/bad.wst" ] || ls "$TMP" | grep -q 'bad.wst.tmp'; then fail no_partial_file "partial output left"; else pass no_partial_file; fi
expect_error disk_full "tokenize: <stdout>: write error: No space left on device" sh -c "\"$T\" -m \"$V\" 'Hello world' >/dev/full"
expect_error out_dir_missing "tokenize: $TMP/no/dir/x.wst: cannot create: No such file or directory" "$T" -m "$V" -o "$TMP/no/dir/x.wst" hi
head -c 100000 "$V" >"$TMP/trunc.gguf"
expect_error truncated_gguf "tokenize: $TMP/trunc.gguf: truncated file: metadata 'tokenizer.ggml.tokens' array count 50257 exceeds remaining 99496 bytes" "$T" -m "$TMP/trunc.gguf" hi
expect_error other_vocab "stream is for another vocabulary" "$T" -m "$VS" -d "$TMP/s.wst"
expect_error bad_id "tokenize: <stdin>: not a token id for this vocabulary (50257 tokens) at byte 2" sh -c "echo '1 99999999' | \"$T\" -m \"$V\" -d"
expect_error template_unknown "tokenize: --template: unknown chat template 'nope'" "$T" -m "$V" --chat --template nope hi
expect_error no_chat_template "tokenize: $V: no tokenizer.chat_template; choose one with --template" "$T" -m "$V" --chat hi
expect_error system_needs_chat "tokenize: --system needs --chat" "$T" -m "$V" --system x hi

# binary to a terminal is refused; --ids to a terminal is fine
if script -qec "\"$T\" -m \"$V\" hi" /dev/null >"$TMP/tty" 2>&1; then
	fail tty_refused "exit status 0 on a terminal"
else
	grep -q 'refusing to write a binary stream to a terminal' "$TMP/tty" && pass tty_refused || fail tty_refused "$(head -c 200 "$TMP/tty")"
fi
script -qec "\"$T\" -m \"$V\" --ids hi" /dev/null >"$TMP/tty" 2>&1 && pass tty_ids_ok || fail tty_ids_ok "$(head -c 200 "$TMP/tty")"

# SIGPIPE: a closed pipe ends tokenize quietly with status 141
awk 'BEGIN { for (i = 0; i < 200000; i++) print "word " i }' >"$TMP/big.txt"
{ "$T" -m "$V" --ids -f "$TMP/big.txt" 2>"$TMP/pipe.err"; echo $? >"$TMP/pipe.rc"; } | head -c 10 >/dev/null
rc=$(cat "$TMP/pipe.rc")
[ "$rc" = 141 ] && [ ! -s "$TMP/pipe.err" ] && pass sigpipe_quiet || fail sigpipe_quiet "status $rc, stderr: $(head -c 200 "$TMP/pipe.err")"

# --- pre-tokenizer names: tokenizer.ggml.pre of a copy of gpt-2 rewritten ---
u64le() { # the 8 bytes of $1, little-endian
	n=$1 i=0
	while [ $i -lt 8 ]; do printf "\\$(printf '%03o' $((n % 256)))"; n=$((n / 256)); i=$((i + 1)); done
}
set_pre() { # SRC DST NAME: SRC with its tokenizer.ggml.pre string replaced by NAME
	off=$(LC_ALL=C grep -obUaF 'tokenizer.ggml.pre' "$1" | head -n 1 | cut -d: -f1)
	olen=$(od -An -tu8 -j $((off + 22)) -N 8 "$1" | tr -d ' ')
	{ head -c $((off + 22)) "$1"; u64le ${#3}; printf '%s' "$3"; tail -c +$((off + 31 + olen)) "$1"; } >"$2"
}
set_pre "$V" "$TMP/pre.gguf" no-such-pre
expect_error unknown_pre "tokenize: $TMP/pre.gguf: tokenizer: unknown pre-tokenizer 'no-such-pre'" "$T" -m "$TMP/pre.gguf" hi
set_pre "$V" "$TMP/pre.gguf" kimi-k2
expect_error unsupported_pre "tokenize: $TMP/pre.gguf: tokenizer: pre-tokenizer 'kimi-k2' is not supported" "$T" -m "$TMP/pre.gguf" hi
set_pre "$V" "$TMP/pre.gguf" gpt-2
cmp -s "$V" "$TMP/pre.gguf" && pass set_pre_identity || fail set_pre_identity "rewriting gpt-2 as gpt-2 changed the file"

# --- llama.cpp itself as the oracle (scripts/build-peer, scripts/fetch-vocab):
# every vocabulary of llama.cpp's models/ on tests/data/text/tokenizer-tricky.txt
# (case splits, digits, Unicode spaces, marks, CJK, Hangul, emoji, controls),
# then each pre-tokenizer that has no vocabulary there, as llama-bpe's
# vocabulary with tokenizer.ggml.pre rewritten ("whitespace" is left out:
# llama.cpp aborts on that text with it) ---
C=${WEFT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
VD=${WEFT_VOCAB_DIR:-$C/vocab/llama.cpp-0.3.36}
LT=$C/peer/llama.cpp-0.3.36/bin/llama-tokenize
[ -x "$LT" ] || LT=$C/peer/llama.cpp-0.3.36/build/bin/llama-tokenize
TT=tests/data/text/tokenizer-tricky.txt
same_as_llamacpp() { # NAME GGUF
	ref=$("$LT" -m "$2" -f "$TT" --ids --no-bos --no-escape --no-parse-special --log-disable 2>"$TMP/lt.err" |
		tail -n 1 | tr -d '[],')
	got=$("$T" -m "$2" -f "$TT" --ids --no-bos --no-parse-special --no-images 2>"$TMP/w.err")
	if [ -z "$ref" ]; then fail "$1" "llama-tokenize failed: $(head -c 200 "$TMP/lt.err")"
	elif [ "$ref" = "$got" ]; then pass "$1"
	else fail "$1" "ids differ from llama.cpp's: $(head -c 200 "$TMP/w.err")"; fi
}
if [ ! -x "$LT" ]; then
	skip llamacpp_oracle "llama-tokenize not built (scripts/build-peer)"
elif [ ! -f "$VD/ggml-vocab-llama-bpe.gguf" ]; then
	skip llamacpp_oracle "llama.cpp's vocabularies absent (scripts/fetch-vocab)"
else
	for g in "$VD"/ggml-vocab-*.gguf; do
		n=$(basename "$g" .gguf)
		if "$T" -m "$g" --ids x 2>"$TMP/err" >/dev/null; then
			same_as_llamacpp "llamacpp_${n#ggml-vocab-}" "$g"
		else
			skip "llamacpp_${n#ggml-vocab-}" "$(cat "$TMP/err")"
		fi
	done
	# with the special tokens each vocabulary adds (BOS, and EOS / SEP where its
	# metadata asks, as BERT's [CLS] ... [SEP]), on a short text
	for g in "$VD"/ggml-vocab-*.gguf; do
		n=$(basename "$g" .gguf)
		"$T" -m "$g" --ids x >/dev/null 2>&1 || continue
		ref=$("$LT" -m "$g" -p 'Hello world, again.' --ids --log-disable 2>/dev/null | tail -n 1 | tr -d '[],')
		got=$("$T" -m "$g" --ids 'Hello world, again.' 2>&1)
		[ -n "$ref" ] && [ "$ref" = "$got" ] && pass "llamacpp_specials_${n#ggml-vocab-}" ||
			fail "llamacpp_specials_${n#ggml-vocab-}" "weft '$got', llama.cpp '$ref'"
	done
	for pre in default gpt-4o llama4 tekken chameleon deepseek-v3 spark2_5 youtu jais-2 exaone-moe laguna \
		ufakzeka granite-embed-multi-97m minicpm5 seed-coder bailingmoe viking poro-chat bloom smollm \
		stablelm2 glm4 dbrx trillion minimax-m2 sarvam-moe granite-embed-multi-311m afmoe tiny_aya \
		cohere2moe superbpe; do
		set_pre "$VD/ggml-vocab-llama-bpe.gguf" "$TMP/pre.gguf" "$pre"
		same_as_llamacpp "llamacpp_pre_$pre" "$TMP/pre.gguf"
	done
fi

# --- chat template from the real model ---
M=$(smollm2)
if [ -z "$M" ]; then
	skip smollm2_chat "SmolLM2 model not fetched (scripts/fetch-models)"
else
	got=$("$T" -m "$M" --chat --ids 'Hi' | "$T" -m "$M" -d --special)
	want=$(printf '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n')
	[ "$got" = "$want" ] && pass smollm2_chat || fail smollm2_chat "got '$got'"
fi
exit $status
