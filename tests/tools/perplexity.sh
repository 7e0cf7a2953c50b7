# perplexity.sh - the perplexity tool: parity with llama-perplexity on
# SmolLM2-135M (tests/data/text/ppl-llama.cpp.txt, within 0.5 %), its output
# on the tiny committed model, and bad inputs with their one-line messages.
# The procedure itself is checked against transformers' logits in
# tests/unit/test_perplexity.c.
suite=perplexity
. tests/tools/lib.sh
PP=$WEFT_BIN/perplexity
TM=tests/data/llm/tiny-llama-f32.gguf
TEXT=tests/data/text/ppl.txt

"$PP" --help | grep -q '^Usage: perplexity' && "$PP" --version | grep -q '^perplexity (weft) ' &&
	pass help_version || fail help_version "--help or --version output wrong"

# parity with llama.cpp on the real model (the committed figure).  Under
# the sanitizers (make check-asan) the first 2 of the 7 windows: the same
# code paths, compared with llama.cpp's running estimates [1] and [2]
# (windows are independent), in a third of the time (the full run took
# 296 s of the sanitizer suite's 12 min).
M=$(smollm2)
if [ -n "$M" ]; then
	want=$(grep -v '^#' tests/data/text/ppl-llama.cpp.txt | head -n 1)
	w1=$(sed -n 's/^# b512 running: //p' tests/data/text/ppl-llama.cpp.txt)
	w2=$(sed -n 's/^# b512 final: //p' tests/data/text/ppl-llama.cpp.txt)
	nch=7 chunks=
	if [ -n "${WEFT_SAN_FLAGS:-}" ]; then
		nch=2 chunks="--chunks 2"
		want=$(printf '%s\n' "$w1" | tr ',' '\n' | sed -n 's/^\[2\]//p') # llama.cpp's [2]
		w1=$(printf '%s\n' "$w1" | cut -d, -f1-2),
	fi
	# shellcheck disable=SC2086
	if "$PP" -m "$M" -f "$TEXT" -c 512 $chunks >"$TMP/s.out" 2>"$TMP/s.err"; then
		got=$(sed -n 's/^Final estimate: PPL = \([0-9.]*\) +\/- [0-9.]*$/\1/p' "$TMP/s.out")
		if [ -z "$got" ]; then fail smollm2_vs_llama_cpp "no 'Final estimate' line: $(head -c 300 "$TMP/s.out")"
		elif [ -n "$want" ] && awk -v a="$got" -v b="$want" 'BEGIN { r = a / b - 1; if (r < 0) r = -r; exit !(r <= 0.005) }'; then
			pass smollm2_vs_llama_cpp
			echo "    perplexity: SmolLM2 PPL $got (weft) vs $want (llama.cpp), $nch windows"
		else fail smollm2_vs_llama_cpp "PPL $got, llama.cpp $want: more than 0.5 % apart"; fi
		# windows of 512 tokens: the running estimates, the last equal to the figure
		n=$(head -n 1 "$TMP/s.out" | tr ',' '\n' | grep -c '^\[[0-9]*\][0-9.]*$')
		last=$(head -n 1 "$TMP/s.out" | tr ',' '\n' | grep "^\[$nch\]" | sed 's/^\[[0-9]*\]//')
		[ "$n" = $nch ] && [ "$last" = "$got" ] && pass smollm2_running || fail smollm2_running "$n estimates, last '$last' vs '$got'"
	else
		fail smollm2_vs_llama_cpp "exit status $?: $(head -c 300 "$TMP/s.err")"
	fi
	# --numerics llama.cpp: llama-perplexity's own output, digit for digit
	# (its run with one sequence per batch, -b 512; see the data file);
	# under the sanitizers its first two running estimates
	# shellcheck disable=SC2086
	if "$PP" -m "$M" -f "$TEXT" -c 512 $chunks --numerics llama.cpp >"$TMP/n.out" 2>"$TMP/n.err"; then
		[ -n "$w1" ] && [ "$(sed -n 1p "$TMP/n.out")" = "$w1" ] &&
			{ [ $nch = 2 ] || [ "$(sed -n 2p "$TMP/n.out")" = "$w2" ]; } &&
			pass smollm2_numerics_llamacpp ||
			fail smollm2_numerics_llamacpp "got '$(head -n 2 "$TMP/n.out" | tr '\n' ' ')', llama.cpp '$w1 $w2'"
	elif grep -q "lacks the AVX-512 level" "$TMP/n.err"; then
		skip smollm2_numerics_llamacpp "this CPU lacks the AVX-512 level whose llama.cpp build --numerics llama.cpp reproduces"
	else
		fail smollm2_numerics_llamacpp "exit status $?: $(head -c 300 "$TMP/n.err")"
	fi
else
	skip smollm2_vs_llama_cpp "SmolLM2-135M-Instruct.Q4_1.gguf absent (scripts/fetch-models)"
fi

# the tiny model: output format, stdin, --json, --chunks
head -c 3000 "$TEXT" >"$TMP/t.txt"
if "$PP" -m "$TM" -f "$TMP/t.txt" -c 64 >"$TMP/t.out" 2>"$TMP/t.err"; then
	lines=$(wc -l <"$TMP/t.out")
	est=$(head -n 1 "$TMP/t.out" | tr ',' '\n' | grep -c '^\[[0-9]*\][0-9]*\.[0-9][0-9][0-9][0-9]$')
	fin=$(sed -n 's/^Final estimate: PPL = \([0-9]*\.[0-9][0-9][0-9][0-9]\) +\/- [0-9]*\.[0-9][0-9][0-9][0-9][0-9]$/\1/p' "$TMP/t.out")
	[ "$lines" = 2 ] && [ "$est" -gt 1 ] && [ -n "$fin" ] && [ ! -s "$TMP/t.err" ] && pass tiny_output ||
		fail tiny_output "$lines lines, $est estimates, final '$fin': $(head -c 200 "$TMP/t.out")"
	"$PP" -m "$TM" -f - -c 64 <"$TMP/t.txt" >"$TMP/t2.out" && cmp -s "$TMP/t.out" "$TMP/t2.out" &&
		pass tiny_stdin || fail tiny_stdin "stdin gives other figures than the file"
	# a trailing newline is dropped, like llama.cpp's -f
	{ cat "$TMP/t.txt"; echo; } | "$PP" -m "$TM" -f - -c 64 >"$TMP/t3.out" && cmp -s "$TMP/t.out" "$TMP/t3.out" &&
		pass tiny_trailing_newline || fail tiny_trailing_newline "one trailing newline changes the result"
	"$PP" -m "$TM" -f "$TMP/t.txt" -c 64 --json >"$TMP/t.json"
	jppl=$(sed -n 's/.*"ppl":\([0-9.]*\),.*/\1/p' "$TMP/t.json")
	[ -n "$jppl" ] && [ "$(printf '%.4f' "$jppl")" = "$fin" ] && grep -q '"n_ctx":64,' "$TMP/t.json" &&
		pass tiny_json || fail tiny_json "$(head -c 300 "$TMP/t.json")"
	"$PP" -m "$TM" -f "$TMP/t.txt" -c 64 --chunks 2 --json >"$TMP/t4.json"
	grep -q '"n_chunk":2,"scored":62,' "$TMP/t4.json" && pass tiny_chunks || fail tiny_chunks "$(head -c 300 "$TMP/t4.json")"
else
	fail tiny_output "exit status $?: $(head -c 300 "$TMP/t.err")"
fi

# bad inputs
printf 'the cat sat on the mat' >"$TMP/short.txt"
expect_error too_short "perplexity: $TMP/short.txt: you need at least 1024 tokens to evaluate perplexity with a context of 512; the text tokenizes to only 35 tokens" \
	"$PP" -m "$TM" -f "$TMP/short.txt"
expect_error too_short_ctx "perplexity: <stdin>: you need at least 40 tokens to evaluate perplexity with a context of 20; the text tokenizes to only 35 tokens" \
	"$PP" -m "$TM" -f - -c 20 <"$TMP/short.txt"
expect_error missing_file "perplexity: $TMP/absent.txt: No such file or directory" "$PP" -m "$TM" -f "$TMP/absent.txt"
expect_error numerics_bad "perplexity: --numerics: 'exact' is not weft or llama.cpp" "$PP" -m "$TM" -f "$TEXT" --numerics exact
expect_error missing_model "perplexity: $TMP/absent.gguf: " "$PP" -m "$TMP/absent.gguf" -f "$TEXT"
expect_error not_a_model "perplexity: $TEXT: not a GGUF file" "$PP" -m "$TEXT" -f "$TEXT"
expect_error no_model "perplexity: no model given (-m MODEL.gguf); see --help" "$PP" -f "$TEXT"
expect_error no_text "perplexity: no text given (-f FILE, or -f - for stdin); see --help" "$PP" -m "$TM"
expect_error ctx_too_small "perplexity: --ctx: expected a number in 3..1048576, got '2'" "$PP" -m "$TM" -f "$TEXT" -c 2
printf 'ab\377cd' >"$TMP/bad.txt"
expect_error bad_utf8 "perplexity: $TMP/bad.txt: invalid UTF-8 at byte 2" "$PP" -m "$TM" -f "$TMP/bad.txt"
exit $status
