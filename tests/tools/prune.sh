# prune.sh - prune-tokens end to end on the committed tiny VLMs
# (tests/data/vlm): every method on LLaVA- and SmolVLM-shaped streams through
# prefill and decode, budgets and scopes, the record and positions in the
# cache, the in-LLM directive, and every bad input with its one-line message.
suite=prune
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize E=$WEFT_BIN/encode-image P=$WEFT_BIN/prefill D=$WEFT_BIN/decode I=$WEFT_BIN/inspect
R=$WEFT_BIN/prune-tokens
VD=tests/data/vlm
LM=$VD/tiny-llava-mmproj-legacy.gguf LL=$VD/tiny-llava-llm-f32.gguf
IM=$VD/tiny-idefics3-mmproj-f32.gguf IL=$VD/tiny-idefics3-llm-f32.gguf

"$R" --help | grep -q "^Usage: prune-tokens" && "$R" --version | grep -q "^prune-tokens (weft) " &&
	pass help_version || fail help_version "--help or --version output wrong"
expect_error no_method "prune-tokens: no method given (--method NAME; --list shows them)" "$R" --keep 4
expect_error unknown_method "prune-tokens: unknown pruning method 'nope' (known: random, pool, cls" "$R" --method nope --keep 4
expect_error keep_zero "prune-tokens: --keep 0: a budget of 0 tokens keeps nothing" "$R" --method cls --keep 0
expect_error ratio_zero "prune-tokens: --ratio: '0' is not in (0, 1] (a budget of 0 tokens keeps nothing)" "$R" --method cls --ratio 0
expect_error ratio_negative "prune-tokens: --ratio: '-0.5' is not in (0, 1]" "$R" --method cls --ratio -0.5
expect_error ratio_over_one "prune-tokens: --ratio: '1.5' is not in (0, 1]" "$R" --method cls --ratio 1.5
expect_error no_budget "prune-tokens: no budget for cls: give --keep N or --ratio R" "$R" --method cls
expect_error unknown_param "prune-tokens: unknown parameter 'depth' for visionzip (known: contextual, layer)" \
	"$R" --method visionzip --keep 4 -P depth=2
expect_error bad_param "prune-tokens: parameter contextual of visionzip: 3 is out of range" \
	"$R" --method visionzip --keep 4 -P contextual=3
expect_error bad_scope "prune-tokens: --scope: 'page' is not image, tile or global" "$R" --method cls --keep 4 --scope page
expect_error bad_positions "prune-tokens: --positions: 'x' is not keep or repack" "$R" --method cls --keep 4 --positions x

for f in "$LM" "$LL" "$IM" "$IL"; do
	if [ ! -f "$f" ]; then
		skip vlm_fixtures "$f absent (scripts/gen-vlm-fixtures.py)"
		exit $status
	fi
done
APPLE=${WEFT_SHARED:-../shared}/data/images/apple.jpg
WIDE=${WEFT_SHARED:-../shared}/data/mmmu-pro-sample/images/validation_Music_11_1.png
if [ ! -f "$APPLE" ] || [ ! -f "$WIDE" ]; then
	skip vlm_images "$APPLE or $WIDE absent"
	exit $status
fi

# json FILE: one line per frame
rows() { "$I" --json -n 0 "$1" | grep '"kind":"embd"' | sed 's/.*"name":"embd","dtype":"F32","shape":\[\([0-9]*\),.*/\1/' | tr '\n' ' '; }
n_past() { "$I" --json -n 0 "$1" | grep '"kind":"kvcache"' | sed 's/.*"weft.n_past":"\([0-9]*\)".*/\1/'; }

# ---- LLaVA-shaped: 16 tokens per image
printf 'USER: <image>\nWhat is this? ASSISTANT:' >"$TMP/p.txt"
"$T" -m "$LL" -f "$TMP/p.txt" >"$TMP/l0.tok"
"$T" -m "$LL" -f "$TMP/p.txt" | "$E" --mmproj "$LM" --stats keys,attn "$APPLE" >"$TMP/l.wst"
"$T" -m "$LL" -f "$TMP/p.txt" | "$E" --mmproj "$LM" "$APPLE" >"$TMP/l0.wst"
bad=
for m in $("$R" --list | grep -v '^	' | cut -f1); do
	[ "$m" = flowcut ] && continue # inside the encoder: below
	extra=
	case $m in
	hiprune) extra="-P object_layer=1" ;;
	cdpruner) extra="-m $LL" ;;
	fastv | dart) extra="-P layer=1" ;;
	pdrop) extra="-P layers=1" ;;
	sparsevlm) extra="-P after=0" ;;
	esac
	# shellcheck disable=SC2086
	if ! "$R" --method "$m" --keep 6 $extra "$TMP/l.wst" >"$TMP/lp.wst" 2>"$TMP/err"; then
		bad="$bad $m($(head -c 200 "$TMP/err"))"
		continue
	fi
	r=$(rows "$TMP/lp.wst")
	case $m in
	pool) want="4 " ;;       # floor(sqrt(6))^2
	fastv | pdrop | dart | sparsevlm) want="16 " ;; # the embeddings stay; prefill drops
	prumerge) want="${r%% *} " # adaptive: at most the budget
		[ "${r%% *}" -le 6 ] && [ "${r%% *}" -ge 1 ] || want=6 ;;
	*) want="6 " ;;
	esac
	[ "$r" = "$want" ] || bad="$bad $m(rows '$r', expected '$want')"
	out=$("$P" -m "$LL" "$TMP/lp.wst" | "$D" -m "$LL" -n 3 --greedy --ignore-eos) && [ -n "$out" ] ||
		bad="$bad $m(prefill/decode failed)"
done
[ -z "$bad" ] && pass llava_every_method || fail llava_every_method "$bad"

# kept indices ascending, within the tile, and n_orig recorded
"$R" --method cls --keep 5 "$TMP/l.wst" | "$I" -n 16 >"$TMP/cls.txt"
k=$(sed -n 's/^  kept I32 \[5\] = //p' "$TMP/cls.txt")
ok=1 prev=-1
for i in $k; do [ "$i" -gt "$prev" ] && [ "$i" -lt 16 ] || ok=0; prev=$i; done
[ $ok = 1 ] && [ "$(echo $k | wc -w)" = 5 ] && grep -q '^  weft.n_orig = 16$' "$TMP/cls.txt" &&
	grep -q '^  weft.pruned = cls keep=5 scope=image layer=-1$' "$TMP/cls.txt" &&
	! grep -q '^  keys ' "$TMP/cls.txt" && pass record || fail record "kept '$k'; $(grep weft.pruned "$TMP/cls.txt")"

# the kept rows are the unpruned tile's rows, bit for bit (cls keeps rows as they are)
"$I" -n 1024 "$TMP/l.wst" | sed -n 's/^  embd F32 \[16, 64\] = //p' | tr ' ' '\n' >"$TMP/all"
"$R" --method cls --keep 5 "$TMP/l.wst" | "$I" -n 1024 | sed -n 's/^  embd F32 \[5, 64\] = //p' | tr ' ' '\n' >"$TMP/kept"
ok=1 j=0
for i in $k; do
	sed -n "$((i * 64 + 1)),$((i * 64 + 64))p" "$TMP/all" >"$TMP/a"
	sed -n "$((j * 64 + 1)),$((j * 64 + 64))p" "$TMP/kept" >"$TMP/b"
	cmp -s "$TMP/a" "$TMP/b" || ok=0
	j=$((j + 1))
done
[ $ok = 1 ] && [ -s "$TMP/kept" ] && pass kept_rows || fail kept_rows "a kept row differs from the unpruned tile's"

# positions: kept (n_past as unpruned), or re-packed (n_past less the dropped tokens)
np0=$("$P" -m "$LL" "$TMP/l.wst" | n_past -)
np1=$("$R" --method cls --keep 5 "$TMP/l.wst" | "$P" -m "$LL" | n_past -)
np2=$("$R" --method cls --keep 5 --positions repack "$TMP/l.wst" | "$P" -m "$LL" | n_past -)
[ -n "$np0" ] && [ "$np1" = "$np0" ] && [ "$np2" = $((np0 - 11)) ] && pass positions ||
	fail positions "n_past unpruned $np0, kept $np1, repacked $np2"

# within budget: the stream passes through byte for byte, and -v says so
"$R" --method cls --keep 16 -v "$TMP/l.wst" >"$TMP/same.wst" 2>"$TMP/err"
cmp -s "$TMP/l.wst" "$TMP/same.wst" && grep -q "within the budget, passed through" "$TMP/err" && pass within_budget ||
	fail within_budget "stream changed or no note: $(head -c 200 "$TMP/err")"
# a stream without embd frames passes through (note under -v)
"$T" -m "$LL" 'just text' >"$TMP/t.wst"
"$R" --method cls --keep 4 -v "$TMP/t.wst" >"$TMP/t2.wst" 2>"$TMP/err" && cmp -s "$TMP/t.wst" "$TMP/t2.wst" &&
	grep -q "no embd frames: the stream passes through unchanged" "$TMP/err" && pass no_embd ||
	fail no_embd "$(head -c 200 "$TMP/err")"

# ---- SmolVLM-shaped: 2 images of 5 and 3 tiles of 4 tokens
"$T" -m "$IL" 'User:<image>Compare with <image>.' | "$E" --mmproj "$IM" --stats keys "$APPLE" "$WIDE" >"$TMP/s.wst"
bad=
for m in random pool cls visionzip divprune prumerge vispruner hiprune cdpruner; do
	extra=
	case $m in
	hiprune) extra="-P object_layer=1" ;;
	cdpruner) extra="-m $IL" ;;
	esac
	# shellcheck disable=SC2086
	if ! "$R" --method "$m" --keep 6 $extra "$TMP/s.wst" >"$TMP/sp.wst" 2>"$TMP/err"; then
		bad="$bad $m($(head -c 200 "$TMP/err"))"
		continue
	fi
	tot=0 n=0
	for r in $(rows "$TMP/sp.wst"); do tot=$((tot + r)); n=$((n + 1)); done
	# 6 per image; pool keeps floor(sqrt(share))^2 per tile, prumerge is adaptive
	case $m in pool | prumerge) ok=$((tot >= 1 && tot <= 12)) ;; *) ok=$((tot == 12)) ;; esac
	[ "$n" = 8 ] && [ $ok = 1 ] || bad="$bad $m($n frames, $tot rows)"
	"$P" -m "$IL" "$TMP/sp.wst" | "$D" -m "$IL" -n 2 --greedy --ignore-eos >/dev/null || bad="$bad $m(prefill/decode)"
done
[ -z "$bad" ] && pass smolvlm_every_method || fail smolvlm_every_method "$bad"
# scopes: per image 6 + 6; per tile 4 each (6 > 4: all kept); global 6
t_img=$("$R" --method cls --keep 6 "$TMP/s.wst" | rows -)
t_glob=$("$R" --method cls --keep 6 --scope global "$TMP/s.wst" | rows -)
t_tile=$("$R" --method cls --keep 3 --scope tile "$TMP/s.wst" | rows -)
sum() { s=0; for x in $1; do s=$((s + x)); done; echo $s; }
[ "$(sum "$t_img")" = 12 ] && [ "$(sum "$t_glob")" = 6 ] && [ "$t_tile" = "3 3 3 3 3 3 3 3 " ] && pass scopes ||
	fail scopes "image '$t_img', global '$t_glob', tile '$t_tile'"

# ---- in-LLM: the directive, and the drop prefill makes
"$R" --method fastv --keep 6 -P layer=1 "$TMP/l.wst" >"$TMP/fv.wst"
"$I" --json -n 0 "$TMP/fv.wst" | tail -n 1 | grep -q '"kind":"prune".*"weft.method":"fastv"' &&
	[ "$(rows "$TMP/fv.wst")" = "16 " ] && pass fastv_directive || fail fastv_directive "no prune frame at the end"
"$P" -m "$LL" -v "$TMP/fv.wst" 2>"$TMP/err" >"$TMP/fvc.wst" &&
	grep -q "fastv: before layer 1: 16 -> 6 visual tokens" "$TMP/err" && pass fastv_drop ||
	fail fastv_drop "$(tail -c 300 "$TMP/err")"
# layer 0 caches every row, layer 1 only the kept ones (text rows + 6)
l0=$("$I" --json -n 2 "$TMP/fvc.wst" | grep '"weft.layer":"0"' | sed 's/.*"name":"len","dtype":"I32","shape":\[2\],"values":\[\([0-9]*\),.*/\1/')
l1=$("$I" --json -n 2 "$TMP/fvc.wst" | grep '"weft.layer":"1"' | sed 's/.*"name":"len","dtype":"I32","shape":\[2\],"values":\[\([0-9]*\),.*/\1/')
[ -n "$l0" ] && [ "$l1" = $((l0 - 10)) ] && [ "$(n_past "$TMP/fvc.wst")" = "$np0" ] && pass fastv_cache ||
	fail fastv_cache "layer 0 holds '$l0' rows, layer 1 '$l1'"
"$D" -m "$LL" -n 3 --greedy --ignore-eos "$TMP/fvc.wst" >/dev/null && pass fastv_decode || fail fastv_decode "exit $?"
# a prompt ending in its image: the last row (the logits') stays whatever its score
"$T" -m "$LL" '<image>' | "$E" --mmproj "$LM" "$APPLE" | "$R" --method fastv --keep 4 -P layer=1 |
	"$P" -m "$LL" 2>"$TMP/err" | "$D" -m "$LL" -n 2 --greedy --ignore-eos >/dev/null && pass fastv_image_last ||
	fail fastv_image_last "$(head -c 300 "$TMP/err")"
# the other in-LLM methods drop as asked (their fidelity: test_prune_llm)
"$R" --method pdrop --keep 8 -P layers=1 "$TMP/l.wst" | "$P" -m "$LL" -v 2>"$TMP/err" >/dev/null &&
	grep -q "pdrop: before layer 1: 16 -> 8 visual tokens" "$TMP/err" &&
	"$R" --method dart --keep 7 -P layer=1 "$TMP/l.wst" | "$P" -m "$LL" -v 2>"$TMP/err" >/dev/null &&
	grep -q "dart: before layer 1: 16 -> 7 visual tokens" "$TMP/err" &&
	"$R" --method sparsevlm --keep 6 -P after=0,recycle=0 "$TMP/l.wst" | "$P" -m "$LL" -v 2>"$TMP/err" >/dev/null &&
	grep -q "sparsevlm: before layer 1: 16 -> 9 visual tokens" "$TMP/err" && pass llm_methods ||
	fail llm_methods "$(tail -c 300 "$TMP/err")"
expect_error fastv_twice "prune-tokens: $TMP/fv.wst: frame 3: the stream already carries an in-LLM pruning directive" \
	"$R" --method fastv "$TMP/fv.wst"
expect_error fastv_repack "prune-tokens: fastv drops tokens inside the LLM" "$R" --method fastv --positions repack
expect_error fastv_layer "prefill: $TMP/fv2.wst: fastv: layer 5 is not a layer between 1 and 1 of this model" \
	sh -c "\"$R\" --method fastv -P layer=5 \"$TMP/l.wst\" >\"$TMP/fv2.wst\" && \"$P\" -m \"$LL\" \"$TMP/fv2.wst\""

# ---- FlowCut inside the encoder
"$E" --mmproj "$LM" --prune flowcut --keep 5 -i "$TMP/l0.tok" "$APPLE" >"$TMP/fc.wst" &&
	"$I" -n 16 "$TMP/fc.wst" >"$TMP/fc.txt" && grep -q '^  embd F32 \[5, 64\]' "$TMP/fc.txt" &&
	grep -q '^  weft.pruned = flowcut keep=5$' "$TMP/fc.txt" && grep -q '^  weft.n_orig = 16$' "$TMP/fc.txt" &&
	"$P" -m "$LL" "$TMP/fc.wst" | "$D" -m "$LL" -n 2 --greedy --ignore-eos >/dev/null && pass flowcut_encoder ||
	fail flowcut_encoder "$(grep -E 'embd|pruned|n_orig' "$TMP/fc.txt" | head -c 300)"
"$E" --mmproj "$LM" --prune flowcut --ratio 1 -i "$TMP/l0.tok" "$APPLE" >"$TMP/fc1.wst" &&
	"$E" --mmproj "$LM" -i "$TMP/l0.tok" "$APPLE" >"$TMP/fc0.wst" && cmp -s "$TMP/fc0.wst" "$TMP/fc1.wst" &&
	pass flowcut_within_budget || fail flowcut_within_budget "--ratio 1 changed the stream"
expect_error flowcut_siglip "encode-image: $IM: flowcut needs an encoder with a class token" \
	"$E" --mmproj "$IM" --prune flowcut --keep 2 -i "$TMP/l0.tok" "$APPLE"
expect_error flowcut_other_method "encode-image: --prune cls: that method acts on embd frames: run prune-tokens --method cls" \
	"$E" --mmproj "$LM" --prune cls --keep 2 "$APPLE"
expect_error flowcut_no_budget "encode-image: --prune flowcut: no budget: give --keep N or --ratio R" \
	"$E" --mmproj "$LM" --prune flowcut "$APPLE"
expect_error flowcut_keep0 "encode-image: --keep 0: a budget of 0 tokens keeps nothing" \
	"$E" --mmproj "$LM" --prune flowcut --keep 0 "$APPLE"
expect_error flowcut_in_prune_tokens "prune-tokens: flowcut prunes inside the vision encoder: run encode-image --prune flowcut instead" \
	"$R" --method flowcut --keep 4

# ---- bad input
expect_error missing_keys "prune-tokens: $TMP/l0.wst: visionzip: tile 0 (image 1): no keys; run encode-image --stats keys" \
	"$R" --method visionzip --keep 4 "$TMP/l0.wst"
expect_error missing_attn "run encode-image --stats attn" "$R" --method hiprune --keep 4 -P object_layer=1 "$TMP/l0.wst"
expect_error cdpruner_no_model "cdpruner needs the prompt's text embeddings: run prune-tokens with -m MODEL.gguf" \
	"$R" --method cdpruner --keep 4 "$TMP/l.wst"
expect_error cdpruner_other_vocab "stream is for another" "$R" --method cdpruner --keep 4 -m "$IL" "$TMP/l.wst"
"$R" --method cls --keep 4 "$TMP/l.wst" >"$TMP/once.wst"
expect_error pruned_twice "already pruned (cls keep=4 scope=image layer=-1); prune-tokens runs once on a stream" \
	"$R" --method cls --keep 2 "$TMP/once.wst"
# frames from two vision models (one stream, two mmproj fingerprints)
"$T" -m "$LL" '<image>' | "$E" --mmproj "$LM" "$APPLE" >"$TMP/a.wst"
"$T" -m "$IL" '<image>' | "$E" --mmproj "$IM" "$APPLE" >"$TMP/b.wst"
cat "$TMP/a.wst" "$TMP/b.wst" >"$TMP/ab.wst"
expect_error two_models "from another vision model" "$R" --method cls --keep 2 --scope global "$TMP/ab.wst"
head -c 3000 "$TMP/l.wst" >"$TMP/trunc.wst"
expect_error truncated "prune-tokens: $TMP/trunc.wst: frame 1" "$R" --method cls --keep 2 "$TMP/trunc.wst"
expect_error truncated_no_output "frame 1" "$R" --method cls --keep 2 -o "$TMP/never.wst" "$TMP/trunc.wst"
[ ! -e "$TMP/never.wst" ] && ! ls "$TMP"/never.wst.tmp.* >/dev/null 2>&1 && pass no_partial_output ||
	fail no_partial_output "an output file was left behind"
exit $status
