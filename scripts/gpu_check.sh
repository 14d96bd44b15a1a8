#!/usr/bin/env bash
# GPU verification in one command, for a machine with an NVIDIA GPU (the
# lent H100/H200 machines included): configure and build the CUDA backend,
# run the gpu-labelled tests, the parity harness with timings, and the gpu
# tests again under compute-sanitizer memcheck with caching off
# (TPP_CUDA_ALLOC=direct, so that every overrun hits a real allocation edge),
# and, where /usr/bin/python3's torch sees the GPU, the side-by-side benchmark
# against PyTorch (benchmarks/compare_gpu.sh, 3 rounds, into bench-gpu.md).
#
#   scripts/gpu_check.sh [BUILD_DIR]      results in $OUT (default: gpu-check/)
#
# cuDNN and NCCL are taken from /usr/local/cuda, or else from the nvidia-*
# Python wheels (CUDNN_ROOT / NCCL_ROOT may also be set by hand).
set -uo pipefail
cd "$(dirname "$0")/.."
build=${1:-build-gpu}
out=${OUT:-gpu-check}
mkdir -p "$out"

wheel_root() {  # the folder of an nvidia-* wheel package (e.g. cudnn), or nothing
  python3 -c "import nvidia, os, sys; p = os.path.join(nvidia.__path__[0], sys.argv[1]); print(p if os.path.isdir(p) else '')" "$1" 2>/dev/null
}
if [[ -z "${CUDNN_ROOT:-}" && ! -e /usr/local/cuda/include/cudnn.h ]]; then CUDNN_ROOT=$(wheel_root cudnn); fi
if [[ -z "${NCCL_ROOT:-}" && ! -e /usr/local/cuda/include/nccl.h ]]; then NCCL_ROOT=$(wheel_root nccl); fi
# The wheels ship libcudnn.so.9 / libnccl.so.2 only: the build links those names.
export LD_LIBRARY_PATH="${CUDNN_ROOT:+$CUDNN_ROOT/lib:}${NCCL_ROOT:+$NCCL_ROOT/lib:}${LD_LIBRARY_PATH:-}"

nvidia-smi --query-gpu=name,driver_version,compute_cap,memory.total --format=csv | tee "$out/gpu.txt"
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S . -B "$build" "${generator[@]}" -DTPP_CUDA=ON -DCMAKE_BUILD_TYPE=Release \
  ${CUDNN_ROOT:+-DCUDNN_ROOT="$CUDNN_ROOT"} ${NCCL_ROOT:+-DNCCL_ROOT="$NCCL_ROOT"} >"$out/configure.log" 2>&1 \
  || { tail -30 "$out/configure.log"; exit 1; }
cmake --build "$build" -j "$(nproc)" --target tpp tpp_gpu_tests tpp_parity >"$out/build.log" 2>&1 \
  || { grep -E "error|FAILED" "$out/build.log" | head -30; exit 1; }
"$build/tpp" --version | tee "$out/version.txt"

status=0
(cd "$build" && ctest -L gpu --output-on-failure) >"$out/ctest-gpu.log" 2>&1 || status=1
grep -E "tests passed|tests failed" "$out/ctest-gpu.log"
"$build/tests/tpp_parity" --perf >"$out/parity-perf.txt" 2>&1 || status=1
tail -1 "$out/parity-perf.txt"

sanitizer=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
if [[ -x "$sanitizer" ]]; then
  TPP_CUDA_ALLOC=direct "$sanitizer" --tool memcheck --leak-check full --error-exitcode 3 \
    "$build/tests/tpp_gpu_tests" >"$out/memcheck.log" 2>&1 || status=1
  grep -E "ERROR SUMMARY|test cases" "$out/memcheck.log" | tail -3
else
  echo "compute-sanitizer not found: memcheck not run" | tee "$out/memcheck.log"
fi

if /usr/bin/python3 -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
  if PYTHON=/usr/bin/python3 BUILD_DIR="$build" CUDNN_ROOT="${CUDNN_ROOT:-}" NCCL_ROOT="${NCCL_ROOT:-}" \
    benchmarks/compare_gpu.sh 3 >"$out/bench-gpu.md" 2>"$out/bench-gpu.log"; then
    cat "$out/bench-gpu.md"
  else
    echo "benchmarks/compare_gpu.sh failed: $(tail -1 "$out/bench-gpu.log")"
    status=1
  fi
else
  echo "GPU benchmark skipped: /usr/bin/python3 has no torch that sees the GPU" | tee "$out/bench-gpu.md"
fi
exit $status
