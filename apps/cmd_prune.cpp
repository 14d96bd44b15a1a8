// `tpp prune`: structured filter pruning (TPP-METHOD §2, §5).
//
//   tpp prune --dry-run --arch A --dataset D --stage-pr S [--skip-layers K] [--json]
//       every conv/linear layer's kept/total width and the model's params,
//       params_with_bn, FLOPs, sparsity (both conventions) and speedup; no training.
//   tpp prune --method l1 --base CKPT --out FILE --stage-pr S [--skip-layers K]
//       one-shot L1 pruning of a checkpoint: filters chosen by L1 norm, removed,
//       and the smaller model saved with its widths, so `tpp eval` / `tpp forward`
//       load it without the plan.
// The TPP pipeline (regularise, stabilise, remove, retrain) is not in this build.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/dataset_shapes.h"
#include "apps/model_input.h"
#include "engine/error.h"
#include "models/checkpoint.h"
#include "models/layers.h"
#include "models/widths.h"
#include "models/zoo.h"
#include "prune/analysis.h"
#include "prune/oneshot.h"
#include "prune/plan.h"

namespace tpp::apps {

namespace {

struct PruneOptions {
  bool dry_run = false, json = false;
  std::string arch, dataset, stage_pr, skip_layers;
  std::string method = "l1", base, out;
};

std::string with_commas(int64_t value) {
  std::string digits = std::to_string(value), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

nlohmann::ordered_json report_json(const prune::PrunePlan& plan, const prune::PruneAnalysis& a) {
  nlohmann::ordered_json layers = nlohmann::ordered_json::array();
  for (const prune::LayerPlan& l : plan.layers)
    layers.push_back({{"name", l.name}, {"total", l.total}, {"kept", l.width()}});
  return {{"layers", layers},       {"dense", prune::counts_json(a.dense)},   {"pruned", prune::counts_json(a.pruned)},
          {"sparsity", a.sparsity}, {"sparsity_with_bn", a.sparsity_with_bn}, {"speedup", a.speedup}};
}

std::string report_table(const prune::PrunePlan& plan, const prune::PruneAnalysis& a) {
  size_t name_width = 5;
  for (const prune::LayerPlan& l : plan.layers) name_width = std::max(name_width, l.name.size());
  std::string out = fmt::format("{:<{}}  {:>5}  {:>6} / {}\n", "layer", name_width, "PR", "kept", "total");
  for (const prune::LayerPlan& l : plan.layers)
    out += fmt::format("{:<{}}  {:>5}  {:>6} / {}\n", l.name, name_width,
                       l.pruned.empty() ? std::string("-") : fmt::format("{:g}", l.ratio), l.width(), l.total);
  out += fmt::format("\n{:<16} {:>15} {:>15}\n", "", "dense", "pruned");
  out += fmt::format("{:<16} {:>15} {:>15}   sparsity {:.2f}%\n", "params", with_commas(a.dense.params),
                     with_commas(a.pruned.params), 100 * a.sparsity);
  out +=
      fmt::format("{:<16} {:>15} {:>15}   sparsity {:.2f}% (BN gamma, beta counted)\n", "params_with_bn",
                  with_commas(a.dense.params_with_bn), with_commas(a.pruned.params_with_bn), 100 * a.sparsity_with_bn);
  out += fmt::format("{:<16} {:>15} {:>15}   speedup {:.2f}x\n", "flops", with_commas(a.dense.flops),
                     with_commas(a.pruned.flops), a.speedup);
  return out;
}

int run_dry_run(const PruneOptions& o) {
  TPP_CHECK(!o.arch.empty() && !o.dataset.empty(), "prune --dry-run: needs --arch and --dataset");
  const DatasetShape& data = find_dataset_shape(o.dataset);
  const auto model = [&] {
    const models::SkipInit widths_need_no_values;
    return models::make_model(o.arch, data.num_classes, data.channels);
  }();
  const prune::PrunePlan plan = prune::make_plan(*model, {.stage_pr = o.stage_pr, .skip_layers = o.skip_layers});
  const Shape input = models::model_input_shape(o.arch, data.channels, data.resolution);
  const prune::PruneAnalysis analysis =
      prune::analyze_widths(o.arch, data.num_classes, data.channels, input, plan.widths());
  if (o.json) {
    fmt::print("{}\n", report_json(plan, analysis).dump(2));
  } else {
    fmt::print("{} on {}: stage-pr '{}'{}, {} of {} layers pruned\n\n{}", o.arch, o.dataset, o.stage_pr,
               o.skip_layers.empty() ? "" : fmt::format(", skip-layers '{}'", o.skip_layers), plan.pruned_layers(),
               plan.layers.size(), report_table(plan, analysis));
  }
  return 0;
}

// One-shot L1: the checkpoint's model loses its lowest-L1 filters and is saved
// with its new widths in the metadata, so that it reloads without the plan.
int run_l1(const PruneOptions& o) {
  TPP_CHECK(!o.base.empty() && !o.out.empty(), "prune --method l1: needs --base CKPT and --out FILE");
  const models::Checkpoint ckpt = models::read_checkpoint(o.base);
  const std::string arch = o.arch.empty() ? ckpt.info.arch : o.arch;
  const std::string dataset = o.dataset.empty() ? ckpt.info.dataset : o.dataset;
  TPP_CHECK(!dataset.empty(), "prune: {} names no dataset; pass --dataset for the FLOP count", o.base);
  const DatasetShape& data = find_dataset_shape(dataset);
  const std::shared_ptr<models::Module> model = models::build_model(ckpt, o.arch);
  const ModelInput input = model_input(*model, arch);
  const prune::OneShotResult result = prune::prune_l1(*model, {.stage_pr = o.stage_pr, .skip_layers = o.skip_layers},
                                                      models::model_input_shape(arch, input.channels, data.resolution));

  models::CheckpointInfo info = ckpt.info;
  info.arch = arch;
  info.dataset = dataset;
  info.num_classes = models::layer_widths(*model).at(result.plan.layers.back().name);
  info.in_channels = input.channels;
  info.extra["prune.method"] = "l1";
  info.extra["prune.base"] = o.base;
  info.extra["prune.stage_pr"] = o.stage_pr;
  info.extra["prune.skip_layers"] = o.skip_layers;
  models::save_checkpoint(o.out, *model, info);
  fmt::print("{} on {}: L1 one-shot, stage-pr '{}'{}, {} of {} layers pruned\n\n{}\nsaved {}\n", arch, dataset,
             o.stage_pr, o.skip_layers.empty() ? "" : fmt::format(", skip-layers '{}'", o.skip_layers),
             result.plan.pruned_layers(), result.plan.layers.size(), report_table(result.plan, result.analysis), o.out);
  return 0;
}

int run_prune(const PruneOptions& o) {
  if (o.dry_run) return run_dry_run(o);
  TPP_CHECK(o.method == "l1" && !o.base.empty(),
            "prune: only --dry-run and one-shot --method l1 --base CKPT --out FILE are available in this build (the "
            "TPP pipeline comes later)");
  return run_l1(o);
}

}  // namespace

CLI::App* add_prune_command(CLI::App& app) {
  auto o = std::make_shared<PruneOptions>();
  CLI::App* sub = app.add_subcommand("prune", "Structured filter pruning: plans, counts and one-shot L1 removal");
  sub->add_flag("--dry-run", o->dry_run, "Print the plan's widths, params, FLOPs, sparsity and speedup; no training");
  sub->add_option("--arch", o->arch, "Architecture (for --dry-run, or a --base without metadata)");
  sub->add_option("--dataset", o->dataset,
                  "mnist, fashion-mnist, cifar10, cifar100 or imagenet (for --dry-run; default for --base: its own)");
  sub->add_option("--method", o->method, "Pruning method; this build has l1 (one-shot)")->capture_default_str();
  sub->add_option("--base", o->base, "Checkpoint to prune (.safetensors)");
  sub->add_option("--out", o->out, "Where to save the pruned checkpoint");
  sub->add_option("--stage-pr", o->stage_pr,
                  "Comma list of glob:ratio over layer names, last match wins (e.g. '*layer*.conv1:0.9')")
      ->required();
  sub->add_option("--skip-layers", o->skip_layers, "Comma list of globs whose layers keep every filter");
  sub->add_flag("--json", o->json,
                "Print JSON: layers[] (name, total, kept), dense and pruned {params, params_with_bn, flops}, "
                "sparsity, sparsity_with_bn, speedup");
  register_command(sub, [o] { return run_prune(*o); });
  return sub;
}

}  // namespace tpp::apps
