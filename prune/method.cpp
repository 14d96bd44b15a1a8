#include "prune/method.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "engine/error.h"
#include "engine/suggest.h"

namespace tpp::prune {

const std::vector<Method>& known_methods() {
  static const std::vector<Method> methods = {
      {.name = "tpp", .tpp = true},
      {.name = "l1"},
      {.name = "l1+orthp", .orthp = true},
      {.name = "l1+kernorth", .retrain = OrthReg::kernorth},
      {.name = "l1+orthconv", .retrain = OrthReg::orthconv},
      {.name = "kernorth+l1", .before = OrthReg::kernorth},
      {.name = "orthconv+l1", .before = OrthReg::orthconv},
      {.name = "scratch", .scratch = true},
  };
  return methods;
}

const Method& find_method(const std::string& name) {
  const auto& methods = known_methods();
  const auto it = std::find_if(methods.begin(), methods.end(), [&](const Method& m) { return m.name == name; });
  if (it == methods.end()) {
    std::vector<std::string> names;
    for (const Method& m : methods) names.push_back(m.name);
    throw Error(fmt::format("prune: unknown --method '{}'; known methods: {}{}", name, fmt::join(names, ", "),
                            did_you_mean(name, names)));
  }
  return *it;
}

}  // namespace tpp::prune
