#!/usr/bin/env bash
# The CUDA backend on the emulated device (tests/cuda_emu/, no GPU needed):
# builds the -DTPP_CUDA=EMULATE configuration's GPU targets and runs the whole
# gpu-labelled suite and every tpp_parity case, once with blocks in order and
# once in a random block order (the seed is printed; TPP_EMU_SEED=N repeats a
# run). Fails if any GPU test reports itself skipped.
#   scripts/test_emulated.sh [extra cmake args]     # build dir: $TPP_BUILD_DIR, default build-emu/
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TPP_BUILD_DIR:-$root/build-emu}
launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja "${launcher[@]}" -DTPP_CUDA=EMULATE -DTPP_BUILD_TESTS=ON "$@"
cmake --build "$build_dir" -j "$(nproc)" --target tpp tpp_gpu_tests tpp_parity
"$build_dir/tpp" --version

run_gpu_tests() {
  local log="$build_dir/emulated-gpu-$TPP_EMU_BLOCK_ORDER.log"
  ctest --test-dir "$build_dir" -L gpu --output-on-failure -j "$(nproc)" --output-log "$log"
  if grep -q 'skipped' "$log"; then
    echo "emulated device: GPU tests were skipped instead of run:" >&2
    grep 'skipped' "$log" >&2
    exit 1
  fi
  "$build_dir/tests/tpp_parity"
}

export TPP_EMU_BLOCK_ORDER=in-order
run_gpu_tests
seed=${TPP_EMU_SEED:-$(( (RANDOM << 15) | RANDOM ))}
echo "emulated device: random block order, seed $seed (TPP_EMU_SEED=$seed repeats it)"
export TPP_EMU_BLOCK_ORDER=random TPP_EMU_SEED=$seed
run_gpu_tests
