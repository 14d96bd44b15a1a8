// Modes of tpp_mpi_selftest that train (tests/dist/mpi_training.cpp).
#pragma once

#include <memory>

#include "engine/distributed.h"

namespace tpp::testing {

int run_sync_batch_norm(const std::shared_ptr<dist::Communicator>& comm);
int run_tpp_step(const std::shared_ptr<dist::Communicator>& comm);

}  // namespace tpp::testing
