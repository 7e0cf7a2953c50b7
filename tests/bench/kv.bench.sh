# kv.bench.sh - what KV compression buys on SmolLM2-135M-Instruct (Q4_1):
# for prompts of about 4k and 8k tokens, each compressed form of the cache
# against the F16 cache prefill writes: the cache's bytes (weft_kv_bytes, as
# kvcompress -v reports them, and as a fraction of F16), the stream's bytes,
# the compression time against the prefill's (pack: the stream is what
# shrinks; decode unpacks to F16), decode tokens/s (best of REPS
# runs of -n 64, greedy) and decode's peak RSS.  CTX (default "4000 8000"),
# THREADS (default 1: decode's attention at one thread is what the cache
# size moves most), REPS (default 3), FORMS (default below).
set -u
THREADS=${THREADS:-1}
REPS=${REPS:-3}
CTX=${CTX:-4000 8000}
FORMS=${FORMS:-"none snapkv:ratio=0.75 adakv:ratio=0.75 duo:ratio=0.75 kivi8 kivi4 kivi2 snapkv:ratio=0.5,kivi4 think:ratio=0.5 gear minicache pack8 pack4"}
B=${WEFT_BIN:-bin}
cache=$(scripts/cache-dir)
M=$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf
if [ ! -f "$M" ]; then
	echo "kv bench: $M absent (scripts/fetch-models)"
	exit 0
fi
tmp=${TMPDIR:-/tmp}/weft-kvbench.$$
mkdir -p "$tmp" || exit 2
trap 'rm -rf "$tmp"' EXIT
echo "SmolLM2-135M-Instruct Q4_1, decode -t $THREADS, best of $REPS x 64 tokens; kernels: $("$B/decode" --version >/dev/null; echo "${WEFT_KERNELS:-best}")"
for n in $CTX; do
	# a deterministic text of about n tokens (one token per word)
	awk -v n="$n" 'BEGIN { split("the quick brown fox jumps over lazy dog while seven wise owls count silver coins under a quiet moon and rivers sing old songs to patient stones", w, " ");
		s = 1; for (i = 0; i < n - 12; i++) { s = (s * 1103515245 + 12345) % 2147483648; printf "%s ", w[1 + int(s / 65536) % 26] } print "" }' >"$tmp/text"
	"$B/tokenize" -m "$M" -f "$tmp/text" >"$tmp/t.wst"
	t0=$(date +%s.%N)
	"$B/prefill" -m "$M" -t "$THREADS" --window-q 64 --q-stats "$tmp/t.wst" >"$tmp/c.wst" || { echo "prefill failed"; exit 1; }
	t1=$(date +%s.%N)
	pre=$(echo "$t1 - $t0" | bc)
	np=$("$B/inspect" -n 1 "$tmp/c.wst" | sed -n "s/^  weft.n_past = //p" | head -n 1)
	echo "context $np tokens: prefill $pre s"
	printf '  %-26s %12s %7s %12s %8s %9s %9s %9s\n' form "cache bytes" "of F16" "stream" "comp s" "of pref." "tok/s" "RSS MB"
	f16=0 base=0
	for form in $FORMS; do
		if [ "$form" = none ]; then
			cp "$tmp/c.wst" "$tmp/k.wst"
			"$B/kvcompress" -m "$M" --method knorm --ratio 0 -v "$tmp/c.wst" 2>"$tmp/v" >/dev/null
			comp=0
		elif [ "${form#pack}" != "$form" ]; then # transport: the stream's bytes are the point
			t0=$(date +%s.%N)
			"$B/kvcompress" -m "$M" --pack --pack-bits "${form#pack}" --drop-stats -v "$tmp/c.wst" 2>"$tmp/v" >"$tmp/k.wst"
			t1=$(date +%s.%N)
			comp=$(echo "$t1 - $t0" | bc)
		else
			t0=$(date +%s.%N)
			"$B/kvcompress" -m "$M" -t "$THREADS" --method "$form" -v "$tmp/c.wst" 2>"$tmp/v" >"$tmp/k.wst" ||
				{ echo "  $form: $(tail -n 1 "$tmp/v")"; continue; }
			t1=$(date +%s.%N)
			comp=$(echo "$t1 - $t0" | bc)
		fi
		bytes=$(sed -n 's/.* -> \([0-9]*\) bytes.*/\1/p' "$tmp/v")
		frac=$(sed -n 's/.*, \([0-9.]*\) of F16).*/\1/p' "$tmp/v")
		best=0 rss=0
		for r in $(seq "$REPS"); do
			/usr/bin/time -f 'rss %M' "$B/decode" -m "$M" -t "$THREADS" --greedy -n 64 --ignore-eos -v "$tmp/k.wst" \
				>/dev/null 2>"$tmp/d"
			ts=$(sed -n 's/.*(\([0-9.]*\) tokens\/s).*/\1/p' "$tmp/d")
			rs=$(sed -n 's/^rss //p' "$tmp/d")
			best=$(echo "$ts $best" | awk '{ print ($1 > $2) ? $1 : $2 }')
			rss=$rs
		done
		[ "$form" = none ] && base=$best
		printf '  %-26s %12s %7s %12s %8.3f %8.1f%% %9s %9d   x%.2f\n' "$form" "$bytes" "$frac" "$(wc -c <"$tmp/k.wst")" \
			"$comp" "$(echo "100 * $comp / $pre" | bc -l)" "$best" "$((rss / 1024))" "$(echo "$best / $base" | bc -l)"
	done
done
