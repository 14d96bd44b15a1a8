#include <doctest/doctest.h>

#include "engine/optim.h"
#include "engine/philox.h"
#include "models/arena.h"
#include "models/layers.h"
#include "ops/loss.h"

using namespace tpp;
using namespace tpp::models;

namespace {

std::shared_ptr<Sequential> small_net() {
  auto net = std::make_shared<Sequential>();
  net->add(std::make_shared<Conv2d>(Conv2dSpec{.in_channels = 2, .out_channels = 3, .kernel_size = 3, .padding = 1}));
  net->add(std::make_shared<BatchNorm2d>(3));
  net->add(std::make_shared<ReLU>());
  net->add(std::make_shared<GlobalAvgPool2d>());
  net->add(std::make_shared<Linear>(3, 4));
  return net;
}

void train_steps(Sequential& net, Sgd& sgd, int steps) {
  Generator gen(5);
  for (int i = 0; i < steps; ++i) {
    const Tensor x = randn({4, 2, 5, 5}, {}, &gen);
    const Tensor y = randint({4}, 0, 4, &gen);
    sgd.zero_grad();
    ops::cross_entropy(net(x), y).backward();
    sgd.step();
  }
}

}  // namespace

TEST_SUITE("arena") {
  TEST_CASE("packing keeps values and puts every parameter in one storage") {
    manual_seed(1);
    auto net = small_net();
    const NamedTensors before = net->state_dict();
    std::vector<std::vector<float>> values;
    for (const auto& [name, t] : before) values.push_back(t.to_vector<float>());
    const ParameterArena arena = pack_parameters(*net);
    for (const auto& [name, p] : net->named_parameters()) {
      CHECK(in_arena(arena, p));
      CHECK(p.is_contiguous());
      CHECK(reinterpret_cast<uintptr_t>(p.raw_data()) % 64 == 0);
    }
    size_t i = 0;
    for (const auto& [name, t] : net->state_dict()) CHECK(t.to_vector<float>() == values[i++]);
  }

  TEST_CASE("layer handles see the packed parameters") {
    auto net = small_net();
    const ParameterArena arena = pack_parameters(*net);
    auto& fc = dynamic_cast<Linear&>((*net)[4]);
    CHECK(in_arena(arena, fc.weight));
    arena.params.detach().fill_(0.5);
    CHECK(fc.weight.to_vector<float>()[0] == 0.5f);
  }

  TEST_CASE("backward accumulates into the gradient arena") {
    auto net = small_net();
    const ParameterArena arena = pack_parameters(*net);
    Generator gen(2);
    ops::cross_entropy((*net)(randn({2, 2, 5, 5}, {}, &gen)), from_vector<int64_t>({1, 3}, {2})).backward();
    for (const auto& [name, p] : net->named_parameters()) CHECK(p.grad().shares_storage_with(arena.grads));
    double norm = 0;
    for (const float g : arena.grads.to_vector<float>()) norm += g * g;
    CHECK(norm > 0);
  }

  TEST_CASE("one SGD over the arena equals SGD over each parameter") {
    manual_seed(3);
    auto a = small_net();
    manual_seed(3);
    auto b = small_net();
    Sgd per_param(a->parameters(), {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
    const ParameterArena arena = pack_parameters(*b);
    Sgd flat({arena.params}, {.lr = 0.1, .momentum = 0.9, .weight_decay = 5e-4});
    train_steps(*a, per_param, 3);
    train_steps(*b, flat, 3);
    const NamedTensors sa = a->state_dict(), sb = b->state_dict();
    for (size_t i = 0; i < sa.size(); ++i) {
      const auto va = sa[i].second.to_vector<double>(), vb = sb[i].second.to_vector<double>();
      for (size_t k = 0; k < va.size(); ++k) CHECK(va[k] == doctest::Approx(vb[k]).epsilon(1e-5));
    }
  }

  TEST_CASE("re-packing after a parameter changes shape gives a fresh arena") {
    auto net = small_net();
    const ParameterArena first = pack_parameters(*net);
    auto& conv = dynamic_cast<Conv2d&>((*net)[0]);
    conv.weight.impl().storage = zeros({1, 2, 3, 3}).storage();  // stand-in for surgery shrinking a layer
    conv.weight.impl().sizes = {1, 2, 3, 3};
    conv.weight.impl().strides = contiguous_strides({1, 2, 3, 3});
    conv.weight.impl().offset = 0;
    const ParameterArena second = pack_parameters(*net);
    CHECK(second.params.numel() < first.params.numel());
    CHECK(in_arena(second, conv.weight));
  }
}
