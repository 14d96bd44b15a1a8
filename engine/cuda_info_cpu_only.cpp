// The answers of engine/cuda_info.h in a CPU-only build; CUDA builds get
// engine/cuda/cuda_info.cpp instead.
#include "engine/cuda_info.h"

#ifndef TPP_WITH_CUDA

namespace tpp {
std::string cuda_version_text() { return "CUDA: not built (CPU-only build; configure with -DTPP_CUDA=ON)\n"; }
int cuda_device_count() { return 0; }
}  // namespace tpp

#endif
