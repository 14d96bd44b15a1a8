#include "train/trainer.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <cmath>
#include <csignal>
#include <nlohmann/json.hpp>

#include "train/progress.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/finite.h"
#include "engine/interrupt.h"
#include "engine/philox.h"
#include "engine/text.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "ops/reduce.h"

namespace tpp::train {

namespace {

constexpr const char* kMomentumPrefix = "optimizer.momentum.";
constexpr const char* kRankBuffersPrefix = "train.rank_buffers.";

// This rank's share of the step's stop vote: [asked to stop, by SIGTERM].
std::array<double, 2> stop_vote() {
  const int signal = interrupt_requested();
  return {signal != 0 ? 1.0 : 0.0, signal == SIGTERM ? 1.0 : 0.0};
}

// The stop all ranks agree on from the summed votes: none, SIGTERM when any
// rank got one, else this rank's own signal or, when it got none, SIGINT.
int agreed_stop(double ranks_stopping, double ranks_by_sigterm) {
  if (ranks_stopping == 0) return 0;
  if (ranks_by_sigterm > 0) return SIGTERM;
  const int own = interrupt_requested();
  return own != 0 ? own : SIGINT;
}

std::vector<std::string> names_of(const models::NamedTensors& named) {
  std::vector<std::string> names;
  for (const auto& [name, t] : named) names.push_back(name);
  return names;
}

std::vector<Tensor> tensors_of(const models::NamedTensors& named) {
  std::vector<Tensor> tensors;
  for (const auto& [name, t] : named) tensors.push_back(t);
  return tensors;
}

double percent(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * static_cast<double>(part) / static_cast<double>(whole) : 0.0;
}

// A batch from the loader (host memory) on the model's device.
data::Batch on_device(const data::Batch& batch, Device device) {
  if (device.is_cpu()) return batch;
  return {.images = batch.images.to(device), .labels = batch.labels.to(device), .index = batch.index};
}

Tensor scalar_i64(int64_t value) { return from_vector<int64_t>({value}, {}); }
Tensor scalar_f64(double value) { return from_vector<double>({value}, {}); }

const Tensor& required(const std::map<std::string, Tensor>& tensors, const std::string& name, DType dtype,
                       int64_t numel) {
  const auto it = tensors.find(name);
  TPP_CHECK(it != tensors.end(), "resume: the checkpoint has no '{}' (not saved by `tpp train`?)", name);
  TPP_CHECK(it->second.dtype() == dtype && it->second.numel() == numel,
            "resume: checkpoint tensor '{}' is {} {}, expected {} with {} element(s)", name,
            dtype_name(it->second.dtype()), shape_str(it->second.sizes()), dtype_name(dtype), numel);
  return it->second;
}

template <class T>
T json_number(const nlohmann::ordered_json& line, const char* key) {
  const auto it = line.find(key);
  TPP_CHECK(it != line.end() && it->is_number(), "log line: '{}' is missing or not a number in {}", key, line.dump());
  return it->get<T>();
}

}  // namespace

OnNan parse_on_nan(const std::string& text) {
  if (text == "stop") return OnNan::stop;
  if (text == "skip") return OnNan::skip;
  fail("`on_nan`: expected stop or skip but got '{}'", text);
}

const char* on_nan_name(OnNan on_nan) { return on_nan == OnNan::stop ? "stop" : "skip"; }

nlohmann::ordered_json epoch_json(const EpochStats& s) {
  return {{"epoch", s.epoch},         {"train_loss", s.train_loss}, {"train_acc", s.train_acc},
          {"test_loss", s.test_loss}, {"test_acc", s.test_acc},     {"lr", s.lr},
          {"images_per_s", s.images_per_second}, {"seconds", s.seconds}, {"skipped_steps", s.skipped_steps}};
}

EpochStats epoch_from_json(const nlohmann::ordered_json& line) {
  TPP_CHECK(line.is_object(), "log line: expected a JSON object but got {}", line.dump());
  return {.epoch = json_number<int64_t>(line, "epoch"),
          .train_loss = json_number<double>(line, "train_loss"),
          .train_acc = json_number<double>(line, "train_acc"),
          .test_loss = json_number<double>(line, "test_loss"),
          .test_acc = json_number<double>(line, "test_acc"),
          .lr = json_number<double>(line, "lr"),
          .images_per_second = json_number<double>(line, "images_per_s"),
          .seconds = json_number<double>(line, "seconds"),
          .skipped_steps = line.contains("skipped_steps") ? json_number<int64_t>(line, "skipped_steps") : 0};
}

Trainer::Trainer(models::Module& model, data::DataLoader& train_loader, data::DataLoader& test_loader,
                 TrainerOptions options, TrainHooks hooks)
    : model_(model),
      train_loader_(train_loader),
      test_loader_(test_loader),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      param_names_(names_of(model.named_parameters())),
      sgd_(tensors_of(model.named_parameters()), {.lr = options_.schedule.lr_at(0),
                                                  .momentum = options_.momentum,
                                                  .weight_decay = options_.weight_decay,
                                                  .nesterov = options_.nesterov}) {
  if (!options_.distributed.comm) options_.distributed = models::single_process_context();
  const models::DistributedContext& dist = options_.distributed;
  for (const data::DataLoader* loader : {&train_loader_, &test_loader_}) {
    const data::DataLoaderOptions& o = loader->options();
    TPP_CHECK(o.rank == dist.rank && o.world_size == dist.world_size,
              "train: a data loader is sharded as rank {} of {} but this process is rank {} of {}", o.rank,
              o.world_size, dist.rank, dist.world_size);
  }
  TPP_CHECK(train_loader_.num_batches() > 0,
            "train: {} training samples make no batch of {} (drop_last); lower `batch_size` or raise `limit`",
            train_loader_.dataset().size(), train_loader_.global_batch_size());
  if (data_parallel()) {
    // The optimizer's handles stay valid: packing re-points them into the arena.
    arena_ = models::pack_parameters(model_);
    buckets_ = models::plan_grad_buckets(arena_, options_.bucket_bytes);
    models::broadcast_model(*dist.comm, model_);
  }
}

Trainer::StepResult Trainer::step(const data::Batch& loaded, StepContext context) {
  const Device device = model_.device();
  const data::Batch batch = on_device(loaded, device);
  sgd_.set_lr(context.lr);
  // A bad step leaves the BN running statistics as they were, too (a few
  // values per channel: cheap next to the step).
  snapshot_buffers();

  const auto samples = static_cast<double>(batch.labels.numel());
  Tensor logits, loss;
  std::string what, detail;
  // This step's loss sum, correct count and samples, summed over the ranks
  // while backward runs; then every rank sees the global batch's loss.
  // On the model's device: the communicator (NCCL on GPUs) reduces it there.
  // Two more entries carry the ranks' stop vote (stop_signal()).
  const std::array<double, 2> vote = stop_vote();
  Tensor step_totals = from_vector<double>({0, 0, samples, vote[0], vote[1]}, {5}).to(device);
  try {
    logits = model_(batch.images);
    const Tensor data_loss = ops::cross_entropy(logits, batch.labels);
    context.loss = data_loss.item();
    step_totals = from_vector<double>({context.loss * samples, static_cast<double>(count_correct(logits, batch.labels)),
                                       samples, vote[0], vote[1]},
                                      {5}).to(device);
    std::unique_ptr<dist::PendingCollective> totals_reduced;
    if (data_parallel()) totals_reduced = options_.distributed.comm->all_reduce_async(step_totals);
    loss = data_loss;
    if (hooks_.extra_loss) {
      const Tensor extra = hooks_.extra_loss(context);
      if (extra.defined()) loss = loss + extra;
    }
    sgd_.zero_grad();
    loss.backward();
    if (data_parallel()) {
      models::average_gradients(*options_.distributed.comm, arena_, buckets_);
      totals_reduced->wait();
    }
    const std::vector<double> t = step_totals.to_vector<double>();
    context.loss = t[0] / t[2];
    if (hooks_.after_backward) hooks_.after_backward(context);
    // The global loss and the averaged gradients agree on every rank: all
    // ranks decide alike.
    what = std::isfinite(context.loss) ? non_finite_part(loss)
                                       : fmt::format("non-finite loss ({})", non_finite_name(context.loss));
  } catch (const NonFiniteError& e) {  // TPP_SYNC_DEBUG stopped at the op
    what = "non-finite value";
    detail = e.what();
  }
  const std::vector<double> t = step_totals.to_vector<double>();
  const int stop = data_parallel() ? agreed_stop(t[3], t[4]) : 0;
  if (what.empty()) {
    skips_in_a_row_ = 0;
    sgd_.step();
    if (hooks_.after_step) hooks_.after_step(context);
    return {.skipped = false, .loss_sum = t[0], .correct = static_cast<int64_t>(t[1]), .samples = t[2],
            .stop_signal = stop};
  }
  // An update now would turn every weight to NaN. Undo the forward's BN updates, then stop or skip.
  models::NamedTensors buffers = model_.named_buffers();
  for (size_t i = 0; i < buffers.size(); ++i) buffers[i].second.copy_(buffer_snapshot_[i]);
  sgd_.zero_grad();
  handle_non_finite(what, detail, context);
  return {.skipped = true, .samples = t[2], .stop_signal = stop};
}

void Trainer::snapshot_buffers() {
  const models::NamedTensors buffers = model_.named_buffers();
  buffer_snapshot_.resize(buffers.size());
  for (size_t i = 0; i < buffers.size(); ++i) {
    const Tensor& buffer = buffers[i].second;
    Tensor& copy = buffer_snapshot_[i];
    if (copy.defined() && copy.sizes() == buffer.sizes() && copy.dtype() == buffer.dtype())
      copy.copy_(buffer);  // the usual case: no allocation on the step's path
    else
      copy = buffer.clone();
  }
}

namespace {

// Whether the gradients held on GPUs are all finite, from one value read back
// (their sum, accumulated on the device: non-finite iff a term is, or on an
// overflow, which the exact scan that follows then clears). Scanning each
// gradient on the host instead would download the whole model every step.
bool gpu_grads_finite(const std::vector<Tensor>& params) {
  if (sync_debug()) return false;  // the exact scan, whose ops name themselves
  const NoGradGuard no_grad;
  Tensor total;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined() || !g.device().is_cuda() || g.numel() == 0) continue;
    if (total.defined() && total.device() != g.device()) return false;
    const Tensor s = ops::sum(g).to(DType::f64);
    total = total.defined() ? ops::add(total, s) : s;
  }
  return !total.defined() || std::isfinite(total.item());
}

}  // namespace

std::string Trainer::non_finite_part(const Tensor& loss) const {
  const double value = loss.item();
  if (!std::isfinite(value)) return fmt::format("non-finite loss ({})", non_finite_name(value));
  const std::vector<Tensor>& params = sgd_.params();
  const bool skip_gpu = gpu_grads_finite(params);
  for (size_t i = 0; i < params.size(); ++i) {
    if (skip_gpu && params[i].device().is_cuda()) continue;
    if (const std::optional<NonFinite> bad = first_non_finite(params[i].grad()))
      return fmt::format("non-finite gradient ({}) of '{}'", non_finite_name(bad->value), param_names_[i]);
  }
  return {};
}

void Trainer::handle_non_finite(const std::string& what, const std::string& detail, const StepContext& c) {
  std::string found = fmt::format("{} at phase {}, epoch {}, step {} (global step {})", what, options_.phase,
                                  c.epoch + 1, c.step + 1, c.global_step + 1);
  if (!detail.empty()) found += "; " + detail;
  const std::string hint = detail.empty() ? "; TPP_SYNC_DEBUG=1 names the op that produced it" : "";
  if (options_.on_nan == OnNan::stop)
    throw TrainingDiverged(fmt::format(
        "train: {}; stopping (`on_nan` stop): lower the learning rate or check the data, or pass `on_nan` skip to "
        "skip such steps{}",
        found, hint));
  ++skips_in_a_row_;
  if (skips_in_a_row_ >= options_.max_skips_in_a_row)
    throw TrainingDiverged(fmt::format(
        "train: {} steps in a row skipped (`on_nan` skip), the last for a {}; stopping: training diverged, lower "
        "the learning rate or check the data{}",
        skips_in_a_row_, found, hint));
}

EpochStats Trainer::run_epoch(int64_t stop_at_global_step) {
  using Clock = std::chrono::steady_clock;
  const int64_t epoch = state_.epochs_done;  // 0-based index of the epoch to train
  const int64_t steps = train_loader_.num_batches();
  const auto started = Clock::now();
  stop_signal_ = 0;

  ProgressLine progress(options_.live_progress && speaks());
  const bool by_iteration = options_.phase_iterations > 0;
  if (by_iteration)
    progress.start(options_.phase, options_.phase_iterations, options_.steps_after_phase, state_.global_step);
  else
    progress.start(fmt::format("epoch {}/{}", epoch + 1, options_.epochs), steps,
                   std::max<int64_t>(options_.epochs - epoch - 1, 0) * steps + options_.steps_after_phase,
                   state_.step_in_epoch);
  model_.train();
  // From where a step limit stopped the epoch (all 0 at its start), over all ranks.
  int64_t step = state_.step_in_epoch, seen = state_.seen_in_epoch, trained = state_.trained_in_epoch,
          correct = state_.correct_in_epoch, skipped = state_.skipped_in_epoch;
  const int64_t seen_at_start = seen;
  double loss_sum = state_.loss_sum_in_epoch;  // over the steps not skipped
  train_loader_.start_epoch(epoch, step);
  while (state_.global_step < stop_at_global_step) {
    const auto batch = train_loader_.next();
    if (!batch) break;
    const double fraction = static_cast<double>(step) / static_cast<double>(steps);
    const StepContext context{.epoch = epoch,
                              .step = step,
                              .global_step = state_.global_step,
                              .lr = options_.schedule.lr_at(static_cast<double>(epoch) + fraction)};
    const StepResult result = this->step(*batch, context);
    const auto n = static_cast<int64_t>(result.samples);
    seen += n;
    if (result.skipped) {
      ++skipped;
    } else {
      trained += n;
      loss_sum += result.loss_sum;
      correct += result.correct;
    }
    ++step;
    ++state_.global_step;
    progress.update(by_iteration ? state_.global_step : step, seen - seen_at_start,
                    trained > 0 ? loss_sum / static_cast<double>(trained) : 0.0);
    // A stop request (Ctrl-C) ends the epoch here, as a step limit would; the
    // ranks of a data-parallel run stop after the step they agreed on.
    stop_signal_ = data_parallel() ? result.stop_signal : interrupt_requested();
    if (stop_signal_ != 0) break;
  }
  const double train_seconds =
      state_.seconds_in_epoch + std::chrono::duration<double>(Clock::now() - started).count();
  if (step < steps) {  // stopped by the step limit: the epoch goes on at the next call
    state_.step_in_epoch = step, state_.seen_in_epoch = seen, state_.trained_in_epoch = trained;
    state_.correct_in_epoch = correct, state_.skipped_in_epoch = skipped;
    state_.loss_sum_in_epoch = loss_sum, state_.seconds_in_epoch = train_seconds;
    progress.clear();
    EpochStats partial{.epoch = epoch + 1, .skipped_steps = skipped, .complete = false};
    partial.train_loss = trained > 0 ? loss_sum / static_cast<double>(trained) : 0.0;
    partial.train_acc = percent(correct, trained);
    return partial;
  }
  const auto evaluation_started = Clock::now();
  if (data_parallel()) models::average_buffers(*options_.distributed.comm, model_);
  const EvalResult test = [&] {
    try {
      return evaluate();
    } catch (const NonFiniteError& e) {
      fail("train: non-finite value in the evaluation after epoch {} of phase {}; {}", epoch + 1, options_.phase,
           e.what());
    }
  }();
  // Finite gradients can still step the weights to infinity; nothing after that is worth a checkpoint.
  TPP_CHECK(std::isfinite(test.loss),
            "train: non-finite test loss ({}) after epoch {} of phase {}: the weights or the test data are not finite; "
            "lower the learning rate or check the data",
            non_finite_name(test.loss), epoch + 1, options_.phase);
  const double eval_seconds = std::chrono::duration<double>(Clock::now() - evaluation_started).count();

  EpochStats stats{.epoch = epoch + 1,
                   .train_loss = trained > 0 ? loss_sum / static_cast<double>(trained) : 0.0,
                   .train_acc = percent(correct, trained),
                   .test_loss = test.loss,
                   .test_acc = test.accuracy,
                   .lr = options_.schedule.lr_at(static_cast<double>(epoch)),
                   .images_per_second = static_cast<double>(seen) / train_seconds,
                   .seconds = train_seconds + eval_seconds,
                   .skipped_steps = skipped};
  state_.epochs_done = epoch + 1;
  state_.step_in_epoch = state_.seen_in_epoch = state_.trained_in_epoch = 0;
  state_.correct_in_epoch = state_.skipped_in_epoch = 0;
  state_.loss_sum_in_epoch = state_.seconds_in_epoch = 0;
  improved_ = stats.test_acc > state_.best_test_acc;
  if (improved_) {
    state_.best_test_acc = stats.test_acc;
    state_.best_epoch = stats.epoch;
  }
  if (speaks())
    progress.finish(fmt::format("{}  train loss {:.4f} acc {:.2f}%  test loss {:.4f} acc {:.2f}%  lr {:g}  "
                                "{:.0f} img/s  {:.1f} s{}",
                                by_iteration ? fmt::format("{} {}/{}", options_.phase, with_commas(state_.global_step),
                                                           with_commas(options_.phase_iterations))
                                             : fmt::format("epoch {}/{}", stats.epoch, options_.epochs),
                                stats.train_loss, stats.train_acc, stats.test_loss,
                                stats.test_acc, stats.lr, stats.images_per_second, stats.seconds,
                                skipped > 0 ? fmt::format("  {} skipped", counted(skipped, "non-finite step")) : ""));
  return stats;
}

int64_t count_correct(const Tensor& logits, const Tensor& labels) {
  const std::vector<int64_t> predicted = ops::max(logits.detach(), 1).indices.to_vector<int64_t>();
  const std::vector<int64_t> truth = labels.to_vector<int64_t>();
  int64_t correct = 0;
  for (size_t i = 0; i < truth.size(); ++i) correct += predicted[i] == truth[i];
  return correct;
}

EvalResult evaluate_model(models::Module& model, data::DataLoader& loader, dist::Communicator* comm) {
  const NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  std::vector<double> totals{0, 0, 0};  // loss sum, correct, samples
  const Device device = model.device();
  loader.start_epoch(0);
  while (const auto loaded = loader.next()) {
    const data::Batch batch = on_device(*loaded, device);
    const Tensor logits = model(batch.images);
    const auto n = static_cast<double>(batch.labels.numel());
    totals[0] += ops::cross_entropy(logits, batch.labels).item() * n;
    totals[1] += static_cast<double>(count_correct(logits, batch.labels));
    totals[2] += n;
  }
  model.train(was_training);
  if (comm != nullptr && comm->world_size() > 1) {
    const Tensor sums = from_vector<double>(totals, {3}).to(device);
    comm->all_reduce(sums);
    totals = sums.to_vector<double>();
  }
  const auto correct = static_cast<int64_t>(totals[1]), seen = static_cast<int64_t>(totals[2]);
  return {.loss = seen > 0 ? totals[0] / totals[2] : 0.0, .accuracy = percent(correct, seen), .samples = seen};
}

double inference_images_per_second(models::Module& model, const Tensor& host_images) {
  using Clock = std::chrono::steady_clock;
  const NoGradGuard no_grad;
  const bool was_training = model.is_training();
  model.eval();
  const Device device = model.device();
  const Tensor images = host_images.to(device);
  model(images);  // warm-up
  synchronize(device);
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    const auto start = Clock::now();
    model(images);
    synchronize(device);  // GPU work is asynchronous: time until it is done
    best = std::max(best, static_cast<double>(images.size(0)) /
                              std::chrono::duration<double>(Clock::now() - start).count());
  }
  model.train(was_training);
  return best;
}

EvalResult Trainer::evaluate() { return evaluate_model(model_, test_loader_, options_.distributed.comm.get()); }

std::map<std::string, Tensor> Trainer::state_tensors() const {
  std::map<std::string, Tensor> out;
  const std::vector<Tensor>& buffers = sgd_.momentum_buffers();
  for (size_t i = 0; i < buffers.size(); ++i)
    if (buffers[i].defined()) out.emplace(kMomentumPrefix + param_names_[i], buffers[i]);
  out.emplace("train.epochs_done", scalar_i64(state_.epochs_done));
  out.emplace("train.global_step", scalar_i64(state_.global_step));
  out.emplace("train.best_epoch", scalar_i64(state_.best_epoch));
  out.emplace("train.best_test_acc", scalar_f64(state_.best_test_acc));
  const Generator& rng = default_generator();
  // The generator's state is two u64; i64 storage keeps their bits.
  out.emplace("train.rng", from_vector<int64_t>({std::bit_cast<int64_t>(rng.seed()), std::bit_cast<int64_t>(rng.offset())},
                                                {2}));
  out.emplace("train.epoch_progress",
              from_vector<int64_t>({state_.step_in_epoch, state_.seen_in_epoch, state_.trained_in_epoch,
                                    state_.correct_in_epoch, state_.skipped_in_epoch},
                                   {5}));
  out.emplace("train.epoch_sums", from_vector<double>({state_.loss_sum_in_epoch, state_.seconds_in_epoch}, {2}));
  if (state_.step_in_epoch > 0) out.insert(rank_buffers_.begin(), rank_buffers_.end());
  return out;
}

void Trainer::gather_rank_buffers() {
  rank_buffers_.clear();
  if (!data_parallel() || state_.step_in_epoch == 0) return;  // an epoch's end averaged them
  dist::Communicator& comm = *options_.distributed.comm;
  for (const auto& [name, buffer] : model_.named_buffers()) {
    // Collectives take floating point; the BN step counters agree on every rank anyway.
    if (buffer.dtype() != DType::f32 && buffer.dtype() != DType::f64) continue;
    const Tensor all = comm.all_gather(buffer.contiguous()).to(Device::cpu());
    if (!speaks()) continue;
    for (int rank = 1; rank < comm.world_size(); ++rank)
      rank_buffers_.emplace(fmt::format("{}{}.{}", kRankBuffersPrefix, rank, name), all.select(0, rank).clone());
  }
}

void Trainer::load_state_tensors(const std::map<std::string, Tensor>& tensors) {
  const std::string prefix = kMomentumPrefix;
  const std::string own_buffers = fmt::format("{}{}.", kRankBuffersPrefix, options_.distributed.rank);
  models::NamedTensors buffers = model_.named_buffers();  // handles: writing them writes the model's
  for (const auto& [name, value] : tensors) {
    if (name.starts_with(own_buffers)) {  // this rank's statistics inside an epoch (gather_rank_buffers())
      const std::string buffer = name.substr(own_buffers.size());
      auto it = std::find_if(buffers.begin(), buffers.end(), [&](const auto& b) { return b.first == buffer; });
      TPP_CHECK(it != buffers.end() && it->second.sizes() == value.sizes(),
                "resume: checkpoint tensor '{}' matches no buffer of the model", name);
      it->second.copy_(value.to(it->second.device()));
    }
    if (name.starts_with("train.")) continue;
    TPP_CHECK(name.starts_with(prefix), "resume: unexpected checkpoint tensor '{}' (neither optimizer.* nor train.*)",
              name);
    const std::string param = name.substr(prefix.size());
    const auto it = std::find(param_names_.begin(), param_names_.end(), param);
    TPP_CHECK(it != param_names_.end(), "resume: checkpoint tensor '{}' names no parameter of the model", name);
    sgd_.set_momentum_buffer(static_cast<size_t>(it - param_names_.begin()), value);
  }
  state_.epochs_done = required(tensors, "train.epochs_done", DType::i64, 1).to_vector<int64_t>()[0];
  state_.global_step = required(tensors, "train.global_step", DType::i64, 1).to_vector<int64_t>()[0];
  state_.best_epoch = required(tensors, "train.best_epoch", DType::i64, 1).to_vector<int64_t>()[0];
  state_.best_test_acc = required(tensors, "train.best_test_acc", DType::f64, 1).to_vector<double>()[0];
  const std::vector<int64_t> rng = required(tensors, "train.rng", DType::i64, 2).to_vector<int64_t>();
  default_generator().set_state(std::bit_cast<uint64_t>(rng[0]), std::bit_cast<uint64_t>(rng[1]));
  const std::vector<int64_t> progress = required(tensors, "train.epoch_progress", DType::i64, 5).to_vector<int64_t>();
  const std::vector<double> sums = required(tensors, "train.epoch_sums", DType::f64, 2).to_vector<double>();
  TPP_CHECK(progress[0] >= 0 && progress[0] <= train_loader_.num_batches(),
            "resume: the checkpoint stopped at step {} of an epoch of {} steps (another batch size or data set?)",
            progress[0], train_loader_.num_batches());
  state_.step_in_epoch = progress[0], state_.seen_in_epoch = progress[1], state_.trained_in_epoch = progress[2];
  state_.correct_in_epoch = progress[3], state_.skipped_in_epoch = progress[4];
  state_.loss_sum_in_epoch = sums[0], state_.seconds_in_epoch = sums[1];
}

}  // namespace tpp::train
