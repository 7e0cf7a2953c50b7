# tokenize.bench.sh - tokenizer throughput (MB/s) of weft's tokenize vs
# llama.cpp's llama-tokenize on the same text and GGUF, same run.
# Both print ids as text; special-token parsing off, BOS off, escapes off.
# Best of $RUNS wall-clock times; start-up (empty input) reported apart.
set -u
RUNS=${RUNS:-5}
MIB=${MIB:-4}
cache=$(scripts/cache-dir)
peer=$cache/peer/llama.cpp-0.3.36/bin/llama-tokenize
[ -x "$peer" ] || peer=
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
sh tests/bench/mixed-text.sh "$tmp/text" "$MIB"
: >"$tmp/empty"
bytes=$(wc -c <"$tmp/text")

best() { # command... : best wall time in seconds over RUNS
	b=
	i=0
	while [ $i -lt "$RUNS" ]; do
		s=$(date +%s.%N)
		"$@" >/dev/null 2>&1 || { echo "bench: command failed: $*" >&2; return 1; }
		e=$(date +%s.%N)
		b=$(echo "$s $e ${b:-1e9}" | awk '{ t = $2 - $1; print (t < $3 ? t : $3) }')
		i=$((i + 1))
	done
	echo "$b"
}

models=
[ -f ../shared/data/vocab/ggml-vocab-gpt-2.gguf ] && models="$models ../shared/data/vocab/ggml-vocab-gpt-2.gguf"
[ -f ../shared/data/vocab/ggml-vocab-llama-spm.gguf ] && models="$models ../shared/data/vocab/ggml-vocab-llama-spm.gguf"
m=$(scripts/fetch-models 2>/dev/null) && models="$models $m"
[ -n "$models" ] || { echo "tokenize bench: no GGUF available (../shared or scripts/fetch-models)"; exit 0; }
[ -n "$peer" ] || echo "tokenize bench: llama-tokenize not built (scripts/build-peer): weft figures only"

printf '%-40s %10s %10s %10s %10s %8s\n' "vocab ($bytes bytes of text)" "weft MB/s" "peer MB/s" "weft start" "peer start" "ratio"
for m in $models; do
	w=$(best "$WEFT_BIN/tokenize" -m "$m" --ids --no-bos --no-parse-special -f "$tmp/text") || exit 1
	w0=$(best "$WEFT_BIN/tokenize" -m "$m" --ids --no-bos --no-parse-special -f "$tmp/empty") || exit 1
	if [ -n "$peer" ]; then
		p=$(best "$peer" -m "$m" --ids --no-bos --no-escape --log-disable -f "$tmp/text") || exit 1
		p0=$(best "$peer" -m "$m" --ids --no-bos --no-escape --log-disable -f "$tmp/empty") || exit 1
	else
		p=0 p0=0
	fi
	echo "$(basename "$m") $bytes $w $p $w0 $p0" | awk '{
		wm = $2 / ($3 - $5) / 1e6; pm = ($4 > 0) ? $2 / ($4 - $6) / 1e6 : 0
		printf "%-40s %10.2f %10.2f %9.3fs %9.3fs %7.2fx\n", $1, wm, pm, $5, $6, (pm > 0 ? wm / pm : 0) }'
done
echo "(MB/s = text bytes / (best time - best start-up time); ratio = weft / llama.cpp)"
