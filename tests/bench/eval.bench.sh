# eval.bench.sh - eval-interleaved: harness overhead, throughput, memory.
#   1. The MMMU-Pro sample (../shared/data/mmmu-pro-sample, 21 items) on the
#      tiny LLaVA fixture (tests/data/vlm, -c 4096: its prompts exceed the
#      fixture's 256-token context): harness overhead = 1 - (the pipeline's
#      own time: tokenize + encode + prefill + decode, summed from the
#      records) / the process's wall time, fork to exit (bench_walltime;
#      starting, loading the models, reading, scoring, writing records and
#      the summary, exiting are the harness); items/s.
#      The same on the tiny Idefics3 fixture (SmolVLM's image splitting:
#      more tiles per image).
#   2. SmolLM2-135M (the cache's Q4_1) on the same sample with its images
#      and placeholders removed (text only): items/s.
#   3. 1000 generated items (tiny LLaVA, the fixture images in turn): the
#      same figures, and memory: peak RSS (the records' rss_kb) after 10
#      and after 1000 items.
# Each figure: the median of REPS runs (and the best), THREADS threads.
# The machine may be shared: wall times include waiting for a CPU.
set -u
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-5}
: "${WEFT_BIN:=bin}"
E="$WEFT_BIN/eval-interleaved"
LM=tests/data/vlm/tiny-llava-llm-f32.gguf LP=tests/data/vlm/tiny-llava-mmproj-legacy.gguf
IM=tests/data/vlm/tiny-idefics3-llm-f32.gguf IP=tests/data/vlm/tiny-idefics3-mmproj-f32.gguf
sample=${WEFT_SHARED:-../shared}/data/mmmu-pro-sample/data.jsonl
smol=$(scripts/cache-dir)/models/SmolLM2-135M-Instruct.Q4_1.gguf
command -v jq >/dev/null || { echo "eval bench: needs jq"; exit 0; }
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# the process's wall time, fork to exit (bench_walltime; `date` before and
# after counted one date process's exit and the next one's start)
WALL=${WEFT_BENCHBIN:-build/bench}/bench_walltime
[ -x "$WALL" ] || { echo "eval bench: $WALL not built (make bench builds it)"; exit 0; }
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
	else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# bench LABEL BENCH MODEL-ARGS...: REPS runs; prints overhead and items/s
bench() {
	label=$1 data=$2; shift 2
	: >"$tmp/ovh"; : >"$tmp/ips"
	r=0; while [ $r -lt "$REPS" ]; do
		$WALL "$tmp/wall" "$E" run "$@" -t "$THREADS" "$data" -o "$tmp/run.jsonl" --summary "$tmp/sum.json" || return
		wall=$(cat "$tmp/wall")
		pipe=$(tail -n +2 "$tmp/run.jsonl" | jq -s 'map(.time | .tokenize_ms + .encode_ms + .prefill_ms + .decode_ms) | add / 1000')
		n=$(jq .done "$tmp/sum.json")
		echo "$wall $pipe" | awk '{ printf "%.3f\n", 100 * (1 - $2 / $1) }' >>"$tmp/ovh"
		echo "$wall $n" | awk '{ printf "%.2f\n", $2 / $1 }' >>"$tmp/ips"
		r=$((r + 1))
	done
	printf '  %-34s harness overhead %6.2f %% (best %.2f %%)   %8.1f items/s (best %.1f)   %s items, %s threads\n' \
		"$label" "$(median <"$tmp/ovh")" "$(sort -g "$tmp/ovh" | head -n 1)" "$(median <"$tmp/ips")" \
		"$(sort -g "$tmp/ips" | tail -n 1)" "$n" "$THREADS"
}

if [ -f "$sample" ]; then
	bench "mmmu-pro-sample, tiny LLaVA" "$sample" -m $LM --mmproj $LP --template vicuna -c 4096
	bench "mmmu-pro-sample, tiny Idefics3" "$sample" -m $IM --mmproj $IP --template smolvlm -c 8192
	if [ -f "$smol" ]; then
		jq -c 'with_entries(select(.key | startswith("image_") | not))
			| .question |= gsub("<image [0-9]+>"; "") | .options |= map(gsub("<image [0-9]+>"; "(an image)"))' \
			"$sample" >"$tmp/text.jsonl"
		bench "mmmu-pro-sample text, SmolLM2" "$tmp/text.jsonl" -m "$smol"
	else
		echo "  SmolLM2 not in the cache (scripts/fetch-models): text-only figure skipped"
	fi
else
	echo "  $sample not found: MMMU-Pro figures skipped"
fi

# memory over a long run
i=0
while [ $i -lt 1000 ]; do
	case $((i % 3)) in 0) img=red ;; 1) img=wide ;; *) img=tall ;; esac
	printf '{"id": "g%d", "question": "Item %d: what is in <image 1>?", "images": ["%s/tests/data/eval/img/%s.png"], "choices": ["red", "green", "blue"], "answer": "A"}\n' \
		$i $i "$(pwd)" $img
	i=$((i + 1))
done >"$tmp/gen.jsonl"
bench "1000 generated items, tiny LLaVA" "$tmp/gen.jsonl" -m $LM --mmproj $LP --template vicuna
rss10=$(sed -n 11p "$tmp/run.jsonl" | jq .time.rss_kb)
rss1000=$(sed -n 1001p "$tmp/run.jsonl" | jq .time.rss_kb)
printf '  peak RSS after 10 items %s kB, after 1000 items %s kB\n' "$rss10" "$rss1000"
