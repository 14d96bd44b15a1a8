// `tpp prune`: structured filter pruning (TPP-METHOD §2, §5).
//
//   tpp prune --dry-run --arch A --dataset D --stage-pr S [--skip-layers K] [--json]
//       every conv/linear layer's kept/total width and the model's params,
//       params_with_bn, FLOPs, sparsity (both conventions) and speedup; no training.
//   tpp prune --method M --base CKPT --stage-pr S [--out RUN_DIR] [options]
//   tpp prune --resume RUN_DIR
//       the pipeline of method M (prune/pipeline.h): regularise, remove,
//       retrain, in a run directory. Options may come from --config files.
//       Under mpirun/srun the pipeline is data-parallel (--batch-size per rank).
#include <fmt/format.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "apps/commands.h"
#include "apps/usage.h"
#include "data/catalog.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/lr_schedule.h"
#include "engine/text.h"
#include "models/checkpoint.h"
#include "models/data_parallel.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "prune/analysis.h"
#include "prune/method.h"
#include "prune/pipeline.h"
#include "prune/plan.h"
#include "train/dataset_shapes.h"

namespace tpp::apps {

namespace {

namespace fs = std::filesystem;

// The switches of --dry-run; the plan it counts is the pipeline's (arch, dataset, stage-pr, skip-layers).
struct DryRunOptions {
  bool dry_run = false, json = false;
};

// The pipeline's settings as flags: the typed config, and the text of the
// settings that are not plain numbers or strings there.
struct PruneOptions {
  prune::PipelineConfig config;
  std::string method = "tpp", lr_schedule = "0:0.01,60:0.001,90:0.0001", device = "cpu", on_nan = "stop",
              reg_target = "decorrelate", distributed = "auto";
};

prune::GramTarget parse_reg_target(const std::string& text) {
  if (text == "decorrelate") return prune::GramTarget::decorrelate;
  if (text == "diagonal") return prune::GramTarget::diagonal;
  fail("prune: --reg-target must be decorrelate or diagonal, got '{}'", text);
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

// The names typed for --method, --arch and --dataset (a checkpoint's own are checked when it is read).
void check_names(const PruneOptions& o) {
  as_usage_error([&] { return prune::find_method(o.method); });
  const std::string& arch = o.config.arch;
  const std::vector<std::string>& archs = models::known_archs();
  if (!arch.empty() && std::find(archs.begin(), archs.end(), arch) == archs.end())
    usage_fail("prune: {}", models::unknown_arch_text(arch));
  if (!o.config.dataset.empty()) as_usage_error([&] { return data::canonical_dataset_name(o.config.dataset); });
}

// --arch and --dataset, else those of the --base checkpoint.
prune::PipelineConfig with_base_metadata(prune::PipelineConfig c) {
  if (!c.base.empty() && (c.arch.empty() || c.dataset.empty())) {
    const models::Checkpoint base = models::read_checkpoint(c.base);
    if (c.arch.empty()) c.arch = base.info.arch;
    if (c.dataset.empty()) c.dataset = base.info.dataset;
  }
  return c;
}

// The typed config from the flags' text; `command` records the settings, with
// the data folder actually used (found before anything is written).
prune::PipelineConfig pipeline_config(const PruneOptions& o, const CLI::App& command) {
  prune::PipelineConfig c = o.config;
  c.method = prune::find_method(o.method).id;
  c.lr_schedule = LrSchedule::parse_milestones(o.lr_schedule);
  c.device = Device::parse(o.device);
  c.on_nan = train::parse_on_nan(o.on_nan);
  c.reg_target = parse_reg_target(o.reg_target);
  c.distributed = models::parse_distributed_mode(o.distributed);
  c.config_toml = command.config_to_str(true, true);
  if (c.resume.empty()) {
    const std::string dataset = with_base_metadata(c).dataset;
    if (!dataset.empty()) {
      c.data_dir = data::locate_dataset(dataset, data::resolve_data_root(c.data_dir)).dir.string();
      c.config_toml = with_config_value(c.config_toml, "data-dir", c.data_dir);
    }
  }
  return c;
}

int run_dry_run(const prune::PipelineConfig& given, bool json) {
  const prune::PipelineConfig o = with_base_metadata(given);
  if (o.arch.empty() || o.dataset.empty())
    usage_fail("prune --dry-run: needs --arch and --dataset, or a --base checkpoint that names them");
  const train::DatasetShape& data =
      as_usage_error([&]() -> const train::DatasetShape& { return train::find_dataset_shape(o.dataset); });
  const auto model = [&] {
    const models::SkipInit widths_need_no_values;
    return models::make_model(o.arch, data.num_classes, data.channels);
  }();
  const prune::PrunePlan plan = as_usage_error(
      [&] { return prune::make_plan(*model, {.stage_pr = o.stage_pr, .skip_layers = o.skip_layers}); });
  const Shape input = models::model_input_shape(o.arch, data.channels, data.resolution);
  const prune::PruneAnalysis analysis =
      prune::analyze_widths(o.arch, data.num_classes, data.channels, input, plan.widths());
  if (json) {
    fmt::print("{}\n", report_json(plan, analysis).dump(2));
  } else {
    fmt::print("{} on {}: stage-pr '{}'{}, {} of {} pruned\n\n{}", o.arch, data.name, o.stage_pr,
               o.skip_layers.empty() ? "" : fmt::format(", skip-layers '{}'", o.skip_layers), plan.pruned_layers(),
               counted(static_cast<int64_t>(plan.layers.size()), "layer"), report_table(plan, analysis));
  }
  return 0;
}

int run_prune(const DryRunOptions& o, const PruneOptions& options, const CLI::App& command) {
  if (o.dry_run) return run_dry_run(options.config, o.json);
  prune::run_pipeline(pipeline_config(options, command));
  return 0;
}

void add_pipeline_options(CLI::App* sub, PruneOptions& o) {
  prune::PipelineConfig& c = o.config;
  sub->add_option("--base", c.base, "Trained dense checkpoint to prune (.safetensors)");
  sub->add_option("--data-dir", c.data_dir, kDataDirHelp);
  sub->add_option("--epochs", c.epochs, "Retraining epochs (0: stop after removal)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--batch-size", c.batch_size,
                  "Samples per step and per rank in every phase (global batch: ranks x this)")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--lr-schedule", o.lr_schedule, "Retraining step schedule epoch:lr,...")
      ->capture_default_str()
      ->check(lr_schedule_text());
  sub->add_option("--momentum", c.momentum)->capture_default_str()->check(non_negative_number());
  sub->add_option("--weight-decay", c.weight_decay, "In every phase, on every parameter")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_flag("--nesterov", c.nesterov, "Nesterov momentum");
  sub->add_option("--seed", c.seed, "Seeds the data order (and scratch's weights)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--device", o.device, "cpu, cuda or cuda:N")->capture_default_str()->check(device_name());
  sub->add_option("--workers", c.workers, "Data loader threads")->capture_default_str()->check(non_negative_integer());
  sub->add_option("--on-nan", o.on_nan, "A step whose loss or gradients are not finite: stop the run, or skip the step")
      ->capture_default_str()
      ->check(one_of({"stop", "skip"}));
  sub->add_flag("--sync-bn", c.sync_bn,
                "Data-parallel runs: batch-norm statistics over the global batch (default: each rank's own)");
  sub->add_option("--distributed", o.distributed,
                  "auto: data-parallel when launched as several processes (mpirun, srun, torchrun); off: one process")
      ->capture_default_str()
      ->check(one_of({"auto", "off"}))
      ->configurable(false);
  sub->add_option("--limit", c.limit, "Train on the first N training samples only (0: all)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--test-limit", c.test_limit, "Evaluate on the first N test samples only (0: all)")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--reg-granularity", c.reg_granularity,
                  "TPP: lambda step Delta. With the paper's defaults lambda reaches its ceiling after 100,000 "
                  "iterations and stabilises for 10,000 more: about 110,000 regularised iterations before removal")
      ->capture_default_str()
      ->check(positive_number());
  sub->add_option("--reg-ceiling", c.reg_ceiling, "TPP: lambda ceiling tau")->capture_default_str()->check(positive_number());
  sub->add_option("--reg-interval", c.reg_interval, "TPP: iterations between lambda updates K_u")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--stabilize-iters", c.stabilize_iters, "TPP: iterations at the ceiling before removal S")
      ->capture_default_str()
      ->check(non_negative_integer());
  sub->add_option("--zero-out-interval", c.zero_out_interval, "TPP: iterations between layers' hard zeroing")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--reg-lr", c.reg_lr, "Constant LR of the regularised phases")->capture_default_str()->check(positive_number());
  sub->add_option("--gram-weight", c.gram_weight, "TPP: alpha, the gram term's weight")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--reg-target", o.reg_target, "TPP: decorrelate (the method) or diagonal (ablation)")
      ->capture_default_str()
      ->check(one_of({"decorrelate", "diagonal"}));
  sub->add_flag("--no-bn-reg", c.no_bn_reg, "TPP ablation: no penalty on the pruned channels' BN gamma, beta");
  sub->add_flag("--no-gram", c.no_gram, "TPP ablation: no gram term (L2 and BN penalties only)");
  sub->add_option("--orth-weight", c.orth_weight, "KernOrth/OrthConv loss weight")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--orth-reg-iters", c.orth_reg_iters, "kernorth+l1, orthconv+l1: regularised iterations before pruning")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--orthp-gain", c.orthp_gain, "l1+orthp: gain of the orthogonal weights (0: 1 for linear nets, sqrt 2 else)")
      ->capture_default_str()
      ->check(non_negative_number());
  sub->add_option("--log-interval", c.log_interval, "Iterations between penalty log lines")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--checkpoint-interval", c.checkpoint_interval, "Iterations between checkpoints inside a phase")
      ->capture_default_str()
      ->check(positive_integer());
  sub->add_option("--jsv-batches", c.jsv_batches, "Batches for the mean JSV of CNNs (0: skip; exact for mlp7_linear)")
      ->capture_default_str()
      ->check(non_negative_integer());
}

}  // namespace

CLI::App* add_prune_command(CLI::App& app) {
  auto o = std::make_shared<DryRunOptions>();
  auto options = std::make_shared<PruneOptions>();
  prune::PipelineConfig* c = &options->config;
  CLI::App* sub = app.add_subcommand("prune", "Structured filter pruning: plans and counts (--dry-run), or the whole "
                                              "pipeline of a method on a trained checkpoint");
  sub->footer("Examples:\n  tpp prune --dry-run --arch resnet56 --dataset cifar10 --stage-pr \"*conv1:0.5\"\n  tpp prune --method tpp --base runs/vgg_small/best.safetensors --stage-pr \"features.*:0.5\" --out runs/prune\n  tpp prune --resume runs/prune");
  CLI::Option* config = add_config_option(sub);
  sub->add_flag("--dry-run", o->dry_run, "Print the plan's widths, params, FLOPs, sparsity and speedup; no training")
      ->configurable(false);
  sub->add_option("--arch", c->arch, "Architecture (for --dry-run, or a --base without metadata)");
  sub->add_option("--dataset", c->dataset,
                  "mnist, fashion-mnist, cifar10, cifar100 or imagenet (for --dry-run; default for --base: its own)");
  sub->add_option("--method", options->method,
                  "tpp, l1, l1+orthp, l1+kernorth, l1+orthconv, kernorth+l1, orthconv+l1 or scratch")
      ->capture_default_str();
  sub->add_option("--stage-pr", c->stage_pr,
                  "Comma list of glob:ratio over layer names, last match wins (e.g. '*layer*.conv1:0.9')");
  sub->add_option("--skip-layers", c->skip_layers, "Comma list of globs whose layers keep every filter");
  sub->add_flag("--json", o->json,
                "--dry-run: print JSON: layers[] (name, total, kept), dense and pruned {params, params_with_bn, flops}, "
                "sparsity, sparsity_with_bn, speedup")
      ->configurable(false);
  add_pipeline_options(sub, *options);
  add_run_dir_options(sub, config, c->out, c->overwrite, c->resume, "runs/prune-<method>-<time>");
  register_command(sub, [o, options, c, sub, config] {
    TPP_CHECK(c->resume.empty() || config->count() == 1,
              "prune: --resume reads {}/config.toml; give flags to change options, not --config", c->resume);
    if (!c->resume.empty()) c->resume_changes = changes_on_resume(*sub, c->resume);
    apply_config_files(*sub);
    if (c->stage_pr.empty()) usage_fail("prune: --stage-pr is required (as a flag or in the --config file)");
    check_names(*options);
    return run_prune(*o, *options, *sub);
  });
  return sub;
}

}  // namespace tpp::apps
