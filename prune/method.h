// The pruning methods of the paper (TPP-METHOD §1, §7) as the phases they
// run. Every method picks filters by L1 norm (§2) and removes them
// physically (§5); they differ in what comes before and after:
//
//   tpp             regularise (gram + L2 + BN, growing λ) and stabilise, remove, retrain
//   l1              remove, retrain
//   l1+orthp        remove, OrthP (QR of every weight, §7.2), retrain
//   l1+kernorth     remove, retrain with 0.1·KernOrth (§7.3) added to the loss
//   l1+orthconv     remove, retrain with 0.1·OrthConv (§7.4)
//   kernorth+l1     train the dense model with 0.1·KernOrth (50k iterations), then l1
//   orthconv+l1     the same with OrthConv
//   scratch         the pruned widths, freshly initialised, trained (§7.6)
#pragma once

#include <string>
#include <vector>

namespace tpp::prune {

enum class OrthReg { none, kernorth, orthconv };

enum class MethodId { tpp, l1, l1_orthp, l1_kernorth, l1_orthconv, kernorth_l1, orthconv_l1, scratch };

struct Method {
  MethodId id = MethodId::l1;
  std::string name;  // as the paper writes it: "l1+orthp"
  bool tpp = false;                  // the regularised phase before removal
  OrthReg before = OrthReg::none;    // orthogonality-regularised training of the dense model
  bool orthp = false;                // OrthP right after removal
  OrthReg retrain = OrthReg::none;   // orthogonality regulariser during retraining
  bool scratch = false;              // fresh weights at the pruned widths
};

const std::vector<Method>& known_methods();
const Method& find_method(MethodId id);
// "l1+orthp" -> its Method; an unknown name throws, listing the known ones.
const Method& find_method(const std::string& name);

}  // namespace tpp::prune
