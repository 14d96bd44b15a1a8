// Weight initialisers with PyTorch's conventions (torch.nn.init). fan_in of
// a [out, in, kh, kw] weight is in·kh·kw, fan_out is out·kh·kw.
#pragma once

#include "engine/tensor.h"

namespace tpp {

class Generator;

enum class FanMode { fan_in, fan_out };

struct Fans {
  int64_t in, out;
};
Fans compute_fans(const Shape& weight_shape);

// Gain for a nonlinearity name: "linear"/"conv2d"/"sigmoid" 1, "relu" sqrt(2),
// "tanh" 5/3, "leaky_relu" sqrt(2/(1+a^2)).
double calculate_gain(std::string_view nonlinearity, double param = 0.01);

void kaiming_normal_(Tensor& w, FanMode mode = FanMode::fan_in, std::string_view nonlinearity = "relu",
                     Generator* gen = nullptr);
void kaiming_uniform_(Tensor& w, double a = 0, FanMode mode = FanMode::fan_in,
                      std::string_view nonlinearity = "leaky_relu", Generator* gen = nullptr);
void xavier_uniform_(Tensor& w, double gain = 1, Generator* gen = nullptr);
void xavier_normal_(Tensor& w, double gain = 1, Generator* gen = nullptr);
void uniform_(Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(Tensor& t, double mean, double std, Generator* gen = nullptr);

}  // namespace tpp
