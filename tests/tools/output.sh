# output.sh - what every tool does with its output and input files, tried
# as a careless user would: -o files get the permissions '>' would give
# (or keep an existing file's), a signal removes the temporary output, a
# directory as input or output is named before any work, an empty stream
# is an error, a full disk is reported as such, and -n 0 writes nothing.
suite=output
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize P=$WEFT_BIN/prefill D=$WEFT_BIN/decode E=$WEFT_BIN/encode-image
TM=tests/data/llm/tiny-llama-f32.gguf
"$T" -m "$TM" 'hello world' >"$TMP/p.wst"
"$P" -m "$TM" "$TMP/p.wst" >"$TMP/c.wst"

# -o: 0666 & ~umask for a new file, an existing file's own mode kept
m=$( (umask 022 && "$P" -m "$TM" -o "$TMP/new.wst" "$TMP/p.wst" && stat -c %a "$TMP/new.wst") )
[ "$m" = 644 ] && pass mode_umask_022 || fail mode_umask_022 "mode $m, expected 644"
m=$( (umask 077 && "$T" -m "$TM" -o "$TMP/new2.wst" hi && stat -c %a "$TMP/new2.wst") )
[ "$m" = 600 ] && pass mode_umask_077 || fail mode_umask_077 "mode $m, expected 600"
: >"$TMP/old.wst" && chmod 640 "$TMP/old.wst"
m=$( (umask 022 && "$P" -m "$TM" -o "$TMP/old.wst" "$TMP/p.wst" && stat -c %a "$TMP/old.wst") )
[ "$m" = 640 ] && [ -s "$TMP/old.wst" ] && pass mode_kept || fail mode_kept "mode $m, expected 640"

# an existing output that is not a regular file (a device, a FIFO) is
# written in place, never replaced by a renamed regular file
"$P" -m "$TM" -o /dev/null "$TMP/p.wst" && [ -c /dev/null ] && pass dev_null_kept ||
	fail dev_null_kept "/dev/null is no longer a character device"
mkfifo "$TMP/outfifo"
cat "$TMP/outfifo" >"$TMP/fromfifo" &
"$P" -m "$TM" -o "$TMP/outfifo" "$TMP/p.wst"
wait $!
[ -p "$TMP/outfifo" ] && cmp -s "$TMP/fromfifo" "$TMP/c.wst" && pass fifo_output ||
	fail fifo_output "the FIFO was replaced or carried another stream"

# SIGINT / SIGTERM / SIGHUP while the output is open: the temporary file
# goes, and the tool dies of the signal (status 128 + N)
for sn in TERM:15 INT:2 HUP:1; do
	sig=${sn%:*} num=${sn#*:}
	rm -f "$TMP"/sig.wst* "$TMP/fifo"
	mkfifo "$TMP/fifo"
	# (env --default-signal: a background job of a script starts with SIGINT ignored)
	env --default-signal "$P" -m "$TM" -o "$TMP/sig.wst" <"$TMP/fifo" &
	pid=$!
	exec 3>"$TMP/fifo" # a writer that sends nothing: prefill waits with its output open
	i=0
	while [ $i -lt 100 ] && ! ls "$TMP"/sig.wst.tmp.* >/dev/null 2>&1; do sleep 0.05; i=$((i + 1)); done
	had=$(ls "$TMP"/sig.wst.tmp.* 2>/dev/null | wc -l)
	kill -$sig $pid
	wait $pid 2>/dev/null
	rc=$?
	exec 3>&-
	left=$(ls "$TMP"/sig.wst* 2>/dev/null | wc -l)
	want=$((128 + num))
	[ "$had" = 1 ] && [ "$left" = 0 ] && [ $rc -eq $want ] && pass "signal_$sig" ||
		fail "signal_$sig" "temporary file before: $had, files after: $left, status $rc (want $want)"
done

# directories, named before any work
mkdir "$TMP/dir"
expect_error prefill_out_dir "prefill: $TMP/dir: is a directory" "$P" -m "$TM" -o "$TMP/dir" "$TMP/p.wst"
expect_error decode_kvout_dir "decode: $TMP/dir: is a directory" "$D" -m "$TM" -n 4 --kv-out "$TMP/dir" "$TMP/c.wst"
expect_error prefill_in_dir "prefill: $TMP/dir: is a directory" "$P" -m "$TM" "$TMP/dir"
ls "$TMP"/dir.tmp.* >/dev/null 2>&1 && fail no_tmp_beside_dir "a temporary file was left" || pass no_tmp_beside_dir

# an empty stream is an error for every stream reader
: >"$TMP/empty"
expect_error empty_prefill "prefill: $TMP/empty: empty stream (no frames)" "$P" -m "$TM" "$TMP/empty"
expect_error empty_decode "decode: $TMP/empty: empty stream (no frames)" "$D" -m "$TM" "$TMP/empty"

# a full disk, in the words every tool uses
expect_error decode_full "decode: <stdout>: write error: No space left on device" sh -c "\"$D\" -m \"$TM\" -n 8 --ignore-eos \"$TMP/c.wst\" >/dev/full"
expect_error decode_tokens_full "No space left on device" sh -c "\"$D\" -m \"$TM\" -n 8 --tokens \"$TMP/c.wst\" >/dev/full"

# -n 0: nothing generated, nothing written, success (also under the sanitizers)
out=$("$D" -m "$TM" -n 0 "$TMP/c.wst") && [ -z "$out" ] && pass n_zero || fail n_zero "status $? output '$out'"
"$D" -m "$TM" -n 0 --tokens "$TMP/c.wst" | "$WEFT_BIN/inspect" | grep -q 'ids I32 \[0\]' && pass n_zero_tokens ||
	fail n_zero_tokens "no empty tokens frame"
exit $status
