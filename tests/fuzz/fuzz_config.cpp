// The TOML config of `tpp train` (--config FILE): CLI11's TOML reader and
// our application of its items to the train command's options, with their
// conversions and validators. The command is built once; its results are
// cleared before every input.
#include <CLI/CLI.hpp>

#include "apps/commands.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static CLI::App app;
  static CLI::App* const train = apps::add_train_command(app);
  train->clear();
  fuzz::rejects_cleanly([&] {
    apps::apply_config_text(*train, std::string(reinterpret_cast<const char*>(data), size), "fuzz.toml");
  });
  return 0;
}
