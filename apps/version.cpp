// `tpp --version`: the engine, the compiler and, in CUDA builds, the CUDA
// runtime/driver, cuDNN, cuBLAS and NCCL versions; the MPI library.
#include <fmt/format.h>

#include "apps/commands.h"
#include "engine/build_info.h"
#include "engine/cuda_info.h"
#include "engine/distributed.h"

namespace tpp::apps {

std::string version_text() {
  std::string out = fmt::format("tpp {} ({} build)\ncompiler: {}\n", TPP_VERSION, TPP_BUILD_TYPE, TPP_COMPILER);
  out += cuda_version_text();
  out += dist::mpi_version_text();
  return out;
}

}  // namespace tpp::apps
