/// @file max_avg_sensitivity.h
/// @brief Max-Sensitivity (Yeh et al. 2019) and Avg-Sensitivity (Bhatt et al. 2020) as
/// saliency-false-sense-of-explainability defines them (Sec. 4.2): metrics "max-sensitivity" and
/// "avg-sensitivity". The two share this file: they differ only in max vs mean.
///
///   MS = max_{‖x' − x‖ ≤ ε} ‖S(f, x, c) − S(f, x', c)‖,   AS = E_{x' ~ U(ball)} ‖S(f, x, c) − S(f, x', c)‖
/// estimated by Monte Carlo as Quantus does (the paper takes its implementation from Quantus):
/// `samples` inputs x'_j = x + u_j, u_j uniform in the L∞ ball of radius ε = radius · input
/// maximum (each value of each channel independently in [−ε, ε]; 255 RGB, 1 modulo; not clipped),
/// drawn from the sample's stream; each x'_j is *re-explained by the method that made the map*
/// (Context::explain, seeds derive_seed(sample seed, j)), all copies of a sample in one method
/// call. S(f, x, c) is the scored map itself. Maps are channel-summed; with normalise=max (Quantus'
/// default) each map is divided by its maximum |value| (a zero map stays zero), so the norm
/// compares shapes, not scales. ‖·‖ is the Frobenius norm of the H×W difference.
/// MS = max_j, AS = mean_j over the `samples` draws. Row "value", lower-is-better. Quantus also
/// divides by ‖x‖; the paper's formula does not, nor does this metric.
/// Without Context::explain (maps whose method is unknown) scoring throws lab::Error naming the
/// metric. Tested in tests/experiments/test_metrics_complexity.cpp.
#pragma once

#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of MaxAvgSensitivity (`-p`; MaxAvgSensitivity::Params).
struct MaxAvgSensitivityParams {
  int64_t samples = 200;
  double radius = 0.2;
  bool normalise = true;
  uint64_t seed = 0;
  static const lab::Schema<MaxAvgSensitivityParams>& schema();
};

class MaxAvgSensitivity final : public MetricWith<MaxAvgSensitivityParams> {
 public:
  enum class Kind { kMax, kAverage };

  MaxAvgSensitivity(Kind kind, Params params);
  std::string name() const override { return kind_ == Kind::kMax ? "max-sensitivity" : "avg-sensitivity"; }
  std::string family() const override { return "robustness"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"value", Direction::kLowerIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;

 private:
  Kind kind_;
};

}  // namespace experiments
