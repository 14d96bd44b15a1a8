// The image shape and class count of each dataset the commands know by name,
// for commands that build a model without opening the data (info, prune --dry-run).
#pragma once

#include <string>
#include <vector>

namespace tpp::train {

struct DatasetShape {
  std::string name;
  int64_t channels, resolution, num_classes;
};

const std::vector<DatasetShape>& dataset_shapes();
// Throws "unknown dataset 'x'; known datasets: ..." for other names.
const DatasetShape& find_dataset_shape(const std::string& name);

}  // namespace tpp::train
