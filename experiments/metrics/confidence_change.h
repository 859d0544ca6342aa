/// @file confidence_change.h
/// @brief Average Drop %, Increase in Confidence and Average Gain (Chattopadhyay et al. 2018;
/// Zhang et al. 2023), as defined in coherency-of-quantitative-evaluation (Sec. 3, eq. 1–2, Sec.
/// 4.5, App. E) and saliency-false-sense-of-explainability (Sec. 4.1): metrics "average-drop",
/// "increase-in-confidence", "average-gain". The three share this file: they differ only in the
/// formula applied to the same two network outputs.
///
/// The map S of a sample becomes a mask m ∈ [0, 1] per pixel, and the input x (all channels) is
/// multiplied by it: x ⊙ m (masked pixels go to 0). With y = f_c(x) and y' = f_c(x ⊙ m) the
/// target's probability (output=probability, the papers' F(·)_c) or logit:
///   average-drop           AD = 100 · max(0, y − y') / y                     lower-is-better
///   increase-in-confidence IC = 100 · 1[y' > y]                              higher-is-better
///   average-gain           AG = 100 · max(0, y' − y) / (1 − y)               higher-is-better
/// (per sample; the mean over samples is the papers' percentage). Where nothing can drop
/// (y' ≥ y, also y = 0) AD = 0, and where nothing is gained (y' ≤ y, also y = 1) AG = 0; with
/// output=logit a drop from y ≤ 0 or a gain from y ≥ 1 has no meaningful ratio and gives no row.
/// Masks (`maps`): real = the map min–max scaled per image, m = (S − min S)/(max S − min S), the
/// CAM convention the false-sense paper describes (a constant map gives m = 1: it ranks no pixel
/// below another); binarised = 1 where S ≥ the map's `percentile`-th percentile (linear
/// interpolation between order statistics, as numpy's default), else 0 — the coherency paper's
/// reformulation (Sec. 4.5, 50th percentile); both = both. Variant "percent" (real) and
/// "percent-binarised".
/// Network evaluation: the inputs and all masked copies of a unit go through the network
/// together, in calls of at most Context::batch inputs (no per-step work exists to reuse).
/// Tested in tests/experiments/test_metrics_fidelity.cpp with hand-computed cases.
#pragma once

#include "experiments/engine/perturbation.h"
#include "experiments/metrics/metric.h"

namespace experiments {

enum class ConfidenceMaps { kReal, kBinarised, kBoth };

/// m = (S − min)/(max − min), or 1 everywhere for a constant map; `n` values.
std::vector<float> minmax_mask(const float* attr, int64_t n);
/// 1 where S ≥ the `percentile`-th percentile of S (numpy's linear interpolation), else 0.
std::vector<float> percentile_mask(const float* attr, int64_t n, double percentile);
/// The `percentile`-th percentile (0..100) of `n` values, numpy's default linear interpolation.
double percentile_of(const float* values, int64_t n, double percentile);

/// The settings of ConfidenceChange (`-p`; ConfidenceChange::Params).
struct ConfidenceChangeParams {
  ConfidenceMaps maps = ConfidenceMaps::kReal;
  double percentile = 50.0;
  OutputKind output = OutputKind::kProbability;
  static const lab::Schema<ConfidenceChangeParams>& schema();
};

class ConfidenceChange final : public MetricWith<ConfidenceChangeParams> {
 public:
  enum class Kind { kAverageDrop, kIncrease, kAverageGain };

  ConfidenceChange(Kind kind, Params params);
  std::string name() const override;
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override;
  static std::vector<Variant> all_variants(Kind kind);
  /// The per-sample value (percent) of this metric from y = f_c(x) and y' = f_c(x ⊙ m); nullopt
  /// when undefined.
  std::optional<double> value(double y, double masked) const;

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;

 private:
  Kind kind_;
};

}  // namespace experiments
