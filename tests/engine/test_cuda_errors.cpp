// The one-line messages of failed CUDA/cuDNN/cuBLAS/NCCL calls (pure
// formatting: runs in every build).
#include <doctest/doctest.h>

#include "engine/cuda_errors.h"

using namespace tpp;

TEST_SUITE("cuda errors") {
  TEST_CASE("a failed call names file:line, the call, the error and a hint") {
    const std::string message = format_gpu_call_failure({.file = "/src/tpp/ops/cuda/conv.cu",
                                                          .line = 42,
                                                          .call = "cudaMalloc(&ptr, bytes)",
                                                          .error_name = "cudaErrorMemoryAllocation",
                                                          .error_text = "out of memory"});
    CHECK(message ==
          "conv.cu:42: cudaMalloc(&ptr, bytes) failed: cudaErrorMemoryAllocation (out of memory); out of GPU memory: "
          "lower the batch size");
  }

  TEST_CASE("a driver too old for the runtime says there is no usable GPU") {
    const std::string message =
        format_gpu_call_failure({.file = "info.cpp",
                                 .line = 7,
                                 .call = "cudaGetDeviceCount(&count)",
                                 .error_name = "cudaErrorInsufficientDriver",
                                 .error_text = "CUDA driver version is insufficient for CUDA runtime version"});
    CHECK(message ==
          "info.cpp:7: cudaGetDeviceCount(&count) failed: cudaErrorInsufficientDriver (CUDA driver version is "
          "insufficient for CUDA runtime version); no usable GPU: the NVIDIA driver is older than this CUDA runtime "
          "(update the driver, or build with -DTPP_CUDA=OFF)");
  }

  TEST_CASE("library texts spanning lines are folded into one line") {
    const std::string message = format_gpu_call_failure({.file = "a.cpp",
                                                          .line = 1,
                                                          .call = "cudnnConvolutionForward(...)",
                                                          .error_name = "CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH",
                                                          .error_text = "shapes differ\nx: [1,2]\r\ny: [3]\n"});
    CHECK(message.find('\n') == std::string::npos);
    CHECK(message ==
          "a.cpp:1: cudnnConvolutionForward(...) failed: CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH (shapes differ x: [1,2] "
          "y: [3]); the library was handed invalid arguments: a tpp bug, please report it");
  }

  TEST_CASE("no hint and no repeated text when there is nothing to add") {
    CHECK(format_gpu_call_failure({.file = "b.cpp",
                                   .line = 3,
                                   .call = "cudnnCreate(&handle)",
                                   .error_name = "CUDNN_STATUS_NOT_INITIALIZED",
                                   .error_text = "CUDNN_STATUS_NOT_INITIALIZED"}) ==
          "b.cpp:3: cudnnCreate(&handle) failed: CUDNN_STATUS_NOT_INITIALIZED");
    CHECK(format_gpu_call_failure(
              {.file = "b.cpp", .line = 4, .call = "f()", .error_name = "cudaErrorUnknown", .error_text = ""}) ==
          "b.cpp:4: f() failed: cudaErrorUnknown");
  }

  TEST_CASE("every library's out-of-memory error asks for a smaller batch") {
    for (const char* name : {"cudaErrorMemoryAllocation", "CUBLAS_STATUS_ALLOC_FAILED",
                             "CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED"})
      CHECK_MESSAGE(gpu_error_hint(name) == "out of GPU memory: lower the batch size", name);
  }

  TEST_CASE("faults point to compute-sanitizer with the cache off") {
    for (const char* name : {"cudaErrorIllegalAddress", "cudaErrorLaunchFailure", "cudaErrorMisalignedAddress"})
      CHECK_MESSAGE(std::string(gpu_error_hint(name)).find("TPP_CUDA_ALLOC=direct under compute-sanitizer") !=
                        std::string::npos,
                    name);
  }

  TEST_CASE("NCCL failures of other ranks point to NCCL_DEBUG") {
    CHECK(gpu_error_hint("ncclRemoteError") == "another rank or the network failed: rerun with NCCL_DEBUG=WARN");
    CHECK(gpu_error_hint("ncclInvalidUsage") ==
          "the library was handed invalid arguments: a tpp bug, please report it");
  }
}
