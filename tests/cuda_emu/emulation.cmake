# -DTPP_CUDA=EMULATE: the CUDA backend against our emulated device (this
# folder) instead of the CUDA runtime, cuBLAS, cuDNN and NCCL. NVIDIA's
# headers still supply the types, so the .cpp glue compiles unchanged; every
# .cu file is rewritten (launches, __shared__; line numbers kept) and compiled
# as host C++. Needs the CUDA headers, not nvcc or a GPU.
find_path(TPP_CUDA_INCLUDE_DIR cuda_runtime_api.h HINTS /usr/local/cuda/include ENV CUDA_PATH PATH_SUFFIXES include)
find_path(TPP_CUDNN_INCLUDE_DIR cudnn.h HINTS ${TPP_CUDA_INCLUDE_DIR} /usr/local/cuda/include)
find_path(TPP_NCCL_INCLUDE_DIR nccl.h HINTS ${TPP_CUDA_INCLUDE_DIR} /usr/local/cuda/include)
if(NOT TPP_CUDA_INCLUDE_DIR OR NOT TPP_CUDNN_INCLUDE_DIR OR NOT TPP_NCCL_INCLUDE_DIR)
  message(FATAL_ERROR "TPP_CUDA=EMULATE needs the CUDA, cuDNN and NCCL headers (cuda_runtime_api.h, cudnn.h, nccl.h; "
                      "looked in /usr/local/cuda/include)")
endif()
set(tpp_emu_dir ${CMAKE_CURRENT_LIST_DIR})
set(TPP_EMU_GENERATED_DIR ${CMAKE_BINARY_DIR}/cuda_emu_src)

option(TPP_SANITIZE_DEVICE
       "TPP_CUDA=EMULATE: AddressSanitizer + UndefinedBehaviorSanitizer on the CUDA backend alone (the kernels, their glue in engine/cuda and ops/cuda, the emulator); the rest is built as usual"
       OFF)
set(TPP_DEVICE_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g1)
if(TPP_SANITIZE_DEVICE)
  add_link_options(-fsanitize=address,undefined)
endif()

add_executable(tpp_rewrite_cu ${tpp_emu_dir}/rewrite_cu.cpp)

add_library(tpp_cuda_emu STATIC ${tpp_emu_dir}/device.cpp ${tpp_emu_dir}/runtime.cpp ${tpp_emu_dir}/cublas.cpp
                                ${tpp_emu_dir}/cudnn.cpp ${tpp_emu_dir}/nccl.cpp)
target_include_directories(tpp_cuda_emu SYSTEM PUBLIC ${TPP_CUDA_INCLUDE_DIR})
target_include_directories(tpp_cuda_emu PRIVATE ${PROJECT_SOURCE_DIR})
target_compile_options(tpp_cuda_emu PRIVATE -Wall -Wextra)
if(TPP_SANITIZE_DEVICE)
  target_compile_options(tpp_cuda_emu PRIVATE ${TPP_DEVICE_SANITIZER_FLAGS})
endif()
target_link_libraries(tpp_cuda_emu PUBLIC fmt::fmt Threads::Threads PkgConfig::OPENBLAS)

target_link_libraries(tpp_deps INTERFACE tpp_cuda_emu)
target_include_directories(tpp_deps SYSTEM INTERFACE ${TPP_CUDA_INCLUDE_DIR})
target_compile_definitions(tpp_deps INTERFACE TPP_WITH_CUDA=1)
message(STATUS "tpp: CUDA emulated on the host (tests/cuda_emu; headers from ${TPP_CUDA_INCLUDE_DIR})")

# out_var: the host C++ files made from the given .cu files (and the .cuh
# headers they include, rewritten alongside).
function(tpp_emulate_kernels out_var)
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/engine/cuda/*.cuh ${PROJECT_SOURCE_DIR}/ops/cuda/*.cuh)
  set(rewritten_headers)
  foreach(header ${headers})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${header})
    set(out ${TPP_EMU_GENERATED_DIR}/${rel})
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${TPP_EMU_GENERATED_DIR}
      COMMAND tpp_rewrite_cu ${header} ${out} ${tpp_emu_dir}/cuda_emu.h ${TPP_EMU_GENERATED_DIR}
      DEPENDS ${header} tpp_rewrite_cu VERBATIM)
    list(APPEND rewritten_headers ${out})
  endforeach()
  set(outputs)
  foreach(kernel ${ARGN})
    file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${kernel})
    set(out ${TPP_EMU_GENERATED_DIR}/${rel}.cpp)
    get_filename_component(out_dir ${out} DIRECTORY)
    add_custom_command(OUTPUT ${out}
      COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
      COMMAND tpp_rewrite_cu ${kernel} ${out} ${tpp_emu_dir}/cuda_emu.h ${TPP_EMU_GENERATED_DIR}
      DEPENDS ${kernel} tpp_rewrite_cu ${rewritten_headers} VERBATIM)
    # -O2: the kernels run as host code in CI; the last -O wins.
    set_source_files_properties(${out} PROPERTIES COMPILE_OPTIONS "-O2")
    list(APPEND outputs ${out})
  endforeach()
  set(${out_var} ${outputs} PARENT_SCOPE)
endfunction()

# Under TPP_SANITIZE_DEVICE, the given sources (the CUDA backend's) are
# compiled with the sanitizers; every other object stays as in the plain
# emulated build (and comes from the compiler cache).
function(tpp_sanitize_device_sources)
  if(TPP_SANITIZE_DEVICE)
    set_property(SOURCE ${ARGN} APPEND PROPERTY COMPILE_OPTIONS ${TPP_DEVICE_SANITIZER_FLAGS})
  endif()
endfunction()
