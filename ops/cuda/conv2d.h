// CUDA convolution on cuDNN (CUDA builds only; nvcc-safe). The same entry
// points as ops/cpu/conv2d.h: contiguous NCHW tensors on one GPU, outputs
// allocated by the caller. Each pass runs the algorithm cuDNN timed fastest
// for its shape (searched once, then cached), honouring math_mode(): TF32
// tensor cores allowed for f32 under MathMode::tf32, plain FMA under fp32.
#pragma once

#include "ops/conv2d_types.h"

namespace tpp {
class Tensor;
}

namespace tpp::ops::cuda {

// y = conv(x, w) + bias; bias may be undefined.
void conv2d_forward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& bias, const Tensor& y);

// Any of dx, dw, db may be undefined when that gradient is not wanted; x may
// be undefined when dw is.
void conv2d_backward(const Conv2dGeometry& g, const Tensor& x, const Tensor& w, const Tensor& dy, const Tensor& dx,
                     const Tensor& dw, const Tensor& db);

}  // namespace tpp::ops::cuda
