#include <doctest/doctest.h>
#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/safetensors.h"
#include "engine/tensor.h"

using namespace tpp;
namespace fs = std::filesystem;

namespace {

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = fs::temp_directory_path() / fmt::format("tpp_test_safetensors_{}_{}", ::getpid(), counter++);
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  fs::path operator/(const std::string& name) const { return path_ / name; }
  const fs::path& path() const { return path_; }
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(path_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path path_;
};

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A file with the given header text and `data_size` zero bytes of data.
void write_raw(const fs::path& path, const std::string& header, size_t data_size) {
  const uint64_t n = header.size();
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  write_bytes(path, bytes + header + std::string(data_size, '\0'));
}

std::string load_error(const fs::path& path) {
  try {
    load_safetensors(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_CASE("safetensors round trip keeps every dtype, shape, value and the metadata") {
  const TempDir dir;
  const Tensor f32 = from_vector<float>({1.5f, -2.25f, 3e-8f, 4e30f, 0.f, -0.f}, {2, 3});
  const Tensor f64 = from_vector<double>({3.141592653589793, -1e-300, 2.5}, {3});
  const Tensor i64 = from_vector<int64_t>({-9'000'000'000'000'000'000LL, 0, 42, 7}, {2, 1, 2});
  const Tensor u8 = from_vector<uint8_t>({0, 1, 128, 255, 7}, {5});
  const Tensor scalar = from_vector<float>({-7.f}, {});
  const Tensor none = zeros({0, 3});
  const Tensor transposed = from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);
  REQUIRE_FALSE(transposed.is_contiguous());
  const std::map<std::string, std::string> metadata{{"format", "pt"}, {"epoch", "12"}, {"note", "naïve \"quoted\""}};

  save_safetensors(dir / "all.safetensors",
                   {{"f32", f32}, {"f64", f64}, {"i64", i64}, {"u8", u8}, {"scalar", scalar}, {"empty", none},
                    {"layer.0.transposed", transposed}},
                   metadata);
  const SafetensorsFile loaded = load_safetensors(dir / "all.safetensors");

  CHECK(loaded.metadata == metadata);
  REQUIRE(loaded.tensors.size() == 7);
  auto same = [&](const std::string& name, const Tensor& expected) {
    CAPTURE(name);
    const Tensor& got = loaded.tensors.at(name);
    CHECK(got.dtype() == expected.dtype());
    CHECK(got.sizes() == expected.sizes());
    CHECK(got.is_contiguous());
    CHECK(got.to_vector<double>() == expected.to_vector<double>());
  };
  same("f32", f32);
  same("f64", f64);
  same("scalar", scalar);
  same("empty", none);
  same("layer.0.transposed", transposed);
  CHECK(loaded.tensors.at("i64").to_vector<int64_t>() == i64.to_vector<int64_t>());
  CHECK(loaded.tensors.at("i64").sizes() == Shape{2, 1, 2});
  CHECK(loaded.tensors.at("u8").to_vector<uint8_t>() == u8.to_vector<uint8_t>());
  CHECK(loaded.tensors.at("u8").dtype() == DType::u8);
}

TEST_CASE("safetensors writes the reference layout: padded JSON header, data packed widest dtype first") {
  const TempDir dir;
  save_safetensors(dir / "x.safetensors",
                   {{"a", from_vector<uint8_t>({9}, {1})}, {"b", from_vector<double>({1.0}, {1})}});
  const std::string bytes = read_bytes(dir / "x.safetensors");
  uint64_t header_size = 0;
  std::memcpy(&header_size, bytes.data(), 8);
  CHECK(header_size % 8 == 0);
  CHECK(bytes.size() == 8 + header_size + 9);
  CHECK(bytes.substr(8, header_size) ==
        fmt::format("{:<{}}", R"({"a":{"data_offsets":[8,9],"dtype":"U8","shape":[1]},)"
                              R"("b":{"data_offsets":[0,8],"dtype":"F64","shape":[1]}})",
                    header_size));
  double b = 0;
  std::memcpy(&b, bytes.data() + 8 + header_size, 8);
  CHECK(b == 1.0);
  CHECK(bytes.back() == 9);
}

TEST_CASE("safetensors loads a hand-written file with metadata and unpadded header") {
  const TempDir dir;
  const std::string header = R"({"__metadata__":{"k":"v"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  const uint64_t n = header.size();
  const float values[2] = {0.5f, -4.f};
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values), sizeof values);
  write_bytes(dir / "w.safetensors", bytes);

  const SafetensorsFile f = load_safetensors(dir / "w.safetensors");
  CHECK(f.metadata == std::map<std::string, std::string>{{"k", "v"}});
  CHECK(f.tensors.at("w").to_vector<float>() == std::vector<float>{0.5f, -4.f});
}

TEST_CASE("safetensors overwrites an existing file and leaves no temporary file") {
  const TempDir dir;
  save_safetensors(dir / "ckpt.safetensors", {{"w", ones({4})}});
  save_safetensors(dir / "ckpt.safetensors", {{"w", full({2}, 3.0)}});
  CHECK(load_safetensors(dir / "ckpt.safetensors").tensors.at("w").to_vector<float>() == std::vector<float>{3, 3});
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("safetensors saves a tensor that requires grad without recording history") {
  const TempDir dir;
  Tensor w = ones({2, 2});
  w.set_requires_grad();
  save_safetensors(dir / "g.safetensors", {{"w", w.transpose(0, 1)}});
  CHECK(load_safetensors(dir / "g.safetensors").tensors.at("w").to_vector<float>() == std::vector<float>(4, 1.f));
}

// ---- bad input when loading ----

TEST_CASE("safetensors load reports a missing file") {
  const TempDir dir;
  const fs::path p = dir / "nope.safetensors";
  CHECK(load_error(p) == fmt::format("load_safetensors: cannot open {}: No such file or directory", p.string()));
}

TEST_CASE("safetensors load reports a directory") {
  const TempDir dir;
  CHECK(load_error(dir.path()) == fmt::format("load_safetensors: {} is not a regular file", dir.path().string()));
}

TEST_CASE("safetensors load reports a file shorter than the header length field") {
  const TempDir dir;
  const fs::path p = dir / "short.safetensors";
  write_bytes(p, "abcde");
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: file has 5 bytes, too short for the 8-byte header length", p.string()));
}

TEST_CASE("safetensors load reports a header length beyond the file") {
  const TempDir dir;
  const fs::path p = dir / "len.safetensors";
  const uint64_t n = 1000;
  std::string bytes(8, '\0');
  std::memcpy(bytes.data(), &n, 8);
  write_bytes(p, bytes + "{}");
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: header length 1000 exceeds the 2 bytes that follow it", p.string()));
}

TEST_CASE("safetensors load reports invalid JSON with its position") {
  const TempDir dir;
  const fs::path p = dir / "json.safetensors";
  write_raw(p, R"({"w": {"dtype": F32}})", 0);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: header is not valid JSON (error at byte 17)", p.string()));
}

TEST_CASE("safetensors load reports a header that is not an object") {
  const TempDir dir;
  const fs::path p = dir / "array.safetensors";
  write_raw(p, "[1, 2]", 0);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: header is not a JSON object", p.string()));
}

TEST_CASE("safetensors load reports an unknown dtype") {
  const TempDir dir;
  const fs::path p = dir / "dtype.safetensors";
  write_raw(p, R"({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})", 4);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: tensor 'w': unsupported dtype 'BF16' (expected F32, F64, "
                                     "I64 or U8)",
                                     p.string()));
}

TEST_CASE("safetensors load reports a negative dimension") {
  const TempDir dir;
  const fs::path p = dir / "neg.safetensors";
  write_raw(p, R"({"w": {"dtype": "F32", "shape": [2, -1], "data_offsets": [0, 0]}})", 0);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: tensor 'w': negative dimension in shape [2, -1]", p.string()));
}

TEST_CASE("safetensors load reports a non-integer dimension") {
  const TempDir dir;
  const fs::path p = dir / "float.safetensors";
  write_raw(p, R"({"w": {"dtype": "F32", "shape": [2.5], "data_offsets": [0, 0]}})", 0);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: tensor 'w': shape [2.5] holds a non-integer", p.string()));
}

TEST_CASE("safetensors load reports a missing field") {
  const TempDir dir;
  const fs::path p = dir / "field.safetensors";
  write_raw(p, R"({"w": {"dtype": "F32", "shape": [1]}})", 4);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: tensor 'w': \"data_offsets\" must be two non-negative "
                                     "integers",
                                     p.string()));
}

TEST_CASE("safetensors load reports offsets beyond the data section") {
  const TempDir dir;
  const fs::path p = dir / "range.safetensors";
  write_raw(p, R"({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})", 12);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: tensor 'w': data_offsets [0, 16] lie beyond the 12-byte data section",
                    p.string()));
}

TEST_CASE("safetensors load reports reversed offsets") {
  const TempDir dir;
  const fs::path p = dir / "reversed.safetensors";
  write_raw(p, R"({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 4]}})", 8);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: tensor 'w': data_offsets [8, 4] are reversed", p.string()));
}

TEST_CASE("safetensors load reports a byte count that does not match shape and dtype") {
  const TempDir dir;
  const fs::path p = dir / "count.safetensors";
  write_raw(p, R"({"w": {"dtype": "F64", "shape": [2, 3], "data_offsets": [0, 24]}})", 24);
  CHECK(load_error(p) == fmt::format("load_safetensors: {}: tensor 'w': data_offsets [0, 24] hold 24 bytes but shape "
                                     "[2, 3] of F64 needs 48",
                                     p.string()));
}

TEST_CASE("safetensors load reports a shape whose byte count overflows") {
  const TempDir dir;
  const fs::path p = dir / "huge.safetensors";
  write_raw(p, R"({"w": {"dtype": "F64", "shape": [4294967296, 4294967296], "data_offsets": [0, 8]}})", 8);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: tensor 'w': shape [4294967296, 4294967296] is too large", p.string()));
}

TEST_CASE("safetensors load reports overlapping tensors") {
  const TempDir dir;
  const fs::path p = dir / "overlap.safetensors";
  write_raw(p,
            R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},)"
            R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [12, 20]}})",
            20);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: tensors 'a' [0, 16] and 'b' [12, 20] overlap", p.string()));
}

TEST_CASE("safetensors load reports metadata that is not a string map") {
  const TempDir dir;
  const fs::path p = dir / "meta.safetensors";
  write_raw(p, R"({"__metadata__": {"epoch": 3}})", 0);
  CHECK(load_error(p) ==
        fmt::format("load_safetensors: {}: \"__metadata__\" entry 'epoch' is not a string", p.string()));
}

// ---- failed saves ----

TEST_CASE("safetensors save onto a directory fails, keeps the directory and leaves no temporary file") {
  const TempDir dir;
  fs::create_directory(dir / "taken");
  save_safetensors(dir / "taken" / "inner.safetensors", {{"w", ones({1})}});
  CHECK_THROWS_WITH(save_safetensors(dir / "taken", {{"w", ones({3})}}),
                    fmt::format("save_safetensors: cannot replace {}: Is a directory", (dir / "taken").string()).c_str());
  CHECK(fs::is_directory(dir / "taken"));
  CHECK(fs::exists(dir / "taken" / "inner.safetensors"));
  CHECK(dir.entries() == std::vector<std::string>{"taken"});
}

TEST_CASE("safetensors save into a missing directory names it") {
  const TempDir dir;
  const fs::path missing = dir / "missing";
  CHECK_THROWS_WITH(
      save_safetensors(missing / "w.safetensors", {{"w", ones({1})}}),
      fmt::format("save_safetensors: cannot create a temporary file in {}: No such file or directory", missing.string())
          .c_str());
}

TEST_CASE("safetensors save that fails while writing keeps the old file intact and removes its temporary file") {
  const TempDir dir;
  const fs::path p = dir / "ckpt.safetensors";
  save_safetensors(p, {{"w", full({4}, 2.0)}});
  const std::string before = read_bytes(p);

  // Limit file size so the write of a 64 KiB tensor fails part-way (EFBIG).
  rlimit old_limit{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &old_limit) == 0);
  const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  rlimit small = old_limit;
  small.rlim_cur = 4096;
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &small) == 0);
  std::string message;
  try {
    save_safetensors(p, {{"w", ones({16384})}});
  } catch (const Error& e) {
    message = e.what();
  }
  ::setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);

  CHECK(message.starts_with("save_safetensors: writing "));
  CHECK(message.ends_with(": File too large"));
  CHECK(read_bytes(p) == before);
  CHECK(dir.entries() == std::vector<std::string>{"ckpt.safetensors"});
}

TEST_CASE("safetensors save rejects undefined tensors and the reserved name before touching the file") {
  const TempDir dir;
  const fs::path p = dir / "x.safetensors";
  CHECK_THROWS_WITH(save_safetensors(p, {{"w", Tensor()}}),
                    fmt::format("save_safetensors: {}: tensor 'w' is undefined", p.string()).c_str());
  CHECK_THROWS_WITH(
      save_safetensors(p, {{"__metadata__", ones({1})}}),
      fmt::format("save_safetensors: {}: \"__metadata__\" is reserved and cannot name a tensor", p.string()).c_str());
  CHECK(dir.entries().empty());
}
