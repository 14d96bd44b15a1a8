// conv2d on cuDNN's classic convolution API. Each pass (forward, backward
// data, backward filter) looks up the algorithm for its key; the first time,
// cudnnFind*AlgorithmEx times every candidate on the real buffers (the output
// buffer is scratch until the real call overwrites it) and the fastest
// deterministic one is kept, or the fastest of all when none is. The bias is
// added with cudnnAddTensor; its gradient is a deterministic per-channel sum.
#include "ops/cuda/conv2d.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <string>

#include <fmt/format.h>

#include "engine/cuda/caching_allocator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/stream.h"
#include "engine/cuda/tensor_transfer.h"
#include "engine/error.h"
#include "engine/math_mode.h"
#include "engine/tensor.h"
#include "ops/cuda/conv_algo_cache.h"
#include "ops/cuda/handles.h"

namespace tpp::ops::cuda {

namespace {

namespace tc = ::tpp::cuda;

// Timing scratch is capped here; candidates that need more are left out.
constexpr size_t kMaxSearchWorkspace = size_t{1} << 30;

// cuDNN's vectorised kernels need aligned data, and an algorithm timed on
// aligned buffers may refuse a view that starts mid-allocation.
constexpr uintptr_t kCudnnAlignment = 16;

std::string describe(const Conv2dGeometry& g) {
  return fmt::format("input [{}, {}, {}, {}], weight [{}, {}, {}, {}], stride [{}, {}], padding [{}, {}], dilation "
                     "[{}, {}], groups {}",
                     g.batch, g.in_channels, g.in_h, g.in_w, g.out_channels, g.in_channels / g.groups, g.kernel_h,
                     g.kernel_w, g.stride_h, g.stride_w, g.pad_h, g.pad_w, g.dilation_h, g.dilation_w, g.groups);
}

int as_int(int64_t v, const Conv2dGeometry& g) {
  TPP_CHECK(v >= 0 && v <= INT_MAX, "conv2d: a size of {} exceeds cuDNN's int range", describe(g));
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_dtype(DType t) {
  TPP_CHECK(t == DType::f32 || t == DType::f64, "conv2d: cuDNN convolutions take f32 or f64 but got {}",
            dtype_name(t));
  return t == DType::f32 ? CUDNN_DATA_FLOAT : CUDNN_DATA_DOUBLE;
}

// MathMode::fp32 keeps f32 off the tensor cores; f64 has no reduced mode.
cudnnMathType_t requested_math(DType t) {
  return t == DType::f32 && math_mode() == MathMode::fp32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
}

// cuDNN's alpha and beta: float for f32 data, double for f64.
class Scalar {
 public:
  explicit Scalar(double v) : f_(static_cast<float>(v)), d_(v) {}
  const void* of(DType t) const { return t == DType::f32 ? static_cast<const void*>(&f_) : &d_; }

 private:
  float f_;
  double d_;
};

// One cuDNN descriptor, destroyed with its owner.
template <class Desc, cudnnStatus_t (*Create)(Desc*), cudnnStatus_t (*Destroy)(Desc)>
class Descriptor {
 public:
  Descriptor() { TPP_CUDNN_CHECK(Create(&desc_)); }
  ~Descriptor() { Destroy(desc_); }
  Descriptor(const Descriptor&) = delete;
  Descriptor& operator=(const Descriptor&) = delete;
  Desc get() const { return desc_; }

 private:
  Desc desc_ = nullptr;
};

using TensorDescriptor = Descriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor>;
using FilterDescriptor = Descriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor>;
using ConvolutionDescriptor =
    Descriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor, cudnnDestroyConvolutionDescriptor>;

void set_nchw(const TensorDescriptor& desc, cudnnDataType_t t, int n, int c, int h, int w) {
  TPP_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc.get(), CUDNN_TENSOR_NCHW, t, n, c, h, w));
}

// Input, output, filter and convolution of one geometry (no dim may be 0).
struct ConvDescriptors {
  TensorDescriptor x, y;
  FilterDescriptor w;
  ConvolutionDescriptor conv;

  ConvDescriptors(const Conv2dGeometry& g, DType dtype, cudnnMathType_t math) {
    const auto i = [&](int64_t v) { return as_int(v, g); };
    const cudnnDataType_t t = cudnn_dtype(dtype);
    set_nchw(x, t, i(g.batch), i(g.in_channels), i(g.in_h), i(g.in_w));
    set_nchw(y, t, i(g.batch), i(g.out_channels), i(g.out_h), i(g.out_w));
    TPP_CUDNN_CHECK(cudnnSetFilter4dDescriptor(w.get(), t, CUDNN_TENSOR_NCHW, i(g.out_channels),
                                               i(g.in_channels / g.groups), i(g.kernel_h), i(g.kernel_w)));
    TPP_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(conv.get(), i(g.pad_h), i(g.pad_w), i(g.stride_h), i(g.stride_w),
                                                    i(g.dilation_h), i(g.dilation_w), CUDNN_CROSS_CORRELATION, t));
    TPP_CUDNN_CHECK(cudnnSetConvolutionGroupCount(conv.get(), i(g.groups)));
    TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(conv.get(), math));
    int n = 0, c = 0, h = 0, wd = 0;
    TPP_CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(conv.get(), x.get(), w.get(), &n, &c, &h, &wd));
    TPP_CHECK(n == g.batch && c == g.out_channels && h == g.out_h && wd == g.out_w,
              "conv2d: cuDNN makes a [{}, {}, {}, {}] output of {} but the op expects [{}, {}, {}, {}]", n, c, h, wd,
              describe(g), g.batch, g.out_channels, g.out_h, g.out_w);
  }
};

// What one pass runs: the algorithm (the pass's cudnn*Algo_t), its scratch
// and the math type it was timed with.
struct AlgoChoice {
  int algo = 0;
  size_t workspace_bytes = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

ConvAlgoCache<AlgoChoice>& algo_cache() {
  static ConvAlgoCache<AlgoChoice> cache;
  return cache;
}

ConvAlgoKey key_of(const Conv2dGeometry& g, DType dtype, cudnnMathType_t math, ConvPass pass) {
  return {.geometry = g, .dtype = dtype, .math = static_cast<int>(math), .device = tc::current_device(), .pass = pass};
}

// FP16 down-conversion is never wanted; under FMA math no tensor-op result
// either, whatever cuDNN reports.
template <class Perf>
bool usable(const Perf& p, cudnnMathType_t requested) {
  if (p.status != CUDNN_STATUS_SUCCESS || p.mathType == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION) return false;
  return requested != CUDNN_FMA_MATH || p.mathType != CUDNN_TENSOR_OP_MATH;
}

// cuDNN sorts the results fastest first.
template <class Perf>
AlgoChoice pick(const Perf* results, int count, cudnnMathType_t requested, const char* pass, const Conv2dGeometry& g) {
  const Perf* fastest = nullptr;
  for (int i = 0; i < count; ++i) {
    const Perf& p = results[i];
    if (!usable(p, requested)) continue;
    if (p.determinism == CUDNN_DETERMINISTIC) {
      fastest = &p;
      break;
    }
    if (fastest == nullptr) fastest = &p;
  }
  TPP_CHECK(fastest != nullptr, "conv2d: cuDNN has no working {} algorithm for {} ({} candidates tried)", pass,
            describe(g), count);
  // Under FMA the descriptor keeps FMA: a DEFAULT result would allow TF32.
  const cudnnMathType_t math = requested == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : fastest->mathType;
  return {.algo = static_cast<int>(fastest->algo), .workspace_bytes = fastest->memory, .math = math};
}

// Scratch for the timing runs: what the hungriest candidate asks for, capped,
// and halved while the GPU cannot spare it (cuDNN skips what then no longer fits).
tc::DeviceBuffer search_workspace(size_t wanted) {
  size_t bytes = std::min(wanted, kMaxSearchWorkspace);
  for (;;) {
    try {
      return tc::device_allocate(bytes, tc::current_stream());
    } catch (const Error&) {
      if (bytes == 0) throw;
      bytes = bytes < (size_t{1} << 20) ? 0 : bytes / 2;
    }
  }
}

// The search shared by the passes: workspace_size(algo) gives a candidate's
// scratch (0 when unsupported); find(count, &returned, results, ws, bytes)
// runs the pass's cudnnFind*AlgorithmEx.
template <class Perf, int kAlgos, class WorkspaceSize, class Find>
AlgoChoice search(const WorkspaceSize& workspace_size, const Find& find, cudnnMathType_t requested, const char* pass,
                  const Conv2dGeometry& g) {
  size_t wanted = 0;
  for (int algo = 0; algo < kAlgos; ++algo) wanted = std::max(wanted, workspace_size(algo));
  const tc::DeviceBuffer workspace = search_workspace(wanted);
  Perf results[kAlgos];
  int returned = 0;
  find(kAlgos, &returned, results, workspace.data(), workspace.size());
  return pick(results, std::min(returned, kAlgos), requested, pass, g);
}

// 0 for a candidate that cannot run this convolution.
size_t size_or_zero(cudnnStatus_t status, size_t bytes) { return status == CUDNN_STATUS_SUCCESS ? bytes : 0; }

AlgoChoice forward_algo(cudnnHandle_t h, const Conv2dGeometry& g, DType dtype, cudnnMathType_t math,
                        const ConvDescriptors& d, const Tensor& x, const Tensor& w, const Tensor& y) {
  return algo_cache().find_or_search(key_of(g, dtype, math, ConvPass::forward), [&] {
    const auto workspace_size = [&](int algo) {
      size_t bytes = 0;
      const cudnnStatus_t status = cudnnGetConvolutionForwardWorkspaceSize(
          h, d.x.get(), d.w.get(), d.conv.get(), d.y.get(), static_cast<cudnnConvolutionFwdAlgo_t>(algo), &bytes);
      return size_or_zero(status, bytes);
    };
    const auto find = [&](int count, int* returned, cudnnConvolutionFwdAlgoPerf_t* results, void* ws, size_t bytes) {
      TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math));  // an earlier pass may have changed it
      TPP_CUDNN_CHECK(cudnnFindConvolutionForwardAlgorithmEx(h, d.x.get(), x.raw_data(), d.w.get(), w.raw_data(),
                                                             d.conv.get(), d.y.get(), y.raw_data(), count, returned,
                                                             results, ws, bytes));
    };
    return search<cudnnConvolutionFwdAlgoPerf_t, CUDNN_CONVOLUTION_FWD_ALGO_COUNT>(workspace_size, find, math,
                                                                                   "forward", g);
  });
}

AlgoChoice backward_data_algo(cudnnHandle_t h, const Conv2dGeometry& g, DType dtype, cudnnMathType_t math,
                              const ConvDescriptors& d, const Tensor& w, const Tensor& dy, const Tensor& dx) {
  return algo_cache().find_or_search(key_of(g, dtype, math, ConvPass::backward_data), [&] {
    const auto workspace_size = [&](int algo) {
      size_t bytes = 0;
      const cudnnStatus_t status = cudnnGetConvolutionBackwardDataWorkspaceSize(
          h, d.w.get(), d.y.get(), d.conv.get(), d.x.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(algo), &bytes);
      return size_or_zero(status, bytes);
    };
    const auto find = [&](int count, int* returned, cudnnConvolutionBwdDataAlgoPerf_t* results, void* ws,
                          size_t bytes) {
      TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math));  // an earlier pass may have changed it
      TPP_CUDNN_CHECK(cudnnFindConvolutionBackwardDataAlgorithmEx(h, d.w.get(), w.raw_data(), d.y.get(),
                                                                  dy.raw_data(), d.conv.get(), d.x.get(),
                                                                  dx.raw_data(), count, returned, results, ws, bytes));
    };
    return search<cudnnConvolutionBwdDataAlgoPerf_t, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT>(workspace_size, find,
                                                                                            math, "backward-data", g);
  });
}

AlgoChoice backward_filter_algo(cudnnHandle_t h, const Conv2dGeometry& g, DType dtype, cudnnMathType_t math,
                                const ConvDescriptors& d, const Tensor& x, const Tensor& dy, const Tensor& dw) {
  return algo_cache().find_or_search(key_of(g, dtype, math, ConvPass::backward_filter), [&] {
    const auto workspace_size = [&](int algo) {
      size_t bytes = 0;
      const cudnnStatus_t status = cudnnGetConvolutionBackwardFilterWorkspaceSize(
          h, d.x.get(), d.y.get(), d.conv.get(), d.w.get(), static_cast<cudnnConvolutionBwdFilterAlgo_t>(algo),
          &bytes);
      return size_or_zero(status, bytes);
    };
    const auto find = [&](int count, int* returned, cudnnConvolutionBwdFilterAlgoPerf_t* results, void* ws,
                          size_t bytes) {
      TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), math));  // an earlier pass may have changed it
      TPP_CUDNN_CHECK(cudnnFindConvolutionBackwardFilterAlgorithmEx(h, d.x.get(), x.raw_data(), d.y.get(),
                                                                    dy.raw_data(), d.conv.get(), d.w.get(),
                                                                    dw.raw_data(), count, returned, results, ws,
                                                                    bytes));
    };
    return search<cudnnConvolutionBwdFilterAlgoPerf_t, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT>(
        workspace_size, find, math, "backward-filter", g);
  });
}

// y[n, k, :, :] += bias[k].
void add_bias(cudnnHandle_t h, const Conv2dGeometry& g, const Tensor& bias, const Tensor& y) {
  const cudnnDataType_t t = cudnn_dtype(y.dtype());
  const auto i = [&](int64_t v) { return as_int(v, g); };
  TensorDescriptor bias_desc, y_desc;
  set_nchw(bias_desc, t, 1, i(g.out_channels), 1, 1);
  set_nchw(y_desc, t, i(g.batch), i(g.out_channels), i(g.out_h), i(g.out_w));
  const Scalar one(1);
  TPP_CUDNN_CHECK(
      cudnnAddTensor(h, one.of(y.dtype()), bias_desc.get(), bias.raw_data(), one.of(y.dtype()), y_desc.get(),
                     y.raw_data()));
}

// t itself, or an aligned copy of a view whose data is not aligned.
Tensor aligned(const Tensor& t) {
  if (!t.defined() || reinterpret_cast<uintptr_t>(t.raw_data()) % kCudnnAlignment == 0) return t;
  return t.detach().clone();
}

// Convolutions with no channels, no images or an input of no pixels have
// nothing for cuDNN to do (and cuDNN refuses 0-sized descriptors). An input of
// 0 rows or columns still has outputs when padded: they see only padding.
bool is_empty(const Conv2dGeometry& g) {
  return g.batch == 0 || g.in_channels == 0 || g.out_channels == 0 || g.in_h == 0 || g.in_w == 0;
}

}  // namespace

void conv2d_forward(const Conv2dGeometry& g, const Tensor& x_in, const Tensor& w_in, const Tensor& bias_in,
                    const Tensor& y) {
  const tc::DeviceGuard guard(y.device().index);
  if (y.numel() == 0) return;
  const Tensor x = aligned(x_in), w = aligned(w_in), bias = aligned(bias_in);
  const DType dtype = y.dtype();
  cudnnHandle_t h = cudnn_handle();
  if (is_empty(g)) {  // no input values: the output is the bias alone
    tc::fill(y, 0);
    if (bias.defined()) add_bias(h, g, bias, y);
    return;
  }
  const cudnnMathType_t math = requested_math(dtype);
  const ConvDescriptors d(g, dtype, math);
  const AlgoChoice choice = forward_algo(h, g, dtype, math, d, x, w, y);
  TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), choice.math));
  const tc::DeviceBuffer workspace = tc::device_allocate(choice.workspace_bytes, tc::current_stream());
  const Scalar one(1), zero(0);
  TPP_CUDNN_CHECK(cudnnConvolutionForward(h, one.of(dtype), d.x.get(), x.raw_data(), d.w.get(), w.raw_data(),
                                          d.conv.get(), static_cast<cudnnConvolutionFwdAlgo_t>(choice.algo),
                                          workspace.data(), workspace.size(), zero.of(dtype), d.y.get(),
                                          y.raw_data()));
  if (bias.defined()) add_bias(h, g, bias, y);
}

void conv2d_backward(const Conv2dGeometry& g, const Tensor& x_in, const Tensor& w_in, const Tensor& dy_in,
                     const Tensor& dx, const Tensor& dw, const Tensor& db) {
  const tc::DeviceGuard guard(dy_in.device().index);
  const Tensor x = aligned(x_in), w = aligned(w_in), dy = aligned(dy_in);
  // One block per channel, summed in double: deterministic, unlike atomics.
  if (db.defined()) tc::reduce_sum(db, dy, {true, false, true, true});
  if (!dx.defined() && !dw.defined()) return;
  if (is_empty(g)) {
    if (dx.defined()) tc::fill(dx, 0);
    if (dw.defined()) tc::fill(dw, 0);
    return;
  }
  TPP_CHECK(!dw.defined() || x.defined(), "conv2d backward: the filter gradient needs the input ({})", describe(g));
  const DType dtype = dy.dtype();
  const cudnnMathType_t math = requested_math(dtype);
  const ConvDescriptors d(g, dtype, math);
  cudnnHandle_t h = cudnn_handle();
  const Scalar one(1), zero(0);
  if (dx.defined()) {
    const AlgoChoice choice = backward_data_algo(h, g, dtype, math, d, w, dy, dx);
    TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), choice.math));
    const tc::DeviceBuffer workspace = tc::device_allocate(choice.workspace_bytes, tc::current_stream());
    TPP_CUDNN_CHECK(cudnnConvolutionBackwardData(h, one.of(dtype), d.w.get(), w.raw_data(), d.y.get(), dy.raw_data(),
                                                 d.conv.get(), static_cast<cudnnConvolutionBwdDataAlgo_t>(choice.algo),
                                                 workspace.data(), workspace.size(), zero.of(dtype), d.x.get(),
                                                 dx.raw_data()));
  }
  if (dw.defined()) {
    const AlgoChoice choice = backward_filter_algo(h, g, dtype, math, d, x, dy, dw);
    TPP_CUDNN_CHECK(cudnnSetConvolutionMathType(d.conv.get(), choice.math));
    const tc::DeviceBuffer workspace = tc::device_allocate(choice.workspace_bytes, tc::current_stream());
    TPP_CUDNN_CHECK(cudnnConvolutionBackwardFilter(
        h, one.of(dtype), d.x.get(), x.raw_data(), d.y.get(), dy.raw_data(), d.conv.get(),
        static_cast<cudnnConvolutionBwdFilterAlgo_t>(choice.algo), workspace.data(), workspace.size(), zero.of(dtype),
        d.w.get(), dw.raw_data()));
  }
}

}  // namespace tpp::ops::cuda
