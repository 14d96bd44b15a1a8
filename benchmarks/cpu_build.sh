# Sourced by compare_cpu.sh and compare_train.sh: cpu_build BUILD_DIR TARGET
# configures BUILD_DIR for the CPU (a fresh one gets Ninja, ccache, Release and
# no tests; an existing one keeps its settings) and builds TARGET. Extra
# arguments go to cmake.
cpu_build() {
  local build=$1 target=$2
  shift 2
  local fresh=()
  if [[ ! -e $build/CMakeCache.txt ]]; then
    command -v ninja >/dev/null && fresh+=(-G Ninja)
    command -v ccache >/dev/null && fresh+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
    fresh+=(-DCMAKE_BUILD_TYPE=Release -DTPP_CUDA=OFF -DTPP_BUILD_TESTS=OFF)
  fi
  cmake -S "$root" -B "$build" "${fresh[@]}" "$@" >/dev/null
  cmake --build "$build" --target "$target" >/dev/null
}
