#!/usr/bin/env bash
# The CUDA backend on the emulated device (tests/cuda_emu/, no GPU needed):
# builds the -DTPP_CUDA=EMULATE configuration's GPU targets and runs the whole
# gpu-labelled suite (with the differential test against PyTorch on the
# device: the committed seeds and a fresh one, whose seed is printed in the
# log) and every tpp_parity case, once with blocks in order and
# once in a random block order (the seed is printed; TPP_EMU_SEED=N repeats a
# run). Fails if any GPU test reports itself skipped.
#
# --sanitize: the CUDA backend (kernels, their glue, the emulator) built with
# AddressSanitizer and UndefinedBehaviorSanitizer (-DTPP_SANITIZE_DEVICE=ON;
# build dir build-emu-asan/; the rest of the engine as usual, from the
# compiler cache), device memory from ASan's heap, one buffer per tensor
# (TPP_CUDA_ALLOC=direct), so that a kernel or a copy that strays past an
# allocation is reported with its source line. Runs the gpu suite on its small
# shapes (every parity case, the training steps, tpp forward, the emulator's
# own checks) in a random block order; the end-to-end `tpp train/prune` and
# mpirun runs, on larger data, are left out. Add -DTPP_SANITIZE=ON to
# instrument the whole build (far slower to build).
#   scripts/test_emulated.sh [--sanitize] [extra cmake args]   # build dir: $TPP_BUILD_DIR
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
sanitize=false
if [ "${1:-}" = "--sanitize" ]; then
  sanitize=true
  shift
fi
config=(-DTPP_CUDA=EMULATE -DTPP_BUILD_TESTS=ON)
if $sanitize; then
  build_dir=${TPP_BUILD_DIR:-$root/build-emu-asan}
  config+=(-DTPP_SANITIZE_DEVICE=ON)
else
  build_dir=${TPP_BUILD_DIR:-$root/build-emu}
fi
launcher=()
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}  # as scripts/build.sh
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja "${launcher[@]}" "${config[@]}" "$@"
cmake --build "$build_dir" -j "$(nproc)" --target tpp tpp_gpu_tests tpp_parity tpp_difftest
"$build_dir/tpp" --version

# $1: what this pass is called (the log's name); the rest goes to ctest.
run_gpu_suite() {
  local log="$build_dir/emulated-gpu-$1.log"
  shift
  # Verbose into a log: the skip check below reads every test's output.
  if ! ctest --test-dir "$build_dir" -L gpu -V -j "$(nproc)" "$@" > "$log" 2>&1; then
    grep -E -B2 -A12 'ERROR|FATAL|Failed|FAIL |Sanitizer|runtime error' "$log" | tail -200 >&2
    echo "emulated device: GPU tests failed (blocks: $TPP_EMU_BLOCK_ORDER); full log: $log" >&2
    exit 1
  fi
  grep -E 'tests passed|Total Test time|difftest seed:|difftest on cuda' "$log"
  if grep -qE 'MESSAGE: skipped|skipped: no usable GPU' "$log"; then
    echo "emulated device: GPU tests were skipped instead of run:" >&2
    grep -E 'MESSAGE: skipped|skipped: no usable GPU' "$log" >&2
    exit 1
  fi
}

seed=${TPP_EMU_SEED:-$(( (RANDOM << 15) | RANDOM ))}
if $sanitize; then
  echo "emulated device under ASan+UBSan: random block order, seed $seed (TPP_EMU_SEED=$seed repeats it)"
  export TPP_EMU_BLOCK_ORDER=random TPP_EMU_SEED=$seed TPP_CUDA_ALLOC=direct
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1} UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1}
  run_gpu_suite sanitized -E 'tpp (train|prune)|mpirun'
  exit 0
fi

export TPP_EMU_BLOCK_ORDER=in-order
run_gpu_suite in-order
"$build_dir/tests/tpp_parity"
echo "emulated device: random block order, seed $seed (TPP_EMU_SEED=$seed repeats it)"
export TPP_EMU_BLOCK_ORDER=random TPP_EMU_SEED=$seed
run_gpu_suite random
"$build_dir/tests/tpp_parity"
