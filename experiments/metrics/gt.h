/// @file gt.h
/// @brief Ground-truth precision, recall and F1 of attribution maps (paper Section 4, App. F.3
/// and G.3): metric "gt".
///
/// With a the eq. 17–normalised map (App. F.3: positive part divided by its maximum, negative
/// part by |minimum|, so a ∈ [−1, 1]) and g the ground truth of one sample,
///   precision = Σ_j |a_j · g_j| / Σ_j |a_j|,   recall = Σ_j |a_j · g_j| / Σ_j |g_j|,
///   F1 = 2 · precision · recall / (precision + recall)   (0 when both are 0).
/// Three ground-truth kinds (Section 4): *positive* compares the positive part of a, max(a, 0),
/// with the positive ground truth max(g, 0); *negative* compares |min(a, 0)| with |min(g, 0)|;
/// *overall* compares |a| with the unsigned union |g|. A map with no attribution of the compared
/// sign (Σ|a| = 0 over that part) scores precision = recall = F1 = 0 — so methods that cannot
/// produce negative values get 0 on negative GT, as in the paper's Fig. 23. A sample whose
/// ground truth of a kind is empty (Σ|g| = 0, e.g. negative GT in the modulo task) has no rows
/// for that kind: the quantities are undefined there, and aggregates average over the samples
/// that have them.
///
/// Rows: variants "<precision|recall|f1>-<positive|negative|overall>", all higher-is-better;
/// with ground-truth=smooth the suffix "-smooth" is appended (the smooth ground truth of
/// datasets/environment.h), with ground-truth=both both sets are written.
///
/// Parameter (Params::schema()): ground-truth = pixel (default) | smooth | both.
///
/// Tested in tests/experiments/test_metrics_gt.cpp: hand-computed values including signs and
/// eq. 17; the ground-truth map scores F1 = 1 on overall GT; constant and random maps score what
/// arithmetic predicts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/metrics/metric.h"

namespace experiments {

enum class GtKind { kPositive, kNegative, kOverall };
/// "positive", "negative", "overall".
std::string gt_kind_name(GtKind kind);
inline constexpr GtKind kGtKinds[] = {GtKind::kPositive, GtKind::kNegative, GtKind::kOverall};

/// Which ground truth a metric compares with.
enum class GtSource { kPixel, kSmooth, kBoth };
/// The variant suffix of a concrete source: "" (pixel) or "-smooth".
std::string gt_suffix(bool smooth);

struct PrecisionRecall {
  double precision = 0.0;
  double recall = 0.0;
  double f1 = 0.0;
  /// False when the ground truth of the kind is empty (Σ|g| = 0): no rows are written.
  bool defined = false;
};

/// The soft scores of one sample: `attr` (already eq. 17–normalised) and `gt`, `n` pixels each.
PrecisionRecall soft_precision_recall(const float* attr, const float* gt, int64_t n, GtKind kind);

/// The settings of GroundTruthMetric (`-p`; GroundTruthMetric::Params).
struct GroundTruthMetricParams {
  /// pixel (default), smooth, or both.
  GtSource ground_truth = GtSource::kPixel;
  static const lab::Schema<GroundTruthMetricParams>& schema();
};

class GroundTruthMetric final : public MetricWith<GroundTruthMetricParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "gt"; }
  std::string family() const override { return "ground-truth"; }
  std::vector<Variant> variants() const override;
  Normalisation normalisation() const override { return Normalisation::kEq17; }
  /// Every variant of any ground_truth (the registry's list).
  static std::vector<Variant> all_variants();

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

/// The ground truth tensors a source selects: {pixel}, {smooth} or both, each with its
/// "smooth" flag; a missing smooth ground truth throws lab::Error.
std::vector<std::pair<const lab::Tensor*, bool>> select_ground_truth(const Batch& batch, GtSource source,
                                                                     const std::string& metric);

}  // namespace experiments
