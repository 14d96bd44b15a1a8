// Versions of the CUDA libraries this build links, for `tpp --version`.
#pragma once

#include <string>

namespace tpp {

// "CUDA: not built" in CPU-only builds; otherwise one line per library, and
// the visible GPUs (or why none could be used).
std::string cuda_version_text();

// Number of usable CUDA devices; 0 in CPU-only builds or on any CUDA error
// (no driver, driver too old, no device).
int cuda_device_count();

}  // namespace tpp
