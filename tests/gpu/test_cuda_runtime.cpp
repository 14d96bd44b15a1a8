// GPU tests skip themselves, saying so, when no GPU is usable (CPU-only
// builds, no driver, or a driver too old for the runtime).
#include <doctest/doctest.h>

#include "engine/cuda_info.h"

using namespace tpp;

TEST_SUITE("gpu") {
  TEST_CASE("the CUDA runtime reports every visible device") {
    const int devices = cuda_device_count();
    if (devices == 0) {
      MESSAGE("skipped: no usable GPU (", cuda_version_text(), ")");
      return;
    }
    const std::string text = cuda_version_text();
    for (int i = 0; i < devices; ++i) CHECK(text.find("GPU " + std::to_string(i) + ":") != std::string::npos);
  }

  TEST_CASE("version text names every CUDA library in CUDA builds") {
    const std::string text = cuda_version_text();
#ifdef TPP_WITH_CUDA
    for (const char* library : {"CUDA runtime", "cuDNN", "cuBLAS", "NCCL"})
      CHECK_MESSAGE(text.find(library) != std::string::npos, library);
#else
    CHECK(text.find("CUDA: not built") == 0);
#endif
  }
}
