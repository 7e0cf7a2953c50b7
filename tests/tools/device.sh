# device.sh - --device / WEFT_DEVICE of prefill and decode.  Without a
# CUDA build or a usable device every cuda choice must be one error line
# and exit status 1, naming why (a build without CUDA, no usable device);
# options the device path does not offer are refused whatever the build;
# cpu is the default and gives the same stream as no option.  The GPU run
# itself is tests/gpu (test_cuda_forward, tests/gpu/run): with a device,
# the cuda cases here are skipped visibly.
suite=device
. tests/tools/lib.sh
T=$WEFT_BIN/tokenize P=$WEFT_BIN/prefill D=$WEFT_BIN/decode
TM=tests/data/llm/tiny-llama-f32.gguf

"$T" -m "$TM" 'hello world, hello' >"$TMP/p.wst"
"$P" -m "$TM" "$TMP/p.wst" >"$TMP/c.wst" || fail prefill_runs "exit $?"

# the one line names the reason, whatever this build and machine are
why_ok() {
	grep -qE -- ": --device cuda(:[0-9]+)?: (this weft was built without CUDA \(build it with make CUDA=1\)|no usable CUDA device \(.+\)|this machine has [0-9]+ CUDA devices?)$" "$TMP/err" &&
		pass "$1" || fail "$1" "unexpected reason: $(head -c 300 "$TMP/err")"
}
# options the GPU path does not offer: refused before anything runs, in every build
expect_error prefill_cuda_mass "prefill: --device cuda: --mass runs on the CPU only; use --device cpu" \
	"$P" -m "$TM" --device cuda --mass "$TMP/p.wst"
expect_error prefill_cuda_budget "prefill: --device cuda:1: --kv-budget runs on the CPU only; use --device cpu" \
	"$P" -m "$TM" --device cuda:1 --kv-budget 8 "$TMP/p.wst"
expect_error prefill_cuda_q8 "prefill: --device cuda: --kv-type q8_0 runs on the CPU only; use --device cpu" \
	env WEFT_DEVICE=cuda "$P" -m "$TM" --kv-type q8_0 "$TMP/p.wst"
expect_error decode_cuda_numerics "decode: --device cuda: --numerics llama.cpp runs on the CPU only; use --device cpu" \
	"$D" -m "$TM" --device cuda --numerics llama.cpp -n 2 "$TMP/c.wst"

# a build with CUDA on a machine with a device runs the GPU path: tests/gpu checks it
if "$P" -m "$TM" --device cuda -o "$TMP/gpu.wst" "$TMP/p.wst" 2>"$TMP/err"; then
	skip cuda_errors "a CUDA device is present (tests/gpu/test_cuda_forward and tests/gpu/run check the GPU path)"
	exit $status
fi
expect_error prefill_cuda "prefill: --device cuda" "$P" -m "$TM" --device cuda -o "$TMP/out.wst" "$TMP/p.wst"
why_ok prefill_cuda_reason
[ ! -e "$TMP/out.wst" ] && pass prefill_cuda_no_output || fail prefill_cuda_no_output "output file left behind"
expect_error decode_cuda "decode: --device cuda" "$D" -m "$TM" --device cuda:0 -n 2 "$TMP/c.wst"
expect_error decode_cuda1 "decode: --device cuda:1: " "$D" -m "$TM" --device cuda:1 -n 2 "$TMP/c.wst"
why_ok decode_cuda_reason
expect_error prefill_env_cuda "prefill: --device cuda" env WEFT_DEVICE=cuda "$P" -m "$TM" "$TMP/p.wst"
expect_error decode_env_cuda "decode: --device cuda" env WEFT_DEVICE=cuda "$D" -m "$TM" -n 2 "$TMP/c.wst"
expect_error prefill_bad_device "prefill: --device: 'gpu' is not cpu, cuda or cuda:N" "$P" -m "$TM" --device gpu "$TMP/p.wst"
expect_error decode_bad_index "decode: --device: 'cuda:x' is not cpu, cuda or cuda:N" "$D" -m "$TM" --device cuda:x "$TMP/c.wst"
expect_error bad_env "prefill: WEFT_DEVICE: 'tpu' is not cpu, cuda or cuda:N" env WEFT_DEVICE=tpu "$P" -m "$TM" "$TMP/p.wst"

# cpu: explicit, or over the environment, is the default path
WEFT_DEVICE=cuda "$P" -m "$TM" --device cpu "$TMP/p.wst" >"$TMP/c2.wst" 2>"$TMP/err" && cmp -s "$TMP/c.wst" "$TMP/c2.wst" &&
	pass cpu_overrides_env || fail cpu_overrides_env "$(head -c 300 "$TMP/err")"
"$P" -m "$TM" -v --device cpu "$TMP/p.wst" 2>"$TMP/err" >/dev/null && grep -q ', device cpu$' "$TMP/err" &&
	pass prefill_verbose_device || fail prefill_verbose_device "$(head -c 300 "$TMP/err")"
WEFT_DEVICE=cpu "$D" -m "$TM" -v --greedy -n 2 "$TMP/c.wst" 2>"$TMP/err" >/dev/null && grep -q ', device cpu$' "$TMP/err" &&
	pass decode_verbose_device || fail decode_verbose_device "$(head -c 300 "$TMP/err")"
exit $status
