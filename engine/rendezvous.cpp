#include "engine/rendezvous.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>

namespace tpp::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::array<uint8_t, 8> kMagic = {'T', 'P', 'P', 'R', 'D', 'V', '0', '1'};
constexpr uint64_t kMaxPayload = uint64_t{1} << 30;
constexpr size_t kHelloSize = 8 + 4 + 4;
constexpr size_t kHeaderSize = 8 + 4 + 8;

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  Socket(Socket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  Socket& operator=(Socket&& other) noexcept {
    if (this != &other) {
      reset();
      fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;
  ~Socket() { reset(); }
  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// What one side calls the exchange in its errors.
struct Where {
  const RendezvousConfig& config;
  std::string endpoint() const { return fmt::format("{}:{}", config.address, config.port); }
};

int millis_until(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return static_cast<int>(std::clamp<int64_t>(left, 0, INT_MAX));
}

// Waits until `fd` is ready for `events`; false when the deadline passed first.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd entry{fd, events, 0};
    const int n = ::poll(&entry, 1, millis_until(deadline));
    if (n > 0) return true;
    if (n == 0) return false;
    TPP_CHECK(errno == EINTR, "rendezvous: poll failed: {}", std::strerror(errno));
  }
}

void set_nonblocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

void send_all(int fd, std::span<const uint8_t> data, Clock::time_point deadline, std::string_view what) {
  size_t sent = 0;
  while (sent < data.size()) {
    const ssize_t n = ::send(fd, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    TPP_CHECK(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK), "sending {} failed: {}", what,
              std::strerror(errno));
    TPP_CHECK(wait_ready(fd, POLLOUT, deadline), "timed out sending {}", what);
  }
}

void recv_all(int fd, std::span<uint8_t> data, Clock::time_point deadline, std::string_view what) {
  size_t got = 0;
  while (got < data.size()) {
    const ssize_t n = ::recv(fd, data.data() + got, data.size() - got, 0);
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    TPP_CHECK(n != 0, "the connection closed while receiving {}", what);
    if (errno == EINTR) continue;
    TPP_CHECK(errno == EAGAIN || errno == EWOULDBLOCK, "receiving {} failed: {}", what, std::strerror(errno));
    TPP_CHECK(wait_ready(fd, POLLIN, deadline), "timed out receiving {}", what);
  }
}

void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint64_t get_le(std::span<const uint8_t> bytes) {
  uint64_t v = 0;
  for (size_t i = 0; i < bytes.size(); ++i) v |= uint64_t{bytes[i]} << (8 * i);
  return v;
}

std::optional<sockaddr_in> resolve(const std::string& address, int port, std::string& error) {
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const int status = ::getaddrinfo(address.c_str(), nullptr, &hints, &found);
  if (status != 0 || found == nullptr) {
    error = fmt::format("cannot resolve '{}': {}", address, ::gai_strerror(status));
    return std::nullopt;
  }
  sockaddr_in out{};
  std::memcpy(&out, found->ai_addr, sizeof(out));
  ::freeaddrinfo(found);
  out.sin_port = htons(static_cast<uint16_t>(port));
  return out;
}

bool is_loopback(const sockaddr_in& addr) { return (ntohl(addr.sin_addr.s_addr) >> 24) == 127; }

std::vector<uint8_t> reply(uint32_t status, std::span<const uint8_t> payload) {
  std::vector<uint8_t> out(kMagic.begin(), kMagic.end());
  put_u32(out, status);
  put_u64(out, payload.size());
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size() && i < 8; ++i) out += (i ? ", " : "") + std::to_string(ranks[i]);
  if (ranks.size() > 8) out += fmt::format(", ... ({} in all)", ranks.size());
  return out;
}

// ---- rank 0 ----

Socket listen_on(const Where& where) {
  std::string error;
  auto addr = resolve(where.config.address, where.config.port, error);
  TPP_CHECK(addr.has_value(), "rendezvous: rank 0 cannot listen on {}: {}", where.endpoint(), error);
  if (!is_loopback(*addr)) addr->sin_addr.s_addr = htonl(INADDR_ANY);  // other nodes must reach us
  Socket listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  TPP_CHECK(listener.valid(), "rendezvous: rank 0 cannot make a socket: {}", std::strerror(errno));
  const int on = 1;
  ::setsockopt(listener.fd(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  TPP_CHECK(::bind(listener.fd(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0,
            "rendezvous: rank 0 cannot listen on {}: {} (is MASTER_PORT used by another job?)", where.endpoint(),
            std::strerror(errno));
  TPP_CHECK(::listen(listener.fd(), where.config.world_size) == 0, "rendezvous: rank 0 cannot listen on {}: {}",
            where.endpoint(), std::strerror(errno));
  set_nonblocking(listener.fd());
  return listener;
}

struct Hello {
  int rank = -1;
  int world_size = 0;
};

// Reads a joining rank's hello; nullopt when it is not one of ours.
std::optional<Hello> read_hello(int fd, Clock::time_point deadline) {
  std::array<uint8_t, kHelloSize> bytes{};
  try {
    recv_all(fd, bytes, deadline, "a hello");
  } catch (const Error&) {
    return std::nullopt;
  }
  if (!std::equal(kMagic.begin(), kMagic.end(), bytes.begin())) return std::nullopt;
  return Hello{static_cast<int>(get_le(std::span(bytes).subspan(8, 4))),
               static_cast<int>(get_le(std::span(bytes).subspan(12, 4)))};
}

std::vector<uint8_t> serve(const RendezvousConfig& config, std::span<const uint8_t> blob, Clock::time_point deadline) {
  const Where where{config};
  Socket listener = listen_on(where);
  std::vector<Socket> peers(config.world_size);
  int joined = 1;
  while (joined < config.world_size) {
    if (!wait_ready(listener.fd(), POLLIN, deadline)) {
      std::vector<int> missing;
      for (int r = 1; r < config.world_size; ++r)
        if (!peers[r].valid()) missing.push_back(r);
      fail("rendezvous: rank 0 waited {:g} s on {} but rank(s) {} of world size {} never connected",
           config.timeout.count(), where.endpoint(), rank_list(missing), config.world_size);
    }
    Socket peer(::accept4(listener.fd(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
    if (!peer.valid()) continue;
    const auto hello_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(10));
    const std::optional<Hello> hello = read_hello(peer.fd(), hello_deadline);
    if (!hello) continue;  // a stray connection, not a rank of ours
    std::string problem;
    if (hello->world_size != config.world_size)
      problem = fmt::format("rank {} says the world size is {} but rank 0 has {}", hello->rank, hello->world_size,
                            config.world_size);
    else if (hello->rank < 1 || hello->rank >= config.world_size)
      problem = fmt::format("rank {} is not a rank of a world of size {}", hello->rank, config.world_size);
    else if (peers[hello->rank].valid())
      problem = fmt::format("rank {} joined twice", hello->rank);
    if (!problem.empty()) {
      try {
        send_all(peer.fd(), reply(1, std::span(reinterpret_cast<const uint8_t*>(problem.data()), problem.size())),
                 hello_deadline, "a refusal");
      } catch (const Error&) {
      }
      fail("rendezvous: on {}: {}", where.endpoint(), problem);
    }
    peers[hello->rank] = std::move(peer);
    ++joined;
  }
  const std::vector<uint8_t> message = reply(0, blob);
  for (int r = 1; r < config.world_size; ++r) {
    try {
      send_all(peers[r].fd(), message, deadline, "the blob");
      std::array<uint8_t, 1> ack{};
      recv_all(peers[r].fd(), ack, deadline, "the acknowledgement");
    } catch (const Error& e) {
      fail("rendezvous: rank 0 on {}: rank {}: {}", where.endpoint(), r, e.what());
    }
  }
  return {blob.begin(), blob.end()};
}

// ---- the other ranks ----

// One connection attempt; an invalid socket (and `error` set) when it failed.
Socket try_connect(const RendezvousConfig& config, Clock::time_point deadline, std::string& error) {
  const auto addr = resolve(config.address, config.port, error);
  if (!addr) return {};
  Socket sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) {
    error = std::strerror(errno);
    return {};
  }
  if (::connect(sock.fd(), reinterpret_cast<const sockaddr*>(&*addr), sizeof(*addr)) == 0) return sock;
  if (errno != EINPROGRESS) {
    error = std::strerror(errno);
    return {};
  }
  if (!wait_ready(sock.fd(), POLLOUT, deadline)) {
    error = "connection attempt timed out";
    return {};
  }
  int status = 0;
  socklen_t length = sizeof(status);
  ::getsockopt(sock.fd(), SOL_SOCKET, SO_ERROR, &status, &length);
  if (status != 0) {
    error = std::strerror(status);
    return {};
  }
  return sock;
}

std::vector<uint8_t> join(const RendezvousConfig& config, Clock::time_point deadline) {
  const Where where{config};
  Socket sock;
  std::string error;
  auto backoff = std::chrono::milliseconds(20);
  while (!(sock = try_connect(config, deadline, error)).valid()) {
    TPP_CHECK(Clock::now() + backoff < deadline,
              "rendezvous: rank {} could not reach rank 0 at {} within {:g} s (last error: {})", config.rank,
              where.endpoint(), config.timeout.count(), error);
    std::this_thread::sleep_for(backoff);
    backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
  }
  try {
    std::vector<uint8_t> hello(kMagic.begin(), kMagic.end());
    put_u32(hello, static_cast<uint32_t>(config.rank));
    put_u32(hello, static_cast<uint32_t>(config.world_size));
    send_all(sock.fd(), hello, deadline, "the hello");
    std::array<uint8_t, kHeaderSize> header{};
    recv_all(sock.fd(), header, deadline, "rank 0's answer");
    TPP_CHECK(std::equal(kMagic.begin(), kMagic.end(), header.begin()), "the answer is not from a tpp rendezvous");
    const uint64_t status = get_le(std::span(header).subspan(8, 4));
    const uint64_t length = get_le(std::span(header).subspan(12, 8));
    TPP_CHECK(length <= kMaxPayload, "rank 0 announces {} bytes, more than the {} allowed", length, kMaxPayload);
    std::vector<uint8_t> payload(length);
    recv_all(sock.fd(), payload, deadline, "the blob");
    if (status != 0) fail("rank 0 refused it: {}", std::string(payload.begin(), payload.end()));
    const std::array<uint8_t, 1> ack{1};
    send_all(sock.fd(), ack, deadline, "the acknowledgement");
    return payload;
  } catch (const Error& e) {
    fail("rendezvous: rank {} with rank 0 at {}: {}", config.rank, where.endpoint(), e.what());
  }
}

}  // namespace

std::vector<uint8_t> rendezvous_broadcast(const RendezvousConfig& config, std::span<const uint8_t> blob) {
  TPP_CHECK(config.world_size >= 1 && config.rank >= 0 && config.rank < config.world_size,
            "rendezvous: rank {} is not a rank of a world of size {}", config.rank, config.world_size);
  if (config.world_size == 1) return {blob.begin(), blob.end()};
  TPP_CHECK(!config.address.empty() && config.port >= 1 && config.port <= 65535,
            "rendezvous: needs MASTER_ADDR and MASTER_PORT (1-65535) but got '{}' and {}", config.address,
            config.port);
  TPP_CHECK(config.timeout.count() > 0, "rendezvous: the timeout must be positive");
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(config.timeout);
  return config.rank == 0 ? serve(config, blob, deadline) : join(config, deadline);
}

}  // namespace tpp::dist
