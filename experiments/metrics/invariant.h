/// @file invariant.h
/// @brief The identity an attribution method promises, checked per image: metric "invariant".
///
/// Several methods promise that their map sums to a known difference of network outputs. With
/// A the channel-summed map of one image, S = Σ_p A_p, f the explained output (the method's
/// `output`, unit = the target) and x' the baseline (reference input):
/// - completeness: Integrated Gradients (Sundararajan et al. 2017, Sec. 3, Proposition 1):
///     S = f(x) − f(x').
///   Input×Gradient keeps the same identity with x' = 0 exactly when f is positively homogeneous
///   (a bias-free network of ReLU, max-pool and linear layers: Euler's theorem, Ancona et al.
///   2018, Sec. 3.1); it is checked as that promise, so red marks a network with biases.
/// - summation-to-delta: DeepLIFT (Shrikumar et al. 2017, eq. 1): S = f(x) − f(x'). DeepSHAP
///   averages DeepLIFT over references b_1..b_K (Lundberg & Lee 2017): per reference the identity
///   holds, averaged S = f(x) − (1/K) Σ_k f(b_k). The references are those the method used
///   (`baselines=data:K` re-drawn with DeepShap::draw_baselines from the sample's seed).
/// - conservation: LRP (Bach et al. 2015, eq. 2; Montavon et al. 2019, Sec. 10.2.1):
///     S = f(x).
///   Checked strictly: a bias b_j (and the ε stabiliser) of a layer absorbs the relevance
///   (b_j + ε sign z_j)/(z_j + ε sign z_j) · R_j of neuron j under the ε rule, so LRP-ε conserves
///   exactly on bias-free networks and shows the absorbed (or, for b_j < 0, injected) relevance
///   as a violation elsewhere; the z⁺ rule leaves biases out of its denominators, so it conserves
///   wherever some positive contribution reaches each neuron with relevance.
/// - none: methods with no such promise (Saliency, SmoothGrad, Guided Backprop, Deconvnet,
///   GradCAM, Occlusion, LIME, KernelSHAP — its efficiency Σ_k φ_k = f(x) − f(x') holds over
///   superpixel values, and the pixel map repeats φ_k over superpixel k, so Σ_p A_p is not Σ_k φ_k
///   — RISE, Extremal Perturbation, IBA, the controls): no rows, shown "n/a".
/// promise=auto takes the promise, baseline(s), output and quadrature from the method that made
/// the maps (Context::method; `attrlab run`, and `attrlab evaluate` of maps whose maps.json names
/// a registry method). A named promise checks maps made elsewhere (e.g. another library's LRP
/// maps of an exported trap) against `baseline` and `output` of this metric's own parameters.
///
/// Per image, with Δ the promised difference and s = max(|f(x)|, |f(x')|) (for DeepSHAP the
/// largest |f(b_k)|):
///   violation = |S − Δ| / s   (|S − Δ| when s = 0: an image whose outputs are all 0),
///   pass = 1 when violation ≤ allowed, else 0,
///   allowed = tolerance + w_max · V / s (IG with a fixed quadrature; tolerance alone otherwise).
/// Quadrature term (IG only). On a ReLU network f is piecewise linear, so the path integrand
/// g(α) = ∇f(x' + α(x − x')) · (x − x') is piecewise constant in α. For a jump J of g at α₀ a
/// Riemann rule of m steps (weights 1/m), the trapezoid (weights ≤ 1/(m−1)) and Gauss–Legendre
/// (Markov–Stieltjes: the partial sums of the weights separate the nodes) misplace at most one
/// node's weight, so |S − Δ| ≤ w_max · V, w_max the rule's largest weight and V = Σ |J| the total
/// variation of g. V is measured on g at the rule's nodes with 0 and 1 added (steps + 2 gradient
/// evaluations): exact when the jumps are further apart than the nodes, a lower estimate
/// otherwise. quadrature=exact (regions summed exactly) gets no quadrature term.
/// Parameters (Params::schema()): promise (auto), baseline (zero) and output (probability) for a
/// named promise, tolerance (1e-5, relative: float32 sums of ~10³ terms).
/// Rows (per image; no rows for promise none): "violation" (lower-is-better), "allowed"
/// (lower-is-better), "pass" (higher-is-better; its mean over images is the fraction passing).
/// Tested in tests/experiments/test_metrics_invariant.cpp: hand-computed sums on a linear network,
/// the quadrature term of a known jump, and the expected outcome of each method on each trap.
#pragma once

#include <string>

#include "attributions/common.h"
#include "experiments/metrics/metric.h"

namespace experiments {

enum class Promise { kAuto, kNone, kCompleteness, kSummationToDelta, kConservation };

/// The settings of Invariant (`-p`; Invariant::Params).
struct InvariantParams {
  Promise promise = Promise::kAuto;
  attributions::Baseline baseline;
  attributions::Output output = attributions::Output::kProbability;
  double tolerance = 1e-5;
  static const lab::Schema<InvariantParams>& schema();
};

class Invariant final : public MetricWith<InvariantParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "invariant"; }
  std::string family() const override { return "axiom"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants();

  /// The promise of the registry method `method` ("completeness", "summation-to-delta",
  /// "conservation" or "none"): what promise=auto checks.
  static std::string promise_of(const std::string& method);
  /// The largest weight of `steps` points of quadrature `rule` (0 for "exact").
  static double quadrature_weight(const std::string& rule, int64_t steps);

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
