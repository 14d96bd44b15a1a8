#!/usr/bin/env bash
# Set-up, build and the whole test suite through ctest.
#   scripts/test.sh                  # CUDA when nvcc is found, else CPU-only
#   scripts/test.sh -DTPP_CUDA=OFF   # force the CPU-only configuration
# A test that cannot run here (no usable GPU, no data set, no PyTorch) says
# why and ctest counts it as skipped; the last line sums up.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/setup.sh"
# Tests on explicitly: the build directory may come from quickstart.sh, which
# turns them off (ctest would then run stale test binaries).
"$root/scripts/build.sh" -DTPP_BUILD_TESTS=ON "$@"
build_dir=${TPP_BUILD_DIR:-$root/build}
"$build_dir/tpp" --version
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
ctest --test-dir "$build_dir" --output-on-failure -j "$(nproc)" ${TPP_CTEST_ARGS:-} | tee "$log" || status=$?
total=$(sed -n 's/.* tests failed out of \([0-9]*\).*/\1/p' "$log" | tail -1)
failed=$(sed -n 's/.*, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -1)
skipped=$(grep -c '(Skipped)$' "$log" || true)
echo "ctest: $((${total:-0} - ${failed:-0} - skipped)) passed, $skipped skipped, ${failed:-0} failed (of ${total:-0})"
exit "$status"
