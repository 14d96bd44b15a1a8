// The cuDNN entry points the engine calls, as host reference implementations
// written from NVIDIA's cuDNN documentation. Descriptors keep their own copy of
// what they are given (the real library without a GPU answers getters with
// zeros). Convolutions (forward, backward data, backward filter; im2col and
// OpenBLAS GEMMs) honour
// padding, stride, dilation, groups, cross-correlation or convolution mode and
// alpha/beta blending (beta = 0 never reads the output); every algorithm
// computes the same reference, but algorithms differ in the workspace they
// ask for (checked at the call) and in what Find*AlgorithmEx reports, so that
// the engine's algorithm choice and workspace handling run. Bad parameters
// return the documented statuses; cudnnGetLastErrorString names them.
#include <cblas.h>
#include <cudnn.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "tests/cuda_emu/emu_state.h"

struct cudnnContext {
  cudaStream_t stream = nullptr;
};
struct cudnnTensorStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  int dims[4] = {};     // n, c, h, w
  int strides[4] = {};  // in elements
};
struct cudnnFilterStruct {
  bool set = false;
  cudnnDataType_t type = CUDNN_DATA_FLOAT;
  cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW;
  int dims[4] = {};  // k, c, h, w
};
struct cudnnConvolutionStruct {
  bool set = false;
  int pad[2] = {}, stride[2] = {1, 1}, dilation[2] = {1, 1};
  cudnnConvolutionMode_t mode = CUDNN_CROSS_CORRELATION;
  cudnnDataType_t compute = CUDNN_DATA_FLOAT;
  int groups = 1;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
};

namespace {

thread_local std::string last_error;

cudnnStatus_t fail(cudnnStatus_t status, std::string message) {
  last_error = std::move(message);
  return status;
}

std::mutex handles_mutex;
std::set<cudnnHandle_t>& handles() {
  static auto* h = new std::set<cudnnHandle_t>();
  return *h;
}
bool valid(cudnnHandle_t h) {
  const std::lock_guard lock(handles_mutex);
  return handles().count(h) != 0;
}

size_t element_bytes(cudnnDataType_t t) { return t == CUDNN_DATA_DOUBLE ? 8 : 4; }

std::string dims_text(const int* d) { return fmt::format("[{}, {}, {}, {}]", d[0], d[1], d[2], d[3]); }

// Output spatial size per the cuDNN documentation.
int output_size(int in, int pad, int filter, int dilation, int stride) {
  return 1 + (in + 2 * pad - ((filter - 1) * dilation + 1)) / stride;
}

// Checks that x, w and conv make a convolution; fills out[4] with y's dims.
cudnnStatus_t output_dims(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                          int out[4], const char* call) {
  if (conv == nullptr || x == nullptr || w == nullptr)
    return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fmt::format("{}: a null descriptor", call));
  if (!conv->set || !x->set || !w->set)
    return fail(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, fmt::format("{}: a descriptor that was never set", call));
  if (x->type != w->type)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: input and filter data types differ", call));
  if (x->dims[1] != w->dims[1] * conv->groups)
    return fail(CUDNN_STATUS_BAD_PARAM,
                fmt::format("{}: input channels {} are not filter channels {} x group count {}", call, x->dims[1],
                            w->dims[1], conv->groups));
  if (w->dims[0] % conv->groups != 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: filter count {} is not a multiple of the group count {}", call,
                                                    w->dims[0], conv->groups));
  out[0] = x->dims[0];
  out[1] = w->dims[0];
  for (int s = 0; s < 2; ++s) {
    const int padded = x->dims[2 + s] + 2 * conv->pad[s], extent = (w->dims[2 + s] - 1) * conv->dilation[s] + 1;
    if (extent > padded)
      return fail(CUDNN_STATUS_BAD_PARAM,
                  fmt::format("{}: the dilated filter ({}) is larger than the padded input ({}) along dim {}", call,
                              extent, padded, 2 + s));
    out[2 + s] = output_size(x->dims[2 + s], conv->pad[s], w->dims[2 + s], conv->dilation[s], conv->stride[s]);
  }
  return CUDNN_STATUS_SUCCESS;
}

// A full check of one convolution call: y must have the output dims and every
// data type must agree.
cudnnStatus_t check_convolution(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x,
                                const cudnnFilterStruct* w, const cudnnTensorStruct* y, const char* call) {
  int out[4];
  if (const cudnnStatus_t s = output_dims(conv, x, w, out, call); s != CUDNN_STATUS_SUCCESS) return s;
  if (y == nullptr || !y->set)
    return fail(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, fmt::format("{}: the output descriptor was never set", call));
  if (y->type != x->type) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: input and output data types differ", call));
  if (!std::equal(out, out + 4, y->dims))
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: the output descriptor is {} but input {} and filter {} make {}",
                                                    call, dims_text(y->dims), dims_text(x->dims), dims_text(w->dims),
                                                    dims_text(out)));
  return CUDNN_STATUS_SUCCESS;
}

// The algorithms' workspaces: some need none, some scale with the problem,
// some are not offered (the engine must skip them).
enum class Pass { forward, backward_data, backward_filter };

constexpr size_t kNotSupported = std::numeric_limits<size_t>::max();

size_t workspace_bytes(Pass pass, int algo, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                       const cudnnTensorStruct* y) {
  const size_t im2col = element_bytes(x->type) * static_cast<size_t>(w->dims[1]) * w->dims[2] * w->dims[3] *
                        static_cast<size_t>(y->dims[2]) * y->dims[3];
  switch (pass) {
    case Pass::forward:  // IMPLICIT_GEMM, IMPLICIT_PRECOMP_GEMM, GEMM
      return algo == 0 ? 0 : algo == 1 ? 4096 : algo == 2 ? im2col : kNotSupported;
    case Pass::backward_data:  // ALGO_0, ALGO_1
      return algo == 0 ? 0 : algo == 1 ? 8192 : kNotSupported;
    case Pass::backward_filter:  // ALGO_0, ALGO_1, ALGO_3
      return algo == 0 ? 0 : algo == 1 ? im2col : algo == 3 ? 2048 : kNotSupported;
  }
  return kNotSupported;
}

// The algorithms that accumulate with atomics on a GPU are not deterministic.
bool deterministic(Pass pass, int algo) {
  return !((pass == Pass::backward_data && algo == 0) || (pass == Pass::backward_filter && (algo == 0 || algo == 3)));
}

// Offsets of element (a, b, c, d) of a packed 4-d array.
struct Packed {
  int d1, d2, d3;
  size_t at(int a, int b, int c, int d) const { return ((static_cast<size_t>(a) * d1 + b) * d2 + c) * d3 + d; }
};

size_t tensor_at(const cudnnTensorStruct* t, int n, int c, int h, int w) {
  return static_cast<size_t>(n) * t->strides[0] + static_cast<size_t>(c) * t->strides[1] +
         static_cast<size_t>(h) * t->strides[2] + static_cast<size_t>(w) * t->strides[3];
}

size_t filter_at(const cudnnFilterStruct* f, int k, int c, int h, int w) {
  if (f->format == CUDNN_TENSOR_NHWC) return Packed{f->dims[2], f->dims[3], f->dims[1]}.at(k, h, w, c);
  return Packed{f->dims[1], f->dims[2], f->dims[3]}.at(k, c, h, w);
}

size_t elements(const int* d) { return static_cast<size_t>(d[0]) * d[1] * d[2] * d[3]; }

template <class T>
T blend(double alpha, double acc, double beta, T old) {
  return static_cast<T>(beta == 0 ? alpha * acc : alpha * acc + beta * static_cast<double>(old));
}

// The convolutions run as im2col + GEMM (OpenBLAS) per image and group.
void gemm(bool ta, bool tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb, float beta, float* c,
          int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, a, lda, b,
              ldb, beta, c, ldc);
}
void gemm(bool ta, bool tb, int m, int n, int k, const double* a, int lda, const double* b, int ldb, double beta,
          double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m, n, k, 1.0, a, lda, b,
              ldb, beta, c, ldc);
}

// One convolution's geometry, as GEMM sizes: per image and group, the
// filters are [kg, ckk], the columns [ckk, pixels], the output [kg, pixels].
struct Geometry {
  const cudnnConvolutionStruct* conv;
  const cudnnTensorStruct* x;  // the input side (x or dx)
  const cudnnFilterStruct* w;
  const cudnnTensorStruct* y;  // the output side (y or dy)
  int groups() const { return conv->groups; }
  int kg() const { return w->dims[0] / conv->groups; }
  int cg() const { return w->dims[1]; }
  int ckk() const { return cg() * w->dims[2] * w->dims[3]; }
  int pixels() const { return y->dims[2] * y->dims[3]; }

  // fn(row of the column matrix, pixel, input h, input w, input channel) for
  // every tap inside the input (padding reads nothing).
  template <class Fn>
  void for_each_column_entry(int group, Fn&& fn) const {
    const int kh = w->dims[2], kw = w->dims[3], ow_count = y->dims[3];
    const bool flip = conv->mode == CUDNN_CONVOLUTION;
    for (int cl = 0; cl < cg(); ++cl)
      for (int r = 0; r < kh; ++r)
        for (int s = 0; s < kw; ++s) {
          // Convolution mode meets the filter flipped: tap (r, s) uses (kh-1-r, kw-1-s).
          const int row = (cl * kh + (flip ? kh - 1 - r : r)) * kw + (flip ? kw - 1 - s : s);
          for (int oh = 0; oh < y->dims[2]; ++oh) {
            const int ih = oh * conv->stride[0] - conv->pad[0] + r * conv->dilation[0];
            if (ih < 0 || ih >= x->dims[2]) continue;
            for (int ow = 0; ow < ow_count; ++ow) {
              const int iw = ow * conv->stride[1] - conv->pad[1] + s * conv->dilation[1];
              if (iw < 0 || iw >= x->dims[3]) continue;
              fn(row, oh * ow_count + ow, ih, iw, group * cg() + cl);
            }
          }
        }
  }

  template <class T>
  void im2col(const T* data, int n, int group, std::vector<T>& col) const {
    col.assign(static_cast<size_t>(ckk()) * pixels(), T(0));
    for_each_column_entry(group, [&](int row, int pixel, int ih, int iw, int c) {
      col[static_cast<size_t>(row) * pixels() + pixel] = data[tensor_at(x, n, c, ih, iw)];
    });
  }

  // The filters of a group as a packed [kg, ckk] matrix (NCHW order).
  template <class T>
  std::vector<T> filters(const T* data, int group) const {
    std::vector<T> out(static_cast<size_t>(kg()) * ckk());
    for (int k = 0; k < kg(); ++k)
      for (int cl = 0; cl < cg(); ++cl)
        for (int r = 0; r < w->dims[2]; ++r)
          for (int s = 0; s < w->dims[3]; ++s)
            out[static_cast<size_t>(k) * ckk() + (cl * w->dims[2] + r) * w->dims[3] + s] =
                data[filter_at(w, group * kg() + k, cl, r, s)];
    return out;
  }

  // A [kg, pixels] block of the output side of image n, group g, as a matrix.
  template <class T>
  std::vector<T> output_block(const T* data, int n, int group) const {
    std::vector<T> out(static_cast<size_t>(kg()) * pixels());
    for (int k = 0; k < kg(); ++k)
      for (int p = 0; p < pixels(); ++p)
        out[static_cast<size_t>(k) * pixels() + p] =
            data[tensor_at(y, n, group * kg() + k, p / y->dims[3], p % y->dims[3])];
    return out;
  }
};

template <class T>
void forward(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* xd, const T* x, const cudnnFilterStruct* wd,
             const T* w, const cudnnTensorStruct* yd, T* y, double alpha, double beta) {
  const Geometry g{conv, xd, wd, yd};
  std::vector<T> col, out(static_cast<size_t>(g.kg()) * g.pixels());
  for (int group = 0; group < g.groups(); ++group) {
    const std::vector<T> filters = g.filters(w, group);
    for (int n = 0; n < yd->dims[0]; ++n) {
      g.im2col(x, n, group, col);
      gemm(false, false, g.kg(), g.pixels(), g.ckk(), filters.data(), g.ckk(), col.data(), g.pixels(), T(0),
           out.data(), g.pixels());
      for (int k = 0; k < g.kg(); ++k)
        for (int p = 0; p < g.pixels(); ++p) {
          T& o = y[tensor_at(yd, n, group * g.kg() + k, p / yd->dims[3], p % yd->dims[3])];
          o = blend(alpha, static_cast<double>(out[static_cast<size_t>(k) * g.pixels() + p]), beta, o);
        }
    }
  }
}

template <class T>
void backward_data(const cudnnConvolutionStruct* conv, const cudnnFilterStruct* wd, const T* w,
                   const cudnnTensorStruct* dyd, const T* dy, const cudnnTensorStruct* dxd, T* dx, double alpha,
                   double beta) {
  const Geometry g{conv, dxd, wd, dyd};
  std::vector<double> acc(elements(dxd->dims), 0.0);
  const Packed in{dxd->dims[1], dxd->dims[2], dxd->dims[3]};
  std::vector<T> col(static_cast<size_t>(g.ckk()) * g.pixels());
  for (int group = 0; group < g.groups(); ++group) {
    const std::vector<T> filters = g.filters(w, group);
    for (int n = 0; n < dyd->dims[0]; ++n) {
      const std::vector<T> grad = g.output_block(dy, n, group);
      // columns = filtersᵀ · dy, then scattered back onto the input (col2im).
      gemm(true, false, g.ckk(), g.pixels(), g.kg(), filters.data(), g.ckk(), grad.data(), g.pixels(), T(0),
           col.data(), g.pixels());
      g.for_each_column_entry(group, [&](int row, int pixel, int ih, int iw, int c) {
        acc[in.at(n, c, ih, iw)] += col[static_cast<size_t>(row) * g.pixels() + pixel];
      });
    }
  }
  for (int n = 0; n < dxd->dims[0]; ++n)
    for (int c = 0; c < dxd->dims[1]; ++c)
      for (int h = 0; h < dxd->dims[2]; ++h)
        for (int v = 0; v < dxd->dims[3]; ++v) {
          T& o = dx[tensor_at(dxd, n, c, h, v)];
          o = blend(alpha, acc[in.at(n, c, h, v)], beta, o);
        }
}

template <class T>
void backward_filter(const cudnnConvolutionStruct* conv, const cudnnTensorStruct* xd, const T* x,
                     const cudnnTensorStruct* dyd, const T* dy, const cudnnFilterStruct* dwd, T* dw, double alpha,
                     double beta) {
  const Geometry g{conv, xd, dwd, dyd};
  std::vector<T> col, sum(static_cast<size_t>(g.kg()) * g.ckk());
  for (int group = 0; group < g.groups(); ++group) {
    for (int n = 0; n < dyd->dims[0]; ++n) {
      g.im2col(x, n, group, col);
      const std::vector<T> grad = g.output_block(dy, n, group);
      // dw_group += dy · columnsᵀ, summed over the images.
      gemm(false, true, g.kg(), g.ckk(), g.pixels(), grad.data(), g.pixels(), col.data(), g.pixels(),
           n == 0 ? T(0) : T(1), sum.data(), g.ckk());
    }
    for (int k = 0; k < g.kg(); ++k)
      for (int cl = 0; cl < g.cg(); ++cl)
        for (int r = 0; r < dwd->dims[2]; ++r)
          for (int s = 0; s < dwd->dims[3]; ++s) {
            T& o = dw[filter_at(dwd, group * g.kg() + k, cl, r, s)];
            const T v = sum[static_cast<size_t>(k) * g.ckk() + (cl * dwd->dims[2] + r) * dwd->dims[3] + s];
            o = blend(alpha, static_cast<double>(v), beta, o);
          }
  }
}

double scalar(const void* p, cudnnDataType_t t) {
  return t == CUDNN_DATA_DOUBLE ? *static_cast<const double*>(p) : *static_cast<const float*>(p);
}

// The checks every convolution execution shares: handle, pointers, algorithm
// and its workspace.
cudnnStatus_t check_execution(cudnnHandle_t handle, Pass pass, int algo, int algo_count, const void* alpha,
                              const void* beta, std::initializer_list<const void*> data, void* workspace,
                              size_t workspace_size, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                              const cudnnTensorStruct* y, const char* call) {
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: not a cuDNN handle", call));
  if (alpha == nullptr || beta == nullptr)
    return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fmt::format("{}: alpha or beta is null", call));
  for (const void* p : data)
    if (p == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, fmt::format("{}: a null data pointer", call));
  if (algo < 0 || algo >= algo_count)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: algorithm {} does not exist", call, algo));
  const size_t needed = workspace_bytes(pass, algo, x, w, y);
  if (needed == kNotSupported)
    return fail(CUDNN_STATUS_NOT_SUPPORTED, fmt::format("{}: algorithm {} does not support this convolution", call, algo));
  if (workspace_size < needed || (needed > 0 && workspace == nullptr))
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: algorithm {} needs {} bytes of workspace but got {}", call,
                                                    algo, needed, workspace == nullptr ? 0 : workspace_size));
  return CUDNN_STATUS_SUCCESS;
}

// Find*AlgorithmEx: every algorithm's result, fastest first. The reported
// order puts a non-deterministic algorithm first where the pass has one, and
// the output buffer is left overwritten with NaN (it is scratch to the
// search), so that callers must choose and then run the real call.
template <class Perf, class Algo>
void report_algorithms(Pass pass, int algo_count, int requested, int* returned, Perf* results, size_t workspace_size,
                       const cudnnConvolutionStruct* conv, const cudnnTensorStruct* x, const cudnnFilterStruct* w,
                       const cudnnTensorStruct* y) {
  std::vector<Perf> all;
  for (int algo = 0; algo < algo_count; ++algo) {
    Perf p{};
    p.algo = static_cast<Algo>(algo);
    const size_t needed = workspace_bytes(pass, algo, x, w, y);
    p.status = needed == kNotSupported || needed > workspace_size ? CUDNN_STATUS_NOT_SUPPORTED : CUDNN_STATUS_SUCCESS;
    p.memory = needed == kNotSupported ? 0 : needed;
    p.determinism = deterministic(pass, algo) ? CUDNN_DETERMINISTIC : CUDNN_NON_DETERMINISTIC;
    p.mathType = conv->math;
    p.time = p.status == CUDNN_STATUS_SUCCESS ? 1.0f + (p.determinism == CUDNN_DETERMINISTIC ? 1.0f : 0.0f) + 0.01f * algo
                                              : -1.0f;
    all.push_back(p);
  }
  std::stable_sort(all.begin(), all.end(), [](const Perf& a, const Perf& b) {
    if ((a.status == CUDNN_STATUS_SUCCESS) != (b.status == CUDNN_STATUS_SUCCESS)) return a.status == CUDNN_STATUS_SUCCESS;
    return a.time < b.time;
  });
  *returned = std::min(requested, static_cast<int>(all.size()));
  std::copy(all.begin(), all.begin() + *returned, results);
}

template <class T>
void poison(void* p, size_t count) {
  std::fill(static_cast<T*>(p), static_cast<T*>(p) + count, std::numeric_limits<T>::quiet_NaN());
}

void poison_output(void* p, cudnnDataType_t t, size_t count) {
  if (t == CUDNN_DATA_DOUBLE) poison<double>(p, count);
  else poison<float>(p, count);
}

cudnnStatus_t run_on(cudnnHandle_t handle, std::function<void()> work) {
  return tpp_emu::enqueue(handle->stream, std::move(work), true) == cudaSuccess
             ? CUDNN_STATUS_SUCCESS
             : fail(CUDNN_STATUS_EXECUTION_FAILED, "the handle's stream does not exist");
}

bool valid_type(cudnnDataType_t t) { return t == CUDNN_DATA_FLOAT || t == CUDNN_DATA_DOUBLE; }

}  // namespace

extern "C" {

size_t cudnnGetVersion() { return CUDNN_VERSION; }

const char* cudnnGetErrorString(cudnnStatus_t status) {
  switch (status) {
#define TPP_EMU_NAME(s) \
  case s: return #s;
    TPP_EMU_NAME(CUDNN_STATUS_SUCCESS)
    TPP_EMU_NAME(CUDNN_STATUS_NOT_INITIALIZED)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_NULL_POINTER)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_MISALIGNED_POINTER)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_OUT_OF_BOUND)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_SIZE_INSUFFICIENT)
    TPP_EMU_NAME(CUDNN_STATUS_BAD_PARAM_SHAPE_MISMATCH)
    TPP_EMU_NAME(CUDNN_STATUS_NOT_SUPPORTED)
    TPP_EMU_NAME(CUDNN_STATUS_INTERNAL_ERROR)
    TPP_EMU_NAME(CUDNN_STATUS_INTERNAL_ERROR_DEVICE_ALLOCATION_FAILED)
    TPP_EMU_NAME(CUDNN_STATUS_EXECUTION_FAILED)
#undef TPP_EMU_NAME
    default: return "CUDNN_STATUS_UNKNOWN";
  }
}

void cudnnGetLastErrorString(char* message, size_t max_size) {
  if (message == nullptr || max_size == 0) return;
  std::snprintf(message, max_size, "%s", last_error.c_str());
  last_error.clear();
}

cudnnStatus_t cudnnCreate(cudnnHandle_t* handle) {
  if (handle == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnCreate: null output");
  *handle = new cudnnContext();
  const std::lock_guard lock(handles_mutex);
  handles().insert(*handle);
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnDestroy(cudnnHandle_t handle) {
  {
    const std::lock_guard lock(handles_mutex);
    if (handles().erase(handle) == 0) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnDestroy: not a cuDNN handle");
  }
  delete handle;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetStream(cudnnHandle_t handle, cudaStream_t stream) {
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetStream: not a cuDNN handle");
  handle->stream = stream;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnCreateTensorDescriptor(cudnnTensorDescriptor_t* d) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnCreateTensorDescriptor: null output");
  *d = new cudnnTensorStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyTensorDescriptor(cudnnTensorDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateFilterDescriptor(cudnnFilterDescriptor_t* d) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnCreateFilterDescriptor: null output");
  *d = new cudnnFilterStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyFilterDescriptor(cudnnFilterDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnCreateConvolutionDescriptor(cudnnConvolutionDescriptor_t* d) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnCreateConvolutionDescriptor: null output");
  *d = new cudnnConvolutionStruct();
  return CUDNN_STATUS_SUCCESS;
}
cudnnStatus_t cudnnDestroyConvolutionDescriptor(cudnnConvolutionDescriptor_t d) {
  delete d;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetTensor4dDescriptor(cudnnTensorDescriptor_t d, cudnnTensorFormat_t format, cudnnDataType_t type,
                                         int n, int c, int h, int w) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnSetTensor4dDescriptor: null descriptor");
  if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("cudnnSetTensor4dDescriptor: dims [{}, {}, {}, {}] must be positive", n, c, h, w));
  if (!valid_type(type)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnSetTensor4dDescriptor: the emulator takes float or double");
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetTensor4dDescriptor: format is neither NCHW nor NHWC");
  *d = cudnnTensorStruct{true, type, {n, c, h, w}, {}};
  if (format == CUDNN_TENSOR_NCHW) {
    d->strides[3] = 1, d->strides[2] = w, d->strides[1] = h * w, d->strides[0] = c * h * w;
  } else {
    d->strides[1] = 1, d->strides[3] = c, d->strides[2] = w * c, d->strides[0] = h * w * c;
  }
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetFilter4dDescriptor(cudnnFilterDescriptor_t d, cudnnDataType_t type, cudnnTensorFormat_t format,
                                         int k, int c, int h, int w) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnSetFilter4dDescriptor: null descriptor");
  if (k <= 0 || c <= 0 || h <= 0 || w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("cudnnSetFilter4dDescriptor: dims [{}, {}, {}, {}] must be positive", k, c, h, w));
  if (!valid_type(type)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnSetFilter4dDescriptor: the emulator takes float or double");
  if (format != CUDNN_TENSOR_NCHW && format != CUDNN_TENSOR_NHWC)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetFilter4dDescriptor: format is neither NCHW nor NHWC");
  *d = cudnnFilterStruct{true, type, format, {k, c, h, w}};
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolution2dDescriptor(cudnnConvolutionDescriptor_t d, int pad_h, int pad_w, int u, int v,
                                              int dilation_h, int dilation_w, cudnnConvolutionMode_t mode,
                                              cudnnDataType_t compute) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnSetConvolution2dDescriptor: null descriptor");
  if (pad_h < 0 || pad_w < 0 || u <= 0 || v <= 0 || dilation_h <= 0 || dilation_w <= 0)
    return fail(CUDNN_STATUS_BAD_PARAM,
                fmt::format("cudnnSetConvolution2dDescriptor: padding [{}, {}] must be >= 0, stride [{}, {}] and "
                            "dilation [{}, {}] > 0", pad_h, pad_w, u, v, dilation_h, dilation_w));
  if (mode != CUDNN_CONVOLUTION && mode != CUDNN_CROSS_CORRELATION)
    return fail(CUDNN_STATUS_BAD_PARAM, "cudnnSetConvolution2dDescriptor: unknown mode");
  if (!valid_type(compute)) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnSetConvolution2dDescriptor: compute type");
  d->set = true;
  d->pad[0] = pad_h, d->pad[1] = pad_w, d->stride[0] = u, d->stride[1] = v;
  d->dilation[0] = dilation_h, d->dilation[1] = dilation_w;
  d->mode = mode;
  d->compute = compute;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionGroupCount(cudnnConvolutionDescriptor_t d, int groups) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnSetConvolutionGroupCount: null descriptor");
  if (groups < 1) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("cudnnSetConvolutionGroupCount: {} groups", groups));
  d->groups = groups;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnSetConvolutionMathType(cudnnConvolutionDescriptor_t d, cudnnMathType_t math) {
  if (d == nullptr) return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnSetConvolutionMathType: null descriptor");
  if (math != CUDNN_DEFAULT_MATH && math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION &&
      math != CUDNN_FMA_MATH)
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("cudnnSetConvolutionMathType: unknown math type {}", static_cast<int>(math)));
  d->math = math;  // tensor-op math is computed as fp32 here
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolution2dForwardOutputDim(const cudnnConvolutionDescriptor_t conv,
                                                    const cudnnTensorDescriptor_t x, const cudnnFilterDescriptor_t w,
                                                    int* n, int* c, int* h, int* wd) {
  if (n == nullptr || c == nullptr || h == nullptr || wd == nullptr)
    return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnGetConvolution2dForwardOutputDim: null output");
  int out[4];
  if (const cudnnStatus_t s = output_dims(conv, x, w, out, "cudnnGetConvolution2dForwardOutputDim");
      s != CUDNN_STATUS_SUCCESS)
    return s;
  *n = out[0], *c = out[1], *h = out[2], *wd = out[3];
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionForwardWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                      const cudnnFilterDescriptor_t w,
                                                      const cudnnConvolutionDescriptor_t conv,
                                                      const cudnnTensorDescriptor_t y, cudnnConvolutionFwdAlgo_t algo,
                                                      size_t* bytes) {
  if (!valid(handle) || bytes == nullptr) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionForwardWorkspaceSize: bad handle or output");
  if (const cudnnStatus_t s = check_convolution(conv, x, w, y, "cudnnGetConvolutionForwardWorkspaceSize"); s != CUDNN_STATUS_SUCCESS) return s;
  const size_t needed = workspace_bytes(Pass::forward, algo, x, w, y);
  if (needed == kNotSupported) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnGetConvolutionForwardWorkspaceSize: algorithm not supported");
  *bytes = needed;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardDataWorkspaceSize(cudnnHandle_t handle, const cudnnFilterDescriptor_t w,
                                                           const cudnnTensorDescriptor_t dy,
                                                           const cudnnConvolutionDescriptor_t conv,
                                                           const cudnnTensorDescriptor_t dx,
                                                           cudnnConvolutionBwdDataAlgo_t algo, size_t* bytes) {
  if (!valid(handle) || bytes == nullptr) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionBackwardDataWorkspaceSize: bad handle or output");
  if (const cudnnStatus_t s = check_convolution(conv, dx, w, dy, "cudnnGetConvolutionBackwardDataWorkspaceSize"); s != CUDNN_STATUS_SUCCESS) return s;
  const size_t needed = workspace_bytes(Pass::backward_data, algo, dx, w, dy);
  if (needed == kNotSupported) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnGetConvolutionBackwardDataWorkspaceSize: algorithm not supported");
  *bytes = needed;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnGetConvolutionBackwardFilterWorkspaceSize(cudnnHandle_t handle, const cudnnTensorDescriptor_t x,
                                                             const cudnnTensorDescriptor_t dy,
                                                             const cudnnConvolutionDescriptor_t conv,
                                                             const cudnnFilterDescriptor_t dw,
                                                             cudnnConvolutionBwdFilterAlgo_t algo, size_t* bytes) {
  if (!valid(handle) || bytes == nullptr) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnGetConvolutionBackwardFilterWorkspaceSize: bad handle or output");
  if (const cudnnStatus_t s = check_convolution(conv, x, dw, dy, "cudnnGetConvolutionBackwardFilterWorkspaceSize"); s != CUDNN_STATUS_SUCCESS) return s;
  const size_t needed = workspace_bytes(Pass::backward_filter, algo, x, dw, dy);
  if (needed == kNotSupported) return fail(CUDNN_STATUS_NOT_SUPPORTED, "cudnnGetConvolutionBackwardFilterWorkspaceSize: algorithm not supported");
  *bytes = needed;
  return CUDNN_STATUS_SUCCESS;
}

cudnnStatus_t cudnnFindConvolutionForwardAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                     const void* x, const cudnnFilterDescriptor_t wd, const void* w,
                                                     const cudnnConvolutionDescriptor_t conv,
                                                     const cudnnTensorDescriptor_t yd, void* y, const int requested,
                                                     int* returned, cudnnConvolutionFwdAlgoPerf_t* results,
                                                     void* workspace, size_t workspace_size) {
  const char* call = "cudnnFindConvolutionForwardAlgorithmEx";
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: not a cuDNN handle", call));
  if (x == nullptr || w == nullptr || y == nullptr || returned == nullptr || results == nullptr || requested <= 0 ||
      (workspace == nullptr && workspace_size > 0))
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: a null pointer or requestedAlgoCount {} <= 0", call, requested));
  if (const cudnnStatus_t s = check_convolution(conv, xd, wd, yd, call); s != CUDNN_STATUS_SUCCESS) return s;
  report_algorithms<cudnnConvolutionFwdAlgoPerf_t, cudnnConvolutionFwdAlgo_t>(
      Pass::forward, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, requested, returned, results, workspace_size, conv, xd, wd, yd);
  const cudnnDataType_t t = yd->type;
  const size_t count = elements(yd->dims);
  return run_on(handle, [=] { poison_output(y, t, count); });
}

cudnnStatus_t cudnnFindConvolutionBackwardDataAlgorithmEx(cudnnHandle_t handle, const cudnnFilterDescriptor_t wd,
                                                          const void* w, const cudnnTensorDescriptor_t dyd,
                                                          const void* dy, const cudnnConvolutionDescriptor_t conv,
                                                          const cudnnTensorDescriptor_t dxd, void* dx,
                                                          const int requested, int* returned,
                                                          cudnnConvolutionBwdDataAlgoPerf_t* results, void* workspace,
                                                          size_t workspace_size) {
  const char* call = "cudnnFindConvolutionBackwardDataAlgorithmEx";
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: not a cuDNN handle", call));
  if (w == nullptr || dy == nullptr || dx == nullptr || returned == nullptr || results == nullptr || requested <= 0 ||
      (workspace == nullptr && workspace_size > 0))
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: a null pointer or requestedAlgoCount {} <= 0", call, requested));
  if (const cudnnStatus_t s = check_convolution(conv, dxd, wd, dyd, call); s != CUDNN_STATUS_SUCCESS) return s;
  report_algorithms<cudnnConvolutionBwdDataAlgoPerf_t, cudnnConvolutionBwdDataAlgo_t>(
      Pass::backward_data, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, requested, returned, results, workspace_size, conv,
      dxd, wd, dyd);
  const cudnnDataType_t t = dxd->type;
  const size_t count = elements(dxd->dims);
  return run_on(handle, [=] { poison_output(dx, t, count); });
}

cudnnStatus_t cudnnFindConvolutionBackwardFilterAlgorithmEx(cudnnHandle_t handle, const cudnnTensorDescriptor_t xd,
                                                            const void* x, const cudnnTensorDescriptor_t dyd,
                                                            const void* dy, const cudnnConvolutionDescriptor_t conv,
                                                            const cudnnFilterDescriptor_t dwd, void* dw,
                                                            const int requested, int* returned,
                                                            cudnnConvolutionBwdFilterAlgoPerf_t* results,
                                                            void* workspace, size_t workspace_size) {
  const char* call = "cudnnFindConvolutionBackwardFilterAlgorithmEx";
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: not a cuDNN handle", call));
  if (x == nullptr || dy == nullptr || dw == nullptr || returned == nullptr || results == nullptr || requested <= 0 ||
      (workspace == nullptr && workspace_size > 0))
    return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("{}: a null pointer or requestedAlgoCount {} <= 0", call, requested));
  if (const cudnnStatus_t s = check_convolution(conv, xd, dwd, dyd, call); s != CUDNN_STATUS_SUCCESS) return s;
  report_algorithms<cudnnConvolutionBwdFilterAlgoPerf_t, cudnnConvolutionBwdFilterAlgo_t>(
      Pass::backward_filter, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, requested, returned, results, workspace_size,
      conv, xd, dwd, dyd);
  const cudnnDataType_t t = dwd->type;
  const size_t count = elements(dwd->dims);
  return run_on(handle, [=] { poison_output(dw, t, count); });
}

cudnnStatus_t cudnnConvolutionForward(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                      const void* x, const cudnnFilterDescriptor_t wd, const void* w,
                                      const cudnnConvolutionDescriptor_t conv, cudnnConvolutionFwdAlgo_t algo,
                                      void* workspace, size_t workspace_size, const void* beta,
                                      const cudnnTensorDescriptor_t yd, void* y) {
  const char* call = "cudnnConvolutionForward";
  if (const cudnnStatus_t s = check_convolution(conv, xd, wd, yd, call); s != CUDNN_STATUS_SUCCESS) return s;
  if (const cudnnStatus_t s = check_execution(handle, Pass::forward, algo, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, alpha,
                                              beta, {x, w, y}, workspace, workspace_size, xd, wd, yd, call);
      s != CUDNN_STATUS_SUCCESS)
    return s;
  const double a = scalar(alpha, yd->type), b = scalar(beta, yd->type);
  const cudnnConvolutionStruct c = *conv;
  const cudnnTensorStruct xs = *xd, ys = *yd;
  const cudnnFilterStruct ws = *wd;
  return run_on(handle, [=] {
    if (ys.type == CUDNN_DATA_DOUBLE)
      forward(&c, &xs, static_cast<const double*>(x), &ws, static_cast<const double*>(w), &ys, static_cast<double*>(y), a, b);
    else
      forward(&c, &xs, static_cast<const float*>(x), &ws, static_cast<const float*>(w), &ys, static_cast<float*>(y), a, b);
  });
}

cudnnStatus_t cudnnConvolutionBackwardData(cudnnHandle_t handle, const void* alpha, const cudnnFilterDescriptor_t wd,
                                           const void* w, const cudnnTensorDescriptor_t dyd, const void* dy,
                                           const cudnnConvolutionDescriptor_t conv,
                                           cudnnConvolutionBwdDataAlgo_t algo, void* workspace, size_t workspace_size,
                                           const void* beta, const cudnnTensorDescriptor_t dxd, void* dx) {
  const char* call = "cudnnConvolutionBackwardData";
  if (const cudnnStatus_t s = check_convolution(conv, dxd, wd, dyd, call); s != CUDNN_STATUS_SUCCESS) return s;
  if (const cudnnStatus_t s = check_execution(handle, Pass::backward_data, algo, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                              alpha, beta, {w, dy, dx}, workspace, workspace_size, dxd, wd, dyd, call);
      s != CUDNN_STATUS_SUCCESS)
    return s;
  const double a = scalar(alpha, dxd->type), b = scalar(beta, dxd->type);
  const cudnnConvolutionStruct c = *conv;
  const cudnnTensorStruct dys = *dyd, dxs = *dxd;
  const cudnnFilterStruct ws = *wd;
  return run_on(handle, [=] {
    if (dxs.type == CUDNN_DATA_DOUBLE)
      backward_data(&c, &ws, static_cast<const double*>(w), &dys, static_cast<const double*>(dy), &dxs,
                    static_cast<double*>(dx), a, b);
    else
      backward_data(&c, &ws, static_cast<const float*>(w), &dys, static_cast<const float*>(dy), &dxs,
                    static_cast<float*>(dx), a, b);
  });
}

cudnnStatus_t cudnnConvolutionBackwardFilter(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t xd,
                                             const void* x, const cudnnTensorDescriptor_t dyd, const void* dy,
                                             const cudnnConvolutionDescriptor_t conv,
                                             cudnnConvolutionBwdFilterAlgo_t algo, void* workspace,
                                             size_t workspace_size, const void* beta,
                                             const cudnnFilterDescriptor_t dwd, void* dw) {
  const char* call = "cudnnConvolutionBackwardFilter";
  if (const cudnnStatus_t s = check_convolution(conv, xd, dwd, dyd, call); s != CUDNN_STATUS_SUCCESS) return s;
  if (const cudnnStatus_t s =
          check_execution(handle, Pass::backward_filter, algo, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, alpha, beta,
                          {x, dy, dw}, workspace, workspace_size, xd, dwd, dyd, call);
      s != CUDNN_STATUS_SUCCESS)
    return s;
  const double a = scalar(alpha, xd->type), b = scalar(beta, xd->type);
  const cudnnConvolutionStruct c = *conv;
  const cudnnTensorStruct xs = *xd, dys = *dyd;
  const cudnnFilterStruct dws = *dwd;
  return run_on(handle, [=] {
    if (xs.type == CUDNN_DATA_DOUBLE)
      backward_filter(&c, &xs, static_cast<const double*>(x), &dys, static_cast<const double*>(dy), &dws,
                      static_cast<double*>(dw), a, b);
    else
      backward_filter(&c, &xs, static_cast<const float*>(x), &dys, static_cast<const float*>(dy), &dws,
                      static_cast<float*>(dw), a, b);
  });
}

// C = alpha A + beta C, with each dim of A equal to C's or 1 (broadcast).
cudnnStatus_t cudnnAddTensor(cudnnHandle_t handle, const void* alpha, const cudnnTensorDescriptor_t ad, const void* a,
                             const void* beta, const cudnnTensorDescriptor_t cd, void* c) {
  if (!valid(handle)) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnAddTensor: not a cuDNN handle");
  if (alpha == nullptr || beta == nullptr || a == nullptr || c == nullptr || ad == nullptr || cd == nullptr)
    return fail(CUDNN_STATUS_BAD_PARAM_NULL_POINTER, "cudnnAddTensor: a null pointer");
  if (!ad->set || !cd->set) return fail(CUDNN_STATUS_BAD_PARAM_NOT_FINALIZED, "cudnnAddTensor: a descriptor was never set");
  if (ad->type != cd->type) return fail(CUDNN_STATUS_BAD_PARAM, "cudnnAddTensor: A and C data types differ");
  for (int d = 0; d < 4; ++d)
    if (ad->dims[d] != cd->dims[d] && ad->dims[d] != 1)
      return fail(CUDNN_STATUS_BAD_PARAM, fmt::format("cudnnAddTensor: A {} does not broadcast to C {}",
                                                      dims_text(ad->dims), dims_text(cd->dims)));
  const double al = scalar(alpha, cd->type), be = scalar(beta, cd->type);
  const cudnnTensorStruct as = *ad, cs = *cd;
  return run_on(handle, [=] {
    const auto add = [&](auto* out, const auto* in) {
      for (int n = 0; n < cs.dims[0]; ++n)
        for (int k = 0; k < cs.dims[1]; ++k)
          for (int h = 0; h < cs.dims[2]; ++h)
            for (int w = 0; w < cs.dims[3]; ++w) {
              auto& o = out[tensor_at(&cs, n, k, h, w)];
              const double v = in[tensor_at(&as, as.dims[0] == 1 ? 0 : n, as.dims[1] == 1 ? 0 : k,
                                            as.dims[2] == 1 ? 0 : h, as.dims[3] == 1 ? 0 : w)];
              o = blend(al, v, be, o);
            }
    };
    if (cs.type == CUDNN_DATA_DOUBLE) add(static_cast<double*>(c), static_cast<const double*>(a));
    else add(static_cast<float*>(c), static_cast<const float*>(a));
  });
}

}  // extern "C"
