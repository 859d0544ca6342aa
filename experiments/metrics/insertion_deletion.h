/// @file insertion_deletion.h
/// @brief Insertion and Deletion (Samek et al. 2016; paper Section 5, App. G.4) and their
/// modulo variant (App. F.4): metrics "insertion" and "deletion".
///
/// Pixels are ordered by descending attribution (perturbation.h). Deletion starts from the input
/// and replaces `pixels-per-step` pixels per step by the replacement image; Insertion starts
/// from the replacement image (the "blank canvas", (0, 0, 0) by default) and puts the input's
/// pixels back in the same order. With P = H·W pixels and n_k pixels perturbed after step k
/// (n_0 = 0, n_K = P), the curve has the points (x_k, y_k) with x_k = n_k / P ∈ [0, 1]:
/// - standard mode: y_k = the target's score (probability after softmax, or logit) on the input
///   after step k. Default pixels-per-step = 1: the full-resolution curve, P + 1 points.
/// - modulo mode (App. F.4; pixels-per-step must be 1): step k is correct when the predicted
///   label after step k differs from that after step k − 1; with c_k the number of correct steps
///   among the first k and G the number of ground-truth pixels (non-zero pixel GT),
///   Insertion y_k = c_k / G and Deletion y_k = 1 − c_k / G (the paper's normalisation by the
///   contributing pixels, range [0, 1] when only ground-truth pixels change the label). A sample
///   without ground-truth pixels has no rows or curve.
/// AUC = trapezoid rule over the curve's points on the [0, 1] fraction axis:
///   AUC = Σ_k (x_k − x_{k−1}) (y_{k−1} + y_k) / 2.
/// In modulo mode, a map ranking all G ground-truth pixels first has the optimal curves of
/// App. F.4: Insertion rises linearly to 1 at x = G/P and stays there, AUC = 1 − G/(2P);
/// Deletion falls linearly to 0 at x = G/P, AUC = G/(2P).
///
/// Rows: variant "auc" (standard) or "auc-modulo" (modulo); Insertion higher-is-better, Deletion
/// lower-is-better. Curves: the same variant, one point per step.
/// Parameters (Params::schema()): pixels-per-step ≥ 1 and the shared perturbation settings
/// (engine/perturbation.h, nested).
/// Network evaluation: PathEvaluator (engine/incremental.h), exact and batched; the curve and its
/// AUC row come from curve.h.
/// Tested in tests/experiments/test_metrics_perturbation.cpp: the modulo optimum from the
/// image's pixel counts, hand-checked standard curves on a tiny network, incremental == full.
#pragma once

#include "experiments/engine/incremental.h"
#include "experiments/engine/perturbation.h"
#include "experiments/metrics/curve.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of InsertionDeletion (`-p`; InsertionDeletion::Params).
struct InsertionDeletionParams {
  PerturbationParams perturbation;
  /// Pixels perturbed per step, ≥ 1 (1 in modulo mode).
  int64_t pixels_per_step = 1;
  static const lab::Schema<InsertionDeletionParams>& schema();
  void resolve(const MetricSetup& setup) { perturbation.resolve(setup); }
};

class InsertionDeletion final : public MetricWith<InsertionDeletionParams> {
 public:
  enum class Kind { kInsertion, kDeletion };

  InsertionDeletion(Kind kind, Params params);
  std::string name() const override { return kind_ == Kind::kInsertion ? "insertion" : "deletion"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override;
  /// Every variant of either mode (the registry's list).
  static std::vector<Variant> all_variants(Kind kind);

  /// The evaluator of the layers this metric reads (incremental = false: full forward passes).
  PathEvaluator evaluator(const Context& context, bool incremental = true) const;
  /// The curve of one sample (x: C×H×W input, attr: H×W map, gt: H×W pixel GT, used in modulo
  /// mode). Empty when the modulo curve is undefined (no ground-truth pixels).
  std::vector<CurvePoint> curve(const Context& context, const PathEvaluator& evaluator, const lab::Tensor& x,
                                const float* attr, const float* gt, int64_t target, const std::string& id,
                                uint64_t seed) const;

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;

 private:
  std::string variant() const;
  Kind kind_;
};

}  // namespace experiments
