/// @file faithfulness.h
/// @brief The faithfulness test of Definition 2.1 / eq. 2 (paper Section 2 and 4): metric
/// "faithfulness-test".
///
/// The faithfulness measurement M is the ground-truth F1 of gt.h (eq. 17–normalised maps).
/// A method *fails* the test at threshold γ on a model f when M(A(f, D), f, D) < γ (eq. 2), where
/// M over the data set D is the mean F1 over its samples; it passes when the mean F1 is ≥ γ.
/// Across a set of models F, a method is not (γ, F)-model-agnostic faithful when it fails on any
/// model (model_agnostic_verdict()).
///
/// Rows per sample and ground-truth kind (positive, negative, overall; "-smooth" suffix as in
/// gt.h): "f1-<kind>" = the sample's F1 and "pass-<kind>" = 1 if that F1 ≥ γ else 0. The summary
/// rows (sample "all") hold the mean F1 and pass = 1 if the *mean* F1 ≥ γ else 0 — the test of
/// Definition 2.1 on this model. Both variants are higher-is-better. A kind whose ground truth is
/// empty in a sample gives no rows for it (gt.h).
///
/// Parameters (Params::schema()): gamma ∈ [0, 1] (default 0.5, the paper's criterion),
/// ground-truth pixel|smooth|both (default pixel; gt.h's schema, nested).
/// Tested in tests/experiments/test_metrics_gt.cpp: F1 just above and just below γ, the
/// aggregate uses the mean, and one failing model fails the model-agnostic verdict.
#pragma once

#include <string>
#include <vector>

#include "experiments/metrics/gt.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of FaithfulnessTest (`-p`; FaithfulnessTest::Params).
struct FaithfulnessTestParams {
  /// Threshold γ of eq. 1–2, in [0, 1].
  double gamma = 0.5;
  /// Which ground truth F1 is measured on (gt.h's parameter).
  GroundTruthMetric::Params gt;
  static const lab::Schema<FaithfulnessTestParams>& schema();
};

class FaithfulnessTest final : public MetricWith<FaithfulnessTestParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "faithfulness-test"; }
  std::string family() const override { return "ground-truth"; }
  std::vector<Variant> variants() const override;
  Normalisation normalisation() const override { return Normalisation::kEq17; }
  /// Mean F1 per kind, and pass = (mean F1 ≥ γ).
  std::vector<MetricRow> aggregate(const std::vector<MetricRow>& rows) const override;
  /// Every variant of any ground-truth (the registry's list).
  static std::vector<Variant> all_variants();

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

/// One method's result on one model (mean F1 of one ground-truth kind over the model's data).
struct ModelScore {
  std::string model;
  double mean_f1 = 0.0;
};

/// The (γ, F)-model-agnostic verdict of eq. 2 over a set of models.
struct AgnosticVerdict {
  bool pass = true;                   ///< false when some model's mean F1 < γ
  std::vector<std::string> failed_on; ///< the models where the method fails, in input order
};

/// Fails when any model's mean F1 is below γ; an empty set of models throws lab::Error.
AgnosticVerdict model_agnostic_verdict(const std::vector<ModelScore>& scores, double gamma);

}  // namespace experiments
