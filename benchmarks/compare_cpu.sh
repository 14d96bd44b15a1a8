#!/usr/bin/env bash
# Builds bench_ops, then times our CPU ops and PyTorch's on the same cases
# (benchmarks/op_cases.json: single ops, training steps and eval-mode forwards
# of the zoo models) and prints a markdown table per thread count, then the
# thread-scaling table.
#
#   benchmarks/compare_cpu.sh [rounds]        (default 5)
#   env: THREADS (thread counts, default "2 1"), FILTER (regex over case names),
#        MIN_TIME (seconds per case and round, default 0.5), BUILD_DIR (default
#        build-bench; an existing build dir keeps its settings, bench_ops is
#        added to it), BENCH_OPS (a bench_ops binary to time instead of
#        building one, e.g. one built from another commit),
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
thread_counts=${THREADS:-2 1}
filter=${FILTER:-.}
min_time=${MIN_TIME:-0.5}

bench_ops=${BENCH_OPS:-}
if [[ -z $bench_ops ]]; then
  # shellcheck source=cpu_build.sh
  source "$here/cpu_build.sh"
  cpu_build "$build" bench_ops -DTPP_BUILD_BENCHMARKS=ON
  bench_ops=$build/benchmarks/bench_ops
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq 1 "$rounds"); do
  for threads in $thread_counts; do
    mkdir -p "$out/$threads"
    OMP_NUM_THREADS=$threads "$bench_ops" --benchmark_filter="$filter" \
      --benchmark_min_time="$min_time" --benchmark_format=json >"$out/$threads/ours_$r.json" 2>/dev/null
    if [[ -n ${BASELINE_OPS:-} ]]; then
      OMP_NUM_THREADS=$threads "$BASELINE_OPS" --benchmark_filter="$filter" \
        --benchmark_min_time="$min_time" --benchmark_format=json >"$out/$threads/baseline_$r.json" 2>/dev/null
    fi
    /usr/bin/python3 "$here/torch_ops.py" --threads "$threads" --filter "$filter" --min-time "$min_time" \
      >"$out/$threads/torch_$r.json"
  done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

scaling=()
for threads in $thread_counts; do
  /usr/bin/python3 "$here/median_table.py" "$out/$threads" "$rounds" ours ours/PyTorch \
    "$threads thread(s), median of $rounds alternating rounds; $(lscpu | sed -n 's/^Model name: *//p'); OpenBLAS core {ours[openblas_core]}; PyTorch {torch[torch]}; load average $load_before before, $load_after after"
  echo
  scaling+=("$threads:$out/$threads")
done
if ((${#scaling[@]} > 1)); then
  echo "Thread scaling (medians as above):"
  echo
  /usr/bin/python3 "$here/scaling_table.py" "$rounds" "${scaling[@]}"
fi
