#include "engine/atomic_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "engine/error.h"

namespace tpp {

namespace fs = std::filesystem;

FileDescriptor::~FileDescriptor() {
  if (fd_ >= 0) ::close(fd_);
}

void FileDescriptor::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

bool FileDescriptor::close() {
  const int result = ::close(fd_);
  fd_ = -1;
  return result == 0;
}

std::string errno_text() { return std::strerror(errno); }

namespace {
std::string prefix_of(std::string_view op) { return op.empty() ? std::string() : fmt::format("{}: ", op); }
}  // namespace

void fsync_directory(const fs::path& dir, std::string_view op) {
  const FileDescriptor fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  TPP_CHECK(fd.valid(), "{}cannot open directory {} to sync it: {}", prefix_of(op), dir.string(), errno_text());
  TPP_CHECK(::fsync(fd.get()) == 0 || errno == EINVAL, "{}fsync of directory {} failed: {}", prefix_of(op),
            dir.string(), errno_text());
}

AtomicFileWriter::AtomicFileWriter(fs::path target, std::string op)
    : target_(std::move(target)), op_(std::move(op)), prefix_(prefix_of(op_)) {
  static std::atomic<uint64_t> counter{0};
  const fs::path dir = target_.has_parent_path() ? target_.parent_path() : fs::path(".");
  for (int attempt = 0; attempt < 100 && !fd_.valid(); ++attempt) {
    temporary_ = dir / fmt::format(".{}.tmp.{}.{}", target_.filename().string(), ::getpid(), counter++);
    fd_.reset(::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (!fd_.valid() && errno != EEXIST) break;
  }
  TPP_CHECK(fd_.valid(), "{}cannot create a temporary file in {}: {}", prefix_, dir.string(), errno_text());
}

AtomicFileWriter::~AtomicFileWriter() {
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFileWriter::write(const void* data, size_t bytes) {
  const auto* in = static_cast<const char*>(data);
  while (bytes > 0) {
    const ssize_t put = ::write(fd_.get(), in, bytes);
    if (put < 0 && errno == EINTR) continue;
    TPP_CHECK(put > 0, "{}writing {}: {}", prefix_, temporary_.string(), errno_text());
    in += put;
    bytes -= static_cast<size_t>(put);
  }
}

void AtomicFileWriter::commit() {
  TPP_CHECK(::fsync(fd_.get()) == 0, "{}fsync of {} failed: {}", prefix_, temporary_.string(), errno_text());
  TPP_CHECK(fd_.close(), "{}closing {} failed: {}", prefix_, temporary_.string(), errno_text());
  TPP_CHECK(::rename(temporary_.c_str(), target_.c_str()) == 0, "{}cannot replace {}: {}", prefix_, target_.string(),
            errno_text());
  committed_ = true;
  fsync_directory(target_.has_parent_path() ? target_.parent_path() : fs::path("."), op_);
}

void write_file_atomic(const fs::path& path, std::string_view contents) {
  AtomicFileWriter file(path);
  file.write(contents);
  file.commit();
}

std::optional<pid_t> atomic_temporary_owner(std::string_view name, std::string_view target) {
  const std::string prefix = fmt::format(".{}.tmp.", target);
  if (!name.starts_with(prefix)) return std::nullopt;
  const std::string_view rest = name.substr(prefix.size());
  const size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos) return std::nullopt;
  pid_t pid = 0;
  for (size_t i = 0; i < dot; ++i) {
    if (rest[i] < '0' || rest[i] > '9' || pid > 1'000'000'000) return std::nullopt;
    pid = pid * 10 + (rest[i] - '0');
  }
  return pid;
}

}  // namespace tpp
