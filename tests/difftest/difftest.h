// The differential test against PyTorch: replays the cases that
// scripts/difftest.py draws (a safetensors file of inputs, PyTorch's float64
// references, per-element tolerances and gradients) against our ops on a
// chosen device. Each case passes, or fails with one line saying why: a
// mismatch (which element, ours, PyTorch's, the tolerance), an exception
// where PyTorch gave a result, or a refusal other than the one expected.
#pragma once

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/safetensors.h"
#include "engine/tensor.h"

namespace tpp::difftest {

struct InputSpec {
  bool present = false;  // optional inputs (a bias, running statistics) may be absent
  DType dtype = DType::f32;
  nlohmann::json view;   // [["transpose", i, j] | ["slice", dim, start, end, step] | ["expand", shape]]
  bool grad = false;
};

struct Case {
  std::string id;    // "c17": the prefix of its tensors in the file
  std::string name;  // "add#3"
  std::string op;
  nlohmann::json params;
  std::vector<InputSpec> inputs;
  int64_t outputs = 0;
  std::string refusal;  // empty, or the kind of refusal we expect (refusals in op_table.cpp)
};

struct CaseFile {
  std::filesystem::path path;
  std::string seed;
  SafetensorsFile tensors;
  std::vector<Case> cases;
};

// Reads a file written by scripts/difftest.py; bad files throw tpp::Error naming the file.
CaseFile load_cases(const std::filesystem::path& path);

struct CaseResult {
  bool passed = false;
  std::string message;  // why it failed
};

CaseResult run_case(const CaseFile& file, const Case& c, Device device);

// The ops the cases call: each maps the inputs (views, absent ones
// undefined) and the case's parameters to the outputs PyTorch's function
// returns, in order.
std::vector<Tensor> call_op(const std::string& op, const nlohmann::json& params, const std::vector<Tensor>& inputs);
bool knows_op(const std::string& op);

// The exact message of a refusal by design (`kind` as the case names it),
// for a case's inputs.
std::string expected_refusal(const std::string& kind, const std::string& op, const std::vector<Tensor>& inputs);

// Every case of a file on `device`: per-op counts and each failure, one line
// each, for the test and for tpp_difftest.
struct FileReport {
  std::map<std::string, int64_t> cases_per_op;
  std::vector<std::string> failures;
};
FileReport run_file(const CaseFile& file, Device device, const std::string& only_op = "", bool trace = false);

}  // namespace tpp::difftest
