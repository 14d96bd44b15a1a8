// A kernel that writes one element past the end of its device buffer: under
// AddressSanitizer (scripts/test_emulated.sh --sanitize) the emulated device
// must stop it with a report that names the kernel's source line, not leave
// a silent wrong answer. ctest expects the report (tests/CMakeLists.txt).
#include <cstdio>

#include "tests/cuda_emu/cuda_emu.h"

namespace {

void write_one_past_the_end(float* out, int n) {
  const int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (i <= n) out[i] = 1.0f;  // the bug: <= instead of <
}

}  // namespace

int main() {
  constexpr int n = 100;
  float* out = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&out), n * sizeof(float)) != cudaSuccess) return 1;
  tpp_emu::launch(tpp_emu::launch_config(1, 128), __FILE__, __LINE__, write_one_past_the_end, out, n);
  const cudaError_t status = cudaDeviceSynchronize();
  std::printf("the out-of-bounds write went unnoticed (%s)\n", cudaGetErrorName(status));
  return 0;
}
