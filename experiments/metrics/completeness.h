/// @file completeness.h
/// @brief Attribution completeness (Gao et al. 2024, Definition 4.9, Theorem 4.12, Alg. 2 and
/// Alg. 4 / App. F): metric "completeness", with the exact completeness from the designed ground
/// truth and a normalised estimator comparable with it.
///
/// Definition 4.9: completeness = |A ∩ I|_φ / |I|_φ, φ the predictive information of a pixel.
///
/// Estimator (Alg. 4, per sample). For each attribution threshold t of `thresholds` (Alg. 4:
/// T = {0.9, 0.8, …, 0.1}), relative to the map's maximum a⁺ (App. F: "pixels with attribution
/// between [t, 1] will be masked" on maps scaled to [0, 1]), the removed set is
///   A_t = {p : a_p > t·a⁺}   (removed=above: Alg. 2 line 3 and Alg. 4 line 8, "exceed t"; default)
///   A_t = {p : a_p ≥ t·a⁺}   (removed=at-or-above: App. F's closed interval [t, 1]).
/// The guard: a map without positive attribution (a⁺ ≤ 0) removes nothing at any t. Removed pixels
/// take the background or the ROAD imputation (removal.h). With s_0 the indicator ρ of the
/// unperturbed input and s_t after removing A_t,
///   Δs_t = s_0 − s_t   (Alg. 4 line 13; higher: more complete, Theorem 4.12).
/// With indicator=correct (the default) the mean of Δs_t over samples is exactly Alg. 4's
/// accuracy difference on the data set.
/// Normalised (removal=background only): Δs_t / (s_0 − s_∅), s_∅ = ρ with every pixel removed;
/// when ρ is proportional to the predictive pixels present (the target logit of multi-color-sum),
/// this is |A_t ∩ I|_φ / |I|_φ. No row when s_0 = s_∅.
/// Exact (per threshold): |A_t ∩ I|_φ / |I|_φ with φ = max(g, 0) (predictive=positive) or |g|
/// (predictive=overall) of the pixel ground truth g; no row when |I|_φ = 0.
///
/// Rows (means over the thresholds, all higher-is-better): "completeness" (Δs_t),
/// "completeness-normalised", "completeness-exact". Curves with x = t: the same three.
/// Parameters: Params::schema(). Tested in tests/experiments/test_metrics_soundness.cpp:
/// hand-computed threshold rules, normalised = exact on multi-color-sum's logit, Theorem 4.12's
/// ordering broken on the modulo network, the ground-truth map's exact completeness 1.
#pragma once

#include "experiments/metrics/metric.h"
#include "experiments/metrics/removal.h"

namespace experiments {

enum class ThresholdRule { kAbove, kAtOrAbove };

/// The settings of Completeness (`-p`; Completeness::Params).
struct CompletenessParams {
  std::vector<double> thresholds = {0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1};
  ThresholdRule removed = ThresholdRule::kAbove;
  Indicator indicator = Indicator::kCorrect;
  RemovalKind removal = RemovalKind::kBackground;
  ImputationParams imputation;
  Predictive predictive = Predictive::kPositive;
  static const lab::Schema<CompletenessParams>& schema();
  void resolve(const MetricSetup& setup) { imputation.resolve(setup); }
};

class Completeness final : public MetricWith<CompletenessParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "completeness"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override;
  static std::vector<Variant> all_variants();

  /// The number of pixels removed at each threshold (a prefix of the attribution order) for the
  /// map `attr` of n pixels.
  static std::vector<int64_t> removed_counts(const Params& params, const float* attr, int64_t n);

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
