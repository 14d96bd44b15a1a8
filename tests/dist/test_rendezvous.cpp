// The TCP rendezvous on 127.0.0.1: ranks are threads of this process, each
// with its own connection, exactly as separate processes would be.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <exception>
#include <string>
#include <thread>

#include "engine/rendezvous.h"

using namespace tpp;
using tpp::dist::RendezvousConfig;

namespace {

// A port nobody listens on right now (the kernel's pick for port 0).
int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  socklen_t length = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  ::close(fd);
  return ntohs(addr.sin_port);
}

RendezvousConfig config(int port, int rank, int world_size, double timeout_s = 10) {
  return RendezvousConfig{"127.0.0.1", port, rank, world_size, dist::Seconds(timeout_s)};
}

// What one rank's thread ended with: the blob, or the error text.
struct Outcome {
  std::vector<uint8_t> blob;
  std::string error;
};

std::thread run_rank(const RendezvousConfig& cfg, std::vector<uint8_t> blob, Outcome& out) {
  return std::thread([cfg, blob = std::move(blob), &out] {
    try {
      out.blob = dist::rendezvous_broadcast(cfg, blob);
    } catch (const std::exception& e) {
      out.error = e.what();
    }
  });
}

}  // namespace

TEST_SUITE("distributed") {

TEST_CASE("rendezvous hands rank 0's blob to every rank") {
  const int port = free_loopback_port();
  const int world = 4;
  std::vector<uint8_t> id(128);
  for (size_t i = 0; i < id.size(); ++i) id[i] = static_cast<uint8_t>(i * 7 + 3);
  std::vector<Outcome> outcomes(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.push_back(run_rank(config(port, r, world), r == 0 ? id : std::vector<uint8_t>{9}, outcomes[r]));
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    CAPTURE(r);
    CHECK(outcomes[r].error == "");
    CHECK(outcomes[r].blob == id);
  }
}

TEST_CASE("rendezvous ranks that start before rank 0 listens retry until it does") {
  const int port = free_loopback_port();
  Outcome early, root;
  std::thread joiner = run_rank(config(port, 1, 2), {}, early);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::thread listener = run_rank(config(port, 0, 2), {42, 43}, root);
  joiner.join();
  listener.join();
  CHECK(root.error == "");
  CHECK(early.error == "");
  CHECK(early.blob == std::vector<uint8_t>{42, 43});
}

TEST_CASE("rendezvous passes an empty blob") {
  const int port = free_loopback_port();
  Outcome a, b;
  std::thread t0 = run_rank(config(port, 0, 2), {}, a);
  std::thread t1 = run_rank(config(port, 1, 2), {5}, b);
  t0.join();
  t1.join();
  CHECK(a.error == "");
  CHECK(b.error == "");
  CHECK(b.blob.empty());
}

TEST_CASE("rendezvous of a world of one needs no address and returns the blob") {
  const std::vector<uint8_t> blob{1, 2, 3};
  CHECK(dist::rendezvous_broadcast(RendezvousConfig{"", 0, 0, 1, dist::Seconds(1)}, blob) == blob);
}

TEST_CASE("a rank that finds no rank 0 gives up at the deadline, naming the address") {
  const int port = free_loopback_port();
  const auto start = std::chrono::steady_clock::now();
  CHECK_THROWS_WITH(dist::rendezvous_broadcast(config(port, 1, 2, 0.5), {}),
                    fmt::format("rendezvous: rank 1 could not reach rank 0 at 127.0.0.1:{} within 0.5 s (last "
                                "error: Connection refused)",
                                port)
                        .c_str());
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(3));
}

TEST_CASE("rank 0 gives up at the deadline, naming the ranks that never came") {
  const int port = free_loopback_port();
  Outcome root, one;
  std::thread t0 = run_rank(config(port, 0, 4, 1.0), {1}, root);
  std::thread t1 = run_rank(config(port, 1, 4, 1.0), {}, one);
  t0.join();
  t1.join();
  CHECK(root.error ==
        fmt::format("rendezvous: rank 0 waited 1 s on 127.0.0.1:{} but rank(s) 2, 3 of world size 4 never connected",
                    port));
  CHECK(one.error != "");  // rank 1 connected but never got the blob
}

TEST_CASE("rendezvous ranks that disagree about the world size both fail") {
  const int port = free_loopback_port();
  Outcome root, other;
  std::thread t0 = run_rank(config(port, 0, 2, 5), {1}, root);
  std::thread t1 = run_rank(config(port, 1, 3, 5), {}, other);
  t0.join();
  t1.join();
  CHECK(root.error ==
        fmt::format("rendezvous: on 127.0.0.1:{}: rank 1 says the world size is 3 but rank 0 has 2", port));
  CHECK(other.error == fmt::format("rendezvous: rank 1 with rank 0 at 127.0.0.1:{}: rank 0 refused it: rank 1 says "
                                   "the world size is 3 but rank 0 has 2",
                                   port));
}

TEST_CASE("rendezvous refuses a rank outside the world and a missing address") {
  CHECK_THROWS_WITH(dist::rendezvous_broadcast(config(1234, 2, 2), {}),
                    "rendezvous: rank 2 is not a rank of a world of size 2");
  CHECK_THROWS_WITH(dist::rendezvous_broadcast(RendezvousConfig{"", 0, 1, 2, dist::Seconds(1)}, {}),
                    "rendezvous: needs MASTER_ADDR and MASTER_PORT (1-65535) but got '' and 0");
}

TEST_CASE("rank 0 reports a port that is already taken") {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  REQUIRE(::listen(fd, 1) == 0);
  socklen_t length = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
  const int port = ntohs(addr.sin_port);
  CHECK_THROWS_WITH(dist::rendezvous_broadcast(config(port, 0, 2, 1), {}),
                    fmt::format("rendezvous: rank 0 cannot listen on 127.0.0.1:{}: Address already in use (is "
                                "MASTER_PORT used by another job?)",
                                port)
                        .c_str());
  ::close(fd);
}

}  // TEST_SUITE
