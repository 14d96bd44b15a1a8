// The pruning-plan specs: --stage-pr ("*layer[1-3]*conv1:0.5,fc:0") and
// --skip-layers ("*layer1.0.conv1"), then every parsed glob against layer
// names. The input holds up to three lines: stage-pr, skip-layers and one more
// layer name. Globs follow Python's fnmatch (the reference code's); they are
// checked against POSIX fnmatch on printable ASCII, leaving out the forms in
// which the two differ: [:class:] (POSIX only) and a set opening with '^'
// (a negation for glibc, a literal '^' for Python).
#include <fnmatch.h>

#include <string>
#include <string_view>
#include <vector>

#include "prune/plan.h"
#include "tests/fuzz/fuzz_util.h"

using namespace tpp;

namespace {

std::vector<std::string> lines_of(std::string_view input, size_t count) {
  std::vector<std::string> lines;
  while (lines.size() + 1 < count) {
    const size_t end = input.find('\n');
    if (end == std::string_view::npos) break;
    lines.emplace_back(input.substr(0, end));
    input.remove_prefix(end + 1);
  }
  lines.emplace_back(input);
  lines.resize(count);
  return lines;
}

bool plain_ascii(std::string_view s) {
  for (const char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

void check_against_fnmatch(const std::string& pattern, const std::string& text) {
  const bool comparable = plain_ascii(pattern) && plain_ascii(text) && pattern.find("[:") == std::string::npos &&
                          pattern.find("[=") == std::string::npos && pattern.find("[.") == std::string::npos &&
                          pattern.find("[^") == std::string::npos;
  if (!comparable) return;
  const bool ours = prune::glob_match(pattern, text);
  const bool posix = ::fnmatch(pattern.c_str(), text.c_str(), FNM_NOESCAPE) == 0;
  if (ours != posix)
    std::fprintf(stderr, "pattern '%s' text '%s': ours %d fnmatch %d\n", pattern.c_str(), text.c_str(), ours, posix);
  fuzz::require(ours == posix, "glob_match agrees with fnmatch");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::vector<std::string> input = lines_of({reinterpret_cast<const char*>(data), size}, 3);
  std::vector<std::string> layers = {"conv1", "layer1.0.conv1", "layer1.0.conv2", "layer2.3.conv1", "layer3.8.conv2",
                                     "layer4.1.downsample.0", "features.10", "classifier.6", "fc", input[2]};
  fuzz::rejects_cleanly([&] {
    const std::vector<prune::RatioRule> rules = prune::parse_stage_pr(input[0]);
    const std::vector<std::string> skips = prune::parse_skip_layers(input[1]);
    for (const prune::RatioRule& rule : rules) fuzz::require(rule.ratio >= 0 && rule.ratio < 1, "ratio in [0, 1)");
    for (const std::string& layer : layers) {
      const double ratio = prune::layer_ratio(layer, rules, skips);
      fuzz::require(ratio >= 0 && ratio < 1, "layer ratio in [0, 1)");
      for (const int64_t filters : {1, 16, 64, 2048}) {
        const int64_t n = prune::pruned_count(ratio, filters);
        fuzz::require(n >= 0 && n < filters, "at least one filter stays");
      }
      for (const prune::RatioRule& rule : rules) check_against_fnmatch(rule.pattern, layer);
      for (const std::string& skip : skips) check_against_fnmatch(skip, layer);
    }
  });
  return 0;
}
