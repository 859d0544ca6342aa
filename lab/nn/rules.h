/// @file rules.h
/// @brief Propagation rules: how the backward pass carries a signal through each layer.
///
/// A rule is data. For affine layers (Conv2d, Linear) an LRP rule is a list of groups; group g
/// with coefficient c_g and terms (input part, weight part) contributes
///   z_g = Σ_t W_t x_t (+ b),   R_in += c_g · Σ_t x_t ⊙ W_tᵀ (R_out / stab(z_g)),
/// where x_t ∈ {x, x⁺, x⁻}, W_t ∈ {W, W⁺, W⁻} and stab(z) = z + ε·sign(z) (sign(0) = +1, and a
/// zero denominator gives zero). This covers (Bach et al. 2015; Montavon et al. 2019):
///   LRP-ε:  one group (x, W) with bias;            ε > 0 absorbs weak relevance.
///   LRP-z⁺: one group (x⁺, W⁺), (x⁻, W⁻), no bias: only positive contributions.
///   LRP-αβ: α·group(x⁺W⁺, x⁻W⁻) − β·group(x⁺W⁻, x⁻W⁺), no bias; α − β = 1 conserves.
/// Non-linear layers take a simple rule: gradient (the true derivative), pass (identity: LRP
/// through ReLU/Softmax), guided (Guided Backprop: ReLU derivative and positive signal only,
/// Springenberg et al. 2015), deconv (Deconvnet: positive signal only, Zeiler & Fergus 2014) or
/// rescale (DeepLIFT's Rescale rule, Shrikumar et al. 2017: multiplier Δy/Δx against a reference
/// input; for Softmax, whose inputs interact, the multiplier generalises to the average Jacobian
/// along the segment from the reference to the input, which reduces to Δy/Δx for a scalar
/// non-linearity and keeps summation-to-delta; it is evaluated by Gauss–Legendre quadrature).
/// Graph nodes (network.h) take these rules:
///   add:        gradient, guided, deconv, rescale: the signal goes whole to every input (the
///               derivative of a sum; for DeepLIFT the multiplier of a sum is exactly 1). Any LRP
///               rule: the proportional split R_k = x_k ⊙ R / stab(Σ_j x_j) with the rule's ε,
///               i.e. the sum as a linear layer of unit weights under LRP-ε; Σ_k R_k = R up to ε
///               (never the copy that doubles relevance at a residual sum). 'pass' is refused.
///   multiply:   gradient: the product rule; rescale: multipliers (g + g')/2 for the signal and
///               (a + a')/2 for the gate (exact: Δ(a g) = Δa (g+g')/2 + Δg (a+a')/2); LRP and
///               pass: all relevance to input 0, the signal, none to the gate (Arras et al. 2017).
///   concat:     every rule slices the signal back to the inputs.
///   max-pool2d: rescale: the window's average Jacobian along the segment from the reference,
///               exact (the interval each input is the argmax), so summation-to-delta holds;
///               every other rule: the gradient (winner takes all: to the recorded argmax).
///   batch-norm: affine per channel: LRP rules act on it like on a convolution, the gradient and
///               rescale (its exact multiplier) use backward-data; 'pass' is refused.
/// The LRP composites give batch-norm and add LRP-ε (their `epsilon`), max-pool and concat the
/// gradient, multiply pass; deeplift-rescale gives max-pool and multiply rescale.
/// A Composite maps layer kind, "first affine layer" and layer names to rules; prepare()
/// resolves it for one network and makes the signed weight copies once. The network is never
/// modified. Each rule is checked against a dense-matrix reference in test_rules.cpp.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lab/nn/layers.h"

namespace lab {

class Network;

enum class Part { kAll, kPositive, kNegative };

struct LrpTerm {
  Part input;
  Part weight;
};

struct LrpGroup {
  double coefficient = 1.0;
  std::vector<LrpTerm> terms;
  bool bias = false;
};

enum class RuleKind { kGradient, kPass, kGuided, kDeconv, kLrp, kRescale };

struct Rule {
  std::string name;
  RuleKind kind = RuleKind::kGradient;
  std::vector<LrpGroup> groups;  ///< kLrp only
  double epsilon = 0.0;          ///< kLrp stabiliser
  int quadrature = 32;           ///< kRescale on Softmax: Gauss–Legendre nodes

  static Rule gradient();
  static Rule pass();
  static Rule guided();
  static Rule deconv();
  static Rule rescale();
  /// LRP-ε, epsilon > 0.
  static Rule epsilon_rule(double epsilon);
  /// LRP-z⁺ (stabiliser 1e-9 only against 0/0).
  static Rule zplus();
  /// LRP-αβ with α − β = 1, β ≥ 0.
  static Rule alpha_beta(double alpha, double beta);
};

/// Which rule each layer gets. Lookup order: by_name, first_affine (for the first Conv2d/Linear),
/// by_kind, then the plain gradient.
struct Composite {
  std::string name;
  std::map<LayerKind, Rule> by_kind;
  std::optional<Rule> first_affine;
  std::map<std::string, Rule> by_name;

  Rule resolve(const Network& net, size_t layer) const;
};

/// Settings of the named composites.
struct CompositeParams {
  double epsilon = 1e-6;  ///< LRP-ε stabiliser
  double alpha = 1.0;     ///< LRP-αβ
  double beta = 0.0;
  void validate() const;
};

/// Names of the composites in the table: gradient, guided-backprop, deconvnet, lrp-epsilon,
/// lrp-zplus, lrp-alpha-beta, lrp-epsilon-plus (z⁺ on conv, ε on linear), deeplift-rescale.
std::vector<std::string> composite_names();
/// The named composite; unknown names throw lab::Error listing the known ones.
Composite make_composite(const std::string& name, const CompositeParams& params = {});

struct PreparedRule {
  Rule rule;
  Weights positive;  ///< W⁺, b⁺ when the rule uses them
  Weights negative;  ///< W⁻, b⁻
};

/// A composite resolved for one network, with the signed weight copies made once.
struct PreparedRules {
  std::vector<PreparedRule> layers;
  bool needs_reference = false;  ///< true if any layer uses rescale
};

PreparedRules prepare(const Network& net, const Composite& composite);

}  // namespace lab
