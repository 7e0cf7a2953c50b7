# matmul.bench.sh - weft_matmul GFLOP/s and weight GB/s at SmolLM2-135M
# shapes (k x n_out), decode (T=1) and prefill (T=512), Q4_1 / Q8_0 / F16,
# per kernel level, THREADS (default "1 2").  Built by make bench.
set -u
THREADS=${THREADS:-"1 2"}
# shellcheck disable=SC2086
"${WEFT_BENCHBIN:-build/bench}/bench_matmul" $THREADS
