#include "ops/cpu/onednn/context.h"

#include <oneapi/dnnl/dnnl_debug.h>

#include <algorithm>
#include <cstring>
#include <unordered_map>

#include "engine/cpu_allocator.h"
#include "engine/error.h"

namespace tpp::ops::cpu::onednn {

namespace {

dnnl::stream& thread_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

dnnl::reorder::primitive_desc reorder_desc(const dnnl::memory::desc& from, const dnnl::memory::desc& to) {
  return dnnl::reorder::primitive_desc(cpu_engine(), from, cpu_engine(), to, user_scratchpad());
}

Operand make_operand(int arg, bool output, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen) {
  Operand op{.arg = arg, .output = output, .plain = plain, .chosen = chosen, .reorder = {}, .reorder_scratchpad = {}};
  if (plain != chosen) {
    const auto pd = output ? reorder_desc(chosen, plain) : reorder_desc(plain, chosen);
    op.reorder.emplace(pd);
    op.reorder_scratchpad = pd.scratchpad_desc();
  }
  return op;
}

// Wraps a caller's buffer in oneDNN's memory object (no copy).
dnnl::memory wrap(const dnnl::memory::desc& desc, void* data) { return dnnl::memory(desc, cpu_engine(), data); }

}  // namespace

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

void fail_with(const std::string& what, const dnnl::error& e) {
  fail("{}: oneDNN {} ({})", what, dnnl_status2str(e.status), e.what());
}

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return attr;
}

Operand input_operand(int arg, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen) {
  return make_operand(arg, false, plain, chosen);
}

Operand output_operand(int arg, const dnnl::memory::desc& plain, const dnnl::memory::desc& chosen) {
  return make_operand(arg, true, plain, chosen);
}

const Operand& operand_of(const Step& step, int arg) {
  for (const Operand& op : step.operands)
    if (op.arg == arg) return op;
  fail("oneDNN step: no operand for argument {}", arg);
}

CachedBuffer to_chosen(const Operand& input, void* plain) {
  CachedBuffer chosen = cpu_allocate(input.chosen.get_size());
  if (!input.reorder) {
    std::memcpy(chosen.data(), plain, input.chosen.get_size());
    return chosen;
  }
  const CachedBuffer scratch = cpu_allocate(input.reorder_scratchpad.get_size());
  dnnl::stream& stream = thread_stream();
  input.reorder->execute(stream, {{DNNL_ARG_FROM, wrap(input.plain, plain)},
                                  {DNNL_ARG_TO, wrap(input.chosen, chosen.data())},
                                  {DNNL_ARG_SCRATCHPAD, wrap(input.reorder_scratchpad, scratch.data())}});
  stream.wait();
  return chosen;
}

void execute(const Step& step, const std::vector<Buffer>& buffers) {
  dnnl::stream& stream = thread_stream();
  // One scratchpad buffer serves the primitive and each reorder in turn.
  size_t scratch_bytes = step.scratchpad.get_size();
  for (const Operand& op : step.operands) scratch_bytes = std::max(scratch_bytes, op.reorder_scratchpad.get_size());
  const CachedBuffer scratch = cpu_allocate(scratch_bytes);

  std::vector<CachedBuffer> staged;
  staged.reserve(step.operands.size());
  std::unordered_map<int, dnnl::memory> args;
  for (size_t i = 0; i < step.operands.size(); ++i) {
    const Operand& op = step.operands[i];
    if (buffers[i].chosen) {
      args.emplace(op.arg, wrap(op.chosen, buffers[i].data));
      continue;
    }
    const dnnl::memory plain = wrap(op.plain, buffers[i].data);
    if (!op.reorder) {
      args.emplace(op.arg, plain);
      continue;
    }
    staged.push_back(cpu_allocate(op.chosen.get_size()));
    const dnnl::memory chosen = wrap(op.chosen, staged.back().data());
    if (!op.output)
      op.reorder->execute(stream, {{DNNL_ARG_FROM, plain},
                                   {DNNL_ARG_TO, chosen},
                                   {DNNL_ARG_SCRATCHPAD, wrap(op.reorder_scratchpad, scratch.data())}});
    args.emplace(op.arg, chosen);
  }
  args.emplace(DNNL_ARG_SCRATCHPAD, wrap(step.scratchpad, scratch.data()));
  step.primitive.execute(stream, args);
  for (size_t i = 0; i < step.operands.size(); ++i) {
    const Operand& op = step.operands[i];
    if (op.output && op.reorder)
      op.reorder->execute(stream, {{DNNL_ARG_FROM, args.at(op.arg)},
                                   {DNNL_ARG_TO, wrap(op.plain, buffers[i].data)},
                                   {DNNL_ARG_SCRATCHPAD, wrap(op.reorder_scratchpad, scratch.data())}});
  }
  stream.wait();
}

}  // namespace tpp::ops::cpu::onednn
