# MPI communicator for CPU tensors (and the NCCL id broadcast): on when
# TPP_MPI=ON, or AUTO and an MPI is found (Debian: libopenmpi-dev). Without it
# the engine builds and tests as before; multi-process CPU runs then refuse to
# start with a message saying so. Only MPI's C API is used.

set(TPP_WITH_MPI OFF)
if(NOT TPP_MPI STREQUAL "OFF")
  set(MPI_CXX_SKIP_MPICXX ON)  # the C API only; the C++ bindings are deprecated
  if(TPP_MPI STREQUAL "ON")
    find_package(MPI REQUIRED COMPONENTS CXX)
  else()
    find_package(MPI QUIET COMPONENTS CXX)
  endif()
  if(MPI_CXX_FOUND)
    set(TPP_WITH_MPI ON)
  endif()
endif()

if(TPP_WITH_MPI)
  message(STATUS "tpp: MPI on (MPI ${MPI_CXX_VERSION}); launcher ${MPIEXEC_EXECUTABLE}")
  target_link_libraries(tpp_deps INTERFACE MPI::MPI_CXX)
  target_compile_definitions(tpp_deps INTERFACE TPP_WITH_MPI=1)
else()
  message(STATUS "tpp: MPI off (single-process CPU runs only; NCCL ids go through the TCP rendezvous)")
endif()
