// The checked-call macros of engine/cuda/check.h with the libraries' real
// error names. These need the CUDA libraries, not a GPU.
#include <doctest/doctest.h>

#include "tests/gpu/gpu_available.h"

#ifdef TPP_WITH_CUDA
#include <fmt/format.h>

#include <functional>

#include "engine/cuda/check.h"
#include "engine/error.h"

using namespace tpp;

namespace {
std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}
}  // namespace

TEST_SUITE("gpu") {
  TEST_CASE("TPP_CUDA_CHECK names file:line, the call, the error and a hint") {
    int line = 0;
    const std::string message = error_of([&] { line = __LINE__; TPP_CUDA_CHECK(cudaErrorMemoryAllocation); });
    CHECK(message == fmt::format("test_cuda_check.cpp:{}: cudaErrorMemoryAllocation failed: cudaErrorMemoryAllocation "
                                 "(out of memory); out of GPU memory: lower the batch size",
                                 line));
  }

  TEST_CASE("TPP_CUBLAS_CHECK, TPP_CUDNN_CHECK and TPP_NCCL_CHECK use their library's names") {
    const std::string cublas = error_of([] { TPP_CUBLAS_CHECK(CUBLAS_STATUS_ALLOC_FAILED); });
    CHECK(cublas.find("failed: CUBLAS_STATUS_ALLOC_FAILED (") != std::string::npos);
    CHECK(cublas.ends_with("; out of GPU memory: lower the batch size"));
    const std::string cudnn = error_of([] { TPP_CUDNN_CHECK(CUDNN_STATUS_BAD_PARAM); });
    CHECK(cudnn.find("failed: CUDNN_STATUS_BAD_PARAM") != std::string::npos);
    CHECK(cudnn.ends_with("a tpp bug, please report it"));
    const std::string nccl = error_of([] { TPP_NCCL_CHECK(ncclRemoteError); });
    CHECK(nccl.find("failed: ncclRemoteError (") != std::string::npos);
    CHECK(nccl.ends_with("rerun with NCCL_DEBUG=WARN"));
    for (const std::string& message : {cublas, cudnn, nccl}) CHECK(message.find('\n') == std::string::npos);
  }

  TEST_CASE("TPP_NCCL_CHECK lets a non-blocking call in progress pass") {
    CHECK_NOTHROW(TPP_NCCL_CHECK(ncclInProgress));
  }

  TEST_CASE("without a usable GPU the runtime's first call fails with 'no usable GPU'") {
    int count = 0;
    // Where a GPU is usable, the status the runtime gives without a driver.
    const cudaError_t status = cuda_device_count() > 0 ? cudaErrorInsufficientDriver : cudaGetDeviceCount(&count);
    CHECK_THROWS_WITH_AS(TPP_CUDA_CHECK(status), doctest::Contains("; no usable GPU"), Error);
  }
}
#else
TEST_CASE("CUDA checked calls") { MESSAGE("skipped: CPU-only build"); }
#endif
