// Shared by the libFuzzer targets. A parser may reject an input only with
// tpp::Error (one clean line); any other exception, crash or sanitizer report
// is a bug the fuzzer stops on. A broken invariant of an accepted input aborts.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "engine/error.h"

namespace tpp::fuzz {

template <class Parse>
void rejects_cleanly(Parse&& parse) {
  try {
    parse();
  } catch (const tpp::Error&) {
  }
}

inline void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "fuzz invariant broken: %s\n", what);
  std::abort();
}

}  // namespace tpp::fuzz
