// Messages for failed CUDA runtime, cuDNN, cuBLAS and NCCL calls: one line
// naming file:line, the call, the library's error and what to do about it.
// Pure formatting, so CPU-only builds test it too; engine/cuda/check.h feeds
// it the libraries' real error names and descriptions.
#pragma once

#include <string>
#include <string_view>

namespace tpp {

struct GpuCallFailure {
  std::string_view file;        // __FILE__; only the file name is shown
  int line = 0;
  std::string_view call;        // the call's source text
  std::string_view error_name;  // "cudaErrorMemoryAllocation", "CUBLAS_STATUS_ALLOC_FAILED", "ncclSystemError"
  std::string_view error_text;  // the library's description; may be empty or span lines
};

// What the user can do about an error, looked up by its name; empty when we
// have no advice beyond the library's own text.
std::string_view gpu_error_hint(std::string_view error_name);

// "conv.cu:42: cudaMalloc(&p, n) failed: cudaErrorMemoryAllocation (out of memory); lower the batch size"
std::string format_gpu_call_failure(const GpuCallFailure& failure);

}  // namespace tpp
