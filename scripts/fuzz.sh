#!/usr/bin/env bash
# Builds one libFuzzer target (clang, ASan + UBSan, see TPP_FUZZ) and runs it
# on one core, seeded with tests/fuzz/corpus/<target>/.
#   scripts/fuzz.sh idx            # fuzz_idx for 600 s
#   scripts/fuzz.sh safetensors 60 -runs=5000000   # extra arguments go to libFuzzer
# Targets: the tests/fuzz/fuzz_<target>.cpp files. The corpus the fuzzer grows
# stays in $TPP_FUZZ_BUILD_DIR/corpus/<target>/ (default build-fuzz/); a crash,
# hang, leak or out-of-memory input is written to .../artifacts/<target>/.
# Replay inputs without fuzzing: build-fuzz/fuzz/fuzz_<target> FILE...
set -euo pipefail
target=${1:?usage: scripts/fuzz.sh TARGET [SECONDS] [libFuzzer arguments...]}
seconds=${2:-600}
shift $(($# >= 2 ? 2 : 1))
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TPP_FUZZ_BUILD_DIR:-$root/build-fuzz}
seeds=$root/tests/fuzz/corpus/$target
[ -f "$root/tests/fuzz/fuzz_$target.cpp" ] || { echo "fuzz.sh: no target tests/fuzz/fuzz_$target.cpp" >&2; exit 2; }

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja "${launcher[@]}" -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTPP_FUZZ=ON -DTPP_CUDA=OFF -DTPP_BUILD_TESTS=OFF >/dev/null
cmake --build "$build_dir" --target "fuzz_$target" -j "${TPP_FUZZ_JOBS:-$(nproc)}"

corpus=$build_dir/corpus/$target
artifacts=$build_dir/artifacts/$target
mkdir -p "$corpus" "$artifacts"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# New inputs go to the first folder (the build's corpus); the seeds are only read.
exec "$build_dir/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
  -artifact_prefix="$artifacts/" -print_final_stats=1 "$@" "$corpus" "$seeds"
