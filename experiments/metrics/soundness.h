/// @file soundness.h
/// @brief Attribution soundness (Gao et al. 2024, "Evaluating Feature Attribution Methods with
/// Soundness and Completeness", Definition 4.8, Theorem 4.11, Alg. 1 and Alg. 3 / App. E):
/// metric "soundness", with the exact soundness from the designed ground truth.
///
/// Definition 4.8: soundness = |A ∩ I|_η / |A|_η, with A the attributed pixels (η > 0), I the
/// predictive pixels and |S|_η = Σ_{p∈S} η_p. Here η = the map's positive part divided by its
/// maximum (App. G.1 clips negative attribution; the reference code's maps lie in [0, 1]).
///
/// Estimator (Alg. 3, per sample). Schedule: mask ratios m_i = mask-first − i·mask-step down to
/// mask-last (Alg. 3: M = {0.99, 0.98, …, 0.01}; App. E's text starts at 0.98, give
/// mask-first=0.98 for it). Step i keeps the K_i = P − ⌊P·m_i⌋ pixels of highest attribution
/// (area-based LeRF; ⌊·⌋ as the reference code's int(), taken with a 1e-9 tolerance so 0.29·100
/// gives 29) and removes the rest (removal.h: background or ROAD imputation); A_inc,i is the kept
/// set, Δ_i = A_inc,i \ A_inc,i−1 the increment (K_0 = 0). With s_i the indicator ρ after step i
/// (removal.h; s_0 = 0 as in Alg. 3 line 6), increment i is *false* when
///   s_i − s_{i−1} < ε   (Alg. 3 line 16; false-if=less, the default), or
///   s_i − s_{i−1} ≤ ε   (the reference code's `<=`; false-if=less-equal).
/// The false mass F accumulates |Δ_i|_η of false increments (Alg. 3 line 18). The guard (the
/// reference code's cls_result_start; Alg. 3 has none, so guard=off by default): with guard=on
/// a step with s_i ≤ guard-level marks nothing false. The estimate at step i is
///   q_i = (|A_inc,i|_η − F) / (|A_inc,i|_η + stabilizer)     (Alg. 3 line 22),
/// with F updated by step i first (update=update-then-ratio: Alg. 3, lines 16–22 in that order)
/// or only after q_i is taken (update=ratio-then-update: the reference code computes the ratio
/// with the false mass of the earlier steps, then updates). stabilizer: the reference code's
/// 1e-6; Alg. 3 has 0 (default). A step whose denominator is 0 has q_i = 0 (the reference's value).
///
/// Exact (from the designed ground truth, per step): |A_inc,i ∩ I|_η / |A_inc,i|_η (0 when
/// |A_inc,i|_η = 0), I = pixels with positive pixel ground truth (predictive=positive: the
/// pixels whose presence raises the target, the only ones the estimator can credit, since an
/// increment counts only when ρ rises) or with non-zero ground truth (predictive=overall). When
/// the indicator rises by more than ε exactly on increments that hold a predictive pixel and
/// every increment is all-predictive or all-not (Assumption 4.10 with a strict margin), q_i
/// equals the exact value; where ρ is not monotone in the predictive pixels (the modulo task) it
/// does not.
///
/// Rows: "soundness" = mean of q_i over the schedule, "soundness-exact" = mean of the exact
/// values (samples with pixel ground truth), both higher-is-better. Curves, x = kept fraction
/// K_i / P: "soundness" (q_i), "soundness-exact", "indicator" (s_i; the paper plots q against it).
/// Parameters: Params::schema(). Tested in tests/experiments/test_metrics_soundness.cpp:
/// hand-computed schedules and false-increment rules (each switch), estimator = exact on the
/// multi-color-sum network, estimator < exact on the modulo network, the ground-truth map's
/// exact soundness 1.
#pragma once

#include <optional>

#include "experiments/metrics/metric.h"
#include "experiments/metrics/removal.h"

namespace experiments {

enum class FalseIf { kLess, kLessEqual };
enum class UpdateOrder { kUpdateThenRatio, kRatioThenUpdate };

/// The settings of Soundness (`-p`; Soundness::Params).
struct SoundnessParams {
  double mask_first = 0.99;
  double mask_last = 0.01;
  double mask_step = 0.01;
  /// ε of Alg. 3: the least rise of the indicator that makes an increment true.
  double epsilon = 0.01;
  FalseIf false_if = FalseIf::kLess;
  UpdateOrder update = UpdateOrder::kUpdateThenRatio;
  /// Off: no guard (Alg. 3).
  bool guard = false;
  double guard_level = 0.0;
  double stabilizer = 0.0;
  /// Unset: correct on single-color-modulo data (one output, no probability), else probability.
  std::optional<Indicator> indicator;
  RemovalKind removal = RemovalKind::kBackground;
  ImputationParams imputation;
  Predictive predictive = Predictive::kPositive;
  static const lab::Schema<SoundnessParams>& schema();
  void resolve(const MetricSetup& setup);
};

class Soundness final : public MetricWith<SoundnessParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "soundness"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants();

  /// Kept pixel counts K_i of the schedule for P pixels.
  static std::vector<int64_t> schedule(const Params& params, int64_t pixels);
  /// The estimates q_i from the indicator s_i after each step, the η mass of each increment and
  /// the η mass of each kept set (Alg. 3 lines 15–26 with the switches of `params`).
  static std::vector<double> estimate(const Params& params, const std::vector<double>& indicator,
                                      const std::vector<double>& increment_mass, const std::vector<double>& kept_mass);

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
