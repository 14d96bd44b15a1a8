#!/usr/bin/env bash
# Configures and builds into $TPP_BUILD_DIR (default build/) with all cores.
# Extra arguments go to cmake, e.g. scripts/build.sh -DTPP_CUDA=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build_dir=${TPP_BUILD_DIR:-$root/build}
launcher=()
# Paths relative to the checkout, so that clones in other folders (CI's, a
# worktree) share one compiler cache.
export CCACHE_BASEDIR=${CCACHE_BASEDIR:-$root} CCACHE_NOHASHDIR=${CCACHE_NOHASHDIR:-true}
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_CUDA_COMPILER_LAUNCHER=ccache)
cmake -S "$root" -B "$build_dir" -G Ninja "${launcher[@]}" "$@"
cmake --build "$build_dir" -j "$(nproc)"
