# llm.bench.sh - prefill (pp512) and decode (tg128) tokens/s of weft vs
# llama.cpp's llama-bench, same machine, same run, same GGUF, same threads.
# Models: scripts/make-bench-models.py (SmolLM2-135M Q4_1/Q8_0/F16 and a
# random ~1.2B Llama-shaped Q4_1).  THREADS (default: nproc), REPS (3).
# For Q4_1 and Q8_0 models, also weft's llama.cpp kernel level
# (--numerics llama.cpp: llama.cpp's arithmetic, bit for bit), where the CPU
# has it.
set -u
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-3}
cache=$(scripts/cache-dir)
peer=$cache/peer/llama.cpp-0.3.36/bin/llama-bench
models=$cache/bench-models
if [ ! -d "$models" ]; then
	echo "llm bench: no models; run \$(scripts/venv)/bin/python scripts/make-bench-models.py"
	exit 0
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
bench_llm=${WEFT_BENCHBIN:-build/bench}/bench_llm
echo "threads $THREADS, best of $REPS; llama.cpp: llama-bench -p 512 -n 128 -t $THREADS -r $REPS"
for m in "$models"/*.gguf; do
	name=$(basename "$m" .gguf)
	w=$("$bench_llm" "$m" "$THREADS" 512 128 "$REPS" 2>"$tmp/w.err") || {
		echo "$name: weft failed: $(tail -n 1 "$tmp/w.err")"; continue; }
	if [ -x "$peer" ]; then
		/usr/bin/time -f 'rss %M' "$peer" -m "$m" -p 512 -n 128 -t "$THREADS" -r "$REPS" -o csv \
			>"$tmp/p.csv" 2>"$tmp/p.err"
		# csv columns: ... n_prompt, n_gen, ..., avg_ts (by header name)
		p=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); col[$i] = i } next }
			{ gsub(/"/, ""); if ($col["n_prompt"] > 0) pp = $col["avg_ts"]; else tg = $col["avg_ts"] }
			END { printf "pp512 %.2f t/s  tg128 %.2f t/s", pp, tg }' "$tmp/p.csv")
		prss=$(sed -n 's/^rss //p' "$tmp/p.err" | tail -n 1)
	else
		p="(llama-bench not built: scripts/build-peer)" prss=0
	fi
	echo "$name"
	echo "  weft:      $w"
	case $name in *q4_1* | *q8_0*)
		wl=$(WEFT_KERNELS=llama.cpp "$bench_llm" "$m" "$THREADS" 512 128 "$REPS" 2>/dev/null)
		case $wl in *"kernels llama.cpp"*) echo "  weft llama.cpp numerics: $wl" ;; esac ;;
	esac
	echo "  llama.cpp: $p (max RSS $((prss / 1024)) MB)"
done
