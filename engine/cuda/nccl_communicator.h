// The NCCL backend of Communicator (CUDA tensors); CUDA builds only. Each
// process drives GPU local_rank. Rank 0's NCCL unique id reaches the others
// through `bootstrap` (the MPI communicator) when there is one, else through
// the TCP rendezvous at MASTER_ADDR:MASTER_PORT (engine/rendezvous.h).
#pragma once

#include <memory>

#include "engine/distributed.h"

namespace tpp::dist {

std::unique_ptr<Communicator> make_nccl_communicator(const LaunchEnv& env, std::unique_ptr<Communicator> bootstrap,
                                                     Seconds timeout);

}  // namespace tpp::dist
