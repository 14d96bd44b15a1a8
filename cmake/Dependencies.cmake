# Debian packages (scripts/setup.sh installs them). Everything the library
# links to is gathered in the tpp_deps interface target (exported with the
# package; cmake/tppConfig.cmake.in finds the same packages again). CLI11 is
# the command line's alone (tpp_apps).
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)
find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(fmt REQUIRED)
find_package(ZLIB REQUIRED)
find_package(nlohmann_json REQUIRED)
find_package(CLI11 REQUIRED)
pkg_check_modules(OPENBLAS REQUIRED IMPORTED_TARGET openblas)
pkg_check_modules(TURBOJPEG REQUIRED IMPORTED_TARGET libturbojpeg)
find_path(STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
# oneDNN (libdnnl-dev) runs the CPU convolutions. Found by hand rather than by
# its CMake package, whose target drags in OpenCL for the GPU runtime we never use.
find_path(DNNL_INCLUDE_DIR oneapi/dnnl/dnnl.hpp REQUIRED)
find_library(DNNL_LIBRARY dnnl REQUIRED)

add_library(tpp_deps INTERFACE)
target_link_libraries(tpp_deps INTERFACE
  fmt::fmt OpenMP::OpenMP_CXX Threads::Threads ZLIB::ZLIB nlohmann_json::nlohmann_json
  PkgConfig::OPENBLAS PkgConfig::TURBOJPEG ${DNNL_LIBRARY})
