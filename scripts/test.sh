#!/usr/bin/env bash
# Set-up, build and the whole test suite through ctest.
#   scripts/test.sh                  # CUDA when nvcc is found, else CPU-only
#   scripts/test.sh -DTPP_CUDA=OFF   # force the CPU-only configuration
# GPU tests skip themselves, saying so, when no GPU is usable.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
"$root/scripts/build.sh" "$@"
build_dir=${TPP_BUILD_DIR:-$root/build}
"$build_dir/tpp" --version
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" ${TPP_CTEST_ARGS:-}
