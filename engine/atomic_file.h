// Replacing a file so that readers, and a process killed at any point, see
// either the old contents or the new ones, never a mix: the bytes go to a
// temporary file next to the target (".<name>.tmp.<pid>.<n>"), which is
// fsynced, renamed over the target, and the directory fsynced. The run
// directories (train/run_dir.h) and safetensors files (engine/safetensors.h)
// are written this way.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

namespace tpp {

// An owned file descriptor, closed on every path out.
class FileDescriptor {
 public:
  explicit FileDescriptor(int fd = -1) : fd_(fd) {}
  ~FileDescriptor();
  FileDescriptor(const FileDescriptor&) = delete;
  FileDescriptor& operator=(const FileDescriptor&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset(int fd);
  // Closing can report a deferred write error, so writers check it.
  bool close();

 private:
  int fd_;
};

// The text of errno, for messages.
std::string errno_text();

// One atomic replacement of `target` in progress. Errors are tpp::Error
// starting with `op` ("save_safetensors: ...") when it is not empty. The
// temporary file is removed unless commit() renamed it.
class AtomicFileWriter {
 public:
  AtomicFileWriter(std::filesystem::path target, std::string op = "");
  ~AtomicFileWriter();
  AtomicFileWriter(const AtomicFileWriter&) = delete;
  AtomicFileWriter& operator=(const AtomicFileWriter&) = delete;

  // Appends bytes to the temporary file.
  void write(const void* data, size_t bytes);
  void write(std::string_view bytes) { write(bytes.data(), bytes.size()); }
  // fsync, close, rename over the target, fsync the directory.
  void commit();
  const std::filesystem::path& temporary_path() const { return temporary_; }

 private:
  std::filesystem::path target_, temporary_;
  std::string op_, prefix_;  // prefix_: "op: ", or "" without an op
  FileDescriptor fd_;
  bool committed_ = false;
};

// The whole of `contents` as `path`, atomically.
void write_file_atomic(const std::filesystem::path& path, std::string_view contents);

// The writer's process id when `name` is the temporary file name of an
// atomic write of `target` (".<target>.tmp.<pid>.<n>"), else nothing.
std::optional<pid_t> atomic_temporary_owner(std::string_view name, std::string_view target);

// fsync of a directory (after a rename in it). Some file systems cannot sync
// directories (EINVAL); the rename stands regardless.
void fsync_directory(const std::filesystem::path& dir, std::string_view op = "");

}  // namespace tpp
