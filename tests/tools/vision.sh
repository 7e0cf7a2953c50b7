# vision.sh - encode-image and prefill's splicing of image embeddings, end to
# end on the committed tiny VLMs (tests/data/vlm, made by
# scripts/gen-vlm-fixtures.py) and the shared images: frame layout, pass-through,
# the token history against transformers' expanded prompts, and every bad
# input with its one-line message.
suite=vision
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize E=$WEFT_BIN/encode-image P=$WEFT_BIN/prefill D=$WEFT_BIN/decode I=$WEFT_BIN/inspect
VD=tests/data/vlm
LM=$VD/tiny-llava-mmproj-legacy.gguf LL=$VD/tiny-llava-llm-f32.gguf
IM=$VD/tiny-idefics3-mmproj-f32.gguf IL=$VD/tiny-idefics3-llm-f32.gguf

"$E" --help | grep -q "^Usage: encode-image" && "$E" --version | grep -q "^encode-image (weft) " &&
	pass help_version || fail help_version "--help or --version output wrong"
expect_error no_mmproj "encode-image: no vision model given (--mmproj MMPROJ.gguf); see --help" "$E" a.png

for f in "$LM" "$LL" "$IM" "$IL"; do
	if [ ! -f "$f" ]; then
		skip vlm_fixtures "$f absent (scripts/gen-vlm-fixtures.py)"
		exit $status
	fi
done
# images: ../shared/data (lib.sh sets SHARED only when it is complete)
IMGDIR=${WEFT_SHARED:-../shared}/data
APPLE=$IMGDIR/images/apple.jpg
WIDE=$IMGDIR/mmmu-pro-sample/images/validation_Music_11_1.png
TALL=$IMGDIR/mmmu-pro-sample/images/ai2d_00000539.png
if [ ! -f "$APPLE" ] || [ ! -f "$WIDE" ] || [ ! -f "$TALL" ]; then
	skip vlm_images "$IMGDIR/images/apple.jpg or mmmu-pro-sample images absent"
	exit $status
fi

# kinds COLUMN FILE: the frame kinds of a stream, space-separated
kinds() { "$I" --json -n 0 "$1" | sed -n 's/.*"kind":"\([a-z]*\)".*/\1/p' | tr '\n' ' '; }
# frame_bytes FILE N: the size of frame N
frame_bytes() { "$I" --json -n 0 "$1" | sed -n "$(($2 + 1))s/.*\"bytes\":\([0-9]*\).*/\1/p"; }

# ---- LLaVA (projector mlp): one embd frame per image, no wrapper text
printf 'USER: <image>\nWhat is this? ASSISTANT:' >"$TMP/prompt.txt"
"$T" -m "$LL" -f "$TMP/prompt.txt" >"$TMP/l.wst"
"$E" --mmproj "$LM" -i "$TMP/l.wst" "$APPLE" >"$TMP/le.wst" || fail llava_encode "exit $?"
k=$(kinds "$TMP/le.wst")
[ "$k" = "tokens embd tokens " ] && pass llava_frames || fail llava_frames "got '$k'"
"$I" -n 0 "$TMP/le.wst" >"$TMP/le.txt"
grep -q '^  embd F32 \[16, 64\]' "$TMP/le.txt" && grep -q '^  saliency F32 \[2, 16\]' "$TMP/le.txt" &&
	grep -q '^  weft.saliency = cls_attn$' "$TMP/le.txt" && grep -q '^  weft.tiles = 1$' "$TMP/le.txt" &&
	grep -q '^  weft.rows = 0$' "$TMP/le.txt" && grep -q '^  weft.prefix = $' "$TMP/le.txt" &&
	grep -q '^  weft.suffix = $' "$TMP/le.txt" && grep -q '^  weft.patch_side = 4$' "$TMP/le.txt" &&
	grep -q '^  weft.merge = 1$' "$TMP/le.txt" && grep -q "^  weft.source = $APPLE\$" "$TMP/le.txt" &&
	grep -q '^  weft.mmproj = [0-9a-f]\{16\}$' "$TMP/le.txt" && pass llava_embd_layout ||
	fail llava_embd_layout "$(grep -v '^  weft\.\(version\|crc32\|tool\)' "$TMP/le.txt" | head -c 600)"

# tokens frames are passed on byte for byte (the first and the last frame)
n0=$(frame_bytes "$TMP/l.wst" 0) n2=$(frame_bytes "$TMP/l.wst" 2)
if [ -n "$n0" ] && [ -n "$n2" ] && [ "$(head -c "$n0" "$TMP/l.wst" | od -An -tx1)" = "$(head -c "$n0" "$TMP/le.wst" | od -An -tx1)" ] &&
	[ "$(tail -c "$n2" "$TMP/l.wst" | od -An -tx1)" = "$(tail -c "$n2" "$TMP/le.wst" | od -An -tx1)" ]; then
	pass tokens_pass_through
else
	fail tokens_pass_through "tokens frames changed"
fi

# the documented pipeline, with -1 in the history for the image rows
"$T" -m "$LL" -f "$TMP/prompt.txt" | "$E" --mmproj "$LM" "$APPLE" | "$P" -m "$LL" >"$TMP/lc.wst" &&
	out=$("$D" -m "$LL" -n 4 --greedy --ignore-eos --repeat-penalty 1.3 "$TMP/lc.wst") && [ -n "$out" ] &&
	pass llava_pipeline || fail llava_pipeline "exit status or empty output"
h=$("$I" --json -n 100 "$TMP/lc.wst" | head -n 1 | grep -o -- '-1,' | wc -l)
[ "$h" -eq 16 ] && pass llava_history_marks || fail llava_history_marks "$h history entries are -1, expected 16"
# chunk size does not change the result, even across the embedding rows
c1=$("$P" -m "$LL" --chunk 1 "$TMP/le.wst" | "$D" -m "$LL" -n 6 --greedy --ignore-eos --tokens | "$T" -m "$LL" -d)
c2=$("$P" -m "$LL" --chunk 7 "$TMP/le.wst" | "$D" -m "$LL" -n 6 --greedy --ignore-eos --tokens | "$T" -m "$LL" -d)
c3=$("$P" -m "$LL" "$TMP/le.wst" | "$D" -m "$LL" -n 6 --greedy --ignore-eos --tokens | "$T" -m "$LL" -d)
[ "$c1" = "$c3" ] && [ "$c2" = "$c3" ] && pass chunking_invariant || fail chunking_invariant "'$c1' / '$c2' vs '$c3'"
# --mass and --window-q cover the embedding rows too
"$P" -m "$LL" --mass --window-q 3 "$TMP/le.wst" | "$I" -n 0 >"$TMP/lm.txt" &&
	grep -q '^  mass F32 \[2, [0-9]*\]' "$TMP/lm.txt" && grep -q '^  window_q F32 \[3, ' "$TMP/lm.txt" &&
	pass mass_with_images || fail mass_with_images "$(grep -E 'mass|window_q' "$TMP/lm.txt" | head -n 2)"

# ---- Idefics3 (SmolVLM): tiles with their wrapper text
"$T" -m "$IL" 'User:<image>Describe <image> and <image 1>.' >"$TMP/i.wst"
"$E" --mmproj "$IM" -i "$TMP/i.wst" "$APPLE" "$WIDE" >"$TMP/ie.wst" || fail idefics3_encode "exit $?"
k=$(kinds "$TMP/ie.wst")
want="tokens embd embd embd embd embd tokens embd embd embd tokens embd embd embd embd embd tokens "
[ "$k" = "$want" ] && pass idefics3_frames || fail idefics3_frames "got '$k'"
"$I" --json -n 0 "$TMP/ie.wst" >"$TMP/ie.json"
sed -n 2p "$TMP/ie.json" | grep -q '"weft.prefix":"<fake_token_around_image><row_1_col_1>","weft.suffix":""' &&
	sed -n 3p "$TMP/ie.json" | grep -q '"weft.prefix":"<fake_token_around_image><row_1_col_2>","weft.suffix":"\\n"' &&
	sed -n 6p "$TMP/ie.json" | grep -q '"weft.prefix":"\\n<fake_token_around_image><global-img>","weft.suffix":"<fake_token_around_image>"' &&
	sed -n 6p "$TMP/ie.json" | grep -q '"weft.image":"1","weft.tile":"4","weft.tiles":"5","weft.rows":"2","weft.cols":"2","weft.saliency":"attn_recv","weft.patch_side":"4","weft.merge":"2"' &&
	sed -n 8p "$TMP/ie.json" | grep -q '"weft.image":"2","weft.tile":"0","weft.tiles":"3","weft.rows":"1","weft.cols":"2"' &&
	sed -n 6p "$TMP/ie.json" | grep -q '"name":"embd","dtype":"F32","shape":\[4,64\]' &&
	sed -n 6p "$TMP/ie.json" | grep -q '"name":"saliency","dtype":"F32","shape":\[2,16\]' &&
	pass idefics3_layout || fail idefics3_layout "$(sed -n 6p "$TMP/ie.json" | head -c 600)"
# an image used twice is encoded once and written twice, identically
strip() { sed 's/"frame":[0-9]*,//; s/"bytes":[0-9]*,//; s/"weft.placeholder":"[^"]*",//'; }
a=$(sed -n 2,6p "$TMP/ie.json" | strip) b=$(sed -n 12,16p "$TMP/ie.json" | strip)
[ -n "$a" ] && [ "$a" = "$b" ] && pass image_reused || fail image_reused "the two copies of image 1 differ"
# batch size and threads do not change a byte
"$E" --mmproj "$IM" -i "$TMP/i.wst" --batch 1 -t 1 "$APPLE" "$WIDE" >"$TMP/ie1.wst"
"$E" --mmproj "$IM" -i "$TMP/i.wst" --batch 3 -t 3 "$APPLE" "$WIDE" >"$TMP/ie3.wst"
cmp -s "$TMP/ie.wst" "$TMP/ie1.wst" && cmp -s "$TMP/ie.wst" "$TMP/ie3.wst" && pass batch_invariant ||
	fail batch_invariant "output depends on --batch / --threads"
"$P" -m "$IL" "$TMP/ie.wst" | "$D" -m "$IL" -n 4 --greedy --ignore-eos >/dev/null && pass idefics3_pipeline ||
	fail idefics3_pipeline "exit $?"
# a PNG named .jpg is decoded by its content; the image may come from stdin
cp "$TALL" "$TMP/really-png.jpg"
"$T" -m "$IL" 'x <image> y' >"$TMP/one.wst"
"$E" --mmproj "$IM" -i "$TMP/one.wst" "$TMP/really-png.jpg" >"$TMP/o1.wst" &&
	"$E" --mmproj "$IM" -i "$TMP/one.wst" - <"$TALL" >"$TMP/o2.wst" &&
	[ "$(kinds "$TMP/o1.wst")" = "tokens embd embd embd embd embd tokens " ] &&
	[ "$("$I" "$TMP/o1.wst" | grep crc32)" = "$("$I" "$TMP/o2.wst" | grep crc32)" ] && pass decode_by_content ||
	fail decode_by_content "PNG named .jpg or stdin image not encoded alike"
# a stream without placeholders passes through unchanged
"$T" -m "$IL" 'no images here' >"$TMP/t.wst"
"$E" --mmproj "$IM" -i "$TMP/t.wst" >"$TMP/t2.wst" && cmp -s "$TMP/t.wst" "$TMP/t2.wst" && pass no_images ||
	fail no_images "text-only stream changed"

# ---- the token history equals transformers' expanded prompt (image tokens as -1)
# and the last logits match, for each reference image (.vref, see gen-vlm-fixtures.py)
u32() { od -An -tu4 -j "$2" -N 4 "$1" | tr -d ' \n'; }
# vref_index FILE: one line per record: name, data offset, elements (dims multiplied)
vref_index() {
	_f=$1
	[ "$(head -c 4 "$_f")" = WVLM ] || return 1
	_n=$(u32 "$_f" 8) _o=12 _i=0
	while [ "$_i" -lt "$_n" ]; do
		_nl=$(u32 "$_f" $_o)
		_name=$(dd if="$_f" bs=1 skip=$((_o + 4)) count="$_nl" 2>/dev/null)
		_o=$((_o + 4 + _nl))
		set -- $(od -An -tu4 -j $_o -N 24 "$_f")
		_dt=$1 _nd=$2 _cnt=1 _k=0
		[ "$_nd" -le 4 ] || return 1
		shift 2
		while [ $_k -lt "$_nd" ]; do _cnt=$((_cnt * $1)); shift; _k=$((_k + 1)); done
		_o=$((_o + 8 + 4 * _nd))
		echo "$_name $_o $_cnt"
		[ "$_dt" = 2 ] && _o=$((_o + _cnt)) || _o=$((_o + 4 * _cnt))
		_i=$((_i + 1))
	done
}
# vref_find INDEX NAME: sets rec_off and rec_n of record NAME
vref_find() {
	set -- $(awk -v n="$2" '$1 == n { print $2, $3; exit }' "$1")
	[ $# -eq 2 ] && rec_off=$1 rec_n=$2
}
vref_i32() { od -An -td4 -v -j "$rec_off" -N $((4 * rec_n)) "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'; }

for fam in llava idefics3; do
	ref=$VD/tiny-$fam.vref
	[ $fam = llava ] && mm=$LM llm=$LL || mm=$IM llm=$IL
	if [ ! -f "$ref" ] || ! vref_index "$ref" >"$TMP/vref.idx" || ! vref_find "$TMP/vref.idx" meta/image_token_id; then
		skip "${fam}_reference_ids" "$ref absent or without meta/image_token_id"
		continue
	fi
	tok=$(vref_i32 "$ref")
	for img in images/apple.jpg mmmu-pro-sample/images/validation_Music_11_1.png mmmu-pro-sample/images/ai2d_00000539.png; do
		name=${fam}_$(basename "$img" | sed 's/\..*//')
		if ! vref_find "$TMP/vref.idx" "$img/prompt"; then
			skip "$name" "no $img/prompt in $ref"
			continue
		fi
		dd if="$ref" bs=1 skip="$rec_off" count="$rec_n" of="$TMP/vp.txt" 2>/dev/null
		vref_find "$TMP/vref.idx" "$img/ids" && want=$(vref_i32 "$ref" | awk -v t="$tok" '{
			for (i = 1; i <= NF; i++) printf "%s%s", (i > 1 ? "," : ""), ($i == t ? -1 : $i) }')
		n_ids=$rec_n
		"$T" -m "$llm" -f "$TMP/vp.txt" | "$E" --mmproj "$mm" "$IMGDIR/$img" | "$P" -m "$llm" >"$TMP/vc.wst" ||
			{ fail "${name}_ids" "pipeline failed"; continue; }
		"$I" --json -n 100000 "$TMP/vc.wst" >"$TMP/vc.json"
		got=$(head -n 1 "$TMP/vc.json" | sed 's/.*"values":\[\([^]]*\)\].*/\1/')
		[ "$got" = "$want" ] && pass "${name}_ids" || fail "${name}_ids" "history [$got], reference [$want]"
		# last position's logits: transformers (F32) vs weft (F16 KV cache), within 0.01
		if vref_find "$TMP/vref.idx" "$img/logits"; then
			nv=$((rec_n / n_ids))
			od -An -tf4 -v -j $((rec_off + 4 * (n_ids - 1) * nv)) -N $((4 * nv)) "$ref" | tr -s ' ' '\n' | sed '/^$/d' >"$TMP/want.txt"
			tail -n 1 "$TMP/vc.json" | sed 's/.*"values":\[\([^]]*\)\].*/\1/' | tr ',' '\n' >"$TMP/got.txt"
			d=$(paste "$TMP/want.txt" "$TMP/got.txt" | awk -v n="$nv" '
				{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d; c++ }
				END { if (c != n) print "count " c; else print m }')
			awk -v d="$d" 'BEGIN { exit !(d + 0 == d && d < 0.01) }' && pass "${name}_logits" ||
				fail "${name}_logits" "max |difference| $d"
		fi
	done
done

# ---- bad inputs
W=$TMP/bad
mkdir -p "$W"
"$T" -m "$LL" 'a <image> b' >"$W/p.wst"
head -c 2000 "$APPLE" >"$W/cut.jpg"
head -c 300 "$TALL" >"$W/cut.png"
echo 'not an image' >"$W/text.png"
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\000\000\000\000\000\000\000\010\002\000\000\000\000\000\000\000' >"$W/zero.png"
printf '\211PNG\r\n\032\n\000\000\000\015IHDR\000\001\206\240\000\001\206\240\010\002\000\000\000\000\000\000\000' >"$W/bomb.png"
# every decoder path reaches the encoder: CMYK and progressive JPEG, 16-bit,
# palette + tRNS, interlaced grey+alpha PNG, 16-bit PGM (tests/fuzz/seeds/image)
for f in cmyk.jpg progressive.jpg grey16.png palette-trns.png interlaced-ga16.png grey16.pgm; do
	"$E" --mmproj "$LM" -i "$W/p.wst" "tests/fuzz/seeds/image/$f" | "$I" 2>/dev/null | grep -q '^  embd F32 \[16, 64\]' &&
		pass "decodes_$f" || fail "decodes_$f" "no embd frame"
done
# damaged entropy data: an error by default, decoded with --lenient (and counted with -v)
cp tests/data/image/flip.jpg "$W/zeroed.jpg"
printf '\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000\000' |
	dd of="$W/zeroed.jpg" bs=1 seek=$(($(stat -c %s "$W/zeroed.jpg") / 2)) conv=notrunc 2>/dev/null
expect_error damaged_jpeg "encode-image: $W/zeroed.jpg: corrupt JPEG: " "$E" --mmproj "$LM" -i "$W/p.wst" "$W/zeroed.jpg"
"$E" --lenient -v --mmproj "$LM" -i "$W/p.wst" "$W/zeroed.jpg" 2>"$W/len.err" | "$I" 2>/dev/null | grep -q '^  embd F32 \[16, 64\]' &&
	grep -q -- '--lenient: 1 image decoder warning tolerated' "$W/len.err" && pass lenient_decodes ||
	fail lenient_decodes "$(tail -n 1 "$W/len.err")"
expect_error truncated_jpeg "encode-image: $W/cut.jpg: truncated JPEG" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/cut.jpg"
expect_error truncated_png "encode-image: $W/cut.png: truncated PNG" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/cut.png"
expect_error text_as_png "encode-image: $W/text.png: not an image (unknown format)" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/text.png"
expect_error zero_size "encode-image: $W/zero.png: image has zero width or height (0x0)" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/zero.png"
expect_error pixel_bomb "encode-image: $W/bomb.png: image 100000x100000 exceeds the 67108864-pixel limit" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/bomb.png"
expect_error max_pixels "encode-image: $APPLE: image 224x225 exceeds the 1000-pixel limit" "$E" --mmproj "$LM" --max-pixels 1000 -i "$W/p.wst" "$APPLE"
expect_error missing_image "encode-image: $W/none.png: cannot open: No such file or directory" "$E" --mmproj "$LM" -i "$W/p.wst" "$W/none.png"
expect_error extra_image "encode-image: $W/p.wst: image '$WIDE' (2) has no <image> placeholder in the stream" "$E" --mmproj "$LM" -i "$W/p.wst" "$APPLE" "$WIDE"
"$T" -m "$LL" '<image> and <image>' >"$W/two.wst"
expect_error missing_image_arg "encode-image: $W/two.wst: frame 3: stream has <image 2> but only 1 image given" "$E" --mmproj "$LM" -i "$W/two.wst" "$APPLE"
expect_error stdin_twice "encode-image: image 1 is '-' but standard input carries the stream; give the stream with -i FILE" sh -c "\"$E\" --mmproj \"$LM\" - <\"$W/p.wst\""
expect_error llm_as_mmproj "encode-image: $LL: not an mmproj file (general.architecture 'llama', expected 'clip')" "$E" --mmproj "$LL" -i "$W/p.wst" "$APPLE"
expect_error batch_zero "encode-image: --batch: expected a number in 1..4096, got '0'" "$E" --mmproj "$LM" --batch 0 "$APPLE"
expect_error not_a_stream "encode-image: $W/text.png: frame 0: not a weft stream" "$E" --mmproj "$LM" -i "$W/text.png" "$APPLE"
expect_error encode_no_partial "truncated JPEG" "$E" --mmproj "$LM" -i "$W/p.wst" -o "$W/never.wst" "$W/cut.jpg"
if [ -e "$W/never.wst" ] || ls "$W" | grep -q 'never.wst.tmp'; then fail encode_no_partial_output "partial file left"; else pass encode_no_partial_output; fi
expect_error encode_disk_full "encode-image: <stdout>: write error: No space left on device" sh -c "\"$E\" --mmproj \"$LM\" -i \"$W/p.wst\" \"$APPLE\" >/dev/full"

# prefill: embeddings from the wrong vision model for this LLM
if [ -f tests/data/llm/tiny-llama256-q4_k_m.gguf ]; then
	L256=tests/data/llm/tiny-llama256-q4_k_m.gguf
	"$T" -m "$L256" 'a <image> b' | "$E" --mmproj "$LM" "$APPLE" >"$W/w.wst"
	expect_error embd_width "prefill: $W/w.wst: frame 1: embedding width 64 does not match the model's n_embd 256 (mmproj for another LLM?)" "$P" -m "$L256" "$W/w.wst"
	expect_error prefill_no_partial "embedding width 64" "$P" -m "$L256" -o "$W/never2.wst" "$W/w.wst"
	if [ -e "$W/never2.wst" ] || ls "$W" | grep -q 'never2.wst.tmp'; then fail prefill_no_partial_output "partial file left"; else pass prefill_no_partial_output; fi
else
	skip embd_width "tests/data/llm/tiny-llama256-q4_k_m.gguf absent"
fi
"$E" --mmproj "$IM" -i "$W/p.wst" "$APPLE" >"$W/wv.wst"
expect_error wrapper_vocab "prefill: $W/wv.wst: frame 1: the model's vocabulary lacks '<fake_token_around_image>' (wrong model for this stream?)" "$P" -m "$LL" "$W/wv.wst"
"$T" -m "$IL" 'a <image> b' | "$E" --mmproj "$IM" "$APPLE" >"$W/ov.wst"
expect_error other_vocab "prefill: $W/ov.wst: frame 0: stream is for another vocabulary" "$P" -m "$LL" "$W/ov.wst"

# full-size mmproj files from llama.cpp's own converters (random weights,
# LLaVA-1.5's CLIP-L/14-336 and SmolVLM-256M's SigLIP-B/16-512 shapes, made
# by scripts/make-vision-bench-models.py): they load and pass a stream on
bm=$(scripts/cache-dir 2>/dev/null)/bench-models/vision
for m in clip-l14-336-mlp siglip-b16-512-idefics3; do
	if [ -f "$bm/$m-mmproj-f16.gguf" ]; then
		"$T" -m "$LL" 'no image' >"$W/bm.wst"
		"$E" --mmproj "$bm/$m-mmproj-f16.gguf" -i "$W/bm.wst" >"$W/bm-out.wst" && cmp -s "$W/bm.wst" "$W/bm-out.wst" &&
			pass "converter_file_$m" || fail "converter_file_$m" "$(head -c 300 "$W/bm-out.wst" 2>/dev/null)"
	else
		skip "converter_file_$m" "$bm/$m-mmproj-f16.gguf absent (scripts/make-vision-bench-models.py)"
	fi
done
exit $status
