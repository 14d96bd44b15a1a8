// Hostile safetensors input, parsed from memory: the inputs the fuzzer found
// (tests/fuzz/regressions/safetensors/) and absurd sizes in the header, each
// rejected with one clean line before anything of that size is allocated.
#include <doctest/doctest.h>
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "engine/safetensors.h"
#include "tests/fuzz/regression_input.h"

using namespace tpp;

namespace {

std::vector<uint8_t> with_header(uint64_t header_length, const std::string& header, size_t data_size) {
  std::vector<uint8_t> bytes;
  for (int k = 0; k < 8; ++k) bytes.push_back(static_cast<uint8_t>(header_length >> (8 * k)));  // little-endian
  bytes.insert(bytes.end(), header.begin(), header.end());
  bytes.resize(bytes.size() + data_size, 0);
  return bytes;
}

std::vector<uint8_t> file_with(const std::string& header, size_t data_size) {
  return with_header(header.size(), header, data_size);
}

std::string parse_error(const std::vector<uint8_t>& bytes) {
  try {
    parse_safetensors(bytes, "m.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST_SUITE("engine.safetensors_hardening") {
  TEST_CASE("parse_safetensors reads from memory what load_safetensors reads from the file") {
    const std::filesystem::path file =
        std::filesystem::temp_directory_path() / fmt::format("tpp_parse_safetensors_{}.safetensors", ::getpid());
    save_safetensors(file, {{"w", from_vector<float>({1, -2, 3}, {3})}, {"n", from_vector<int64_t>({7}, {1, 1})}},
                     {{"epoch", "4"}});
    std::ifstream in(file, std::ios::binary);
    const std::vector<uint8_t> bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::filesystem::remove(file);
    const SafetensorsFile parsed = parse_safetensors(bytes, "memory");
    CHECK(parsed.metadata == std::map<std::string, std::string>{{"epoch", "4"}});
    CHECK(parsed.tensors.at("w").to_vector<float>() == std::vector<float>{1, -2, 3});
    CHECK(parsed.tensors.at("n").sizes() == Shape{1, 1});
    CHECK(parse_error({1, 2, 3, 4, 5}) ==
          "load_safetensors: m.safetensors: file has 5 bytes, too short for the 8-byte "
          "header length");
  }

  TEST_CASE("limit: a header length of 2^60 bytes is refused before anything is read") {
    CHECK(parse_error(with_header(uint64_t{1} << 60, "{}", 0)) ==
          "load_safetensors: m.safetensors: header length 1152921504606846976 exceeds the limit of 100000000 bytes");
    CHECK(kMaxSafetensorsHeaderBytes == 100'000'000);
  }

  TEST_CASE("limit: a tensor of 2^60 bytes is refused from the size of the data section") {
    CHECK(parse_error(file_with(R"({"w": {"dtype": "F64", "shape": [144115188075855872], "data_offsets": [0, )"
                                R"(1152921504606846976]}})",
                                8)) ==
          "load_safetensors: m.safetensors: tensor 'w': data_offsets [0, "
          "1152921504606846976] lie beyond the 8-byte data section");
  }

  TEST_CASE("an empty tensor whose other sizes overflow int64 is refused (its strides would overflow)") {
    CHECK(parse_error(file_with(R"({"w": {"dtype": "U8", "shape": [0, 4611686018427387904, 4], )"
                                R"("data_offsets": [0, 0]}})",
                                0)) ==
          "load_safetensors: m.safetensors: tensor 'w': shape [0, 4611686018427387904, 4] is too large");
    const SafetensorsFile ok = parse_safetensors(
        file_with(R"({"w": {"dtype": "U8", "shape": [0, 1099511627776], "data_offsets": [0, 0]}})", 0), "m");
    CHECK(ok.tensors.at("w").sizes() == Shape{0, 1099511627776});
  }

  TEST_CASE("a shape nested 100000 deep is named, not printed") {
    const std::string shape = std::string(100000, '[') + std::string(100000, ']');
    CHECK(parse_error(
              file_with(R"({"w": {"dtype": "F32", "shape": [2, )" + shape + R"(], "data_offsets": [0, 0]}})", 0)) ==
          "load_safetensors: m.safetensors: tensor 'w': shape [2, array] holds a non-integer");
  }

  TEST_CASE("a shape holding a string that is not UTF-8 gives a clean error") {
    CHECK(parse_error(file_with("{\"w\": {\"dtype\": \"F32\", \"shape\": [\"\xc3\"], \"data_offsets\": [0, 0]}}", 0)) ==
          "load_safetensors: m.safetensors: header is not valid JSON (error at byte 36)");
    CHECK(parse_error(file_with(R"({"w": {"dtype": "F32", "shape": ["x", 1, 2, 3, 4, 5, 6, 7, 8, 9], )"
                                R"("data_offsets": [0, 0]}})",
                                0)) ==
          "load_safetensors: m.safetensors: tensor 'w': shape [\"x\", 1, 2, 3, 4, 5, 6, 7, "
          "...] holds a non-integer");
  }

  TEST_CASE("fuzz regression: a number beyond double in the header") {
    // Found by fuzz_safetensors: nlohmann::json throws out_of_range (not
    // parse_error) for 9e999, which escaped as a foreign exception.
    CHECK(parse_error(tpp::testing::fuzz_regression_input("safetensors", "number_overflow")) ==
          "load_safetensors: m.safetensors: header is not valid JSON (a number is out of range)");
    CHECK(parse_error(file_with(R"({"w": {"dtype": "F32", "shape": [1e999], "data_offsets": [0, 0]}})", 0)) ==
          "load_safetensors: m.safetensors: header is not valid JSON (a number is out of range)");
  }
}
