// What a pruning run reports, read off its log.jsonl (prune/pipeline.h)
// so that a resumed run reports the same as one that ran straight through:
// summary.json, report.html (penalty terms, λ and filter norms over the
// regularised phase; accuracy and mean JSV over retraining; dense vs pruned
// counts and measured speed) and the closing lines on stdout.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace tpp::prune {

struct PruneRunFacts {
  std::string method, arch, dataset, base, stage_pr, skip_layers, phase;
  int64_t epochs = 0;  // of retraining, as configured
  std::vector<int64_t> input;  // one sample as the model takes it, [C, H, W]
  std::string run_dir;
};

nlohmann::ordered_json prune_summary_json(const std::vector<nlohmann::ordered_json>& log, const PruneRunFacts& facts);
std::string prune_report_html(const nlohmann::ordered_json& summary, const std::vector<nlohmann::ordered_json>& log,
                              const std::string& config_toml);
void print_prune_outcome(const std::vector<nlohmann::ordered_json>& log, const std::string& run_dir);

}  // namespace tpp::prune
