# prune.bench.sh - what visual-token pruning buys in time to first token:
# for every method of prune-tokens, at 64 / 128 / 192 kept of 576 visual
# tokens, the encoder, pruning and prefill times and their sum (TTFT), same
# run, same machine, against the unpruned prompt.
#
#   LLaVA-1.5-shaped: one 336-px image through the CLIP-L/14-336 bench
#     encoder with a LLaVA mlp projector sized to the LLM (1024 -> 2048 ->
#     2048: scripts/make-prune-bench-models.py), 576 tokens, + 55 text
#     tokens, into the ~1B Llama-shaped bench LLM (llama-1b-random-q4_1.gguf:
#     16 layers, width 2048, GQA 32/8; random weights, scripts/
#     make-bench-models.py);
#   SmolVLM-shaped: the 512-px bench image through the SigLIP-B/16-512
#     bench encoder (idefics3, 4x4 tiles + the global one: 17 x 64 = 1088
#     tokens) into SmolLM2-135M (with the grid's <row_R_col_C> tokens:
#     make-prune-bench-models.py), at 1/9, 2/9 and 1/3 of them.
#
# Times: encode-image -v ("encode X s": the encoder), prune-tokens -v (the
# library's pruning call, "in X ms"; reading and writing the stream not
# included), prefill -v ("in X s": the forward pass; the logits of the
# first token are its output, so TTFT = encode + prune + prefill).  Each is
# the median of REPS runs (the unpruned baselines and FastV) or one run
# (each method x budget: its prefill time depends on the tokens kept, which
# the cls rows time REPS times).  FastV (K = 2, R = 50 %) drops inside the
# LLM: the last token's attention row at layer 1 is recomputed from its
# query and layer 1's cached keys (one query against the keys, no N x N
# matrix is formed).  FlowCut (encode-image --prune flowcut, LLaVA-shaped
# only: it needs a class token) shortens the encoder itself: its rows give
# the encoder time and its ratio to the unpruned encoder's.  THREADS
# (default nproc), REPS (3), LLAVA and SMOLVLM (1: run that table).
set -u
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-3}
SMOLVLM=${SMOLVLM:-1}
LLAVA=${LLAVA:-1}
: "${WEFT_BIN:=bin}"
T=$WEFT_BIN/tokenize E=$WEFT_BIN/encode-image R=$WEFT_BIN/prune-tokens P=$WEFT_BIN/prefill
cache=$(scripts/cache-dir)
B=$cache/bench-models
LLM=$B/llama-1b-random-q4_1.gguf
CLIP=$B/vision/clip-l14-336-mlp2048-mmproj-f16.gguf
SLM=$B/vision/smollm2-135m-smolvlm-grid-q4_1.gguf
SIG=$B/vision/siglip-b16-512-idefics3-mmproj-f16.gguf
IMG=$B/vision/bench-512.png
if [ ! -f "$LLM" ] || [ ! -f "$CLIP" ] || [ ! -f "$IMG" ]; then
	echo "prune bench: no models; run \$(scripts/venv)/bin/python scripts/make-bench-models.py," \
		"scripts/make-vision-bench-models.py, then scripts/make-prune-bench-models.py"
	exit 0
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
METHODS="random pool cls visionzip divprune prumerge vispruner hiprune cdpruner"

median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
	else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
enc_s() { sed -n 's/.* encode \([0-9.]*\) s in .*/\1/p' "$1"; }
pre_s() { sed -n 's/.*prefill: load .*; prefill \([0-9]*\) tokens.* in \([0-9.]*\) s (.*/\2/p' "$1"; }
pre_n() { sed -n 's/.*prefill: load .*; prefill \([0-9]*\) tokens.* in \([0-9.]*\) s (.*/\1/p' "$1"; }
pru_ms() { sed -n 's/.* visual tokens in \([0-9.]*\) ms$/\1/p' "$1"; }
kept() { sed -n 's/.*tiles, [0-9]* -> \([0-9]*\) visual tokens in.*/\1/p' "$1"; }

# bench NAME LLM MMPROJ PROMPT IMAGE BUDGET-OPTIONS...: prints the table
bench() {
	name=$1 llm=$2 mmproj=$3 prompt=$4 image=$5 flowcut=$6
	shift 6
	"$T" -m "$llm" "$prompt" >"$tmp/p.wst" || return 1
	i=0
	while [ $i -lt "$REPS" ]; do
		"$E" --mmproj "$mmproj" -t "$THREADS" --stats keys,attn -v -i "$tmp/p.wst" "$image" >"$tmp/e.wst" 2>"$tmp/e.err" || return 1
		enc_s "$tmp/e.err"
		i=$((i + 1))
	done | median >"$tmp/enc"
	enc=$(cat "$tmp/enc")
	i=0
	while [ $i -lt "$REPS" ]; do
		"$P" -m "$llm" -t "$THREADS" -v "$tmp/e.wst" 2>"$tmp/p.err" >/dev/null || return 1
		pre_s "$tmp/p.err"
		i=$((i + 1))
	done | median >"$tmp/base"
	base=$(cat "$tmp/base") nbase=$(pre_n "$tmp/p.err")
	nvis=$("$WEFT_BIN/inspect" --json -n 0 "$tmp/e.wst" | grep '"kind":"embd"' |
		sed 's/.*"name":"embd","dtype":"F32","shape":\[\([0-9]*\),.*/\1/' | awk '{ s += $1 } END { print s }')
	echo "$name: $nvis visual + $((nbase - nvis)) text tokens; encoder $enc s (median of $REPS); $THREADS threads"
	printf '  %-10s %6s %6s %9s %9s %9s %8s %8s\n' method budget tokens prune_ms prefill_s TTFT_s prefill_x prune_%
	awk -v e="$enc" -v b="$base" -v n="$nbase" 'BEGIN { printf "  %-10s %6s %6d %9s %9.3f %9.3f %8.2f %8s\n",
		"(none)", "all", n, "-", b, e + b, 1, "-" }'
	for bud in "$@"; do
		for m in $METHODS; do
			extra=
			[ "$m" = cdpruner ] && extra="-m $llm"
			# shellcheck disable=SC2086
			"$R" --method "$m" $bud $extra -t "$THREADS" -v "$tmp/e.wst" >"$tmp/r.wst" 2>"$tmp/r.err" || {
				echo "  $m $bud: $(tail -n 1 "$tmp/r.err")"
				continue
			}
			reps=1
			[ "$m" = cls ] && reps=$REPS
			i=0
			while [ $i -lt $reps ]; do
				"$P" -m "$llm" -t "$THREADS" -v "$tmp/r.wst" 2>"$tmp/p.err" >/dev/null || return 1
				pre_s "$tmp/p.err"
				i=$((i + 1))
			done | median >"$tmp/pre"
			awk -v m="$m" -v bud="${bud#--* }" -v e="$enc" -v b="$base" -v p="$(cat "$tmp/pre")" \
				-v n="$(pre_n "$tmp/p.err")" -v r="$(pru_ms "$tmp/r.err")" 'BEGIN {
				t = e + r / 1000 + p
				printf "  %-10s %6s %6d %9.2f %9.3f %9.3f %8.2f %8.3f\n", m, bud, n, r, p, t, b / p, 100 * r / 1000 / t }'
		done
	done
	# FastV inside the LLM: K = 2, R = 50 % (its default)
	"$R" --method fastv "$tmp/e.wst" >"$tmp/f.wst"
	i=0
	while [ $i -lt "$REPS" ]; do
		"$P" -m "$llm" -t "$THREADS" -v "$tmp/f.wst" 2>"$tmp/p.err" >/dev/null || return 1
		pre_s "$tmp/p.err"
		i=$((i + 1))
	done | median >"$tmp/pre"
	awk -v e="$enc" -v b="$base" -v p="$(cat "$tmp/pre")" -v n="$(pre_n "$tmp/p.err")" 'BEGIN {
		printf "  %-10s %6s %6d %9s %9.3f %9.3f %8.2f %8s\n", "fastv", "R=50%", n, "-", p, e + p, b / p, "-" }'
	grep 'fastv:' "$tmp/p.err" | sed 's/^/    /'
	# FlowCut inside the encoder (class-token encoders only): the encoder
	# itself runs on fewer tokens; encoder time is its own, median of REPS
	[ "$flowcut" = 1 ] || return 0
	for bud in "$@"; do
		i=0
		while [ $i -lt "$REPS" ]; do
			"$E" --mmproj "$mmproj" -t "$THREADS" --prune flowcut $bud -v -i "$tmp/p.wst" "$image" \
				>"$tmp/fc.wst" 2>"$tmp/fc.err" || return 1
			enc_s "$tmp/fc.err"
			i=$((i + 1))
		done | median >"$tmp/fenc"
		"$P" -m "$llm" -t "$THREADS" -v "$tmp/fc.wst" 2>"$tmp/p.err" >/dev/null || return 1
		awk -v bud="${bud#--* }" -v e="$(cat "$tmp/fenc")" -v e0="$enc" -v b="$base" -v p="$(pre_s "$tmp/p.err")" \
			-v n="$(pre_n "$tmp/p.err")" 'BEGIN {
			printf "  %-10s %6s %6d %9s %9.3f %9.3f %8.2f %8s   encoder %.3f s (%.2fx)\n", "flowcut", bud, n, "-", p,
				e + p, b / p, "-", e, e0 / e }'
	done
}

if [ "$LLAVA" = 1 ]; then
	bench "LLaVA-1.5-shaped (CLIP-L/336, 1B Llama Q4_1)" "$LLM" "$CLIP" \
	"USER: <image>
Look at the picture carefully and describe every object you can see in it, where each one stands, what colour it has, and how the objects relate to each other; then say what the scene is most likely to show and why. ASSISTANT:" \
	"$IMG" 1 "--keep 64" "--keep 128" "--keep 192" ||
		echo "prune bench: a LLaVA-shaped run failed"
fi

if [ "$SMOLVLM" = 1 ] && [ -f "$SIG" ] && [ -f "$SLM" ]; then
	bench "SmolVLM-shaped (SigLIP-B/512 tiles, SmolLM2-135M Q4_1)" "$SLM" "$SIG" \
		"<|im_start|>User:<image>Describe this image in detail, object by object.<end_of_utterance>
Assistant:" "$IMG" 0 "--ratio 0.1111" "--ratio 0.2222" "--ratio 0.3333" ||
		echo "prune bench: a SmolVLM-shaped run failed"
fi
exit 0
