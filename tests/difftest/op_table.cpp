// The ops the differential test calls, by the names scripts/difftest.py
// gives them, and the refusals we make by design where PyTorch accepts.
#include <fmt/format.h>

#include <functional>

#include "engine/error.h"
#include "ops/batch_norm.h"
#include "ops/conv2d.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/matmul.h"
#include "ops/norm.h"
#include "ops/pad.h"
#include "ops/pool.h"
#include "ops/reduce.h"
#include "ops/softmax.h"
#include "tests/difftest/difftest.h"

namespace tpp::difftest {

namespace {

using Json = nlohmann::json;
using Inputs = std::vector<Tensor>;
using OpFn = std::function<std::vector<Tensor>(const Json&, const Inputs&)>;

std::array<int64_t, 2> pair(const Json& j) { return {j.at(0).get<int64_t>(), j.at(1).get<int64_t>()}; }

Tensor optional_input(const Inputs& in, size_t k) { return k < in.size() ? in[k] : Tensor(); }

ops::Pool2dOptions pool_options(const Json& p) {
  return {.kernel = pair(p.at("kernel")),
          .stride = pair(p.at("stride")),
          .padding = pair(p.at("padding")),
          .ceil_mode = p.at("ceil_mode"),
          .count_include_pad = p.value("count_include_pad", true),
          .dilation = p.contains("dilation") ? pair(p.at("dilation")) : std::array<int64_t, 2>{1, 1}};
}

ops::Reduction reduction_named(const std::string& name) {
  if (name == "mean") return ops::Reduction::mean;
  if (name == "sum") return ops::Reduction::sum;
  TPP_CHECK(name == "none", "difftest: unknown reduction '{}'", name);
  return ops::Reduction::none;
}

std::vector<Tensor> reduce(const Json& p, const Tensor& x, bool average) {
  const auto dims = p.at("dims").get<std::vector<int64_t>>();
  if (dims.empty()) return {average ? ops::mean(x) : ops::sum(x)};
  return {average ? ops::mean(x, dims, p.at("keepdim")) : ops::sum(x, dims, p.at("keepdim"))};
}

std::vector<Tensor> batch_norm(const Json& p, const Inputs& in) {
  const ops::BatchNormOptions o{.training = p.at("training"), .momentum = p.at("momentum"), .eps = p.at("eps")};
  const Tensor y = ops::batch_norm2d(in[0], in[1], in[2], in[3], in[4], o);
  std::vector<Tensor> out{y};
  for (const Tensor& running : {in[3], in[4]})
    if (running.defined()) out.push_back(running);  // updated in place, as PyTorch's
  return out;
}

const std::map<std::string, OpFn>& table() {
  static const std::map<std::string, OpFn> ops_by_name = {
      {"add", [](const Json&, const Inputs& in) { return Inputs{ops::add(in[0], in[1])}; }},
      {"sub", [](const Json&, const Inputs& in) { return Inputs{ops::sub(in[0], in[1])}; }},
      {"mul", [](const Json&, const Inputs& in) { return Inputs{ops::mul(in[0], in[1])}; }},
      {"div", [](const Json&, const Inputs& in) { return Inputs{ops::div(in[0], in[1])}; }},
      {"add_scalar", [](const Json& p, const Inputs& in) { return Inputs{ops::add(in[0], p.at("scalar").get<double>())}; }},
      {"mul_scalar", [](const Json& p, const Inputs& in) { return Inputs{ops::mul(in[0], p.at("scalar").get<double>())}; }},
      {"rsub", [](const Json& p, const Inputs& in) { return Inputs{ops::rsub(p.at("scalar"), in[0])}; }},
      {"rdiv", [](const Json& p, const Inputs& in) { return Inputs{ops::rdiv(p.at("scalar"), in[0])}; }},
      {"pow", [](const Json& p, const Inputs& in) { return Inputs{ops::pow(in[0], p.at("exponent"))}; }},
      {"neg", [](const Json&, const Inputs& in) { return Inputs{ops::neg(in[0])}; }},
      {"exp", [](const Json&, const Inputs& in) { return Inputs{ops::exp(in[0])}; }},
      {"log", [](const Json&, const Inputs& in) { return Inputs{ops::log(in[0])}; }},
      {"sqrt", [](const Json&, const Inputs& in) { return Inputs{ops::sqrt(in[0])}; }},
      {"abs", [](const Json&, const Inputs& in) { return Inputs{ops::abs(in[0])}; }},
      {"relu", [](const Json&, const Inputs& in) { return Inputs{ops::relu(in[0])}; }},
      {"sum", [](const Json& p, const Inputs& in) { return reduce(p, in[0], false); }},
      {"mean", [](const Json& p, const Inputs& in) { return reduce(p, in[0], true); }},
      {"max", [](const Json&, const Inputs& in) { return Inputs{ops::max(in[0])}; }},
      {"max_dim",
       [](const Json& p, const Inputs& in) {
         const ops::MaxResult r = ops::max(in[0], p.at("dim").get<int64_t>(), p.at("keepdim").get<bool>());
         return Inputs{r.values, r.indices};
       }},
      {"softmax", [](const Json& p, const Inputs& in) { return Inputs{ops::softmax(in[0], p.at("dim"))}; }},
      {"log_softmax", [](const Json& p, const Inputs& in) { return Inputs{ops::log_softmax(in[0], p.at("dim"))}; }},
      {"frobenius_norm", [](const Json&, const Inputs& in) { return Inputs{ops::frobenius_norm(in[0])}; }},
      {"matmul", [](const Json&, const Inputs& in) { return Inputs{ops::matmul(in[0], in[1])}; }},
      {"linear",
       [](const Json&, const Inputs& in) { return Inputs{ops::linear(in[0], in[1], optional_input(in, 2))}; }},
      {"conv2d",
       [](const Json& p, const Inputs& in) {
         const ops::Conv2dOptions o{.stride = pair(p.at("stride")),
                                    .padding = pair(p.at("padding")),
                                    .dilation = pair(p.at("dilation")),
                                    .groups = p.at("groups")};
         return Inputs{ops::conv2d(in[0], in[1], optional_input(in, 2), o)};
       }},
      {"max_pool2d", [](const Json& p, const Inputs& in) { return Inputs{ops::max_pool2d(in[0], pool_options(p))}; }},
      {"avg_pool2d", [](const Json& p, const Inputs& in) { return Inputs{ops::avg_pool2d(in[0], pool_options(p))}; }},
      {"adaptive_avg_pool2d",
       [](const Json& p, const Inputs& in) {
         return Inputs{ops::adaptive_avg_pool2d(in[0], pair(p.at("output_size")))};
       }},
      {"global_avg_pool2d", [](const Json&, const Inputs& in) { return Inputs{ops::global_avg_pool2d(in[0])}; }},
      {"constant_pad",
       [](const Json& p, const Inputs& in) {
         return Inputs{ops::constant_pad(in[0], p.at("pad").get<std::vector<int64_t>>(), p.at("value"))};
       }},
      {"batch_norm2d", batch_norm},
      {"cross_entropy",
       [](const Json& p, const Inputs& in) {
         const ops::CrossEntropyOptions o{.label_smoothing = p.at("label_smoothing"),
                                          .ignore_index = p.at("ignore_index"),
                                          .reduction = reduction_named(p.at("reduction")),
                                          .weight = optional_input(in, 2)};
         return Inputs{ops::cross_entropy(in[0], in[1], o)};
       }},
  };
  return ops_by_name;
}

}  // namespace

bool knows_op(const std::string& op) { return table().contains(op); }

std::vector<Tensor> call_op(const std::string& op, const Json& params, const Inputs& inputs) {
  try {
    return table().at(op)(params, inputs);
  } catch (const Json::exception& e) {
    fail("difftest: bad parameters {} for {}: {}", params.dump(), op, e.what());
  }
}

// We refuse operands of different floating dtypes (PyTorch promotes them):
// the op is named with both dtypes and shapes, as ops/checks.h words it.
std::string expected_refusal(const std::string& kind, const std::string& op, const Inputs& inputs) {
  TPP_CHECK(kind == "mixed_dtype", "difftest: unknown refusal kind '{}'", kind);
  return fmt::format("{}: dtype mismatch: {} with shape {} and {} with shape {}", op, dtype_name(inputs[0].dtype()),
                     shape_str(inputs[0].sizes()), dtype_name(inputs[1].dtype()), shape_str(inputs[1].sizes()));
}

}  // namespace tpp::difftest
