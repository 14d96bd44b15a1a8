// A TCP rendezvous that hands one blob (the NCCL unique id) from rank 0 to
// every rank when there is no MPI to broadcast it: rank 0 listens on
// MASTER_ADDR:MASTER_PORT, the others connect, retrying until the deadline.
//
// Rank 0 listens on that address alone when it is a loopback address (tests,
// one node), else on all interfaces. IPv4 only.
//
// Wire format (little-endian): a rank sends "TPPRDV01", u32 rank, u32 world
// size; rank 0 answers "TPPRDV01", u32 status (0 ok, else the payload is an
// error text), u64 length, payload; the rank acknowledges with one byte.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "engine/distributed.h"

namespace tpp::dist {

struct RendezvousConfig {
  std::string address;  // MASTER_ADDR: IPv4 address or host name
  int port = 0;         // MASTER_PORT
  int rank = 0;
  int world_size = 1;
  Seconds timeout{300};
};

// Every rank calls this; all return rank 0's `blob` (other ranks' blob is
// ignored). Errors name the rank, address, port and what was missing.
std::vector<uint8_t> rendezvous_broadcast(const RendezvousConfig& config, std::span<const uint8_t> blob);

}  // namespace tpp::dist
