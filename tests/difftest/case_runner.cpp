// Loading the cases, rebuilding each input's view, running the op forward
// and backward, and comparing element by element with PyTorch.
#include <fmt/format.h>

#include <cmath>
#include <iostream>

#include "engine/error.h"
#include "tests/difftest/difftest.h"

namespace tpp::difftest {

namespace {

DType dtype_named(const std::string& name, const std::filesystem::path& path) {
  if (name == "f32") return DType::f32;
  if (name == "f64") return DType::f64;
  if (name == "i64") return DType::i64;
  fail("{}: unknown dtype '{}' in the case list", path.string(), name);
}

Case parse_case(const nlohmann::json& j, size_t index, const std::filesystem::path& path) {
  Case c{.id = fmt::format("c{}", index),
         .name = j.at("name"),
         .op = j.at("op"),
         .params = j.at("params"),
         .inputs = {},
         .outputs = j.at("outputs"),
         .refusal = j.value("refusal", "")};
  for (const auto& in : j.at("inputs")) {
    if (in.is_null()) {
      c.inputs.push_back({});
      continue;
    }
    c.inputs.push_back({.present = true,
                        .dtype = dtype_named(in.at("dtype"), path),
                        .view = in.at("view"),
                        .grad = in.at("grad")});
  }
  return c;
}

Tensor apply_view(Tensor t, const nlohmann::json& view) {
  for (const auto& step : view) {
    const std::string kind = step.at(0);
    if (kind == "transpose") t = t.transpose(step.at(1), step.at(2));
    else if (kind == "slice") t = t.slice(step.at(1), step.at(2), step.at(3), step.at(4));
    else if (kind == "expand") t = t.expand(step.at(1).get<Shape>());
    else fail("difftest: unknown view step '{}'", kind);
  }
  return t;
}

const Tensor* find(const CaseFile& file, const std::string& name) {
  const auto it = file.tensors.tensors.find(name);
  return it == file.tensors.tensors.end() ? nullptr : &it->second;
}

const Tensor& require(const CaseFile& file, const std::string& name) {
  const Tensor* t = find(file, name);
  TPP_CHECK(t != nullptr, "{}: no tensor '{}' (regenerate it with scripts/difftest.py)", file.path.string(), name);
  return *t;
}

// Whether `ours` stands for the same value as PyTorch's: NaN for NaN, the
// same infinity, or within the tolerance of a finite reference. Where
// PyTorch's own f32 result is not finite though the float64 one is (an
// overflow), matching that result is accepted too.
bool element_matches(double ours, double ref, double tol, const double* alt) {
  const auto same_special = [](double a, double b) { return std::isnan(b) ? std::isnan(a) : a == b; };
  if (!std::isfinite(ref)) return same_special(ours, ref);
  if (alt && !std::isfinite(*alt) && same_special(ours, *alt)) return true;
  return std::isfinite(ours) && std::abs(ours - ref) <= tol;
}

// "" when `actual` matches the reference `ref_name`, else one line saying where it does not.
std::string compare(const CaseFile& file, const std::string& what, const Tensor& actual, const std::string& ref_name,
                    const std::string& tol_name, const std::string& alt_name, DType expected_dtype) {
  const Tensor& ref = require(file, ref_name);
  if (!actual.defined()) return fmt::format("{}: no result", what);
  if (actual.sizes() != ref.sizes())
    return fmt::format("{}: shape {} but PyTorch gives {}", what, shape_str(actual.sizes()), shape_str(ref.sizes()));
  const Tensor ours = actual.device().is_cpu() ? actual : actual.to(Device::cpu());
  if (ref.dtype() == DType::i64) {
    if (ours.dtype() != DType::i64) return fmt::format("{}: dtype {} but PyTorch gives i64", what, dtype_name(ours.dtype()));
    const auto a = ours.to_vector<int64_t>(), r = ref.to_vector<int64_t>();
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != r[i]) return fmt::format("{}: element {} is {} but PyTorch gives {}", what, i, a[i], r[i]);
    return "";
  }
  if (ours.dtype() != expected_dtype)
    return fmt::format("{}: dtype {} but PyTorch gives {}", what, dtype_name(ours.dtype()), dtype_name(expected_dtype));
  const auto a = ours.to_vector<double>(), r = ref.to_vector<double>(), tol = require(file, tol_name).to_vector<double>();
  const Tensor* alt_tensor = find(file, alt_name);
  const std::vector<double> alt = alt_tensor ? alt_tensor->to_vector<double>() : std::vector<double>{};
  int64_t bad = 0;
  size_t first = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    if (element_matches(a[i], r[i], tol[i], alt.empty() ? nullptr : &alt[i])) continue;
    if (bad++ == 0) first = i;
  }
  if (bad == 0) return "";
  return fmt::format("{}: {} of {} elements differ; first at {}: ours {} vs PyTorch {} (tolerance {:.3g})", what, bad,
                     a.size(), first, a[first], r[first], tol[first]);
}

struct Built {
  std::vector<Tensor> leaves, views;
};

Built build_inputs(const CaseFile& file, const Case& c, Device device) {
  Built b;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    const InputSpec& in = c.inputs[k];
    if (!in.present) {
      b.leaves.emplace_back();
      b.views.emplace_back();
      continue;
    }
    Tensor leaf = require(file, fmt::format("{}.in{}", c.id, k)).clone();
    if (!device.is_cpu()) leaf = leaf.to(device);
    if (in.grad) leaf.set_requires_grad();
    b.leaves.push_back(leaf);
    b.views.push_back(apply_view(leaf, in.view));
  }
  return b;
}

DType case_dtype(const Case& c) {
  for (const InputSpec& in : c.inputs)
    if (in.present && in.dtype != DType::i64) return in.dtype;
  return DType::f32;
}

// Forward, then (when PyTorch gave input gradients) backward with its dy;
// "" when every output and gradient matches.
std::string check_results(const CaseFile& file, const Case& c, const Built& in, const std::vector<Tensor>& outs,
                          Device device) {
  if (static_cast<int64_t>(outs.size()) != c.outputs)
    return fmt::format("{} outputs but PyTorch gives {}", outs.size(), c.outputs);
  const DType dtype = case_dtype(c);
  for (size_t k = 0; k < outs.size(); ++k) {
    const std::string p = fmt::format("{}.", c.id);
    std::string m = compare(file, fmt::format("output {}", k), outs[k], fmt::format("{}out{}", p, k),
                            fmt::format("{}tol{}", p, k), fmt::format("{}alt{}", p, k), dtype);
    if (!m.empty()) return m;
  }
  const Tensor* dy = find(file, c.id + ".dy");
  if (!dy) return "";
  if (outs[0].requires_grad()) outs[0].backward(device.is_cpu() ? dy->clone() : dy->to(device));
  for (size_t k = 0; k < in.leaves.size(); ++k) {
    const std::string ref_name = fmt::format("{}.grad{}", c.id, k);
    if (!find(file, ref_name)) continue;
    Tensor g = in.leaves[k].grad();
    if (!g.defined()) g = zeros(in.leaves[k].sizes(), {.dtype = in.leaves[k].dtype()});  // no path from the output
    std::string m = compare(file, fmt::format("gradient of input {}", k), g, ref_name,
                            fmt::format("{}.gtol{}", c.id, k), fmt::format("{}.galt{}", c.id, k), dtype);
    if (!m.empty()) return m;
  }
  return "";
}

}  // namespace

CaseFile load_cases(const std::filesystem::path& path) {
  CaseFile file{.path = path, .seed = {}, .tensors = load_safetensors(path), .cases = {}};
  const auto& meta = file.tensors.metadata;
  const auto cases = meta.find("cases");
  TPP_CHECK(cases != meta.end(), "{}: no case list in the metadata (not written by scripts/difftest.py?)",
            path.string());
  file.seed = meta.contains("seed") ? meta.at("seed") : "?";
  nlohmann::json list;
  try {
    list = nlohmann::json::parse(cases->second);
    for (size_t i = 0; i < list.size(); ++i) file.cases.push_back(parse_case(list[i], i, path));
  } catch (const nlohmann::json::exception& e) {
    fail("{}: bad case list: {}", path.string(), e.what());
  }
  return file;
}

CaseResult run_case(const CaseFile& file, const Case& c, Device device) {
  if (!knows_op(c.op)) return {false, fmt::format("unknown op '{}'", c.op)};
  Built in;
  std::vector<Tensor> outs;
  try {
    in = build_inputs(file, c, device);
    outs = call_op(c.op, c.params, in.views);
  } catch (const Error& e) {
    if (c.refusal.empty()) return {false, fmt::format("threw where PyTorch gives a result: {}", e.what())};
    const std::string expected = expected_refusal(c.refusal, c.op, in.views);
    if (e.what() == expected) return {true, ""};
    return {false, fmt::format("refused with '{}' but the {} refusal is '{}'", e.what(), c.refusal, expected)};
  } catch (const std::exception& e) {
    return {false, fmt::format("unclear exception (not tpp::Error): {}", e.what())};
  }
  if (!c.refusal.empty()) return {false, fmt::format("expected the {} refusal but it ran", c.refusal)};
  try {
    const std::string m = check_results(file, c, in, outs, device);
    return {m.empty(), m};
  } catch (const Error& e) {
    return {false, fmt::format("backward threw: {}", e.what())};
  } catch (const std::exception& e) {
    return {false, fmt::format("unclear exception in backward (not tpp::Error): {}", e.what())};
  }
}

FileReport run_file(const CaseFile& file, Device device, const std::string& only_op, bool trace) {
  FileReport report;
  for (const Case& c : file.cases) {
    if (!only_op.empty() && c.op != only_op) continue;
    if (trace) std::cerr << "difftest: running " << c.name << " (" << c.id << ")" << std::endl;
    ++report.cases_per_op[c.op];
    const CaseResult r = run_case(file, c, device);
    if (!r.passed)
      report.failures.push_back(fmt::format("{} seed {} {} ({}, params {}): {}", file.path.filename().string(),
                                            file.seed, c.name, c.id, c.params.dump(), r.message));
  }
  return report;
}

}  // namespace tpp::difftest
