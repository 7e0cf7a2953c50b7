# llm.sh - prefill and decode end to end on the committed tiny models
# (tests/data/llm, made by scripts/gen-llm-fixtures.py): pipeline, chunking,
# multi-turn, and every bad input with its one-line message.
suite=llm
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize P=$WEFT_BIN/prefill D=$WEFT_BIN/decode
TM=tests/data/llm/tiny-llama-f32.gguf
TQ=tests/data/llm/tiny-qwen2-f32.gguf

for tool in prefill decode; do
	"$WEFT_BIN/$tool" --help | grep -q "^Usage: $tool" && "$WEFT_BIN/$tool" --version | grep -q "^$tool (weft) " &&
		pass "help_version_$tool" || fail "help_version_$tool" "--help or --version output wrong"
done

# pipeline: greedy is deterministic and the cache has one kv frame per layer
"$T" -m "$TM" 'hello world, hello' >"$TMP/p.wst"
"$P" -m "$TM" "$TMP/p.wst" >"$TMP/c.wst" || fail prefill_runs "exit $?"
kinds=$("$WEFT_BIN/inspect" --json "$TMP/c.wst" | sed -n 's/.*"kind":"\([a-z]*\)".*/\1/p' | tr '\n' ' ')
[ "$kinds" = "kvcache kv kv logits " ] && pass cache_frames || fail cache_frames "got '$kinds'"
g1=$("$D" -m "$TM" --greedy -n 12 --ignore-eos --tokens "$TMP/c.wst" | "$T" -m "$TM" -d)
t1=$("$D" -m "$TM" --greedy -n 12 --ignore-eos "$TMP/c.wst")
g2=$("$D" -m "$TM" --greedy -n 12 --ignore-eos --tokens <"$TMP/c.wst" | "$T" -m "$TM" -d)
[ -n "$g1" ] && [ "$g1" = "$g2" ] && pass greedy_deterministic || fail greedy_deterministic "'$g1' vs '$g2'"
t1=$("$D" -m "$TM" --greedy -n 12 --ignore-eos "$TMP/c.wst")
# (tokenize -d drops the space SentencePiece puts before the first word)
[ "${t1# }" = "$g1" ] && pass text_equals_tokens || fail text_equals_tokens "'$t1' vs '$g1'"

# chunked prefill gives the same continuation
g3=$("$P" -m "$TM" --chunk 1 "$TMP/p.wst" | "$D" -m "$TM" --greedy -n 12 --ignore-eos)
g4=$("$P" -m "$TM" --chunk 5 "$TMP/p.wst" | "$D" -m "$TM" --greedy -n 12 --ignore-eos)
[ "$g3" = "$t1" ] && [ "$g4" = "$t1" ] && pass chunking_invariant || fail chunking_invariant "'$g3' / '$g4' vs '$t1'"

# multi-turn: prefilling A then B onto A's cache equals prefilling A+B
"$T" -m "$TM" --no-bos ' and more' >"$TMP/b.wst"
cat "$TMP/p.wst" "$TMP/b.wst" | "$P" -m "$TM" >"$TMP/ab1.wst"
cat "$TMP/c.wst" "$TMP/b.wst" | "$P" -m "$TM" >"$TMP/ab2.wst"
a1=$("$D" -m "$TM" --greedy -n 10 --ignore-eos "$TMP/ab1.wst"); a2=$("$D" -m "$TM" --greedy -n 10 --ignore-eos "$TMP/ab2.wst")
[ "$a1" = "$a2" ] && pass multi_turn || fail multi_turn "'$a1' vs '$a2'"
# decode --kv-out continues where it stopped: 6 + 6 tokens == 12 tokens
h1=$("$D" -m "$TM" --greedy -n 6 --ignore-eos --kv-out "$TMP/k.wst" "$TMP/c.wst")
h2=$("$D" -m "$TM" --greedy -n 6 --ignore-eos "$TMP/k.wst")
[ "$h1$h2" = "$t1" ] && pass kv_out_continues || fail kv_out_continues "'$h1' + '$h2' vs '$t1'"

# --kv-type f32: float32 k/v frames, kept by decode --kv-out and by a later
# prefill; the greedy text of this tiny F32 model is the F16 cache's
"$P" -m "$TM" --kv-type f32 "$TMP/p.wst" >"$TMP/c32.wst" &&
	"$WEFT_BIN/inspect" "$TMP/c32.wst" | grep -q '^  k F32 \[2, ' && pass kv_f32_frames || fail kv_f32_frames "no F32 k tensor"
f1=$("$D" -m "$TM" --greedy -n 6 --ignore-eos --kv-out "$TMP/k32.wst" "$TMP/c32.wst")
f2=$("$D" -m "$TM" --greedy -n 6 --ignore-eos "$TMP/k32.wst")
[ "$f1$f2" = "$t1" ] && "$WEFT_BIN/inspect" "$TMP/k32.wst" | grep -q 'weft.kv_type = F32' &&
	pass kv_f32_continues || fail kv_f32_continues "'$f1' + '$f2' vs '$t1'"
cat "$TMP/c32.wst" "$TMP/b.wst" | "$P" -m "$TM" | "$WEFT_BIN/inspect" | grep -q '^  v F32 \[' &&
	pass kv_f32_extended || fail kv_f32_extended "a later prefill did not keep the F32 cache"
expect_error kv_type_conflict "holds f32 values, but --kv-type f16" sh -c "cat '$TMP/c32.wst' '$TMP/b.wst' | '$P' -m '$TM' --kv-type f16"
expect_error kv_type_bad "--kv-type: 'q4_0' is not f16, f32 or q8_0" "$P" -m "$TM" --kv-type q4_0 "$TMP/p.wst"
expect_error kv_q8_0_head "prefill: $TM: KV cache: type q8_0 cannot hold rows of 16 values" "$P" -m "$TM" --kv-type q8_0 "$TMP/p.wst"
# --kv-type q8_0 (llama.cpp's -ctk/-ctv q8_0): byte rows in the stream, kept
# across turns; the one-layer 64-wide fixture answers as with its F32 cache
L256=tests/data/llm/tiny-llama256-q4_k_m.gguf
"$T" -m "$L256" 'hello world, hello' >"$TMP/p256.wst"
"$P" -m "$L256" --kv-type q8_0 "$TMP/p256.wst" >"$TMP/c8.wst" &&
	"$WEFT_BIN/inspect" "$TMP/c8.wst" | grep -q "^  k U8 \[2, 25, 68\]" && "$WEFT_BIN/inspect" "$TMP/c8.wst" | grep -q 'weft.kv_type = Q8_0' &&
	pass kv_q8_0_frames || fail kv_q8_0_frames "no Q8_0 rows in the stream"
q1=$("$D" -m "$L256" --greedy -n 6 --ignore-eos --kv-out "$TMP/k8.wst" "$TMP/c8.wst")
q2=$("$D" -m "$L256" --greedy -n 6 --ignore-eos "$TMP/k8.wst")
q12=$("$D" -m "$L256" --greedy -n 12 --ignore-eos "$TMP/c8.wst")
[ -n "$q1" ] && [ "$q1$q2" = "$q12" ] && "$WEFT_BIN/inspect" "$TMP/k8.wst" | grep -q 'weft.kv_type = Q8_0' &&
	pass kv_q8_0_continues || fail kv_q8_0_continues "'$q1' + '$q2' vs '$q12'"

# qwen2 runs too; extra outputs are written when asked
"$T" -m "$TQ" 'abc def' | "$P" -m "$TQ" --mass --window-q 2 >"$TMP/q.wst" &&
	"$WEFT_BIN/inspect" "$TMP/q.wst" | grep -q '^  mass F32 \[' && "$WEFT_BIN/inspect" "$TMP/q.wst" | grep -q '^  window_q F32 \[2, ' &&
	pass qwen2_extras || fail qwen2_extras "no mass/window_q tensors"

# --numerics llama.cpp: llama.cpp's arithmetic (kernels/llamacpp_avx512.c);
# with SmolLM2, the pipeline's greedy text is llama.cpp's, token for token
# (prompts 0 and 5 of tests/data/llm/smollm2-greedy.txt)
expect_error numerics_bad "prefill: --numerics: 'ggml' is not weft or llama.cpp" "$P" -m "$TM" --numerics ggml "$TMP/p.wst"
expect_error numerics_bad_decode "decode: --numerics: 'fast' is not weft or llama.cpp" "$D" -m "$TM" --numerics fast "$TMP/c.wst"
if "$P" -m "$TM" --numerics llama.cpp "$TMP/p.wst" 2>&1 >/dev/null | grep -q "lacks the AVX-512 level"; then
	skip numerics_llamacpp "this CPU lacks the AVX-512 level whose llama.cpp build --numerics llama.cpp reproduces"
else
	expect_error numerics_types "prefill: $TM: --numerics llama.cpp: tensor 'output.weight' is f32; llama.cpp's arithmetic is reproduced for Q4_0, Q4_1 and Q8_0 weights only" "$P" -m "$TM" --numerics llama.cpp "$TMP/p.wst"
	expect_error numerics_kv_f32 "prefill: --numerics llama.cpp: llama.cpp's attention is reproduced for the f16 KV cache only" "$P" -m "$TM" --numerics llama.cpp --kv-type f32 "$TMP/p.wst"
	# the last --numerics wins: weft's kernels, no llama.cpp checks
	"$P" -m "$TM" --numerics llama.cpp --numerics weft -v "$TMP/p.wst" 2>"$TMP/nw.err" >/dev/null &&
		! grep -q 'llama.cpp' "$TMP/nw.err" && pass numerics_last_wins ||
		fail numerics_last_wins "$(head -c 300 "$TMP/nw.err")"
	SM=$(smollm2)
	if [ -n "$SM" ]; then
		"$T" -m "$SM" hello | "$P" -m "$SM" >"$TMP/sw.wst"
		expect_error numerics_weft_cache "decode: $TMP/sw.wst: frame 0: --numerics llama.cpp: this KV cache was computed with weft's numerics; prefill it with --numerics llama.cpp too" "$D" -m "$SM" --numerics llama.cpp "$TMP/sw.wst"
		"$T" -m "$SM" hello | "$P" -m "$SM" --numerics llama.cpp | "$WEFT_BIN/inspect" | grep -q 'weft.numerics = llama.cpp' &&
			! "$WEFT_BIN/inspect" "$TMP/sw.wst" | grep -q 'weft.numerics' && pass numerics_marked ||
			fail numerics_marked "the cache's weft.numerics key is wrong"
		# a second turn: decode --kv-out keeps the mark, prefill extends the cache
		"$T" -m "$SM" hello | "$P" -m "$SM" --numerics llama.cpp |
			"$D" -m "$SM" --numerics llama.cpp --greedy -n 3 --ignore-eos --kv-out "$TMP/sk.wst" >/dev/null &&
			"$T" -m "$SM" ' again' | cat "$TMP/sk.wst" - | "$P" -m "$SM" --numerics llama.cpp |
			"$WEFT_BIN/inspect" | grep -q 'weft.numerics = llama.cpp' && pass numerics_second_turn ||
			fail numerics_second_turn "a llama.cpp-numerics cache was not extended"
		G=tests/data/llm/smollm2-greedy.txt
		for k in 1 6; do
			if [ $k = 1 ]; then "$T" -m "$SM" 'The capital of France is' >"$TMP/sp.wst"
			else printf '<|im_start|>user\nWhat is the boiling point of water?<|im_end|>\n<|im_start|>assistant\n' | "$T" -m "$SM" >"$TMP/sp.wst"; fi
			want=$(sed -n 's/^G //p' "$G" | sed -n "${k}p" | "$T" -m "$SM" -d)
			got=$("$P" -m "$SM" --numerics llama.cpp "$TMP/sp.wst" | "$D" -m "$SM" --numerics llama.cpp --greedy -n 32 --ignore-eos)
			[ -n "$want" ] && [ "$got" = "$want" ] && pass "numerics_llamacpp_greedy_$k" ||
				fail "numerics_llamacpp_greedy_$k" "'$got' vs llama.cpp's '$want'"
		done
	else
		skip numerics_llamacpp_greedy "SmolLM2 GGUF absent (scripts/fetch-models)"
	fi
fi

# bad inputs
expect_error no_model "prefill: no model given (-m MODEL.gguf); see --help" "$P"
if [ -n "$SHARED" ]; then
	expect_error unsupported_arch "prefill: $SHARED/vocab/ggml-vocab-gpt-2.gguf: unsupported architecture 'gpt2' (weft runs llama and qwen2)" "$P" -m "$SHARED/vocab/ggml-vocab-gpt-2.gguf"
	expect_error missing_tensor "prefill: $SHARED/vocab/ggml-vocab-llama-spm.gguf: missing tensor 'token_embd.weight'" "$P" -m "$SHARED/vocab/ggml-vocab-llama-spm.gguf"
	"$T" -m "$SHARED/vocab/ggml-vocab-gpt-2.gguf" hi >"$TMP/g.wst"
	expect_error other_vocab "prefill: $TMP/g.wst: frame 0: stream is for another vocabulary" "$P" -m "$TM" "$TMP/g.wst"
else
	skip shared_models "../shared absent"
fi
expect_error other_model "decode: $TMP/c.wst: frame 0: stream is for another model" "$D" -m "$TQ" "$TMP/c.wst"
"$T" -m "$TM" 'a <image> b' >"$TMP/i.wst"
expect_error unfilled_image "prefill: $TMP/i.wst: frame 1: image placeholder <image 1> is not filled; run encode-image before prefill" "$P" -m "$TM" "$TMP/i.wst"
expect_error context_exceeded "prefill: $TMP/p.wst: context length exceeded: 0 cached + " "$P" -m "$TM" --ctx 4 "$TMP/p.wst"
expect_error n_absurd "decode: -n: expected a number in 0..1048576, got '99999999'" "$D" -m "$TM" -n 99999999 "$TMP/c.wst"
expect_error decode_needs_prefill "decode: $TMP/p.wst: frame 0: tokens frame before decode: run prefill first" "$D" -m "$TM" "$TMP/p.wst"
head -c 3000 "$TMP/c.wst" >"$TMP/cut.wst"
expect_error truncated_cache "decode: $TMP/cut.wst: frame 1: truncated: " "$D" -m "$TM" "$TMP/cut.wst"
expect_error empty_prompt "prefill: <stdin>: empty stream (no frames)" sh -c "\"$P\" -m \"$TM\" </dev/null"
expect_error no_tokens "prefill: $TMP/c.wst: no tokens to prefill" "$P" -m "$TM" "$TMP/c.wst"
expect_error prefill_disk_full "prefill: <stdout>: write error: No space left on device" sh -c "\"$P\" -m \"$TM\" \"$TMP/p.wst\" >/dev/full"
expect_error prefill_no_partial "context length exceeded" "$P" -m "$TM" --ctx 4 -o "$TMP/never.wst" "$TMP/p.wst"
if [ -e "$TMP/never.wst" ] || ls "$TMP" | grep -q 'never.wst.tmp'; then fail no_partial_output "partial file left"; else pass no_partial_output; fi
exit $status
