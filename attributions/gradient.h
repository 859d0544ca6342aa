/// @file gradient.h
/// @brief Single-pass backward methods (paper App. B.1.1, B.1.3): one forward and one backward of
/// output[target] per input, under the plain gradient or a propagation-rule composite.
///
/// - `saliency` (Simonyan et al. 2013): attr = ∂f_t/∂x, signed (abs=on gives |∂f_t/∂x|, the
///   original's magnitude map).
/// - `input-x-gradient` (Shrikumar et al. 2016): attr = x ⊙ ∂f_t/∂x.
/// - `guided-backprop` (Springenberg et al. 2015): the lab composite `guided-backprop` (ReLU
///   passes only positive signal where its input was positive).
/// - `deconvnet` (Zeiler & Fergus 2014): the lab composite `deconvnet` (ReLU passes positive signal).
/// - `lrp` (Bach et al. 2015; Montavon et al. 2019): relevance R = one-hot × f_t(x) carried back
///   under one of the lab composites lrp-epsilon | lrp-zplus | lrp-alpha-beta | lrp-epsilon-plus.
///   Default: lrp-epsilon with ε = 1e-6, i.e. LRP-0 up to a stabiliser (Captum's LRP default is
///   the ε rule on every layer with ε = 1e-9; 1e-6 is the runtime's default and changes nothing
///   on the lab's networks, whose pre-activations are integers or dyadic fractions). With ε → 0 it
///   conserves relevance exactly on networks with zero biases (Σ attr = f_t(x)).
///
/// Cost: one forward and one backward per input (Result::evaluations = 2), except the LRP rules
/// that apply signed weight copies: z⁺ (lrp-zplus; lrp-epsilon-plus on its convolutions) computes
/// each affine layer once more with W⁺ (3 evaluations per input; with non-negative inputs, as
/// after every ReLU, the x⁻ terms vanish), αβ twice more forward and once more backward (5).
///
/// Which output (common.h): the paper computes GuidedBP after the softmax (App. G.2), and so do
/// saliency, input-x-gradient and deconvnet by default; LRP distributes the logit by default
/// (relevance is the evidence for the class, not a probability), output=probability distributes
/// p_t, passed through the softmax unchanged by the composites' softmax rule.
/// Tested in test_gradient_methods.cpp: on a linear model saliency = w and input-x-gradient = w ⊙ x
/// exactly; LRP-ε conservation on the lab's networks with zero biases; guided/deconv equal the
/// runtime's composites.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"
#include "lab/nn/rules.h"

namespace attributions {

class Saliency final : public Method {
 public:
  struct Params {
    Output output = Output::kProbability;
    bool abs = false;  ///< |gradient| instead of the signed gradient
    static const lab::Schema<Params>& schema();
  };
  explicit Saliency(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "saliency"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class InputXGradient final : public Method {
 public:
  struct Params {
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit InputXGradient(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "input-x-gradient"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// Guided Backprop and Deconvnet: the gradient pass under a named ReLU composite.
class ReluComposite final : public Method {
 public:
  struct Params {
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  /// `composite` is "guided-backprop" or "deconvnet" (also the method's name).
  ReluComposite(std::string composite, Params params);
  std::string name() const override { return composite_; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo guided_backprop_info();
  static MethodInfo deconvnet_info();

 private:
  std::string composite_;
  Params params_;
};

class Lrp final : public Method {
 public:
  struct Params {
    std::string composite = "lrp-epsilon";  ///< lrp-epsilon | lrp-zplus | lrp-alpha-beta | lrp-epsilon-plus
    double epsilon = 1e-6;                  ///< ε > 0 of the ε rule
    double alpha = 1.0;                     ///< αβ rule, α − β = 1, β ≥ 0
    double beta = 0.0;
    Output output = Output::kLogit;
    static const lab::Schema<Params>& schema();
  };
  explicit Lrp(Params params);
  std::string name() const override { return "lrp"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

}  // namespace attributions
