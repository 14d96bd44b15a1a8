// TPP_HOST_DEVICE marks a function of the headers that CPU and CUDA kernels
// share (ops/*_types.h) as callable from both; plain C++ elsewhere.
#pragma once

#if defined(__CUDACC__)
#define TPP_HOST_DEVICE __host__ __device__
#else
#define TPP_HOST_DEVICE
#endif
