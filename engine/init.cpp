#include "engine/init.h"

#include <cmath>

#include "engine/philox.h"

namespace tpp {

Fans compute_fans(const Shape& shape) {
  TPP_CHECK(shape.size() >= 2, "init: fan in/out needs a weight of at least 2 dims, got {}", shape_str(shape));
  int64_t receptive = 1;
  for (size_t d = 2; d < shape.size(); ++d) receptive *= shape[d];
  return {shape[1] * receptive, shape[0] * receptive};
}

double calculate_gain(std::string_view nonlinearity, double param) {
  if (nonlinearity == "linear" || nonlinearity == "conv2d" || nonlinearity == "sigmoid") return 1.0;
  if (nonlinearity == "relu") return std::sqrt(2.0);
  if (nonlinearity == "tanh") return 5.0 / 3.0;
  if (nonlinearity == "leaky_relu") return std::sqrt(2.0 / (1.0 + param * param));
  fail("init: unknown nonlinearity '{}'", nonlinearity);
}

void uniform_(Tensor& t, double low, double high, Generator* gen) {
  t.copy_(uniform(t.sizes(), low, high, {.dtype = t.dtype()}, gen));
}

void normal_(Tensor& t, double mean, double std, Generator* gen) {
  const Tensor z = randn(t.sizes(), {.dtype = t.dtype()}, gen);
  dispatch_floating(t.dtype(), "normal_", [&](auto type) {
    using T = decltype(type);
    const T* src = z.data<T>();
    Tensor scaled = empty_like(z);
    T* dst = scaled.data<T>();
    for (int64_t i = 0; i < z.numel(); ++i) dst[i] = static_cast<T>(mean + std * src[i]);
    t.copy_(scaled);
  });
}

void kaiming_normal_(Tensor& w, FanMode mode, std::string_view nonlinearity, Generator* gen) {
  const Fans fans = compute_fans(w.sizes());
  const double fan = mode == FanMode::fan_in ? fans.in : fans.out;
  normal_(w, 0.0, calculate_gain(nonlinearity) / std::sqrt(fan), gen);
}

void kaiming_uniform_(Tensor& w, double a, FanMode mode, std::string_view nonlinearity, Generator* gen) {
  const Fans fans = compute_fans(w.sizes());
  const double fan = mode == FanMode::fan_in ? fans.in : fans.out;
  const double bound = std::sqrt(3.0) * calculate_gain(nonlinearity, a) / std::sqrt(fan);
  uniform_(w, -bound, bound, gen);
}

void xavier_uniform_(Tensor& w, double gain, Generator* gen) {
  const Fans fans = compute_fans(w.sizes());
  const double bound = gain * std::sqrt(6.0 / static_cast<double>(fans.in + fans.out));
  uniform_(w, -bound, bound, gen);
}

void xavier_normal_(Tensor& w, double gain, Generator* gen) {
  const Fans fans = compute_fans(w.sizes());
  normal_(w, 0.0, gain * std::sqrt(2.0 / static_cast<double>(fans.in + fans.out)), gen);
}

}  // namespace tpp
