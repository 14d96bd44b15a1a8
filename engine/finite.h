// Finding NaN and infinity: the scan the trainer runs over the loss and the
// gradients of every step, and TPP_SYNC_DEBUG, the debug mode that checks the
// output of every op as it is produced and stops at the first op that makes
// a non-finite value (forward or backward), naming it.
//
// TPP_SYNC_DEBUG=1 in the environment turns the mode on for the whole
// process (read once, at the first op); set_sync_debug() and
// SyncDebugOverride switch it from code (tests). Off, the cost is one load
// of a flag per op. On CUDA the mode also synchronises after each op, so
// that an asynchronous fault is reported at the op that caused it.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/error.h"
#include "engine/tensor.h"

namespace tpp {

struct NonFinite {
  int64_t index = 0;  // the first one, in row-major order
  double value = 0;   // nan, inf or -inf
};

// The first NaN or infinity of a tensor; nullopt when every element is
// finite (and always for integer dtypes).
std::optional<NonFinite> first_non_finite(const Tensor& t);
inline bool all_finite(const Tensor& t) { return !first_non_finite(t).has_value(); }

// "nan", "inf" or "-inf".
std::string non_finite_name(double value);

// The error TPP_SYNC_DEBUG throws: an op produced a non-finite value. Callers
// that know more (the trainer: phase and step) catch it to add that.
struct NonFiniteError : Error {
  using Error::Error;
};

bool sync_debug();
void set_sync_debug(bool on);

// Sets the mode for one scope and restores the previous setting.
class SyncDebugOverride {
 public:
  explicit SyncDebugOverride(bool on);
  ~SyncDebugOverride();
  SyncDebugOverride(const SyncDebugOverride&) = delete;
  SyncDebugOverride& operator=(const SyncDebugOverride&) = delete;

 private:
  bool previous_;
};

// Called by autograd for every op output (record_grad) and every gradient a
// backward produces; a no-op unless sync_debug(). Throws NonFiniteError.
// An output that shares storage with an input (a view) is not checked: it
// produced no new values.
void check_op_output(const Tensor& output, std::string_view op, const std::vector<Tensor>& inputs);
void check_backward_output(const Tensor& grad, std::string_view op, size_t input_index);

// Marks the backward of `op` as running on this thread, so that a forward op
// it calls is reported as "in backward of 'op'".
class BackwardScope {
 public:
  explicit BackwardScope(const std::string& op);
  ~BackwardScope();
  BackwardScope(const BackwardScope&) = delete;
  BackwardScope& operator=(const BackwardScope&) = delete;

 private:
  const std::string* previous_;
};

}  // namespace tpp
