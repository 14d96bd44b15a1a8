// Data-parallel training pieces under `mpirun -np 2` (modes of
// tpp_mpi_selftest, tests/dist/mpi_main.cpp): each rank trains on its share
// of every batch; every rank also trains the one-process reference on the
// whole batches; the two must agree and the ranks must be bit-identical.
//   sync-bn   conv + synchronised BN: weights and running statistics equal
//             one process on the concatenated batches (per-rank BN does not)
//   tpp-step  the Trainer with TPP's hooks (gram penalty through the loss,
//             L2 on pruned rows after the gradient average), stopped by a
//             step limit in mid-epoch and continued: equal to one process
//             with the doubled batch
#include "tests/dist/mpi_training.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "train/trainer.h"
#include "engine/optim.h"
#include "engine/philox.h"
#include "models/data_parallel.h"
#include "models/layers.h"
#include "models/zoo.h"
#include "ops/elementwise.h"
#include "ops/loss.h"
#include "prune/plan.h"
#include "prune/tpp_penalties.h"

namespace tpp::testing {

namespace {

void expect(bool ok, std::string_view what) { TPP_CHECK(ok, "check failed: {}", what); }

// Max |got - want|; false when some element is off by more than 1e-5 + 1e-4·|want|.
std::pair<bool, double> compare(const Tensor& got_tensor, const Tensor& want_tensor) {
  const auto got = got_tensor.contiguous().to_vector<float>(), want = want_tensor.contiguous().to_vector<float>();
  if (got.size() != want.size()) return {false, INFINITY};
  double max_diff = 0;
  bool close = true;
  for (size_t i = 0; i < got.size(); ++i) {
    const double diff = std::abs(static_cast<double>(got[i]) - want[i]);
    max_diff = std::max(max_diff, diff);
    close = close && diff <= 1e-5 + 1e-4 * std::abs(want[i]);
  }
  return {close, max_diff};
}

// Every tensor of the state_dicts; returns the largest difference.
double expect_same_state(const models::Module& got, const models::Module& want, std::string_view what) {
  const auto want_state = want.state_dict();
  double worst = 0;
  size_t i = 0;
  for (const auto& [name, tensor] : got.state_dict()) {
    const auto& [want_name, want_tensor] = want_state.at(i++);
    if (!is_floating(tensor.dtype())) continue;
    const auto [close, diff] = compare(tensor, want_tensor);
    expect(close, fmt::format("{}: {} matches one process (max difference {:.3g})", what, name, diff));
    worst = std::max(worst, diff);
  }
  return worst;
}

void expect_identical_on_every_rank(dist::Communicator& comm, const Tensor& t, std::string_view what) {
  const Tensor mine = t.contiguous().clone();
  const Tensor root = mine.clone();
  comm.broadcast(root, 0);
  expect(root.to_vector<float>() == mine.to_vector<float>(), fmt::format("{} is identical on every rank", what));
}

std::map<std::string, Tensor> state_map(const models::Module& model) {
  std::map<std::string, Tensor> state;
  for (const auto& [name, t] : model.state_dict()) state.emplace(name, t.clone());
  return state;
}

std::shared_ptr<models::Sequential> conv_bn_net() {
  auto net = std::make_shared<models::Sequential>();
  net->add(std::make_shared<models::Conv2d>(models::Conv2dSpec{.in_channels = 3, .out_channels = 6, .kernel_size = 3,
                                                               .padding = 1, .bias = false}));
  net->add(std::make_shared<models::BatchNorm2d>(6));
  net->add(std::make_shared<models::ReLU>());
  net->add(std::make_shared<models::GlobalAvgPool2d>());
  net->add(std::make_shared<models::Linear>(6, 10));
  return net;
}

// `steps` SGD steps of `model` on this rank's share of each batch (inputs with
// a mean and spread far from BN's 0 and 1), averaging gradients over the ranks.
void train_sharded(dist::Communicator& comm, models::Module& model, int64_t per_rank, int steps) {
  const models::ParameterArena arena = models::pack_parameters(model);
  const auto buckets = models::plan_grad_buckets(arena, 1 << 10);
  Sgd sgd({arena.params}, {.lr = 0.1, .momentum = 0.9});
  Generator data(5);
  const int64_t begin = comm.rank() * per_rank, end = begin + per_rank;
  for (int step = 0; step < steps; ++step) {
    const Tensor x = randn({per_rank * comm.world_size(), 3, 6, 6}, {}, &data) * 3.0 + 1.5;
    const Tensor y = randint({per_rank * comm.world_size()}, 0, 10, &data);
    sgd.zero_grad();
    ops::cross_entropy(model(x.slice(0, begin, end)), y.slice(0, begin, end)).backward();
    models::average_gradients(comm, arena, buckets);
    sgd.step();
  }
}

void train_whole(models::Module& model, int64_t batch, int steps) {
  const models::ParameterArena arena = models::pack_parameters(model);
  Sgd sgd({arena.params}, {.lr = 0.1, .momentum = 0.9});
  Generator data(5);
  for (int step = 0; step < steps; ++step) {
    const Tensor x = randn({batch, 3, 6, 6}, {}, &data) * 3.0 + 1.5;
    const Tensor y = randint({batch}, 0, 10, &data);
    sgd.zero_grad();
    ops::cross_entropy(model(x), y).backward();
    sgd.step();
  }
}

// A data set of random u8 images [1, 32, 32] for mlp7_linear, the same on every rank.
std::shared_ptr<data::TensorDataset> random_images(int64_t n, uint64_t seed) {
  Generator g(seed);
  const Tensor images = randint({n, 1, 32, 32}, 0, 256, &g).to(DType::u8);
  const Tensor labels = randint({n}, 0, 10, &g);
  std::vector<std::string> classes;
  for (int c = 0; c < 10; ++c) classes.push_back(std::to_string(c));
  return std::make_shared<data::TensorDataset>(data::DatasetInfo{"random", "train", "memory", classes}, images,
                                               labels, std::vector<std::string>{}, std::vector<int64_t>{});
}

// TPP's regularised phase as the pruning pipeline drives it through the
// Trainer: α·λ·Σ gram penalties added to the loss, λ·w on the pruned rows
// added after backward.
train::TrainHooks tpp_hooks(const std::vector<prune::PrunedLayer>& layers, double lambda) {
  train::TrainHooks hooks;
  hooks.extra_loss = [layers, lambda](const train::StepContext&) {
    Tensor total;
    for (const prune::PrunedLayer& layer : layers) {
      const Tensor r = prune::gram_penalty(layer.weight, layer.pruned) * (1000.0 * lambda);
      total = total.defined() ? total + r : r;
    }
    return total;
  };
  hooks.after_backward = [layers, lambda](const train::StepContext&) {
    for (const prune::PrunedLayer& layer : layers) prune::add_pruned_l2_grads(layer, lambda);
  };
  return hooks;
}

}  // namespace

int run_sync_batch_norm(const std::shared_ptr<dist::Communicator>& comm) {
  constexpr int64_t per_rank = 3;
  constexpr int steps = 4;
  manual_seed(21);
  const auto synced = conv_bn_net(), per_rank_bn = conv_bn_net(), reference = conv_bn_net();
  const auto initial = state_map(*synced);
  per_rank_bn->load_state_dict(initial);
  reference->load_state_dict(initial);
  expect(models::set_sync_batch_norm(*synced, comm) == 1, "one BatchNorm2d switched to synchronised statistics");

  train_sharded(*comm, *synced, per_rank, steps);
  train_sharded(*comm, *per_rank_bn, per_rank, steps);
  train_whole(*reference, per_rank * comm->world_size(), steps);

  const double worst = expect_same_state(*synced, *reference, "sync BN");
  for (const auto& [name, tensor] : synced->state_dict())
    if (is_floating(tensor.dtype())) expect_identical_on_every_rank(*comm, tensor, name);
  // The test can tell: per-rank statistics give other weights.
  double per_rank_diff = 0;
  for (const auto& [name, tensor] : per_rank_bn->named_parameters())
    for (const auto& [want_name, want] : reference->named_parameters())
      if (name == want_name) per_rank_diff = std::max(per_rank_diff, compare(tensor, want).second);
  expect(per_rank_diff > 1e-3, fmt::format("per-rank BN differs from one process ({:.3g})", per_rank_diff));
  comm->barrier();
  if (comm->rank() == 0)
    fmt::print("mpi_selftest: sync BN, {} ranks x {} images, {} SGD steps: max |state - state(one process)| = {:.3g} "
               "(per-rank BN: {:.3g})\n",
               comm->world_size(), per_rank, steps, worst, per_rank_diff);
  return 0;
}

int run_tpp_step(const std::shared_ptr<dist::Communicator>& comm) {
  constexpr int64_t per_rank = 8;
  constexpr double lambda = 0.05;
  const int world = comm->world_size();
  const models::DistributedContext context{.rank = comm->rank(), .world_size = world, .comm = comm};

  manual_seed(300 + static_cast<uint64_t>(comm->rank()));  // different inits on purpose: broadcast aligns them
  const auto model = models::make_model("mlp7_linear", 10, 1);
  models::broadcast_model(*comm, *model);  // as the trainer will; the plan below needs rank 0's weights now
  const auto reference = models::make_model("mlp7_linear", 10, 1), unregularised = models::make_model("mlp7_linear", 10, 1);
  reference->load_state_dict(state_map(*model));
  unregularised->load_state_dict(state_map(*model));

  const auto train_set = random_images(per_rank * world * 3, 1), test_set = random_images(40, 2);
  const auto to_float = std::make_shared<data::ToFloat>();
  const auto loader = [&](const std::shared_ptr<data::TensorDataset>& set, int64_t batch, bool train, int rank,
                          int ranks) {
    return std::make_unique<data::DataLoader>(
        set, to_float,
        data::DataLoaderOptions{.batch_size = batch, .shuffle = train, .drop_last = train, .seed = 9, .rank = rank,
                                .world_size = ranks});
  };
  const auto train_shard = loader(train_set, per_rank, true, comm->rank(), world);
  const auto test_shard = loader(test_set, 7, false, comm->rank(), world);
  const auto train_all = loader(train_set, per_rank * world, true, 0, 1);
  const auto test_all = loader(test_set, 7, false, 0, 1);
  const auto train_plain = loader(train_set, per_rank * world, true, 0, 1);
  const auto test_plain = loader(test_set, 7, false, 0, 1);
  const train::TrainerOptions options{.schedule = LrSchedule::parse_milestones("0:0.02"),
                                     .momentum = 0.9,
                                     .weight_decay = 5e-4,
                                     .epochs = 2};
  train::TrainerOptions sharded_options = options;
  sharded_options.distributed = context;

  // The regularised layers and the filters they lose: chosen on rank 0 (L1
  // scores), broadcast, and taken as they come by every rank.
  const prune::PlanSpec spec{.stage_pr = "net.[0-2]:0.5"};
  std::vector<int64_t> pruned;
  if (comm->rank() == 0)
    for (const prune::LayerPlan& l : prune::make_plan(*model, spec).layers)
      pruned.insert(pruned.end(), l.pruned.begin(), l.pruned.end());
  dist::broadcast_indices(*comm, pruned);
  prune::PrunePlan plan = prune::make_plan(*model, spec);
  auto next = pruned.begin();
  for (prune::LayerPlan& l : plan.layers) {
    std::copy(next, next + static_cast<int64_t>(l.pruned.size()), l.pruned.begin());
    next += static_cast<int64_t>(l.pruned.size());
  }
  expect(next == pruned.end() && !pruned.empty(), "every rank got rank 0's pruned filters");

  train::Trainer sharded(*model, *train_shard, *test_shard, sharded_options,
                        tpp_hooks(prune::pruned_layers(*model, plan), lambda));
  train::Trainer whole(*reference, *train_all, *test_all, options,
                      tpp_hooks(prune::pruned_layers(*reference, plan), lambda));
  expect(sharded.data_parallel() && !whole.data_parallel(), "one data-parallel trainer, one single-process");
  double test_acc_diff = 0;
  // The first epoch stops after 2 of its 3 steps (as the regularised phase
  // ends in mid-epoch) and goes on: the same steps as straight through.
  expect(!sharded.run_epoch(2).complete, "a step limit stops the epoch early");
  for (int epoch = 0; epoch < 2; ++epoch) {
    const train::EpochStats got = sharded.run_epoch(), want = whole.run_epoch();
    expect(std::abs(got.train_loss - want.train_loss) < 1e-4,
           fmt::format("epoch {} train loss {} matches one process {}", epoch + 1, got.train_loss, want.train_loss));
    test_acc_diff = std::max(test_acc_diff, std::abs(got.test_acc - want.test_acc));
  }
  expect(test_acc_diff == 0, "the sharded evaluation counts what one process counts");
  const double worst = expect_same_state(*model, *reference, "TPP step");
  // The test can tell: without the penalties the weights end elsewhere.
  train::Trainer plain(*unregularised, *train_plain, *test_plain, options);
  for (int epoch = 0; epoch < 2; ++epoch) plain.run_epoch();
  const double penalty_effect = compare(models::pack_parameters(*unregularised).params,
                                        models::pack_parameters(*reference).params).second;
  expect(penalty_effect > 1e-4, fmt::format("the TPP terms moved the weights ({:.3g})", penalty_effect));
  for (const auto& [name, tensor] : model->named_parameters()) expect_identical_on_every_rank(*comm, tensor, name);
  comm->barrier();
  if (comm->rank() == 0)
    fmt::print("mpi_selftest: Trainer with TPP hooks (gram penalty + L2 on {} pruned filters), {} ranks x {} "
               "samples, {} steps: max |w - w(one process, batch {})| = {:.3g} (the TPP terms moved weights by {:.3g})\n",
               pruned.size(), world, per_rank, sharded.state().global_step, per_rank * world, worst, penalty_effect);
  return 0;
}

}  // namespace tpp::testing
