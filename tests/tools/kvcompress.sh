# kvcompress.sh - kvcompress end to end on the committed tiny models
# (prefill | kvcompress | decode for every method), composition in one
# invocation and as chained processes, the memory really saved (stream
# bytes, ragged heads unpadded), image/text budgets, and every bad input
# with its one-line message.
suite=kvcompress
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize P=$WEFT_BIN/prefill D=$WEFT_BIN/decode K=$WEFT_BIN/kvcompress
TM=tests/data/llm/tiny-llama-f16.gguf
TQ=tests/data/llm/tiny-qwen2-f32.gguf

"$K" --help | grep -q "^Usage: kvcompress" && "$K" --version | grep -q "^kvcompress (weft) " &&
	pass help_version || fail help_version "--help or --version output wrong"

# a prompt of 150 byte tokens with every statistic
words=""
for i in $(seq 1 40); do words="$words w$i"; done
"$T" -m "$TM" "$words" >"$TMP/p.wst"
"$P" -m "$TM" --mass --window-q 64 --q-stats "$TMP/p.wst" >"$TMP/c.wst" || fail prefill "exit $?"
size() { wc -c <"$1" | tr -d ' '; }
gen() { "$D" -m "$TM" --greedy -n 8 --ignore-eos --tokens "$@" | "$T" -m "$TM" -d; }
base=$(gen "$TMP/c.wst")

# every method runs end to end; ratio 0 keeps the greedy text
for m in $("$K" --list | grep -v '^	' | cut -f1); do
	case $m in
	duo) spec=duo:sinks=4:recent=8 ;;
	kivi | gear) spec=$m:residual=32 ;;
	minicache) spec=minicache:from=0 ;;
	*) spec=$m ;;
	esac
	if ! "$K" -m "$TM" --method "$spec" --ratio 0.5 "$TMP/c.wst" >"$TMP/m.wst" 2>"$TMP/err"; then
		fail "method_$m" "$(head -c 300 "$TMP/err")"
		continue
	fi
	out=$(gen "$TMP/m.wst")
	[ -n "$out" ] && pass "method_$m" || fail "method_$m" "decode produced nothing"
	case $m in kivi | gear | minicache) continue ;; esac
	"$K" -m "$TM" --method "$spec" --ratio 0 "$TMP/c.wst" >"$TMP/z.wst" 2>/dev/null
	[ "$(gen "$TMP/z.wst")" = "$base" ] && pass "ratio0_$m" || fail "ratio0_$m" "ratio 0 changed the greedy text"
done
# KIVI 8-bit keeps the greedy text of this model
"$K" -m "$TM" --method kivi8:residual=32 "$TMP/c.wst" >"$TMP/k8.wst"
[ "$(gen "$TMP/k8.wst")" = "$base" ] && pass kivi8_greedy || fail kivi8_greedy "8-bit KIVI changed the greedy text"

# on the real SmolLM2: ratio 0 and 8-bit KIVI keep the greedy tokens
SM=$(smollm2)
if [ -n "$SM" ]; then
	words=""
	for i in $(seq 1 60); do words="$words fact $i is that the river $i runs north;"; done
	"$T" -m "$SM" --chat "Read this: $words Which way does river 7 run?" >"$TMP/sp.wst"
	"$P" -m "$SM" --window-q 64 "$TMP/sp.wst" >"$TMP/sc.wst"
	sgen() { "$D" -m "$SM" --greedy -n 16 --ignore-eos --tokens "$1" | od -An -tx1; }
	sbase=$(sgen "$TMP/sc.wst")
	for spec in snapkv knorm kivi8 adakv; do
		"$K" -m "$SM" --method $spec --ratio 0 "$TMP/sc.wst" >"$TMP/s0.wst"
		[ "$(sgen "$TMP/s0.wst")" = "$sbase" ] && pass "smollm2_same_$spec" || fail "smollm2_same_$spec" "greedy tokens changed"
	done
else
	skip smollm2_same "SmolLM2 absent (scripts/fetch-models)"
fi

# memory: ratio 0.5 halves the cache in the stream, ragged heads (adakv)
# too: stored without padding (statistics dropped: they are the tiny
# model's bulk)
"$K" -m "$TM" --method knorm --ratio 0 --drop-stats "$TMP/c.wst" >"$TMP/full.wst"
in_kv=$("$K" -m "$TM" --method knorm --ratio 0 -v "$TMP/c.wst" 2>&1 >/dev/null | sed -n 's/.*: \([0-9]*\) -> .*/\1/p')
for m in snapkv adakv; do
	"$K" -m "$TM" --method $m --ratio 0.5 -v --drop-stats "$TMP/c.wst" 2>"$TMP/v" >"$TMP/h.wst"
	frac=$(sed -n 's/.*, \([0-9.]*\) of F16).*/\1/p' "$TMP/v")
	awk -v f="$frac" 'BEGIN { exit !(f > 0 && f <= 0.52) }' && pass "bytes_$m" || fail "bytes_$m" "$frac of F16"
	# the stream shrinks with the rows (tokens, logits, headers aside)
	awk -v a="$(size "$TMP/h.wst")" -v b="$(size "$TMP/full.wst")" 'BEGIN { exit !(a <= 0.56 * b) }' &&
		pass "stream_$m" || fail "stream_$m" "$(size "$TMP/h.wst") of $(size "$TMP/full.wst") bytes"
done
[ -n "$in_kv" ] && pass bytes_reported || fail bytes_reported "no byte count from -v"

# composition: one invocation = chained processes (byte for byte)
"$K" -m "$TM" --method snapkv,kivi4:residual=32 --ratio 0.5 "$TMP/c.wst" >"$TMP/one.wst"
"$K" -m "$TM" --method snapkv --ratio 0.5 "$TMP/c.wst" | "$K" -m "$TM" --method kivi4:residual=32 >"$TMP/two.wst"
cmp -s "$TMP/one.wst" "$TMP/two.wst" && pass compose_chain || fail compose_chain "one invocation and a chain differ"
"$K" -m "$TM" --method h2o --ratio 0.3 "$TMP/c.wst" | "$K" -m "$TM" --method h2o --ratio 0.3 >"$TMP/hh.wst"
[ -n "$(gen "$TMP/hh.wst")" ] && pass chain_statistics || fail chain_statistics "h2o after h2o"
[ "$("$WEFT_BIN/inspect" "$TMP/one.wst" | grep -c 'weft.kv_methods = snapkv,kivi4:residual=32')" = 1 ] &&
	pass methods_recorded || fail methods_recorded "weft.kv_methods missing"

# budgets: N rows per head; a budget above the cache passes it through with a note
"$K" -m "$TM" --method knorm --budget 20 "$TMP/c.wst" >"$TMP/b.wst"
"$WEFT_BIN/inspect" "$TMP/b.wst" | grep -q 'len I32 \[2\] = 20 20' && pass budget || fail budget "not 20 rows per head"
"$K" -m "$TM" --method knorm --budget 100000 "$TMP/c.wst" 2>"$TMP/err" >"$TMP/b.wst"
grep -q "kvcompress: note: knorm: budget 100000 rows per head is not smaller than the cache: passed through" "$TMP/err" &&
	[ "$(gen "$TMP/b.wst")" = "$base" ] && pass budget_passthrough || fail budget_passthrough "$(cat "$TMP/err")"

# snapkv and adakv (its scorer snapkv): a budget under the window (a quarter
# of the rows, under 64) keeps only window rows: a note says so; a window of
# 32 under that budget does not
for m in snapkv adakv; do
	"$K" -m "$TM" --method $m --ratio 0.75 "$TMP/c.wst" 2>"$TMP/err" >"$TMP/s.wst"
	grep -q "kvcompress: note: $m: the budget ([0-9]* of a head's [0-9]* rows) is under the window (64): only window rows stay" "$TMP/err" &&
		"$K" -m "$TM" --method $m:window=32 --ratio 0.75 "$TMP/c.wst" 2>"$TMP/err" >"$TMP/s.wst" && [ ! -s "$TMP/err" ] &&
		pass "${m}_window_note" || fail "${m}_window_note" "$(cat "$TMP/err")"
done

# a cache whose rows include image positions (history -1): separate budgets
# (the tiny VLM's LLM with one image tile of random embeddings)
VL=tests/data/vlm/tiny-llava-llm-f32.gguf VP=tests/data/vlm/tiny-llava-mmproj-legacy.gguf
APPLE=${WEFT_SHARED:-../shared}/data/images/apple.jpg
if [ -f "$VL" ] && [ -f "$VP" ] && [ -f "$APPLE" ]; then
	printf 'USER: <image>\nWhat is this, and what colour is it? ASSISTANT:' >"$TMP/vp.txt"
	"$T" -m "$VL" -f "$TMP/vp.txt" | "$WEFT_BIN/encode-image" --mmproj "$VP" "$APPLE" |
		"$P" -m "$VL" --window-q 8 >"$TMP/vi.wst" 2>"$TMP/err" || fail image_prefill "$(cat "$TMP/err")"
	np=$("$WEFT_BIN/inspect" "$TMP/vi.wst" | sed -n 's/^  weft.n_past = //p' | head -n 1)
	"$K" -m "$VL" --method snapkv:window=8 --ratio 0.25 --image-ratio 0.9 "$TMP/vi.wst" >"$TMP/vo.wst" 2>"$TMP/err"
	# 16 image rows keep int(16 * 0.1) = 1, the text rows int(text * 0.75)
	want=$((1 + (np - 16) * 3 / 4))
	"$WEFT_BIN/inspect" "$TMP/vo.wst" | grep -q "len I32 \[.*\] = $want $want" && pass image_ratio ||
		fail image_ratio "expected $want rows per head of $np: $("$WEFT_BIN/inspect" "$TMP/vo.wst" | grep 'len I32' | head -n 1)"
	[ -n "$("$D" -m "$VL" --greedy -n 4 --ignore-eos --tokens "$TMP/vo.wst" | "$T" -m "$VL" -d)" ] &&
		pass image_decode || fail image_decode "nothing decoded"
else
	skip image_ratio "tiny LLaVA fixtures or $APPLE absent"
fi

# transport: --pack codes the cache (quantized, delta + zlib, CRC-checked);
# decode and kvcompress read it back; the ssh demo's pipe, locally
"$K" -m "$TM" --pack --drop-stats "$TMP/c.wst" >"$TMP/pk.wst"
awk -v a="$(size "$TMP/pk.wst")" -v b="$(size "$TMP/full.wst")" 'BEGIN { exit !(a < 0.7 * b) }' &&
	pass pack_smaller || fail pack_smaller "$(size "$TMP/pk.wst") of $(size "$TMP/full.wst") bytes"
[ "$(gen "$TMP/pk.wst")" = "$base" ] && pass pack8_greedy || fail pack8_greedy "8-bit packing changed the greedy text"
out=$("$K" -m "$TM" --method snapkv --ratio 0.5 --pack "$TMP/c.wst" | "$K" -m "$TM" --unpack | gen)
[ "$out" = "$("$K" -m "$TM" --method snapkv --ratio 0.5 "$TMP/c.wst" | "$K" -m "$TM" --pack | gen)" ] && [ -n "$out" ] &&
	pass pack_pipe || fail pack_pipe "kvcompress --pack | kvcompress --unpack | decode differs from decoding the packed stream"
"$K" -m "$TM" --pack --pack-bits 4 "$TMP/c.wst" >"$TMP/pk4.wst"
[ "$(size "$TMP/pk4.wst")" -lt "$(size "$TMP/pk.wst")" ] && pass pack_bits || fail pack_bits "4 bits not smaller than 8"
cp "$TMP/pk.wst" "$TMP/bad.wst"
printf '\125' | dd of="$TMP/bad.wst" bs=1 seek=$(($(size "$TMP/pk.wst") / 2)) conv=notrunc 2>/dev/null
expect_error pack_corrupt "decode: $TMP/bad.wst: frame 2: bad CRC32" "$D" -m "$TM" -n 2 "$TMP/bad.wst"
head -c $(($(size "$TMP/pk.wst") * 2 / 3)) "$TMP/pk.wst" >"$TMP/cut.wst"
expect_error pack_truncated "kvcompress: $TMP/cut.wst: frame " "$K" -m "$TM" --unpack -o "$TMP/never.wst" "$TMP/cut.wst"
[ ! -e "$TMP/never.wst" ] && pass pack_truncated_no_output || fail pack_truncated_no_output "output left behind"
expect_error pack_quantized "kvcompress: $TMP/c.wst: --pack: layer 0 is quantized: pack a cache of plain rows" \
	"$K" -m "$TM" --method kivi4:residual=32 --pack "$TMP/c.wst"
expect_error pack_other_model "kvcompress: $TMP/pk.wst: frame 0: stream is for another model" \
	"$K" -m "$TQ" --unpack "$TMP/pk.wst"

# prefill --kv-budget: a prompt far longer than the budget read in bounded
# KV memory (at most budget + chunk rows per head), by every streaming method
for m in streamingllm h2o snapkv:window=8 tova knorm keydiff random observed; do
	"$P" -m "$TM" --chunk 16 --kv-budget 24 --kv-method $m -v "$TMP/p.wst" 2>"$TMP/v" >"$TMP/b.wst"
	peak=$(sed -n 's/.*at most \([0-9]*\) rows per head held.*/\1/p' "$TMP/v")
	if [ -n "$peak" ] && [ "$peak" -le 40 ] && "$WEFT_BIN/inspect" "$TMP/b.wst" | grep -q 'len I32 \[2\] = 24 24' &&
		[ -n "$(gen "$TMP/b.wst")" ]; then pass "bounded_$m"; else fail "bounded_$m" "peak '$peak': $(tail -n 1 "$TMP/v")"; fi
done
# a budget the prompt fits in changes nothing
[ "$("$P" -m "$TM" --kv-budget 1000 "$TMP/p.wst" | gen)" = "$base" ] && pass bounded_roomy || fail bounded_roomy "greedy text changed"
expect_error bounded_method "prefill: $TM: adakv cannot run between prefill chunks (streaming methods: random," \
	"$P" -m "$TM" --kv-budget 24 --kv-method adakv "$TMP/p.wst"
expect_error bounded_window "prefill: $TM: snapkv needs the last 64 queries of each chunk: use --chunk 64 or more" \
	"$P" -m "$TM" --chunk 16 --kv-budget 24 --kv-method snapkv "$TMP/p.wst"
expect_error bounded_method_alone "prefill: --kv-method goes with --kv-budget N" "$P" -m "$TM" --kv-method h2o "$TMP/p.wst"
expect_error bounded_stats "prefill: --kv-budget: the statistics of a bounded prefill cover its last chunk only" \
	"$P" -m "$TM" --kv-budget 24 --mass "$TMP/p.wst"

# bad input: one line, non-zero status, no output file
expect_error ratio_one "kvcompress: --ratio: 1 is not below 1 (the fraction of rows removed, 0 <= R < 1)" \
	"$K" -m "$TM" --method knorm --ratio 1 "$TMP/c.wst"
expect_error ratio_negative "kvcompress: --ratio: expected a number in 0..1, got '-0.1'" \
	"$K" -m "$TM" --method knorm --ratio -0.1 "$TMP/c.wst"
expect_error unknown_method "kvcompress: --method snap: unknown KV method 'snap' (known: random," \
	"$K" -m "$TM" --method snap "$TMP/c.wst"
expect_error unknown_param "kvcompress: --method snapkv:win=3: snapkv has no parameter 'win'" \
	"$K" -m "$TM" --method snapkv:win=3 "$TMP/c.wst"
expect_error after_quant "kvcompress: --method kivi4,snapkv: snapkv after quantization: quantize last" \
	"$K" -m "$TM" --method kivi4,snapkv "$TMP/c.wst"
"$P" -m "$TM" "$TMP/p.wst" >"$TMP/plain.wst"
expect_error needs_window "kvcompress: $TMP/plain.wst: snapkv needs the last 64 queries (the stream has 0): run prefill with --window-q 64" \
	"$K" -m "$TM" --method snapkv "$TMP/plain.wst"
expect_error needs_mass "kvcompress: $TMP/plain.wst: h2o needs the attention mass each row received: run prefill with --mass" \
	"$K" -m "$TM" --method h2o "$TMP/plain.wst"
expect_error needs_qstats "kvcompress: $TMP/plain.wst: expected-attention needs the queries' mean and covariance: run prefill with --q-stats" \
	"$K" -m "$TM" --method expected-attention "$TMP/plain.wst"
expect_error other_model "kvcompress: $TMP/c.wst: frame 0: stream is for another model" \
	"$K" -m "$TQ" --method knorm "$TMP/c.wst"
head -c 3000 "$TMP/c.wst" >"$TMP/trunc.wst"
expect_error truncated "kvcompress: $TMP/trunc.wst: frame 1: " "$K" -m "$TM" --method knorm "$TMP/trunc.wst"
expect_error no_method "kvcompress: no method given (--method SPEC); see --list" "$K" -m "$TM" "$TMP/c.wst"
expect_error kivi_f32 "kivi: the cache holds f32 rows; KIVI quantizes an f16 cache (prefill --kv-type f16)" \
	sh -c "'$P' -m tests/data/llm/tiny-llama-f32.gguf --kv-type f32 '$TMP/p.wst' | '$K' -m tests/data/llm/tiny-llama-f32.gguf --method kivi4"
rm -f "$TMP/out.wst"
"$K" -m "$TM" --method snapkv -o "$TMP/out.wst" "$TMP/plain.wst" 2>/dev/null
[ ! -e "$TMP/out.wst" ] && [ -z "$(ls "$TMP" | grep 'out.wst.tmp')" ] && pass no_partial_output ||
	fail no_partial_output "an output file was left"
exit $status
