/// @file integrated_gradients.h
/// @brief Integrated Gradients (Sundararajan et al. 2017, eq. 1 and its quadrature eq. 3).
///
///   IG_i(x) = (x_i − x'_i) · ∫₀¹ ∂f_t(x' + α(x − x')) / ∂x_i dα
///           ≈ (x_i − x'_i) · Σ_k w_k ∂f_t(x' + t_k(x − x')) / ∂x_i,
/// with (t_k, w_k) the nodes and weights of a quadrature rule on [0, 1] (lab/core/quadrature.h).
/// Completeness: Σ_i IG_i = f_t(x) − f_t(x') exactly for the integral; the quadrature's gap
///   δ = Σ_i IG_i − (f_t(x) − f_t(x'))
/// is reported per sample in Result::convergence_delta (Captum's convergence delta).
///
/// Parameters:
/// - steps ≥ 1 (≥ 2 for trapezoid): quadrature points, paper default 50 (Captum's n_steps).
/// - quadrature: riemann-left | riemann-right (the original paper's eq. 3) | riemann-middle |
///   trapezoid | gauss-legendre (default: Captum's default method, which the paper's settings
///   follow) | exact. Gauss–Legendre nodes crowd towards both ends of the path, where the
///   designed detectors switch on; but a detector's ramp spans one unit of the pixel's 0..255
///   range, i.e. the last 1/255 of a path from black: no rule of 50 fixed nodes resolves it, and
///   a 50-step IG on multi-color-sum misses much of f(x) − f(x') (riemann-left misses all of it).
///   `exact` integrates region by region instead (linear_regions.h): for networks of conv,
///   linear and ReLU layers (and a final softmax) the gap is then floating-point rounding, at a
///   cost of 4 evaluations per linear region the path crosses (steps is unused).
/// - baseline: zero (default) | background (IG*, Section 4.3) | R,G,B | .npy/.png file (common.h).
/// - output: probability (default; App. G.2 measures IG after the softmax) | logit.
/// Cost: steps forward+backward passes per input (exact: regions × 4 evaluations), plus one
/// forward of the input and one of the baseline for the gap.
/// Tested in test_gradient_methods.cpp: exact on a linear model, completeness on the lab's
/// networks (50-step rules against the exact sum), the modulo sawtooth gap closing as steps
/// grow, IG* more precise than IG.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class IntegratedGradients final : public Method {
 public:
  struct Params {
    int64_t steps = 50;
    std::string quadrature = "gauss-legendre";
    Baseline baseline;
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit IntegratedGradients(Params params);
  std::string name() const override { return "integrated-gradients"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  int64_t quadrature_integral(const Context& context, const Batch& batch, const lab::Tensor& base,
                              std::vector<double>& integral) const;
  int64_t exact_integral(const Context& context, const Batch& batch, const lab::Tensor& base,
                         std::vector<double>& integral) const;
  Params params_;
};

}  // namespace attributions
