#!/usr/bin/env bash
# Builds bench_ops with the CUDA backend, then times our GPU ops and PyTorch's
# on the same cases (benchmarks/op_cases.json, the GPU-only training steps of
# resnet56 and vgg16 included) and prints a markdown table.
#
#   benchmarks/compare_gpu.sh [--math tf32|fp32] [rounds]     (default tf32, 5)
#   env: FILTER (regex over case names), MIN_TIME (seconds per case and round,
#        default 0.5), BUILD_DIR (default build-bench-cuda), DEVICE (default
#        cuda:0), PYTHON (a Python whose torch sees the GPU; default
#        /usr/bin/python3), CUDNN_ROOT / NCCL_ROOT (as scripts/gpu_check.sh:
#        default /usr/local/cuda, else the nvidia-* Python wheels)
#
# Both sides put every tensor on the GPU, run one untimed warm-up iteration
# (cuDNN algorithm search, allocator) and wait for the GPU at the end of every
# iteration; --math goes to both (TF32 tensor cores allowed, or not). The two
# run in alternation, one round each at a time; the table shows the median
# over rounds and PyTorch/tpp (> 1: we are faster).
set -euo pipefail

die() { echo "compare_gpu: $*" >&2; exit 1; }

math=tf32
rounds=5
while (($#)); do
  case $1 in
    --math) [[ $# -ge 2 ]] || die "--math needs tf32 or fp32"; math=$2; shift 2 ;;
    --math=*) math=${1#--math=}; shift ;;
    -h|--help) sed -n '2,17p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) [[ $1 =~ ^[1-9][0-9]*$ ]] || die "unknown argument '$1' (usage: compare_gpu.sh [--math tf32|fp32] [rounds])"
       rounds=$1; shift ;;
  esac
done
[[ $math == tf32 || $math == fp32 ]] || die "--math must be tf32 or fp32, not '$math'"

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${BUILD_DIR:-$root/build-bench-cuda}
filter=${FILTER:-.}
min_time=${MIN_TIME:-0.5}
device=${DEVICE:-cuda:0}
python=${PYTHON:-/usr/bin/python3}

# No GPU, no comparison: say why in one line before building anything.
command -v nvidia-smi >/dev/null || die "no GPU usable: nvidia-smi not found"
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) || true
[[ -n $gpu ]] || die "no GPU usable: nvidia-smi lists no GPU"
"$python" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null \
  || die "PyTorch at $python cannot use the GPU (torch.cuda.is_available() is not True; set PYTHON)"

wheel_root() {  # the folder of an nvidia-* wheel package (e.g. cudnn), or nothing
  python3 -c "import nvidia, os, sys; p = os.path.join(nvidia.__path__[0], sys.argv[1]); print(p if os.path.isdir(p) else '')" "$1" 2>/dev/null
}
if [[ -z "${CUDNN_ROOT:-}" && ! -e /usr/local/cuda/include/cudnn.h ]]; then CUDNN_ROOT=$(wheel_root cudnn || true); fi
if [[ -z "${NCCL_ROOT:-}" && ! -e /usr/local/cuda/include/nccl.h ]]; then NCCL_ROOT=$(wheel_root nccl || true); fi
# The wheels ship libcudnn.so.9 / libnccl.so.2 only: the build links those names.
export LD_LIBRARY_PATH="${CUDNN_ROOT:+$CUDNN_ROOT/lib:}${NCCL_ROOT:+$NCCL_ROOT/lib:}${LD_LIBRARY_PATH:-}"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# A fresh build dir gets ccache and no tests; an existing one (scripts/gpu_check.sh's) keeps its settings, so
# that only bench_ops is compiled on top of it, and gets them back if adding the benchmarks fails.
fresh=()
if [[ ! -e $build/CMakeCache.txt ]]; then
  command -v ninja >/dev/null && fresh+=(-G Ninja)
  command -v ccache >/dev/null && fresh+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
  fresh+=(-DTPP_BUILD_TESTS=OFF)
fi
if ! cmake -S "$root" -B "$build" "${fresh[@]}" -DCMAKE_BUILD_TYPE=Release -DTPP_CUDA=ON -DTPP_BUILD_BENCHMARKS=ON \
  ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"} ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} >"$out/configure.log" 2>&1; then
  tail -30 "$out/configure.log" >&2
  ((${#fresh[@]})) || cmake -S "$root" -B "$build" -DTPP_BUILD_BENCHMARKS=OFF >/dev/null 2>&1 || true
  die "configuring the CUDA build with the benchmarks failed (Google Benchmark: libbenchmark-dev)"
fi
cmake --build "$build" -j "$(nproc)" --target tpp bench_ops >"$out/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$out/build.log" | head -30 >&2; die "building bench_ops failed"; }

"$build/tpp" --version >"$out/version.txt" 2>&1 || true
grep -qE "^GPU [0-9]+:" "$out/version.txt" \
  || die "no GPU usable by tpp: $(grep -E "^(GPUs|CUDA)" "$out/version.txt" | paste -sd ' ')"
cudnn_ours=$(sed -n 's/^cuDNN: \([^ ]*\).*/\1/p' "$out/version.txt")

for r in $(seq 1 "$rounds"); do
  "$build/benchmarks/bench_ops" --device "$device" --math "$math" --benchmark_filter="$filter" \
    --benchmark_min_time="$min_time" --benchmark_format=json >"$out/ours_$r.json" 2>"$out/ours_$r.err" \
    || { tail -20 "$out/ours_$r.err" >&2; die "bench_ops failed in round $r"; }
  "$python" "$here/torch_ops.py" --device "$device" --math "$math" --filter "$filter" --min-time "$min_time" \
    >"$out/torch_$r.json" || die "torch_ops.py failed in round $r"
done

"$python" "$here/median_table.py" "$out" "$rounds" tpp PyTorch/ours \
  "$gpu ({torch[device]}), $math, median of $rounds alternating rounds; tpp with cuDNN ${cudnn_ours:-?}; PyTorch {torch[torch]} (CUDA {torch[cuda]}, cuDNN {torch[cudnn]}, cudnn.benchmark {torch[cudnn_benchmark]})"
