// What every oneDNN-backed CPU op shares: the CPU engine, a stream per thread,
// error translation and the execution of a primitive between our plain
// tensors and the memory layouts the primitive chose.
//
// Only files under ops/cpu/onednn/ include oneDNN's headers; each op family
// has one small interface here (conv.h, ...), free of oneDNN types, so that
// moving between oneDNN 2.x (Debian 12) and 3.x (newer distributions, whose
// primitive-descriptor API differs) touches this folder alone.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

#include "engine/block_cache.h"

#include <optional>
#include <string>
#include <vector>

namespace tpp::ops::cpu::onednn {

dnnl::engine& cpu_engine();

// Throws the tpp::Error "<what>: oneDNN <status> (<message>)".
[[noreturn]] void fail_with(const std::string& what, const dnnl::error& e);

// Runs fn; a dnnl::error thrown inside (every oneDNN C++ call throws one on
// failure) becomes one tpp::Error line naming describe().
template <class Describe, class Fn>
void checked(Describe&& describe, Fn&& fn) {
  try {
    fn();
  } catch (const dnnl::error& e) {
    fail_with(describe(), e);
  }
}

// Every primitive we make asks for its scratchpad from us (user scratchpad
// mode), so that it comes from our caching allocator.
dnnl::primitive_attr user_scratchpad();

// One argument of a primitive: the plain layout the caller's pointer holds,
// the layout the primitive chose, and the reorder between them when they differ
// (plain -> chosen for inputs, chosen -> plain for outputs).
struct Operand {
  int arg = 0;  // DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, ...
  bool output = false;
  dnnl::memory::desc plain, chosen;
  std::optional<dnnl::reorder> reorder;
  dnnl::memory::desc reorder_scratchpad;
};

Operand input_operand(int arg, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen);
Operand output_operand(int arg, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen);

// A primitive with its operands, made once per shape.
struct Step {
  dnnl::primitive primitive;
  dnnl::memory::desc scratchpad;
  std::vector<Operand> operands;
};

// The operand of `step` for argument `arg` (DNNL_ARG_DIFF_DST, ...).
const Operand& operand_of(const Step& step, int arg);

// An input's plain buffer reordered into its chosen layout, in a buffer of
// ours: for an input that two steps read in the same layout (reordered once).
CachedBuffer to_chosen(const Operand& input, void* plain);

// A caller's buffer for one operand: in the plain layout, or (from
// to_chosen) already in the chosen one.
struct Buffer {
  void* data = nullptr;
  bool chosen = false;
};

// Runs the step on the caller's buffers, one per operand in order: reorders
// the plain inputs that need it into buffers from our allocator, executes,
// reorders the outputs back, and waits for the stream.
void execute(const Step& step, const std::vector<Buffer>& buffers);

}  // namespace tpp::ops::cpu::onednn
