// The suites' main(). No test may depend on the machine's environment, so the
// engine's switches that a developer may have exported for their own runs are
// cleared first; a test that wants one sets it for itself (or for the program
// it runs).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>

int main(int argc, char** argv) {
  for (const char* name : {"TPP_SYNC_DEBUG", "TPP_TEST_KILL_IN_SAVE"}) ::unsetenv(name);
  return doctest::Context(argc, argv).run();
}
