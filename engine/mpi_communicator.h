// The MPI backend of Communicator (CPU tensors), built when CMake finds MPI
// (TPP_MPI=AUTO|ON). Every collective is non-blocking underneath and polled
// against the collective timeout; past it the job is aborted (MPI_Abort) with
// a message naming the rank and the collective.
//
// MPI moves non-blocking collectives along only inside MPI calls (OpenMPI has
// no progress thread by default): on the CPU, buckets issued during backward
// advance when they are awaited. Correct, but not overlapped.
#pragma once

#include <memory>

#include "engine/distributed.h"

namespace tpp::dist {

// Initialises MPI on first use (finalised at exit) and checks that MPI's
// rank and size are those of `env`. Errors when this build has no MPI.
std::unique_ptr<Communicator> make_mpi_communicator(const LaunchEnv& env, Seconds timeout);

// MPI_Abort on MPI_COMM_WORLD; only when mpi_running().
[[noreturn]] void mpi_abort(int code);

}  // namespace tpp::dist
