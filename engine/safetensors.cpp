#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "engine/atomic_file.h"
#include "engine/autograd.h"

namespace tpp {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors stores little-endian data");

namespace fs = std::filesystem;
using nlohmann::json;

constexpr std::string_view kMetadataKey = "__metadata__";

std::string_view safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
  }
  return "?";
}

std::optional<DType> dtype_from_safetensors(std::string_view name) {
  for (const DType t : {DType::f32, DType::f64, DType::i64, DType::u8})
    if (safetensors_dtype(t) == name) return t;
  return std::nullopt;
}

// ---- loading ----

// False on end of file or a read error (errno tells which: 0 for end of file).
bool read_exact(int fd, void* dst, uint64_t nbytes, uint64_t offset) {
  auto* out = static_cast<char*>(dst);
  while (nbytes > 0) {
    const ssize_t got = ::pread(fd, out, nbytes, static_cast<off_t>(offset));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      if (got == 0) errno = 0;
      return false;
    }
    out += got;
    offset += static_cast<uint64_t>(got);
    nbytes -= static_cast<uint64_t>(got);
  }
  return true;
}

struct TensorEntry {
  std::string name;
  DType dtype = DType::f32;
  Shape shape;
  uint64_t begin = 0, end = 0;
};

// Validates one header entry against the data section; every complaint is one
// line naming the file and the tensor.
class EntryParser {
 public:
  EntryParser(std::string file, uint64_t data_size) : file_(std::move(file)), data_size_(data_size) {}

  TensorEntry parse(const std::string& name, const json& j) const {
    TensorEntry e;
    e.name = name;
    if (!j.is_object()) bad(name, "entry is not a JSON object");
    e.dtype = parse_dtype(name, j);
    e.shape = parse_shape(name, j);
    std::tie(e.begin, e.end) = parse_offsets(name, j);
    const uint64_t expected = byte_count(name, e);
    if (e.end - e.begin != expected)
      bad(name, fmt::format("data_offsets [{}, {}] hold {} bytes but shape {} of {} needs {}", e.begin, e.end,
                            e.end - e.begin, shape_str(e.shape), safetensors_dtype(e.dtype), expected));
    return e;
  }

 private:
  [[noreturn]] void bad(const std::string& name, const std::string& what) const {
    fail("load_safetensors: {}: tensor '{}': {}", file_, name, what);
  }

  DType parse_dtype(const std::string& name, const json& j) const {
    const auto it = j.find("dtype");
    if (it == j.end() || !it->is_string()) bad(name, "missing or non-string \"dtype\"");
    const auto dtype = dtype_from_safetensors(it->get_ref<const std::string&>());
    if (!dtype) bad(name, fmt::format("unsupported dtype '{}' (expected F32, F64, I64 or U8)", it->get<std::string>()));
    return *dtype;
  }

  Shape parse_shape(const std::string& name, const json& j) const {
    const auto it = j.find("shape");
    if (it == j.end() || !it->is_array()) bad(name, "missing or non-list \"shape\"");
    Shape shape;
    for (const json& d : *it) {
      if (!d.is_number_integer()) bad(name, fmt::format("shape {} holds a non-integer", shape_text(*it)));
      if (d.is_number_unsigned() && d.get<uint64_t>() > uint64_t(std::numeric_limits<int64_t>::max()))
        bad(name, fmt::format("dimension out of range in shape {}", shape_text(*it)));
      shape.push_back(d.get<int64_t>());
    }
    for (const int64_t d : shape)
      if (d < 0) bad(name, fmt::format("negative dimension in shape {}", shape_str(shape)));
    return shape;
  }

  std::pair<uint64_t, uint64_t> parse_offsets(const std::string& name, const json& j) const {
    const auto it = j.find("data_offsets");
    const bool well_formed = it != j.end() && it->is_array() && it->size() == 2 && (*it)[0].is_number_unsigned() &&
                             (*it)[1].is_number_unsigned();
    if (!well_formed) bad(name, "\"data_offsets\" must be two non-negative integers");
    const uint64_t begin = (*it)[0].get<uint64_t>(), end = (*it)[1].get<uint64_t>();
    if (begin > end) bad(name, fmt::format("data_offsets [{}, {}] are reversed", begin, end));
    if (end > data_size_)
      bad(name, fmt::format("data_offsets [{}, {}] lie beyond the {}-byte data section", begin, end, data_size_));
    return {begin, end};
  }

  // Strides multiply the non-zero sizes, so even an empty tensor's shape must
  // keep that product within int64.
  uint64_t byte_count(const std::string& name, const TensorEntry& e) const {
    auto bytes = static_cast<int64_t>(element_size(e.dtype));
    bool empty = false;
    for (const int64_t d : e.shape) {
      if (d == 0) {
        empty = true;
      } else if (__builtin_mul_overflow(bytes, d, &bytes)) {
        bad(name, fmt::format("shape {} is too large", shape_str(e.shape)));
      }
    }
    return empty ? 0 : static_cast<uint64_t>(bytes);
  }

  // The shape as written, for messages: at most a few items, nested values
  // named by their type (a header may nest thousands deep, and strings may
  // not be valid UTF-8).
  static std::string shape_text(const json& shape) {
    std::vector<std::string> items;
    for (const json& d : shape) {
      if (items.size() == 8) {
        items.emplace_back("...");
        break;
      }
      items.push_back(d.is_primitive() ? d.dump(-1, ' ', false, json::error_handler_t::replace)
                                       : std::string(d.type_name()));
    }
    return fmt::format("[{}]", fmt::join(items, ", "));
  }

  std::string file_;
  uint64_t data_size_;
};

std::map<std::string, std::string> parse_metadata(const std::string& file, const json& j) {
  std::map<std::string, std::string> metadata;
  TPP_CHECK(j.is_object(), "load_safetensors: {}: \"__metadata__\" must map names to strings", file);
  for (const auto& [key, value] : j.items()) {
    TPP_CHECK(value.is_string(), "load_safetensors: {}: \"__metadata__\" entry '{}' is not a string", file, key);
    metadata.emplace(key, value.get<std::string>());
  }
  return metadata;
}

void check_no_overlap(const std::string& file, std::vector<TensorEntry> entries) {
  std::erase_if(entries, [](const TensorEntry& e) { return e.begin == e.end; });
  std::sort(entries.begin(), entries.end(), [](const TensorEntry& a, const TensorEntry& b) { return a.begin < b.begin; });
  for (size_t i = 1; i < entries.size(); ++i) {
    const TensorEntry &prev = entries[i - 1], &cur = entries[i];
    TPP_CHECK(prev.end <= cur.begin, "load_safetensors: {}: tensors '{}' [{}, {}] and '{}' [{}, {}] overlap", file,
              prev.name, prev.begin, prev.end, cur.name, cur.begin, cur.end);
  }
}

// Where a safetensors file is read from: an open file or a memory buffer.
class ByteSource {
 public:
  virtual ~ByteSource() = default;
  virtual uint64_t size() const = 0;
  // Reads exactly `nbytes` at `offset`; on failure, the reason.
  virtual std::optional<std::string> read(void* dst, uint64_t nbytes, uint64_t offset) const = 0;
};

class FileSource final : public ByteSource {
 public:
  FileSource(int fd, uint64_t size) : fd_(fd), size_(size) {}
  uint64_t size() const override { return size_; }
  std::optional<std::string> read(void* dst, uint64_t nbytes, uint64_t offset) const override {
    if (read_exact(fd_, dst, nbytes, offset)) return std::nullopt;
    return errno == 0 ? "file ended early" : errno_text();
  }

 private:
  int fd_;
  uint64_t size_;
};

class MemorySource final : public ByteSource {
 public:
  explicit MemorySource(std::span<const uint8_t> bytes) : bytes_(bytes) {}
  uint64_t size() const override { return bytes_.size(); }
  std::optional<std::string> read(void* dst, uint64_t nbytes, uint64_t offset) const override {
    if (offset > bytes_.size() || nbytes > bytes_.size() - offset) return "file ended early";
    if (nbytes > 0) std::memcpy(dst, bytes_.data() + offset, nbytes);
    return std::nullopt;
  }

 private:
  std::span<const uint8_t> bytes_;
};

json parse_header(const std::string& file, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    fail("load_safetensors: {}: header is not valid JSON (error at byte {})", file, e.byte);
  } catch (const json::out_of_range&) {  // a number beyond double, such as 1e999
    fail("load_safetensors: {}: header is not valid JSON (a number is out of range)", file);
  }
}

SafetensorsFile read_safetensors(const std::string& file, const ByteSource& source) {
  const uint64_t file_size = source.size();
  TPP_CHECK(file_size >= 8, "load_safetensors: {}: file has {} bytes, too short for the 8-byte header length", file,
            file_size);
  uint64_t header_size = 0;
  if (auto why = source.read(&header_size, 8, 0))
    fail("load_safetensors: {}: cannot read the header length: {}", file, *why);
  TPP_CHECK(header_size <= kMaxSafetensorsHeaderBytes,
            "load_safetensors: {}: header length {} exceeds the limit of {} bytes", file, header_size,
            kMaxSafetensorsHeaderBytes);
  TPP_CHECK(header_size <= file_size - 8, "load_safetensors: {}: header length {} exceeds the {} bytes that follow it",
            file, header_size, file_size - 8);
  std::string header_bytes(header_size, '\0');
  if (auto why = source.read(header_bytes.data(), header_size, 8))
    fail("load_safetensors: {}: cannot read the header: {}", file, *why);

  const json header = parse_header(file, header_bytes);
  TPP_CHECK(header.is_object(), "load_safetensors: {}: header is not a JSON object", file);

  const uint64_t data_start = 8 + header_size;
  const EntryParser parser(file, file_size - data_start);
  SafetensorsFile result;
  std::vector<TensorEntry> entries;
  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey)
      result.metadata = parse_metadata(file, value);
    else
      entries.push_back(parser.parse(name, value));
  }
  check_no_overlap(file, entries);

  for (const TensorEntry& e : entries) {
    Tensor t = empty(e.shape, {.dtype = e.dtype});
    if (e.begin != e.end) {
      if (auto why = source.read(t.raw_data(), e.end - e.begin, data_start + e.begin))
        fail("load_safetensors: {}: cannot read tensor '{}': {}", file, e.name, *why);
    }
    result.tensors.emplace(e.name, std::move(t));
  }
  return result;
}

// ---- saving ----

std::string header_text(const std::vector<std::pair<std::string, Tensor>>& ordered,
                        const std::map<std::string, std::string>& metadata, const std::string& file) {
  json header = json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : ordered) {
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * element_size(t.dtype());
    header[name] = {{"dtype", safetensors_dtype(t.dtype())}, {"shape", t.sizes()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[std::string(kMetadataKey)] = metadata;
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception&) {
    fail("save_safetensors: {}: tensor names and metadata must be valid UTF-8", file);
  }
  // Pad so the data section starts 8-byte aligned, as the reference writer does.
  text.append((8 - text.size() % 8) % 8, ' ');
  return text;
}

void write_tensor(AtomicFileWriter& file, const Tensor& t) {
  const uint64_t bytes = static_cast<uint64_t>(t.numel()) * element_size(t.dtype());
  if (bytes == 0) return;
  const Tensor src = t.detach().contiguous();
  if (src.device().is_cpu()) {
    file.write(src.raw_data(), bytes);
  } else {
    std::vector<char> host(bytes);
    src.copy_to_host(host.data(), bytes);
    file.write(host.data(), bytes);
  }
}

// For the crash-safety tests (tests/apps/test_crash_safety.cpp) only:
// TPP_TEST_KILL_IN_SAVE=N makes the Nth save of this process SIGKILL it once
// half of the file is written, while only the temporary file exists. Random
// kills rarely land in so short a window; this one always does.
bool kill_in_this_save() {
  static const long kill_at = [] {
    const char* value = std::getenv("TPP_TEST_KILL_IN_SAVE");
    return value != nullptr ? std::strtol(value, nullptr, 10) : 0L;
  }();
  static std::atomic<long> saves{0};
  return kill_at > 0 && ++saves == kill_at;
}

}  // namespace

SafetensorsFile load_safetensors(const std::filesystem::path& path) {
  const std::string file = path.string();
  const FileDescriptor fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  TPP_CHECK(fd.valid(), "load_safetensors: cannot open {}: {}", file, errno_text());
  struct stat st {};
  TPP_CHECK(::fstat(fd.get(), &st) == 0, "load_safetensors: cannot stat {}: {}", file, errno_text());
  TPP_CHECK(S_ISREG(st.st_mode), "load_safetensors: {} is not a regular file", file);
  return read_safetensors(file, FileSource(fd.get(), static_cast<uint64_t>(st.st_size)));
}

SafetensorsFile parse_safetensors(std::span<const uint8_t> bytes, const std::string& name) {
  return read_safetensors(name, MemorySource(bytes));
}

void save_safetensors(const std::filesystem::path& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  TPP_CHECK(path.has_filename(), "save_safetensors: {} names no file", file);
  for (const auto& [name, t] : tensors) {
    TPP_CHECK(!name.empty(), "save_safetensors: {}: a tensor has an empty name", file);
    TPP_CHECK(name != kMetadataKey, "save_safetensors: {}: \"__metadata__\" is reserved and cannot name a tensor", file);
    TPP_CHECK(t.defined(), "save_safetensors: {}: tensor '{}' is undefined", file, name);
  }

  // Widest elements first, so every tensor starts aligned to its element size.
  std::vector<std::pair<std::string, Tensor>> ordered(tensors.begin(), tensors.end());
  std::stable_sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    return element_size(a.second.dtype()) > element_size(b.second.dtype());
  });
  const std::string header = header_text(ordered, metadata, file);

  AtomicFileWriter out(path, "save_safetensors");
  const uint64_t header_size = header.size();
  out.write(&header_size, 8);
  out.write(header);
  const bool kill = kill_in_this_save();
  for (size_t i = 0; i < ordered.size(); ++i) {
    if (kill && i == ordered.size() / 2) ::raise(SIGKILL);
    write_tensor(out, ordered[i].second);
  }
  out.commit();
}

}  // namespace tpp
