/// @file monotonicity.h
/// @brief Monotonicity as saliency-false-sense-of-explainability states it (Sec. 4.1; Arya et
/// al. 2019, Nguyen and Martínez 2020): metric "monotonicity".
///
///   Monotonicity = Corr_{i ∈ 1..K}( m_i , f(x ⊙ m_i)_c )
/// The pixels are sorted by increasing channel-summed attribution (ties by ascending pixel index)
/// and cut into K = ⌈P / pixels-per-step⌉ consecutive sets; m_i is the i-th set, its saliency the
/// sum of the attribution over the set, and x ⊙ m_i the input keeping only the pixels of set i
/// (all channels; every other pixel 0). Corr is Pearson's r (the paper's), over the K sets;
/// 0 when either vector is constant (as in sensitivity-n). f is the target's probability
/// (default) or logit. Row "pearson", higher-is-better: a map whose larger values mark pixels
/// that on their own raise the score more is more monotonic.
/// Network evaluation: each x ⊙ m_i differs from the all-zero image in set i only, so small sets
/// run on one incremental path from the zero image (set, read, restore: exact, no full forward
/// pass each); larger sets as batched full passes from the activation after the leading
/// pixel-wise layers (engine/perturbation.h, evaluate_subsets and its cost model).
/// Tested in tests/experiments/test_metrics_fidelity.cpp.
#pragma once

#include "experiments/engine/perturbation.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of Monotonicity (`-p`; Monotonicity::Params).
struct MonotonicityParams {
  int64_t pixels_per_step = 1;
  OutputKind output = OutputKind::kProbability;
  static const lab::Schema<MonotonicityParams>& schema();
};

class Monotonicity final : public MetricWith<MonotonicityParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "monotonicity"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"pearson", Direction::kHigherIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
