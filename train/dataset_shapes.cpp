#include "train/dataset_shapes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "data/catalog.h"
#include "engine/error.h"
#include "engine/suggest.h"

namespace tpp::train {

const std::vector<DatasetShape>& dataset_shapes() {
  static const std::vector<DatasetShape> table{{"mnist", 1, 28, 10},
                                               {"fashion-mnist", 1, 28, 10},
                                               {"cifar10", 3, 32, 10},
                                               {"cifar100", 3, 32, 100},
                                               {"imagenet", 3, 224, 1000}};
  return table;
}

const DatasetShape& find_dataset_shape(const std::string& name) {
  std::vector<std::string> names;
  for (const DatasetShape& d : dataset_shapes()) names.push_back(d.name);
  std::string canonical;
  try {
    canonical = data::canonical_dataset_name(name);
  } catch (const Error&) {
    fail("unknown dataset '{}'; known datasets: {}{}", name, fmt::join(names, ", "), did_you_mean(name, names));
  }
  for (const DatasetShape& d : dataset_shapes())
    if (d.name == canonical) return d;
  fail("unknown dataset '{}'; known datasets: {}", name, fmt::join(names, ", "));
}

}  // namespace tpp::train
