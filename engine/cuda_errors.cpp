#include "engine/cuda_errors.h"

#include <fmt/format.h>

#include <array>

namespace tpp {
namespace {

struct Advice {
  std::string_view name_part;  // matched anywhere in the error's name
  std::string_view hint;
};

// First match wins, so the specific names come before the families.
constexpr std::string_view kOutOfMemory = "out of GPU memory: lower the batch size";
constexpr std::string_view kFault =
    "a kernel faulted and the CUDA context is lost: rerun with CUDA_LAUNCH_BLOCKING=1 TPP_CUDA_ALLOC=direct under "
    "compute-sanitizer to find it";
constexpr std::string_view kTppBug = "the library was handed invalid arguments: a tpp bug, please report it";
constexpr std::string_view kNcclPeers = "another rank or the network failed: rerun with NCCL_DEBUG=WARN";

constexpr std::array kAdvice = {
    Advice{"cudaErrorMemoryAllocation", kOutOfMemory},
    Advice{"ALLOC_FAILED", kOutOfMemory},
    Advice{"DEVICE_ALLOCATION_FAILED", kOutOfMemory},
    Advice{"cudaErrorInsufficientDriver",
           "no usable GPU: the NVIDIA driver is older than this CUDA runtime (update the driver, or build with "
           "-DTPP_CUDA=OFF)"},
    Advice{"INCOMPATIBLE_CUDA_DRIVER", "no usable GPU: the NVIDIA driver is too old for this cuDNN"},
    Advice{"cudaErrorNoDevice", "no usable GPU: none is visible (check nvidia-smi and CUDA_VISIBLE_DEVICES)"},
    Advice{"cudaErrorInvalidDevice", "no such GPU: check the device index against CUDA_VISIBLE_DEVICES"},
    Advice{"cudaErrorDevicesUnavailable", "no usable GPU: the GPUs are busy in exclusive-process mode"},
    Advice{"cudaErrorIllegalAddress", kFault},
    Advice{"cudaErrorLaunchFailure", kFault},
    Advice{"cudaErrorMisalignedAddress", kFault},
    Advice{"cudaErrorIllegalInstruction", kFault},
    Advice{"cudaErrorAssert", kFault},
    Advice{"cudaErrorNoKernelImageForDevice",
           "this build has no code for this GPU: reconfigure with -DCMAKE_CUDA_ARCHITECTURES=native"},
    Advice{"ARCH_MISMATCH", "this build has no code for this GPU: reconfigure with -DCMAKE_CUDA_ARCHITECTURES=native"},
    Advice{"cudaErrorLaunchOutOfResources", "a kernel's launch asks for too many registers or threads: a tpp bug"},
    Advice{"CUBLAS_STATUS_NOT_INITIALIZED", "cuBLAS could not start: out of GPU memory or no usable GPU"},
    Advice{"NOT_SUPPORTED", "the library has no algorithm for this shape, dtype or layout on this GPU"},
    Advice{"CUDNN_STATUS_BAD_PARAM", kTppBug},
    Advice{"CUBLAS_STATUS_INVALID_VALUE", kTppBug},
    Advice{"cudaErrorInvalidValue", kTppBug},
    Advice{"ncclInvalidArgument", kTppBug},
    Advice{"ncclInvalidUsage", kTppBug},
    Advice{"ncclRemoteError", kNcclPeers},
    Advice{"ncclSystemError", kNcclPeers},
    Advice{"ncclUnhandledCudaError", "a CUDA call inside NCCL failed: rerun with NCCL_DEBUG=WARN"},
};

std::string_view file_name(std::string_view path) { return path.substr(path.rfind('/') + 1); }

// Libraries' descriptions may span lines; the message stays on one.
std::string one_line(std::string_view text) {
  std::string out;
  for (const char c : text) {
    if (c == '\n' || c == '\r') {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += c;
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::string_view gpu_error_hint(std::string_view error_name) {
  for (const Advice& advice : kAdvice)
    if (error_name.find(advice.name_part) != std::string_view::npos) return advice.hint;
  return {};
}

std::string format_gpu_call_failure(const GpuCallFailure& failure) {
  std::string out = fmt::format("{}:{}: {} failed: {}", file_name(failure.file), failure.line, failure.call,
                                failure.error_name);
  const std::string text = one_line(failure.error_text);
  if (!text.empty() && text != failure.error_name) out += fmt::format(" ({})", text);
  const std::string_view hint = gpu_error_hint(failure.error_name);
  if (!hint.empty()) out += fmt::format("; {}", hint);
  return out;
}

}  // namespace tpp
