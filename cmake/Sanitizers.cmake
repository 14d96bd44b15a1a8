# TPP_SANITIZE: the whole build (library, program, tests) with AddressSanitizer
# and UndefinedBehaviorSanitizer; any finding aborts the process.
# TPP_FUZZ: the same plus libFuzzer coverage instrumentation, and the fuzz
# targets in tests/fuzz/ (clang only: libFuzzer ships with it).
if(TPP_FUZZ AND NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  message(FATAL_ERROR "TPP_FUZZ=ON needs clang (libFuzzer): configure with -DCMAKE_CXX_COMPILER=clang++")
endif()

if(TPP_SANITIZE OR TPP_FUZZ)
  set(TPP_SANITIZER_FLAGS -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
  if(TPP_FUZZ)
    # Coverage for the fuzzer in every object; only fuzz targets link libFuzzer's main.
    list(APPEND TPP_SANITIZER_FLAGS -fsanitize=fuzzer-no-link)
  endif()
  add_compile_options("$<$<COMPILE_LANGUAGE:CXX>:${TPP_SANITIZER_FLAGS}>")
  add_link_options(-fsanitize=address,undefined)
endif()
