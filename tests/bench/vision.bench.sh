# vision.bench.sh - vision-encoder throughput (slices/s and images/s) of
# weft's encode-image vs llama.cpp's llama-mtmd-cli, same machine, same run,
# same mmproj GGUF, same image, same threads.  Model load, image decoding and
# preprocessing are excluded on both sides:
#   llama.cpp: the "mtmd batch encoding done in X ms" lines llama-mtmd-cli
#              logs (mtmd-cli.cpp; one line per encoder call, "n_chunks = K"
#              slices each: 1, as neither CLIP nor idefics3 batches there);
#   weft:      the "encode X s" and "N tiles" of encode-image -v.
# Per run: encode time / slices; printed: the median over REPS runs.
# Models: scripts/make-vision-bench-models.py (random-weight F16 mmprojs of a
# CLIP-L/14-336 + LLaVA mlp projector and a SigLIP-B/16-512 + idefics3
# connector, the SmolLM2-135M text model llama-mtmd-cli needs beside them,
# and a 512x512 test image: one 336 slice for CLIP; 4x4 tiles + the global
# image = 17 slices for idefics3, whose preprocessor resizes to 2048 first).
# THREADS (default: nproc), REPS (3), IMAGES (images per run, 1).
set -u
THREADS=${THREADS:-$(nproc)}
REPS=${REPS:-3}
IMAGES=${IMAGES:-1}
: "${WEFT_BIN:=bin}"
cache=$(scripts/cache-dir)
peer=$cache/peer/llama.cpp-0.3.36/bin/llama-mtmd-cli
models=$cache/bench-models/vision
text=$models/smollm2-135m-smolvlm-tokens-q4_1.gguf
image=$models/bench-512.png
if [ ! -f "$text" ] || [ ! -f "$image" ]; then
	echo "vision bench: no models; run \$(scripts/venv)/bin/python scripts/make-vision-bench-models.py"
	exit 0
fi
tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT
timer=
[ -x /usr/bin/time ] && timer="/usr/bin/time -f rss:%M"

# llama.cpp takes the images comma-separated (repeating --image is deprecated
# and keeps only the last); weft takes them as arguments ("$@")
images='' prompt=''
set --
i=0
while [ $i -lt "$IMAGES" ]; do
	images="$images${images:+,}$image" prompt="$prompt<image>"
	set -- "$@" "$image"
	i=$((i + 1))
done

median() { # numbers on stdin, one a line
	sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2];
		else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

peak_rss_mb() { # the largest "rss:KB" in the given files
	cat "$@" 2>/dev/null | sed -n 's/^rss:\([0-9]*\)$/\1/p' | sort -n | tail -n 1 |
		awk '{ printf "%d", $1 / 1024 } END { if (NR == 0) printf "?" }'
}

# report LABEL MS_PER_SLICE SLICES_PER_IMAGE RSS_MB
report() {
	echo "$2 $3" | awk -v l="$1" -v rss="$4" '{
		printf "  %-10s %9.1f ms/slice %7.3f slices/s %7.3f images/s  (max RSS %s MB)\n",
			l, $1, 1000 / $1, 1000 / $1 / $2, rss }'
}

echo "threads $THREADS, median of $REPS runs, $IMAGES image(s) per run ($(basename "$image"), 512x512)"
echo "llama.cpp: llama-mtmd-cli -m $(basename "$text") --mmproj M --image IMG[,IMG...] -p describe -n 1 -t $THREADS"
echo "weft:      tokenize -m $(basename "$text") '$prompt describe' | encode-image --mmproj M -t $THREADS -v IMG..."
for m in "$models"/clip-l14-336-mlp-mmproj-f16.gguf "$models"/siglip-b16-512-idefics3-mmproj-f16.gguf; do
	name=$(basename "$m" -mmproj-f16.gguf)
	if [ ! -f "$m" ]; then
		echo "$name: missing $m (scripts/make-vision-bench-models.py)"
		continue
	fi
	echo "$name"

	# REPS runs of each, alternating, so both see the same machine load
	pslices=0 wslices=0 perr='' werr=''
	[ -x "$peer" ] || perr="llama-mtmd-cli not built (scripts/build-peer)"
	[ -x "$WEFT_BIN/encode-image" ] && [ -x "$WEFT_BIN/tokenize" ] || werr="encode-image not built"
	: >"$tmp/p.ms"
	: >"$tmp/w.ms"
	r=0
	while [ $r -lt "$REPS" ]; do
		if [ -z "$perr" ]; then
			$timer "$peer" -m "$text" --mmproj "$m" --image "$images" -p describe -n 1 -t "$THREADS" \
				>/dev/null 2>"$tmp/p$r.err" </dev/null ||
				perr="llama-mtmd-cli failed: $(grep -v '^rss:' "$tmp/p$r.err" | tail -n 1)"
		fi
		if [ -z "$perr" ]; then
			# "encoding mtmd batch, n_chunks = K (...)" then "mtmd batch encoding done in X ms"
			awk '/encoding mtmd batch, n_chunks = / { for (i = 1; i < NF; i++) if ($i == "n_chunks") k += $(i + 2) }
				/mtmd batch encoding done in [0-9]+ ms/ { for (i = 1; i < NF; i++) if ($i == "in") ms += $(i + 1) }
				END { if (k > 0) printf "%s %d\n", ms / k, k }' "$tmp/p$r.err" >"$tmp/p.run"
			if [ -s "$tmp/p.run" ]; then
				cut -d' ' -f1 "$tmp/p.run" >>"$tmp/p.ms"
				pslices=$(cut -d' ' -f2 "$tmp/p.run")
			else
				perr="no 'mtmd batch encoding done' lines in llama-mtmd-cli's log"
			fi
		fi
		if [ -z "$werr" ]; then
			"$WEFT_BIN/tokenize" -m "$text" "$prompt describe" >"$tmp/in.wst" 2>"$tmp/t.err" ||
				werr="tokenize failed: $(tail -n 1 "$tmp/t.err")"
		fi
		if [ -z "$werr" ]; then
			$timer "$WEFT_BIN/encode-image" --mmproj "$m" -t "$THREADS" -v -i "$tmp/in.wst" "$@" \
				>/dev/null 2>"$tmp/w$r.err" </dev/null ||
				werr="encode-image failed: $(grep -v '^rss:' "$tmp/w$r.err" | tail -n 1)"
		fi
		if [ -z "$werr" ]; then
			# "encode-image: load ... N tiles: decode+preprocess X s, encode X s in C calls ..."
			sed -n 's/.* \([0-9][0-9]*\) tiles:.* encode \([0-9.][0-9.]*\) s in .*/\2 \1/p' "$tmp/w$r.err" |
				tail -n 1 | awk '$2 > 0 { printf "%s %d\n", $1 * 1000 / $2, $2 }' >"$tmp/w.run"
			if [ -s "$tmp/w.run" ]; then
				cut -d' ' -f1 "$tmp/w.run" >>"$tmp/w.ms"
				wslices=$(cut -d' ' -f2 "$tmp/w.run")
			else
				werr="cannot read encode-image -v: $(grep -v '^rss:' "$tmp/w$r.err" | tail -n 1)"
			fi
		fi
		r=$((r + 1))
	done
	pms=$(median <"$tmp/p.ms") wms=$(median <"$tmp/w.ms")

	if [ -n "$werr" ]; then
		echo "  weft:      $werr"
	else
		report "weft:" "$wms" "$((wslices / IMAGES))" "$(peak_rss_mb "$tmp"/w*.err)"
	fi
	if [ -n "$perr" ]; then
		echo "  llama.cpp: $perr"
	else
		report "llama.cpp:" "$pms" "$((pslices / IMAGES))" "$(peak_rss_mb "$tmp"/p*.err)"
	fi
	if [ -z "$werr" ] && [ -z "$perr" ]; then
		[ "$wslices" = "$pslices" ] ||
			echo "  note: slices per run differ (weft $wslices, llama.cpp $pslices); compare per slice"
		echo "$wms $pms" | awk '{ printf "  ratio:     %.2fx (weft / llama.cpp, slices/s)\n", $2 / $1 }'
	fi
	rm -f "$tmp"/p*.err "$tmp"/w*.err
done
echo "(llama.cpp's RSS includes the 135M text model llama-mtmd-cli must load; weft's is encode-image alone)"
