#!/usr/bin/env bash
# Builds bench_ops, then times our CPU ops and PyTorch's on the same cases
# (benchmarks/op_cases.json) and prints a markdown table.
#
#   benchmarks/compare_cpu.sh [rounds]        (default 5)
#   env: THREADS (default 2), FILTER (regex over case names), MIN_TIME (seconds
#        per case and round, default 0.5), BUILD_DIR (default build-bench),
#        BLAS_CORE (an OpenBLAS core name for OPENBLAS_CORETYPE, or "auto" to
#        let OpenBLAS detect the CPU; default: the environment as it is),
#        BOOST=1 (run both at raised priority, in an autogroup of their own at
#        nice -19: on a machine shared with busy jobs, OpenMP threads that wait
#        at barriers for a descheduled partner dominate otherwise; needs root)
#
# The two run in alternation, one round each at a time, so that both sample the
# same moments of a shared machine; the table shows the median over rounds.
set -euo pipefail

if [[ ${BOOST:-0} == 1 && -z ${TPP_BOOSTED:-} ]]; then
  exec env TPP_BOOSTED=1 setsid --wait bash -c \
    'echo -19 >/proc/self/autogroup || echo "compare_cpu: could not raise priority" >&2; exec "$0" "$@"' "$0" "$@"
fi
case ${BLAS_CORE:-} in
  "") ;;
  auto) unset OPENBLAS_CORETYPE ;;
  *) export OPENBLAS_CORETYPE=$BLAS_CORE ;;
esac

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench}
rounds=${1:-5}
threads=${THREADS:-2}
filter=${FILTER:-.}
min_time=${MIN_TIME:-0.5}

launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DTPP_CUDA=OFF -DTPP_BUILD_BENCHMARKS=ON \
  -DTPP_BUILD_TESTS=OFF "${launcher[@]}" >/dev/null
ninja -C "$build" bench_ops >/dev/null

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
  OMP_NUM_THREADS=$threads "$build/benchmarks/bench_ops" --benchmark_filter="$filter" \
    --benchmark_min_time="$min_time" --benchmark_format=json >"$out/ours_$r.json" 2>/dev/null
  /usr/bin/python3 "$here/torch_ops.py" --threads "$threads" --filter "$filter" --min-time "$min_time" \
    >"$out/torch_$r.json"
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

/usr/bin/python3 "$here/median_table.py" "$out" "$rounds" ours ours/PyTorch \
  "$threads threads, median of $rounds alternating rounds; OpenBLAS core {ours[openblas_core]}; PyTorch {torch[torch]}; load average $load_before before, $load_after after"
