# eval.sh - eval-interleaved end to end on the committed fixtures
# (tests/data/eval, the tiny VLMs of tests/data/vlm): a run equals the
# shell pipeline token for token, runs are deterministic, every format
# runs, bad items fail alone with their reason, resume after a kill and
# shards + merge give the uninterrupted summary, score, compare, plot, and
# the file-level errors (one line, exit 1, no output).
suite=eval
. tests/tools/lib.sh
E="$WEFT_BIN/eval-interleaved"
D=tests/data/eval
LM=tests/data/vlm/tiny-llava-llm-f32.gguf LP=tests/data/vlm/tiny-llava-mmproj-legacy.gguf
IM=tests/data/vlm/tiny-idefics3-llm-f32.gguf IP=tests/data/vlm/tiny-idefics3-mmproj-f32.gguf
RUN="$E run -m $LM --mmproj $LP --template vicuna -t 2"
# records without their timings (the last field)
strip() { tail -n +2 "$1" | sed 's/,"time":{[^}]*}}$/}/'; }
# a summary without timings and run details
plain() { jq -S 'del(.time, .run)' "$1"; }

# ---- a run equals the shell pipeline, item for item ----
pipeline() { # model mmproj template question images...
	m=$1 p=$2 t=$3 q=$4; shift 4
	if [ $# -gt 0 ]; then
		"$WEFT_BIN/tokenize" -m "$m" --chat --template "$t" "$q" | "$WEFT_BIN/encode-image" --mmproj "$p" "$@" |
			"$WEFT_BIN/prefill" -m "$m" | "$WEFT_BIN/decode" -m "$m" --greedy -n 16 --tokens
	else
		"$WEFT_BIN/tokenize" -m "$m" --chat --template "$t" "$q" | "$WEFT_BIN/prefill" -m "$m" |
			"$WEFT_BIN/decode" -m "$m" --greedy -n 16 --tokens
	fi | "$WEFT_BIN/inspect" -j -n 1000 | jq -c '.tensors[0].values'
}
for fx in llava idefics3; do
	if [ $fx = llava ]; then m=$LM p=$LP t=vicuna; else m=$IM p=$IP t=smolvlm; fi
	"$E" run -m $m --mmproj $p --template $t -n 16 $D/short.jsonl -o "$TMP/short.jsonl" --summary "$TMP/s.json" 2>"$TMP/err"
	{ pipeline $m $p $t 'Colour of <image 1>?' $D/img/red.png
	  pipeline $m $p $t '<image 1> or <image 2>?' $D/img/wide.png $D/img/tall.png
	  pipeline $m $p $t 'Say hi.'; } >"$TMP/pipe"
	tail -n +2 "$TMP/short.jsonl" | jq -c '.tokens' >"$TMP/ours"
	if [ "$(wc -l <"$TMP/ours")" -eq 3 ] && cmp -s "$TMP/pipe" "$TMP/ours"; then pass "pipeline_$fx"
	else fail "pipeline_$fx" "tokens differ: pipeline $(tr '\n' ' ' <"$TMP/pipe") eval $(tr '\n' ' ' <"$TMP/ours") $(head -c 200 "$TMP/err")"; fi
done
smol=$(smollm2)
if [ -n "$smol" ]; then
	printf '{"id": "t1", "question": "What is the capital of France?", "answer": "Paris"}\n' >"$TMP/text.jsonl"
	"$E" run -m "$smol" -n 16 "$TMP/text.jsonl" -o "$TMP/text-run.jsonl" --summary "$TMP/s.json"
	a=$(tail -n 1 "$TMP/text-run.jsonl" | jq -c .tokens)
	b=$("$WEFT_BIN/tokenize" -m "$smol" --chat 'What is the capital of France?' | "$WEFT_BIN/prefill" -m "$smol" |
		"$WEFT_BIN/decode" -m "$smol" --greedy -n 16 --tokens | "$WEFT_BIN/inspect" -j -n 100 | jq -c '.tensors[0].values')
	[ -n "$a" ] && [ "$a" = "$b" ] && pass pipeline_smollm2 || fail pipeline_smollm2 "eval $a, pipeline $b"
else
	skip pipeline_smollm2 "SmolLM2 not in the cache (scripts/fetch-models)"
fi

# ---- with stages: --prune / --kv equal prune-tokens / kvcompress in the pipeline ----
# tokenize | encode-image [ENC] | prune-tokens [PRUNE] | prefill [PF] | kvcompress [KV] | decode
pipeline_stages() { # model mmproj template "ENC" "PRUNE" "PF" "KV" question images...
	m=$1 p=$2 t=$3 enc=$4 pa=$5 pf=$6 ka=$7 q=$8; shift 8
	"$WEFT_BIN/tokenize" -m "$m" --chat --template "$t" "$q" |
		if [ $# -gt 0 ]; then "$WEFT_BIN/encode-image" --mmproj "$p" $enc "$@" |
			if [ -n "$pa" ]; then "$WEFT_BIN/prune-tokens" $pa; else cat; fi; else cat; fi |
		"$WEFT_BIN/prefill" -m "$m" $pf | if [ -n "$ka" ]; then "$WEFT_BIN/kvcompress" -m "$m" $ka; else cat; fi |
		"$WEFT_BIN/decode" -m "$m" --greedy -n 16 --tokens | "$WEFT_BIN/inspect" -j -n 1000 | jq -c '.tensors[0].values'
}
# name|fixture|eval --prune|eval --kv|encode-image opts|prune-tokens opts|prefill opts|kvcompress opts
cat >"$TMP/stages" <<'END'
visionzip_snapkv|llava|visionzip:keep=8|snapkv:window=8:ratio=0.5|--stats keys|--method visionzip --keep 8|--window-q 8|--method snapkv:window=8 --ratio 0.5
cdpruner_h2o|llava|cdpruner:keep=8|h2o:ratio=0.75||--method cdpruner --keep 8 -m MODEL|--mass|--method h2o --ratio 0.75
fastv_kivi4|llava|fastv:keep=8:layer=1|kivi4||--method fastv --keep 8 -P layer=1||--method kivi4
dart_adakv|llava|dart:ratio=0.25:layer=1|adakv:scorer=tova:ratio=0.5||--method dart --ratio 0.25 -P layer=1|--window-q 1|--method adakv:scorer=tova --ratio 0.5
flowcut|llava|flowcut:keep=8||--prune flowcut --keep 8|||
expected_attention|llava||expected-attention:ratio=0.5|||--q-stats|--method expected-attention --ratio 0.5
pool_knorm_smolvlm|idefics3|pool:keep=4|knorm:ratio=0.5||--method pool --keep 4||--method knorm --ratio 0.5
END
while IFS='|' read -r name fx ep ek enc pa pf ka; do
	if [ $fx = llava ]; then m=$LM p=$LP t=vicuna; else m=$IM p=$IP t=smolvlm; fi
	args=; [ -n "$ep" ] && args="--prune $ep"; [ -n "$ek" ] && args="$args --kv $ek"
	"$E" run -m $m --mmproj $p --template $t -n 16 $args $D/short.jsonl -o "$TMP/st.jsonl" --summary "$TMP/st.sum" 2>"$TMP/err"
	pa=$(printf '%s' "$pa" | sed "s|MODEL|$m|")
	{ pipeline_stages $m $p $t "$enc" "$pa" "$pf" "$ka" 'Colour of <image 1>?' $D/img/red.png
	  pipeline_stages $m $p $t "$enc" "$pa" "$pf" "$ka" '<image 1> or <image 2>?' $D/img/wide.png $D/img/tall.png
	  pipeline_stages $m $p $t "$enc" "$pa" "$pf" "$ka" 'Say hi.'; } >"$TMP/pipe" 2>>"$TMP/err"
	tail -n +2 "$TMP/st.jsonl" | jq -c '.tokens' >"$TMP/ours"
	# the stage changed something: not the tokens of the run without it
	"$E" run -m $m --mmproj $p --template $t -n 16 $D/short.jsonl -o "$TMP/pl.jsonl" --summary "$TMP/pl.sum"
	tail -n +2 "$TMP/pl.jsonl" | jq -c '.tokens' >"$TMP/plain"
	want=$(printf '%s %s' "${ep:+prune}" "${ek:+kv}" | xargs)
	got=$(jq -r '.config.options.stages | map(.name) | join(" ")' "$TMP/st.sum")
	if [ "$(wc -l <"$TMP/ours")" -eq 3 ] && cmp -s "$TMP/pipe" "$TMP/ours" && ! cmp -s "$TMP/plain" "$TMP/ours" &&
		[ "$got" = "$want" ]; then pass "stages_$name"
	else fail "stages_$name" "stages '$got'; pipeline $(tr '\n' ' ' <"$TMP/pipe") eval $(tr '\n' ' ' <"$TMP/ours") without $(tr '\n' ' ' <"$TMP/plain") $(head -c 300 "$TMP/err")"; fi
done <"$TMP/stages"
# the record's costs: visual tokens kept, the cache's bytes after compression
"$E" run -m $LM --mmproj $LP --template vicuna -n 4 --prune random:keep=4 --kv kivi2 $D/short.jsonl -o "$TMP/sr.jsonl" --summary "$TMP/sr.sum"
"$E" run -m $LM --mmproj $LP --template vicuna -n 4 $D/short.jsonl -o "$TMP/s0.jsonl" --summary "$TMP/s0.sum"
k=$(tail -n +2 "$TMP/sr.jsonl" | jq -s -c 'map([.visual_tokens, .visual_kept])')
b1=$(tail -n +2 "$TMP/sr.jsonl" | jq -s 'map(.kv_bytes) | add') b0=$(tail -n +2 "$TMP/s0.jsonl" | jq -s 'map(.kv_bytes) | add')
[ "$k" = "[[16,4],[32,8],[0,0]]" ] && [ "$b1" -lt "$b0" ] && pass stage_costs || fail stage_costs "visual $k, kv bytes $b1 vs $b0"
"$E" compare "$TMP/s0.jsonl" "$TMP/sr.jsonl" >"$TMP/cmp.json"
[ "$(jq -r '[.stages_a, (.stages_b | map(.name + " " + .params + " " + .at))] | tostring' "$TMP/cmp.json")" = \
	'[[],["prune random keep=4 scope=image seed=0 tiles","kv kivi2 ratio=0.5 cache"]]' ] && pass compare_stages ||
	fail compare_stages "$(jq -c '[.stages_a, .stages_b]' "$TMP/cmp.json")"
# the stages are the run's configuration: --resume refuses others
expect_error resume_other_stage "made with another configuration" "$E" run -m $LM --mmproj $LP --template vicuna -n 4 \
	--prune random:keep=5 --kv kivi2 $D/short.jsonl -o "$TMP/sr.jsonl" --resume
expect_error prune_unknown "--prune nope:keep=4: unknown pruning method 'nope'" $RUN --prune nope:keep=4 $D/short.jsonl -o "$TMP/x.jsonl"
expect_error prune_keep0 "--prune random:keep=0: keep=0: a budget of 0 tokens keeps nothing" $RUN --prune random:keep=0 $D/short.jsonl -o "$TMP/x.jsonl"
expect_error kv_bad_ratio "--kv snapkv:ratio=1.5" $RUN --kv snapkv:ratio=1.5 $D/short.jsonl -o "$TMP/x.jsonl"
expect_error kv_unknown "--kv bogus" $RUN --kv bogus $D/short.jsonl -o "$TMP/x.jsonl"
# the likelihood scorer runs on the compressed cache
$RUN --mc-score likelihood --kv kivi4 $D/weft.jsonl -o "$TMP/llkv.jsonl" --summary "$TMP/llkv.sum"; rc=$?
[ $rc -eq 0 ] && [ "$(jq .failed "$TMP/llkv.sum")" = 0 ] &&
	[ "$(tail -n +2 "$TMP/llkv.jsonl" | jq -s 'map(select(.metric == "mc" and (.option_ll | length) >= 2)) | length')" -gt 0 ] &&
	pass likelihood_kv || fail likelihood_kv "status $rc: $(head -c 300 "$TMP/llkv.sum")"

# ---- a run: records, summary, determinism ----
$RUN $D/weft.jsonl -o "$TMP/a.jsonl" --summary "$TMP/a.sum" 2>"$TMP/err"; rc=$?
n=$(tail -n +2 "$TMP/a.jsonl" | wc -l)
if [ $rc -eq 0 ] && [ "$n" -eq 7 ] && [ "$(jq .done "$TMP/a.sum")" = 7 ] && [ "$(jq .failed "$TMP/a.sum")" = 0 ] &&
	[ "$(jq -r '.categories | keys | join(",")' "$TMP/a.sum")" = "color,count,doc,shape,text" ] &&
	[ "$(tail -n 1 "$TMP/a.jsonl" | jq '.visual_tokens')" = 32 ] && [ ! -s "$TMP/err" ]; then pass run
else fail run "status $rc, $n records, $(head -c 300 "$TMP/err")"; fi
$RUN $D/weft.jsonl -o "$TMP/b.jsonl" --summary "$TMP/b.sum"
strip "$TMP/a.jsonl" >"$TMP/a.rec"; strip "$TMP/b.jsonl" >"$TMP/b.rec"
cmp -s "$TMP/a.rec" "$TMP/b.rec" && [ "$(sed -n 1p "$TMP/a.jsonl")" = "$(sed -n 1p "$TMP/b.jsonl")" ] &&
	[ "$(plain "$TMP/a.sum")" = "$(plain "$TMP/b.sum")" ] && pass deterministic ||
	fail deterministic "two runs differ: $(diff "$TMP/a.rec" "$TMP/b.rec" | head -c 300)"

# progress on a terminal only (the run above was quiet)
if command -v script >"$TMP/null" 2>&1; then
	script -qc "$RUN $D/weft.jsonl -o $TMP/tty.jsonl --summary $TMP/tty.sum" "$TMP/tty.out" >"$TMP/tty.log" 2>&1
	grep -q "7/7 items, .* items/s, ETA .*, accuracy 0.000, 0 failed" "$TMP/tty.out" && pass progress_on_tty ||
		fail progress_on_tty "no progress line: $(tail -c 200 "$TMP/tty.out")"
else
	skip progress_on_tty "script(1) not installed"
fi

# ---- every format; the shared MMMU-Pro sample unmodified ----
for f in mmmu.jsonl muir.jsonl bench.tsv; do
	$RUN $D/$f -o "$TMP/f.jsonl" --summary "$TMP/f.sum" 2>"$TMP/err"; rc=$?
	want=0; [ $f = bench.tsv ] && want=3 # one broken base64 cell
	[ $rc -eq $want ] && [ "$(jq .done "$TMP/f.sum")" = "$(jq .items "$TMP/f.sum")" ] && pass "format_$f" ||
		fail "format_$f" "status $rc: $(head -c 300 "$TMP/err")"
done
[ "$(tail -n +2 "$TMP/f.jsonl" | jq -r 'select(.id == "4") | .error')" = "image 1 (base64): bad base64 at character 1" ] &&
	pass tsv_broken_base64 || fail tsv_broken_base64 "$(tail -n +2 "$TMP/f.jsonl" | jq -c 'select(.id == "4")')"
if [ -n "$SHARED" ] && [ -f "$SHARED/mmmu-pro-sample/data.jsonl" ]; then
	$RUN -c 4096 "$SHARED/mmmu-pro-sample/data.jsonl" -o "$TMP/mmmu.jsonl" --summary "$TMP/mmmu.sum" 2>"$TMP/err"; rc=$?
	[ $rc -eq 0 ] && [ "$(jq .done "$TMP/mmmu.sum")" = 21 ] && [ "$(jq .failed "$TMP/mmmu.sum")" = 0 ] &&
		[ "$(jq '.categories.ai2d.n' "$TMP/mmmu.sum")" = 10 ] && pass mmmu_pro_sample ||
		fail mmmu_pro_sample "status $rc: $(head -c 300 "$TMP/err")"
else
	skip mmmu_pro_sample "../shared/data/mmmu-pro-sample not found"
fi

# ---- bad items fail alone, with their reason; the run goes on ----
$RUN $D/bad.jsonl -o "$TMP/bad.jsonl" --summary "$TMP/bad.sum" 2>"$TMP/err"; rc=$?
errs=$(tail -n +2 "$TMP/bad.jsonl" | jq -r '.id + ": " + (.error // "ok")')
ok=1
for want in "ok-1: ok" "2: malformed JSON" "count: <image 2> but the item has 1 image" \
	"unused: image 2 (tests/data/eval/img/tall.png) has no <image 2> placeholder" \
	"missing: image 1 (tests/data/eval/img/missing.png): cannot open" "corrupt: image 1 (tests/data/eval/img/corrupt.png)" \
	"ok-1: duplicate id (first on line 1)" "letter: answer 'D' is outside the options A..B" \
	"metric: metric: unknown metric 'bleu'" "10: not a JSON object" "ok-2: ok"; do
	printf '%s\n' "$errs" | grep -qF -- "$want" || { ok=0; fail bad_items "no '$want' among: $(printf '%s' "$errs" | tr '\n' '|')"; }
done
[ $ok = 1 ] && [ $rc -eq 3 ] && [ "$(jq .failed "$TMP/bad.sum")" = 9 ] && pass bad_items ||
	{ [ $ok = 0 ] || fail bad_items "status $rc (expected 3), failed $(jq .failed "$TMP/bad.sum")"; }
# status 3 comes with one line saying so, naming the first failure
want="eval-interleaved: $TMP/bad.jsonl: 9 of 11 items failed; their records say why (first: 2: malformed JSON:"
[ "$(wc -l <"$TMP/err")" -eq 1 ] && grep -qF -- "$want" "$TMP/err" && pass items_failed_line ||
	fail items_failed_line "stderr: $(head -c 300 "$TMP/err")"

# ---- resume: killed mid-way, then resumed = uninterrupted ----
: >"$TMP/long.jsonl"
i=0; while [ $i -lt 60 ]; do
	printf '{"id": "i%d", "question": "Colour of <image 1>? (%d)", "images": ["%s/img/red.png"], "choices": ["red", "green"], "answer": "A"}\n' \
		$i $i "$(pwd)/$D" >>"$TMP/long.jsonl"; i=$((i + 1)); done
$RUN -n 24 "$TMP/long.jsonl" -o "$TMP/full.jsonl" --summary "$TMP/full.sum"
$RUN -n 24 "$TMP/long.jsonl" -o "$TMP/killed.jsonl" --summary "$TMP/killed.sum" 2>"$TMP/bgerr" &
pid=$!
k=0; while [ "$(cat "$TMP/killed.jsonl" 2>"$TMP/null" | wc -l)" -lt 8 ] && [ $k -lt 400 ]; do sleep 0.02; k=$((k + 1)); done
kill -9 $pid 2>"$TMP/null"; wait $pid 2>"$TMP/null"
got=$(($(wc -l <"$TMP/killed.jsonl") - 1))
$RUN -n 24 "$TMP/long.jsonl" -o "$TMP/killed.jsonl" --summary "$TMP/killed.sum" --resume; rc=$?
if [ $got -ge 7 ] && [ $got -lt 60 ] && [ $rc -eq 0 ] && [ "$(plain "$TMP/full.sum")" = "$(plain "$TMP/killed.sum")" ] &&
	[ "$(strip "$TMP/full.jsonl" | sort)" = "$(strip "$TMP/killed.jsonl" | sort)" ]; then pass resume_after_kill
else plain "$TMP/full.sum" >"$TMP/x1"; plain "$TMP/killed.sum" >"$TMP/x2"
	fail resume_after_kill "killed after $got records, resume status $rc: $(diff "$TMP/x1" "$TMP/x2" | head -c 300)"; fi
# a record cut short is dropped and its item run again
head -c -40 "$TMP/full.jsonl" >"$TMP/torn.jsonl"
$RUN -n 24 "$TMP/long.jsonl" -o "$TMP/torn.jsonl" --summary "$TMP/torn.sum" --resume; rc=$?
[ $rc -eq 0 ] && [ "$(plain "$TMP/full.sum")" = "$(plain "$TMP/torn.sum")" ] && pass resume_torn_record ||
	fail resume_torn_record "status $rc"
expect_error resume_other_config "made with another configuration" $RUN -n 8 "$TMP/long.jsonl" -o "$TMP/torn.jsonl" --resume

# ---- a run's own summary (its records kept in memory, as they read back) =
# the summary of its run file read back: failed items, resumed runs, and
# categories whose invalid UTF-8 the records repair ----
printf 'index\timage\tquestion\tA\tB\tanswer\tcategory\n1\t\tIs it red?\tyes\tno\tA\tcol\351ur\n2\t\tWhy \377?\tyes\tno\tB\t\303\251t\303\251\n' >"$TMP/u.tsv"
$RUN -n 4 "$TMP/u.tsv" -o "$TMP/u.jsonl" --summary "$TMP/u.sum" 2>"$TMP/null"
ok=1
for r in full killed torn bad u; do
	"$E" summary "$TMP/$r.jsonl" >"$TMP/reread.sum" 2>"$TMP/err" && cmp -s "$TMP/$r.sum" "$TMP/reread.sum" ||
		{ ok=0; fail summary_in_memory "$r: $(diff "$TMP/$r.sum" "$TMP/reread.sum" | head -c 300) $(head -c 200 "$TMP/err")"; }
done
[ "$(jq -r '.categories | keys | join(",")' "$TMP/u.sum")" = "$(printf 'col\357\277\275ur,\303\251t\303\251')" ] ||
	{ ok=0; fail summary_in_memory "categories $(jq -c .categories "$TMP/u.sum")"; }
[ $ok = 1 ] && pass summary_in_memory

# ---- shards + merge = unsharded ----
for s in 1 2 3; do $RUN $D/weft.jsonl --shard $s/3 -o "$TMP/shard$s.jsonl" --summary "$TMP/shard$s.sum"; done
"$E" merge "$TMP/shard2.jsonl" "$TMP/shard3.jsonl" "$TMP/shard1.jsonl" -o "$TMP/merged.jsonl" --summary "$TMP/merged.sum"; rc=$?
strip "$TMP/merged.jsonl" >"$TMP/merged.rec"
[ $rc -eq 0 ] && [ "$(plain "$TMP/merged.sum")" = "$(plain "$TMP/a.sum")" ] && cmp -s "$TMP/a.rec" "$TMP/merged.rec" &&
	pass shard_merge || fail shard_merge "status $rc: $(diff "$TMP/a.rec" "$TMP/merged.rec" | head -c 300)"
expect_error merge_missing_shard "shard 3/3 is missing" "$E" merge "$TMP/shard1.jsonl" "$TMP/shard2.jsonl" -o "$TMP/m.jsonl"
[ ! -e "$TMP/m.jsonl" ] && pass merge_no_output || fail merge_no_output "a merged file was left"
expect_error merge_other_config "another configuration" "$E" merge "$TMP/shard1.jsonl" "$TMP/bad.jsonl" -o "$TMP/m.jsonl"
expect_error merge_twice "given twice" "$E" merge "$TMP/shard1.jsonl" "$TMP/shard1.jsonl" -o "$TMP/m.jsonl"

# ---- likelihood scoring, compare ----
$RUN --mc-score likelihood $D/weft.jsonl -o "$TMP/ll.jsonl" --summary "$TMP/ll.sum"; rc=$?
bad=$(tail -n +2 "$TMP/ll.jsonl" | jq -r 'select(.metric == "mc") | select(.rule != "likelihood" or
	(.option_ll | length) != 2 and (.option_ll | length) != 3 or
	.extracted != ("ABC"[(.option_ll | index(max)):(.option_ll | index(max)) + 1])) | .id')
[ $rc -eq 0 ] && [ -z "$bad" ] && pass likelihood || fail likelihood "status $rc; inconsistent: $bad"
"$E" compare "$TMP/a.jsonl" "$TMP/ll.jsonl" >"$TMP/cmp.json"; rc=$?
d=$(jq '.difference == .accuracy_b - .accuracy_a and .items == 7 and (.difference_ci95 | length) == 2
	and .ttft_ratio > 0 and .same_config == false' "$TMP/cmp.json")
[ $rc -eq 0 ] && [ "$d" = true ] && pass compare || fail compare "status $rc: $(head -c 300 "$TMP/cmp.json")"
expect_error compare_other_dataset "ran different datasets" "$E" compare "$TMP/a.jsonl" "$TMP/bad.jsonl"
expect_error compare_missing_items "lacks item" "$E" compare "$TMP/a.jsonl" "$TMP/shard1.jsonl"

# ---- score: predictions from elsewhere ----
"$E" score $D/preds.jsonl --gold $D/weft.jsonl -o "$TMP/score.jsonl" --summary "$TMP/score.sum"; rc=$?
got=$(tail -n +2 "$TMP/score.jsonl" | jq -r '.id + "=" + (.score | tostring) + ":" + .rule' | tr '\n' ' ')
want="color-1=1:paren shape-1=0:space count-1=1:exact vqa-1=1:vqa doc-1=0.9090909090909091:anls text-1=0:exact multi-1=0:none "
[ $rc -eq 0 ] && [ "$got" = "$want" ] && pass score || fail score "status $rc: $got"
printf '{"id": "nope", "prediction": "A"}\n' >"$TMP/p1.jsonl"
expect_error score_unknown_id "line 1: id 'nope' is not in the gold file" "$E" score "$TMP/p1.jsonl" --gold $D/weft.jsonl -o "$TMP/s.jsonl"
head -n 3 $D/preds.jsonl >"$TMP/p2.jsonl"
expect_error score_missing_id "no prediction for id 'vqa-1'" "$E" score "$TMP/p2.jsonl" --gold $D/weft.jsonl -o "$TMP/s.jsonl"
{ cat $D/preds.jsonl; sed -n 1p $D/preds.jsonl; } >"$TMP/p3.jsonl"
expect_error score_duplicate_id "line 8: id 'color-1' again (first on line 1)" "$E" score "$TMP/p3.jsonl" --gold $D/weft.jsonl -o "$TMP/s.jsonl"
[ ! -e "$TMP/s.jsonl" ] && pass score_no_output || fail score_no_output "a run file was left"

# ---- the plot, from committed summaries ----
if command -v gnuplot >"$TMP/null" 2>&1; then
	"$E" plot $D/summaries/*.json -o "$TMP/plot.png" 2>"$TMP/err"; rc=$?
	[ $rc -eq 0 ] && [ "$(head -c 4 "$TMP/plot.png" | od -An -c | tr -d ' ')" = '211PNG' ] && pass plot ||
		fail plot "status $rc: $(head -c 300 "$TMP/err")"
else
	skip plot "gnuplot not installed (Debian: gnuplot-nox)"
fi

# ---- file-level errors: one line, status 1, nothing written ----
expect_error no_model "no model given" "$E" run $D/weft.jsonl -o "$TMP/x.jsonl"
expect_error no_output "no run file given" "$E" run -m $LM $D/weft.jsonl
expect_error missing_bench "nothing.jsonl: No such file or directory" $RUN $D/nothing.jsonl -o "$TMP/x.jsonl"
expect_error not_a_bench "not a JSONL file" $RUN $D/img/red.png -o "$TMP/x.jsonl"
expect_error bad_format "unknown input format 'csv'" $RUN --format csv $D/weft.jsonl -o "$TMP/x.jsonl"
expect_error bad_shard "--shard: expected I/N" $RUN --shard 0/3 $D/weft.jsonl -o "$TMP/x.jsonl"
expect_error output_dir "is a directory" $RUN $D/weft.jsonl -o "$TMP"
expect_error no_template "choose one with --template" "$E" run -m $LM $D/weft.jsonl -o "$TMP/x.jsonl"
expect_error bad_mmproj "does not match" "$E" run -m tests/data/llm/tiny-llama256-q4_k_m.gguf --mmproj "$LP" --template vicuna $D/weft.jsonl -o "$TMP/x.jsonl"
expect_error not_a_run "not an eval-interleaved run file" "$E" summary $D/weft.jsonl
# a full disk, for the run file, the summary and standard output
if [ -w /dev/full ]; then
	expect_error full_run "/dev/full: No space left on device" $RUN $D/weft.jsonl -o /dev/full
	expect_error full_summary "/dev/full: write error: No space left on device" \
		$RUN $D/weft.jsonl -o "$TMP/full-ok.jsonl" --summary /dev/full
	expect_error full_stdout "<stdout>: write error: No space left on device" \
		sh -c "\"$E\" summary \"$TMP/full-ok.jsonl\" >/dev/full"
else
	skip full_disk "/dev/full not writable here"
fi
[ ! -e "$TMP/x.jsonl" ] && pass no_partial_output || fail no_partial_output "a run file was left"
"$E" frobnicate >"$TMP/out" 2>"$TMP/err"; rc=$?
[ $rc -eq 2 ] && grep -q "unknown subcommand 'frobnicate'" "$TMP/err" && pass unknown_subcommand || fail unknown_subcommand "status $rc"
exit $status
