#!/usr/bin/env bash
# The CUDA backend on the emulated device (tests/cuda_emu/, no GPU needed):
# builds the -DTPP_CUDA=EMULATE configuration's GPU targets and runs the whole
# gpu-labelled suite (with the differential test against PyTorch on the
# device: the committed seeds and a fresh one, whose seed is printed in the
# log) and every tpp_parity case, once with blocks in order and
# once in a random block order (the seed is printed; TPP_EMU_SEED=N repeats a
# run). The random pass leaves out the two end-to-end `tpp prune` runs (minutes
# each on the emulator; their kernels are all in the parity cases and the
# training-step tests). Fails if any GPU test reports itself skipped.
#   scripts/test_emulated.sh [extra cmake args]     # build dir: $TPP_BUILD_DIR, default build-emu/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TPP_BUILD_DIR:-$root/build-emu}
launcher=()
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}  # as scripts/build.sh
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja "${launcher[@]}" -DTPP_CUDA=EMULATE -DTPP_BUILD_TESTS=ON "$@"
cmake --build "$build_dir" -j "$(nproc)" --target tpp tpp_gpu_tests tpp_parity tpp_difftest
"$build_dir/tpp" --version

run_gpu_tests() {
  local log="$build_dir/emulated-gpu-$TPP_EMU_BLOCK_ORDER.log"
  # Verbose into a log: the skip check below reads every test's output.
  if ! ctest --test-dir "$build_dir" -L gpu -V -j "$(nproc)" "$@" > "$log" 2>&1; then
    grep -E -B2 -A12 'ERROR|FATAL|Failed|FAIL ' "$log" | tail -200 >&2
    echo "emulated device: GPU tests failed (blocks: $TPP_EMU_BLOCK_ORDER); full log: $log" >&2
    exit 1
  fi
  grep -E 'tests passed|Total Test time|difftest seed:|difftest on cuda' "$log"
  if grep -qE 'MESSAGE: skipped|skipped: no usable GPU' "$log"; then
    echo "emulated device: GPU tests were skipped instead of run:" >&2
    grep -E 'MESSAGE: skipped|skipped: no usable GPU' "$log" >&2
    exit 1
  fi
  "$build_dir/tests/tpp_parity"
}

export TPP_EMU_BLOCK_ORDER=in-order
run_gpu_tests
seed=${TPP_EMU_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "emulated device: random block order, seed $seed (TPP_EMU_SEED=$seed repeats it)"
export TPP_EMU_BLOCK_ORDER=random TPP_EMU_SEED=$seed
run_gpu_tests -E 'tpp prune' 
