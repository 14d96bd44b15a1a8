# CUDA backend: on when TPP_CUDA=ON, or AUTO and nvcc is found. cuDNN and NCCL
# are looked up under /usr/local/cuda unless CUDNN_ROOT / NCCL_ROOT point
# elsewhere (e.g. inside the nvidia-* PyTorch wheels on a GPU machine).
# TPP_CUDA=EMULATE builds the same backend against the emulated device of
# tests/cuda_emu (no GPU, no nvcc; CI runs the GPU tests on it).
set(TPP_WITH_CUDA OFF)
set(TPP_CUDA_EMULATED OFF)
if(TPP_CUDA STREQUAL "EMULATE")
  set(TPP_WITH_CUDA ON)
  set(TPP_CUDA_EMULATED ON)
  include(${CMAKE_CURRENT_LIST_DIR}/../tests/cuda_emu/emulation.cmake)
elseif(NOT TPP_CUDA STREQUAL "OFF")
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(TPP_NVCC nvcc HINTS /usr/local/cuda/bin ENV CUDA_PATH PATH_SUFFIXES bin)
    if(TPP_NVCC)
      set(CMAKE_CUDA_COMPILER ${TPP_NVCC})
    endif()
  endif()
  if(CMAKE_CUDA_COMPILER)
    set(TPP_WITH_CUDA ON)
  elseif(TPP_CUDA STREQUAL "ON")
    message(FATAL_ERROR "TPP_CUDA=ON but nvcc was not found (set CMAKE_CUDA_COMPILER or add nvcc to PATH)")
  endif()
endif()

if(TPP_WITH_CUDA AND NOT TPP_CUDA_EMULATED)
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    # "native" needs a visible GPU; fall back to Ampere + Hopper otherwise.
    execute_process(COMMAND nvidia-smi --query-gpu=compute_cap --format=csv,noheader
                    RESULT_VARIABLE smi_result OUTPUT_VARIABLE smi_output ERROR_QUIET)
    if(smi_result EQUAL 0 AND NOT smi_output STREQUAL "")
      set(CMAKE_CUDA_ARCHITECTURES native)
    else()
      set(CMAKE_CUDA_ARCHITECTURES "80;90")
    endif()
  endif()
  enable_language(CUDA)
  # Kernel files (.cu) are C++17: the CMake here knows no C++20 flag for nvcc, and kernels need none.
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  find_package(CUDAToolkit REQUIRED)

  set(CUDNN_ROOT "" CACHE PATH "cuDNN install prefix (include/ and lib/ below it)")
  set(NCCL_ROOT "" CACHE PATH "NCCL install prefix (include/ and lib/ below it)")
  set(cuda_prefix ${CUDAToolkit_LIBRARY_ROOT} /usr/local/cuda)
  find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDNN_ROOT} ${cuda_prefix} PATH_SUFFIXES include REQUIRED)
  find_library(CUDNN_LIBRARY NAMES cudnn libcudnn.so.9 HINTS ${CUDNN_ROOT} ${cuda_prefix}
               PATH_SUFFIXES lib lib64 REQUIRED)
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${NCCL_ROOT} ${cuda_prefix} PATH_SUFFIXES include REQUIRED)
  find_library(NCCL_LIBRARY NAMES nccl libnccl.so.2 HINTS ${NCCL_ROOT} ${cuda_prefix}
               PATH_SUFFIXES lib lib64 REQUIRED)
  message(STATUS "tpp: CUDA on (archs ${CMAKE_CUDA_ARCHITECTURES}); cuDNN ${CUDNN_LIBRARY}; NCCL ${NCCL_LIBRARY}")

  target_link_libraries(tpp_deps INTERFACE CUDA::cudart CUDA::cublas CUDA::cublasLt ${CUDNN_LIBRARY} ${NCCL_LIBRARY})
  target_include_directories(tpp_deps SYSTEM INTERFACE ${CUDNN_INCLUDE_DIR} ${NCCL_INCLUDE_DIR})
  target_compile_definitions(tpp_deps INTERFACE TPP_WITH_CUDA=1)
elseif(NOT TPP_WITH_CUDA)
  message(STATUS "tpp: CUDA off (CPU-only build)")
endif()
