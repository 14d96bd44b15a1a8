// oneDNN 2.x API: operation descriptors (convolution_forward::desc) turned into
// primitive descriptors. oneDNN 3.x drops the descriptors; only this file and
// context.cpp change then.
#include "ops/cpu/onednn/conv.h"

#include <fmt/format.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/error.h"
#include "ops/cpu/onednn/context.h"
#include "ops/cuda/conv_algo_cache.h"  // the cache and its key are CUDA-free

namespace tpp::ops::cpu::onednn {

namespace {

using dnnl::memory;
using Tag = memory::format_tag;

using cuda::ConvAlgoKey;
using cuda::ConvPass;

// ConvAlgoKey::math carries which optional operands a primitive has, and
// for the inference-only forward, its post-ops and activation layouts.
constexpr int kWithBias = 1;
constexpr int kInference = 2;
constexpr int kWithRelu = 4;
constexpr int kResidual = 8;
constexpr int kInputChannelsLast = 16;
constexpr int kOutputChannelsLast = 32;

struct ConvShapes {
  memory::dims src, weights, bias, dst, strides, dilates, pad_l, pad_r;
  Tag weights_tag;
};

ConvShapes shapes_of(const Conv2dGeometry& g) {
  ConvShapes s;
  s.src = {g.batch, g.in_channels, g.in_h, g.in_w};
  s.dst = {g.batch, g.out_channels, g.out_h, g.out_w};
  const int64_t cg = g.in_channels / g.groups, kg = g.out_channels / g.groups;
  s.weights = g.groups == 1 ? memory::dims{g.out_channels, cg, g.kernel_h, g.kernel_w}
                            : memory::dims{g.groups, kg, cg, g.kernel_h, g.kernel_w};
  s.weights_tag = g.groups == 1 ? Tag::oihw : Tag::goihw;
  s.bias = {g.out_channels};
  s.strides = {g.stride_h, g.stride_w};
  s.dilates = {g.dilation_h - 1, g.dilation_w - 1};  // oneDNN counts the gaps
  s.pad_l = {g.pad_h, g.pad_w};
  // Whatever the floor division of the output size left unread on the far side.
  s.pad_r = {(g.out_h - 1) * g.stride_h + (g.kernel_h - 1) * g.dilation_h + 1 - g.in_h - g.pad_h,
             (g.out_w - 1) * g.stride_w + (g.kernel_w - 1) * g.dilation_w + 1 - g.in_w - g.pad_w};
  return s;
}

memory::desc plain(const memory::dims& dims, Tag tag) { return {dims, memory::data_type::f32, tag}; }
memory::desc any(const memory::dims& dims) { return {dims, memory::data_type::f32, Tag::any}; }

// oneDNN's blocked layouts pad channels to a block of 16 (AVX-512): with
// fewer output channels (a pruned layer), the gradient passes spend most of
// their time on padding. Channels-last has no padding; measured on pruned
// resnet20 layers (16->1, 32->3, 64->6 channels) it runs backward-data 1.5-8x
// and backward-weights up to 2x faster, the forward no faster (it keeps the
// blocked layout).
bool few_output_channels(const Conv2dGeometry& g) { return g.groups == 1 && g.out_channels < 16; }

// The layout of the activations (input and output) of a gradient pass.
memory::desc gradient_activation(const memory::dims& dims, const Conv2dGeometry& g) {
  return few_output_channels(g) ? plain(dims, Tag::nhwc) : any(dims);
}

std::string describe(const Conv2dGeometry& g, const char* pass) {
  return fmt::format(
      "conv2d {} (oneDNN) of input [{}, {}, {}, {}] with weight [{}, {}, {}, {}], stride [{}, {}], padding [{}, {}], "
      "dilation [{}, {}], groups {}",
      pass, g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.in_channels / g.groups, g.kernel_h, g.kernel_w,
      g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups);
}

// The forward operation: for training (also the hint the backward passes
// need) or for inference (oneDNN may pick other kernels and weight layouts).
// The activations' layouts are oneDNN's choice unless given.
dnnl::convolution_forward::desc forward_op(const ConvShapes& s, bool with_bias, dnnl::prop_kind prop,
                                           Tag src_tag = Tag::any, Tag dst_tag = Tag::any) {
  const auto algo = dnnl::algorithm::convolution_direct;
  const memory::desc src = plain(s.src, src_tag), dst = plain(s.dst, dst_tag);
  return with_bias ? dnnl::convolution_forward::desc(prop, algo, src, any(s.weights), any(s.bias), dst, s.strides,
                                                     s.dilates, s.pad_l, s.pad_r)
                   : dnnl::convolution_forward::desc(prop, algo, src, any(s.weights), dst, s.strides, s.dilates,
                                                     s.pad_l, s.pad_r);
}

dnnl::convolution_forward::primitive_desc forward_desc(const ConvShapes& s, bool with_bias) {
  return {forward_op(s, with_bias, dnnl::prop_kind::forward_training), user_scratchpad(), cpu_engine()};
}

Tag activation_tag(bool channels_last) { return channels_last ? Tag::nhwc : Tag::nchw; }

Step forward_step_of(const dnnl::convolution_forward::primitive_desc& pd, const ConvShapes& s, bool with_bias,
                     Tag src_tag = Tag::nchw, Tag dst_tag = Tag::nchw) {
  Step step{.primitive = dnnl::convolution_forward(pd), .scratchpad = pd.scratchpad_desc(), .operands = {}};
  step.operands.push_back(input_operand(DNNL_ARG_SRC, plain(s.src, src_tag), pd.src_desc()));
  step.operands.push_back(input_operand(DNNL_ARG_WEIGHTS, plain(s.weights, s.weights_tag), pd.weights_desc()));
  if (with_bias) step.operands.push_back(input_operand(DNNL_ARG_BIAS, plain(s.bias, Tag::x), pd.bias_desc()));
  step.operands.push_back(output_operand(DNNL_ARG_DST, plain(s.dst, dst_tag), pd.dst_desc()));
  return step;
}

Step forward_step(const ConvShapes& s, bool with_bias) { return forward_step_of(forward_desc(s, with_bias), s, with_bias); }

// The residual's argument: the source of the first post-op (a binary add).
constexpr int kResidualArg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;

// The inference forward, the residual sum and the ReLU run on each block
// while it is in cache. With a residual every activation is channels-last
// and given so: the add reads it as the output is written, so the output
// must need no reorder after.
Step inference_step(const ConvShapes& s, bool with_bias, const InferenceCall& call) {
  dnnl::primitive_attr attr = user_scratchpad();
  dnnl::post_ops after;
  const memory::desc residual = plain(s.dst, Tag::nhwc);
  if (call.residual) after.append_binary(dnnl::algorithm::binary_add, residual);
  if (call.relu) after.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
  attr.set_post_ops(after);
  const Tag src_tag = activation_tag(call.x_channels_last), dst_tag = activation_tag(call.y_channels_last);
  const auto op = call.residual ? forward_op(s, with_bias, dnnl::prop_kind::forward_inference, src_tag, dst_tag)
                                : forward_op(s, with_bias, dnnl::prop_kind::forward_inference);
  const dnnl::convolution_forward::primitive_desc pd(op, attr, cpu_engine());
  Step step = forward_step_of(pd, s, with_bias, src_tag, dst_tag);
  if (call.residual) step.operands.push_back(input_operand(kResidualArg, residual, residual));
  return step;
}

Step backward_data_step(const ConvShapes& s, const Conv2dGeometry& g) {
  const dnnl::convolution_backward_data::desc desc(dnnl::algorithm::convolution_direct, gradient_activation(s.src, g),
                                                   any(s.weights), gradient_activation(s.dst, g), s.strides,
                                                   s.dilates, s.pad_l, s.pad_r);
  const dnnl::convolution_backward_data::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                           forward_desc(s, false));
  Step step{.primitive = dnnl::convolution_backward_data(pd), .scratchpad = pd.scratchpad_desc(), .operands = {}};
  step.operands.push_back(input_operand(DNNL_ARG_WEIGHTS, plain(s.weights, s.weights_tag), pd.weights_desc()));
  step.operands.push_back(input_operand(DNNL_ARG_DIFF_DST, plain(s.dst, Tag::nchw), pd.diff_dst_desc()));
  step.operands.push_back(output_operand(DNNL_ARG_DIFF_SRC, plain(s.src, Tag::nchw), pd.diff_src_desc()));
  return step;
}

Step backward_weights_step(const ConvShapes& s, const Conv2dGeometry& g, bool with_bias) {
  const auto algo = dnnl::algorithm::convolution_direct;
  using Desc = dnnl::convolution_backward_weights::desc;
  const memory::desc src = gradient_activation(s.src, g), dst = gradient_activation(s.dst, g);
  const Desc desc = with_bias ? Desc(algo, src, any(s.weights), any(s.bias), dst, s.strides, s.dilates, s.pad_l,
                                     s.pad_r)
                              : Desc(algo, src, any(s.weights), dst, s.strides, s.dilates, s.pad_l, s.pad_r);
  const dnnl::convolution_backward_weights::primitive_desc pd(desc, user_scratchpad(), cpu_engine(),
                                                              forward_desc(s, with_bias));
  Step step{.primitive = dnnl::convolution_backward_weights(pd), .scratchpad = pd.scratchpad_desc(), .operands = {}};
  step.operands.push_back(input_operand(DNNL_ARG_SRC, plain(s.src, Tag::nchw), pd.src_desc()));
  step.operands.push_back(input_operand(DNNL_ARG_DIFF_DST, plain(s.dst, Tag::nchw), pd.diff_dst_desc()));
  step.operands.push_back(
      output_operand(DNNL_ARG_DIFF_WEIGHTS, plain(s.weights, s.weights_tag), pd.diff_weights_desc()));
  if (with_bias)
    step.operands.push_back(output_operand(DNNL_ARG_DIFF_BIAS, plain(s.bias, Tag::x), pd.diff_bias_desc()));
  return step;
}

cuda::ConvAlgoCache<std::shared_ptr<const Step>>& step_cache() {
  static cuda::ConvAlgoCache<std::shared_ptr<const Step>> cache;
  return cache;
}

int inference_bits(const InferenceCall& call) {
  return kInference | (call.relu ? kWithRelu : 0) | (call.residual ? kResidual : 0) |
         (call.x_channels_last ? kInputChannelsLast : 0) | (call.y_channels_last ? kOutputChannelsLast : 0);
}

// The step of one pass for this shape, made the first time it is asked for.
// `inference` (forward only): the inference forward that call describes.
std::shared_ptr<const Step> step_for(const Conv2dGeometry& g, ConvPass pass, bool with_bias,
                                     const std::optional<InferenceCall>& inference = std::nullopt) {
  const int math = (with_bias ? kWithBias : 0) | (inference ? inference_bits(*inference) : 0);
  const ConvAlgoKey key{.geometry = g, .dtype = DType::f32, .math = math, .device = -1, .pass = pass};
  return step_cache().find_or_search(key, [&] {
    const ConvShapes s = shapes_of(g);
    if (inference) return std::make_shared<const Step>(inference_step(s, with_bias, *inference));
    switch (pass) {
      case ConvPass::forward: return std::make_shared<const Step>(forward_step(s, with_bias));
      case ConvPass::backward_data: return std::make_shared<const Step>(backward_data_step(s, g));
      case ConvPass::backward_filter: break;
    }
    return std::make_shared<const Step>(backward_weights_step(s, g, with_bias));
  });
}

Buffer in(const float* p) { return {const_cast<float*>(p)}; }  // oneDNN's memory objects take non-const pointers
Buffer out(float* p) { return {p}; }

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  checked([&] { return describe(g, "forward"); },
          [&] {
            const auto step = step_for(g, ConvPass::forward, bias != nullptr);
            if (bias) {
              execute(*step, {in(x), in(w), in(bias), out(y)});
            } else {
              execute(*step, {in(x), in(w), out(y)});
            }
          });
}

void conv2d_inference(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                      const float* residual, const InferenceCall& call, float* y) {
  checked([&] { return describe(g, call.residual ? "inference with residual" : "inference"); },
          [&] {
            if (call.residual && !(residual && call.x_channels_last && call.y_channels_last))
              fail("a residual needs channels-last input and output");
            const auto step = step_for(g, ConvPass::forward, bias != nullptr, call);
            std::vector<Buffer> buffers{in(x), in(w)};
            if (bias) buffers.push_back(in(bias));
            buffers.push_back(out(y));
            if (call.residual) buffers.push_back(in(residual));
            execute(*step, buffers);
          });
}

void conv2d_backward(const Conv2dGeometry& g, const float* x, const float* w, const float* dy, float* dx, float* dw,
                     float* db) {
  checked([&] { return describe(g, "backward"); },
          [&] {
            const auto data = dx ? step_for(g, ConvPass::backward_data, false) : nullptr;
            const auto weights = dw ? step_for(g, ConvPass::backward_filter, db != nullptr) : nullptr;
            Buffer dy_buffer = in(dy);
            CachedBuffer dy_chosen;
            if (data && weights) {
              const Operand& for_data = operand_of(*data, DNNL_ARG_DIFF_DST);
              if (for_data.reorder && for_data.chosen == operand_of(*weights, DNNL_ARG_DIFF_DST).chosen) {
                dy_chosen = to_chosen(for_data, in(dy).data);
                dy_buffer = {dy_chosen.data(), true};
              }
            }
            if (data) execute(*data, {in(w), dy_buffer, out(dx)});
            if (weights && db) execute(*weights, {in(x), dy_buffer, out(dw), out(db)});
            if (weights && !db) execute(*weights, {in(x), dy_buffer, out(dw)});
          });
}

bool inference_works_channels_last(const Conv2dGeometry& g, bool with_bias) {
  bool channels_last = false;
  checked([&] { return describe(g, "inference"); },
          [&] {
            const InferenceCall nchw_in_and_out;
            const auto step = step_for(g, ConvPass::forward, with_bias, nchw_in_and_out);
            const ConvShapes s = shapes_of(g);
            channels_last = operand_of(*step, DNNL_ARG_DST).chosen == plain(s.dst, Tag::nhwc);
          });
  return channels_last;
}

size_t conv_primitive_count() { return step_cache().size(); }

}  // namespace tpp::ops::cpu::onednn
