#include "data/io.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>

#include "engine/error.h"

namespace tpp::data {

namespace {

bool is_gzip(const std::vector<uint8_t>& bytes) { return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b; }

std::vector<uint8_t> read_raw(const fs::path& path, std::string_view what) {
  std::error_code ec;
  TPP_CHECK(fs::is_regular_file(path, ec), "{}: missing file {}", what, path.string());
  std::ifstream in(path, std::ios::binary);
  TPP_CHECK(in.good(), "{}: cannot open {}: {}", what, path.string(), std::strerror(errno));
  const auto size = static_cast<size_t>(fs::file_size(path));
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), static_cast<std::streamsize>(size));
  TPP_CHECK(static_cast<size_t>(in.gcount()) == size, "{}: {}: read {} of {} bytes", what, path.string(), in.gcount(),
            size);
  return bytes;
}

// Inflates every gzip member of `packed` (a .gz file may hold several).
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& packed, std::string_view where, uint64_t max_inflated) {
  // The last four bytes (little-endian) hold the inflated size modulo 2^32: a
  // good first guess, capped since a truncated file ends in arbitrary bytes.
  const size_t n = packed.size();
  TPP_CHECK(n <= std::numeric_limits<uInt>::max(), "{}: gzip file of {} bytes is too large to inflate", where, n);
  size_t guess = 0;
  for (size_t k = 0; k < 4 && n >= 18; ++k) guess |= size_t{packed[n - 4 + k]} << (8 * k);
  std::vector<uint8_t> out(std::min<size_t>(std::clamp<size_t>(guess, 1024, 16 * n + 65536), max_inflated));

  z_stream zs{};
  TPP_CHECK(inflateInit2(&zs, 16 + MAX_WBITS) == Z_OK, "{}: zlib could not start", where);
  struct InflateEnd {
    z_stream& zs;
    ~InflateEnd() { inflateEnd(&zs); }
  } end_inflate{zs};  // on every way out, errors included
  zs.next_in = const_cast<Bytef*>(packed.data());
  zs.avail_in = static_cast<uInt>(n);
  size_t produced = 0;
  while (true) {
    if (produced == out.size()) {
      TPP_CHECK(produced < max_inflated, "{}: gzip data inflates beyond the limit of {} bytes", where, max_inflated);
      out.resize(std::min<size_t>(std::max<size_t>(out.size() * 2, 1), max_inflated));
    }
    zs.next_out = out.data() + produced;
    zs.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, 1u << 30));
    const uInt before = zs.avail_out;
    const int rc = inflate(&zs, Z_NO_FLUSH);
    produced += before - zs.avail_out;
    if (rc == Z_STREAM_END) {
      const bool another_member = zs.avail_in >= 2 && zs.next_in[0] == 0x1f && zs.next_in[1] == 0x8b;
      if (!another_member) break;
      inflateReset(&zs);
      continue;
    }
    if (rc == Z_OK) continue;
    if (rc == Z_BUF_ERROR && zs.avail_out > 0) {
      const size_t consumed = n - zs.avail_in;
      fail("{}: truncated gzip data: the stream ends after {} compressed bytes", where, consumed);
    }
    if (rc == Z_BUF_ERROR) continue;  // only the output was full
    const size_t offset = n - zs.avail_in;
    const std::string reason = zs.msg ? zs.msg : "unknown error";
    fail("{}: corrupt gzip data near compressed offset {}: {}", where, offset, reason);
  }
  out.resize(produced);
  return out;
}

}  // namespace

std::vector<uint8_t> decode_file_bytes(std::vector<uint8_t> raw, std::string_view where, uint64_t max_inflated) {
  return is_gzip(raw) ? gunzip(raw, where, max_inflated) : raw;
}

std::vector<uint8_t> read_file_bytes(const fs::path& path, std::string_view what) {
  return decode_file_bytes(read_raw(path, what), fmt::format("{}: {}", what, path.string()));
}

std::optional<fs::path> find_plain_or_gz(const fs::path& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) return path;
  fs::path gz = path;
  gz += ".gz";
  if (fs::is_regular_file(gz, ec)) return gz;
  return std::nullopt;
}

fs::path require_plain_or_gz(const fs::path& path, std::string_view what) {
  const std::optional<fs::path> found = find_plain_or_gz(path);
  TPP_CHECK(found.has_value(), "{}: missing file {} (nor {}.gz)", what, path.string(), path.string());
  return *found;
}

}  // namespace tpp::data
