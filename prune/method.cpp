#include "prune/method.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "engine/error.h"
#include "engine/suggest.h"

namespace tpp::prune {

const std::vector<Method>& known_methods() {
  static const std::vector<Method> methods = {
      {.id = MethodId::tpp, .name = "tpp", .tpp = true},
      {.id = MethodId::l1, .name = "l1"},
      {.id = MethodId::l1_orthp, .name = "l1+orthp", .orthp = true},
      {.id = MethodId::l1_kernorth, .name = "l1+kernorth", .retrain = OrthReg::kernorth},
      {.id = MethodId::l1_orthconv, .name = "l1+orthconv", .retrain = OrthReg::orthconv},
      {.id = MethodId::kernorth_l1, .name = "kernorth+l1", .before = OrthReg::kernorth},
      {.id = MethodId::orthconv_l1, .name = "orthconv+l1", .before = OrthReg::orthconv},
      {.id = MethodId::scratch, .name = "scratch", .scratch = true},
  };
  return methods;
}

const Method& find_method(MethodId id) {
  const auto& methods = known_methods();
  const auto it = std::find_if(methods.begin(), methods.end(), [&](const Method& m) { return m.id == id; });
  TPP_CHECK(it != methods.end(), "prune: no method with id {}", static_cast<int>(id));
  return *it;
}

const Method& find_method(const std::string& name) {
  const auto& methods = known_methods();
  const auto it = std::find_if(methods.begin(), methods.end(), [&](const Method& m) { return m.name == name; });
  if (it == methods.end()) {
    std::vector<std::string> names;
    for (const Method& m : methods) names.push_back(m.name);
    throw Error(fmt::format("prune: unknown `method` '{}'; known methods: {}{}", name, fmt::join(names, ", "),
                            did_you_mean(name, names)));
  }
  return *it;
}

}  // namespace tpp::prune
