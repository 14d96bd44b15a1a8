// Element-wise kernels: one grid-stride loop per launch, a flat path for
// contiguous operands and a strided path (StridedOffsets) for views and
// broadcasts, with the op chosen at compile time by a small functor.
#include "ops/cuda/elementwise.h"

#include <cmath>
#include <type_traits>

namespace tpp::ops::cuda::kernels {

namespace {

using tpp::cuda::with_floating_type;

using tpp::cuda::blocks_for;
using tpp::cuda::kThreadsPerBlock;
using tpp::cuda::StridedOffsets;

// The float and double forms of the math functions, as std:: picks them on the CPU.
__device__ inline float exp_of(float v) { return expf(v); }
__device__ inline double exp_of(double v) { return ::exp(v); }
__device__ inline float log_of(float v) { return logf(v); }
__device__ inline double log_of(double v) { return ::log(v); }
__device__ inline float sqrt_of(float v) { return sqrtf(v); }
__device__ inline double sqrt_of(double v) { return ::sqrt(v); }
__device__ inline float abs_of(float v) { return fabsf(v); }
__device__ inline double abs_of(double v) { return ::fabs(v); }
__device__ inline float pow_of(float v, float p) { return powf(v, p); }
__device__ inline double pow_of(double v, double p) { return ::pow(v, p); }

template <class T>
struct DeviceMath {
  __device__ static T sqrt(T v) { return sqrt_of(v); }
  __device__ static T pow(T v, T p) { return pow_of(v, p); }
};

template <class T, Binary kOp>
struct BinaryFn {
  __device__ T operator()(T x, T y) const {
    if constexpr (kOp == Binary::add) return x + y;
    else if constexpr (kOp == Binary::sub) return x - y;
    else if constexpr (kOp == Binary::mul) return x * y;
    else return x / y;
  }
};

template <class T>
struct ReluBackwardFn {
  // As PyTorch: the gradient passes unless the output is <= 0, so through NaN too.
  __device__ T operator()(T out, T grad) const { return out <= T(0) ? T(0) : grad; }
};

template <class T, Unary kOp>
struct UnaryFn {
  T s;
  __device__ T operator()(T v) const {
    if constexpr (kOp == Unary::neg) return -v;
    else if constexpr (kOp == Unary::exp) return exp_of(v);
    else if constexpr (kOp == Unary::log) return log_of(v);
    else if constexpr (kOp == Unary::sqrt) return sqrt_of(v);
    else if constexpr (kOp == Unary::abs) return abs_of(v);
    else if constexpr (kOp == Unary::relu) return v < T(0) ? T(0) : v;  // NaN propagates
    else if constexpr (kOp == Unary::sign) return v > T(0) ? T(1) : (v < T(0) ? T(-1) : T(0));
    else if constexpr (kOp == Unary::add_scalar) return v + s;
    else if constexpr (kOp == Unary::mul_scalar) return v * s;
    else if constexpr (kOp == Unary::pow_scalar) return pow_as_pytorch<T, DeviceMath<T>>(v, s);
    else if constexpr (kOp == Unary::rsub_scalar) return s - v;
    else return s / v;
  }
};

// x * x: pow's exponent 2, exactly as the CPU computes it.
template <class T>
struct SquareFn {
  __device__ T operator()(T v) const { return v * v; }
};

template <class T, class Fn>
__global__ void binary_flat_kernel(T* out, const T* a, const T* b, int64_t n, Fn fn) {
  TPP_GRID_STRIDE_LOOP(i, n) out[i] = fn(a[i], b[i]);
}

template <class T, class Fn>
__global__ void binary_scalar_kernel(T* out, const T* a, const T* b, int64_t n, Fn fn) {
  const T s = b[0];
  TPP_GRID_STRIDE_LOOP(i, n) out[i] = fn(a[i], s);
}

template <class T, class Fn>
__global__ void binary_strided_kernel(T* out, const T* a, const T* b, StridedOffsets<3> at, int64_t n, Fn fn) {
  TPP_GRID_STRIDE_LOOP(i, n) {
    int64_t off[3];
    at.offsets_of(i, off);
    out[off[0]] = fn(a[off[1]], b[off[2]]);
  }
}

template <class T, class Fn>
__global__ void unary_flat_kernel(T* out, const T* x, int64_t n, Fn fn) {
  TPP_GRID_STRIDE_LOOP(i, n) out[i] = fn(x[i]);
}

template <class T, class Fn>
__global__ void unary_strided_kernel(T* out, const T* x, StridedOffsets<2> at, int64_t n, Fn fn) {
  TPP_GRID_STRIDE_LOOP(i, n) {
    int64_t off[2];
    at.offsets_of(i, off);
    out[off[0]] = fn(x[off[1]]);
  }
}

template <class T, class Fn>
void run_binary(void* out, const void* a, const void* b, const StridedOffsets<3>& at, int64_t n, bool flat,
                bool scalar_b, cudaStream_t stream, Fn fn) {
  T* o = static_cast<T*>(out);
  const T* pa = static_cast<const T*>(a);
  const T* pb = static_cast<const T*>(b);
  if (flat) binary_flat_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(o, pa, pb, n, fn);
  else if (scalar_b) binary_scalar_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(o, pa, pb, n, fn);
  else binary_strided_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(o, pa, pb, at, n, fn);
  TPP_CUDA_CHECK_LAUNCH();
}

template <class T, class Fn>
void run_unary(void* out, const void* x, const StridedOffsets<2>& at, int64_t n, bool flat, cudaStream_t stream,
               Fn fn) {
  T* o = static_cast<T*>(out);
  const T* px = static_cast<const T*>(x);
  if (flat) unary_flat_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(o, px, n, fn);
  else unary_strided_kernel<<<blocks_for(n), kThreadsPerBlock, 0, stream>>>(o, px, at, n, fn);
  TPP_CUDA_CHECK_LAUNCH();
}

template <class T>
void binary_of(Binary op, void* out, const void* a, const void* b, const StridedOffsets<3>& at, int64_t n, bool flat,
               bool scalar_b, cudaStream_t stream) {
  switch (op) {
    case Binary::add: return run_binary<T>(out, a, b, at, n, flat, scalar_b, stream, BinaryFn<T, Binary::add>{});
    case Binary::sub: return run_binary<T>(out, a, b, at, n, flat, scalar_b, stream, BinaryFn<T, Binary::sub>{});
    case Binary::mul: return run_binary<T>(out, a, b, at, n, flat, scalar_b, stream, BinaryFn<T, Binary::mul>{});
    case Binary::div: return run_binary<T>(out, a, b, at, n, flat, scalar_b, stream, BinaryFn<T, Binary::div>{});
  }
}

template <class T>
void unary_of(Unary op, void* out, const void* x, T s, const StridedOffsets<2>& at, int64_t n, bool flat,
              cudaStream_t stream) {
  switch (op) {
    case Unary::neg: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::neg>{s});
    case Unary::exp: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::exp>{s});
    case Unary::log: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::log>{s});
    case Unary::sqrt: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::sqrt>{s});
    case Unary::abs: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::abs>{s});
    case Unary::relu: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::relu>{s});
    case Unary::sign: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::sign>{s});
    case Unary::add_scalar: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::add_scalar>{s});
    case Unary::mul_scalar: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::mul_scalar>{s});
    case Unary::pow_scalar:
      if (s == T(2)) return run_unary<T>(out, x, at, n, flat, stream, SquareFn<T>{});
      return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::pow_scalar>{s});
    case Unary::rsub_scalar: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::rsub_scalar>{s});
    case Unary::rdiv_scalar: return run_unary<T>(out, x, at, n, flat, stream, UnaryFn<T, Unary::rdiv_scalar>{s});
  }
}

}  // namespace

void launch_binary(Binary op, DType dtype, void* out, const void* a, const void* b, const StridedOffsets<3>& at,
                   int64_t n, bool flat, bool scalar_b, cudaStream_t stream) {
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) { binary_of<decltype(type)>(op, out, a, b, at, n, flat, scalar_b, stream); });
}

void launch_unary(Unary op, DType dtype, void* out, const void* x, double scalar, const StridedOffsets<2>& at,
                  int64_t n, bool flat, cudaStream_t stream) {
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    unary_of<T>(op, out, x, static_cast<T>(scalar), at, n, flat, stream);
  });
}

void launch_relu_backward(DType dtype, void* dx, const void* y, const void* dy, const StridedOffsets<3>& at, int64_t n,
                          bool flat, bool scalar_b, cudaStream_t stream) {
  if (n == 0) return;
  with_floating_type(dtype, [&](auto type) {
    using T = decltype(type);
    run_binary<T>(dx, y, dy, at, n, flat, scalar_b, stream, ReluBackwardFn<T>{});
  });
}

}  // namespace tpp::ops::cuda::kernels
