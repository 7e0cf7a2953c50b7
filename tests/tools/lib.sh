# lib.sh - helpers for tool tests (sourced).  Prints PASS/FAIL/SKIP lines.
# WEFT_BIN: directory of the tools under test.  SHARED: ../shared/data or "".
suite=${suite:-tools}
: "${WEFT_BIN:=bin}"
SHARED=${WEFT_SHARED:-../shared}/data
[ -f "$SHARED/vocab/ggml-vocab-gpt-2.gguf" ] || SHARED=
TMP=$(mktemp -d) || exit 2
trap 'rm -rf "$TMP"' EXIT INT TERM
status=0

pass() { echo "PASS $suite.$1"; }
fail() { echo "FAIL $suite.$1: $2"; status=1; }
skip() { echo "SKIP $suite.$1: $2"; }

# expect_error NAME EXPECTED_STDERR_SUBSTRING COMMAND... : the command must
# exit non-zero, print exactly one line on stderr containing the text.
expect_error() {
	name=$1 want=$2; shift 2
	# A tool that dies on bad input exits without freeing (like any Unix
	# tool); LeakSanitizer stays on for every successful run.
	ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0 "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?
	lines=$(wc -l <"$TMP/err")
	if [ $rc -eq 0 ]; then fail "$name" "exit status 0, expected non-zero"
	elif [ $rc -ge 128 ]; then fail "$name" "killed by signal (status $rc): $(head -c 300 "$TMP/err")"
	elif ! grep -qF -- "$want" "$TMP/err"; then fail "$name" "stderr lacks '$want': $(head -c 300 "$TMP/err")"
	elif [ "$lines" -ne 1 ]; then fail "$name" "expected one line on stderr, got $lines: $(head -c 300 "$TMP/err")"
	else pass "$name"; fi
}

# model path or empty: the SmolLM2 GGUF fetched by scripts/fetch-models
smollm2() {
	d=${WEFT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/weft}
	f="$d/models/SmolLM2-135M-Instruct.Q4_1.gguf"
	[ -f "$f" ] && echo "$f"
}
