// Random tensor creation from the Philox generator. Element i of a fill uses
// block (first + i / per_block) of a range reserved from the generator, so
// the result depends on (seed, offset, i) only.
#include <cmath>
#include <numbers>

#include "engine/philox.h"
#include "engine/tensor.h"

namespace tpp {

namespace {

Generator& pick(Generator* gen) { return gen ? *gen : default_generator(); }

// Fills n values, four uniform draws per Philox block.
template <class T, class Map>
void fill_uniform_blocks(T* out, int64_t n, Generator& gen, Map map) {
  const uint64_t blocks = static_cast<uint64_t>((n + 3) / 4);
  const uint64_t first = gen.advance(blocks);
#pragma omp parallel for if (n > 65536)
  for (int64_t b = 0; b < static_cast<int64_t>(blocks); ++b) {
    const PhiloxBlock r = philox4x32(first + b, 0, gen.seed());
    for (int64_t lane = 0; lane < 4 && b * 4 + lane < n; ++lane) out[b * 4 + lane] = map(r, lane);
  }
}

template <class T>
T unit(const PhiloxBlock& r, int64_t lane) {
  if constexpr (std::is_same_v<T, double>) {
    // Two lanes per double: lanes (0,1) and (2,3) of a pair of blocks.
    return static_cast<T>(uints_to_unit_double(r[lane], r[(lane + 1) % 4]));
  } else {
    return static_cast<T>(uint_to_unit_float(r[lane]));
  }
}

}  // namespace

Tensor uniform(const Shape& shape, double low, double high, TensorOptions opts, Generator* gen) {
  // GPU tensors take the numbers the CPU draws: one seed, one stream, on every device.
  if (opts.device.is_cuda()) return uniform(shape, low, high, {.dtype = opts.dtype}, gen).to(opts.device);
  Tensor out = empty(shape, opts);
  dispatch_floating(opts.dtype, "uniform", [&](auto t) {
    using T = decltype(t);
    const T lo = static_cast<T>(low), span = static_cast<T>(high - low);
    fill_uniform_blocks(out.data<T>(), out.numel(), pick(gen),
                        [&](const PhiloxBlock& r, int64_t lane) { return lo + span * unit<T>(r, lane); });
  });
  return out;
}

Tensor rand(const Shape& shape, TensorOptions opts, Generator* gen) { return uniform(shape, 0, 1, opts, gen); }

Tensor randn(const Shape& shape, TensorOptions opts, Generator* gen) {
  if (opts.device.is_cuda()) return randn(shape, {.dtype = opts.dtype}, gen).to(opts.device);
  Tensor out = empty(shape, opts);
  dispatch_floating(opts.dtype, "randn", [&](auto t) {
    using T = decltype(t);
    // Box-Muller: lanes (0,1) give elements 4b, 4b+1; lanes (2,3) give 4b+2, 4b+3.
    fill_uniform_blocks(out.data<T>(), out.numel(), pick(gen), [](const PhiloxBlock& r, int64_t lane) {
      const int64_t pair = lane & ~int64_t{1};
      const double u1 = 1.0 - uint_to_unit_float(r[pair]);  // (0, 1]: log stays finite
      const double u2 = uint_to_unit_float(r[pair + 1]);
      const double radius = std::sqrt(-2.0 * std::log(u1));
      const double angle = 2.0 * std::numbers::pi * u2;
      return static_cast<T>(lane & 1 ? radius * std::sin(angle) : radius * std::cos(angle));
    });
  });
  return out;
}

Tensor randint(const Shape& shape, int64_t low, int64_t high, Generator* gen) {
  TPP_CHECK(high > low, "randint: empty range [{}, {})", low, high);
  Tensor out = empty(shape, {.dtype = DType::i64});
  const auto span = static_cast<uint64_t>(high - low);
  fill_uniform_blocks(out.data<int64_t>(), out.numel(), pick(gen), [&](const PhiloxBlock& r, int64_t lane) {
    const uint64_t wide = (static_cast<uint64_t>(r[lane]) << 32) | r[(lane + 1) % 4];
    return low + static_cast<int64_t>(wide % span);
  });
  return out;
}

}  // namespace tpp
