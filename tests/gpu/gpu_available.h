// GPU tests call this first: with no usable GPU it says so in the output and
// the test returns.
#pragma once

#include <doctest/doctest.h>

#include <string>

#include "engine/cuda_info.h"

inline bool skip_without_gpu() {
  if (tpp::cuda_device_count() > 0) return false;
  std::string why = tpp::cuda_version_text();
  const size_t gpus = why.find("GPUs: ");
  why = gpus == std::string::npos ? "CPU-only build" : why.substr(gpus, why.find('\n', gpus) - gpus);
  MESSAGE("skipped: no usable GPU (", why, ")");
  return true;
}
