#!/usr/bin/env bash
# Set-up, build and the whole test suite through ctest.
#   scripts/test.sh                  # CUDA when nvcc is found, else CPU-only
#   scripts/test.sh -DTPP_CUDA=OFF   # force the CPU-only configuration
# GPU tests skip themselves, saying so, when no GPU is usable.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
# Tests on explicitly: the build directory may come from quickstart.sh, which
# turns them off (ctest would then run stale test binaries).
"$root/scripts/build.sh" -DTPP_BUILD_TESTS=ON "$@"
build_dir=${TPP_BUILD_DIR:-$root/build}
"$build_dir/tpp" --version
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" ${TPP_CTEST_ARGS:-}
