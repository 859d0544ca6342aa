// The metric registry: one line per metric (metric.h); outside code adds its own with add_metric().
#include <memory>

#include "experiments/metrics/faithfulness.h"
#include "experiments/metrics/gt.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/metric.h"
#include "experiments/metrics/sensitivity_n.h"
#include "experiments/metrics/pixel_flipping.h"
#include "experiments/metrics/reference_pixel_flipping.h"
#include "experiments/metrics/confidence_change.h"
#include "experiments/metrics/monotonicity.h"
#include "experiments/metrics/max_avg_sensitivity.h"
#include "experiments/metrics/complexity.h"
#include "experiments/metrics/pointing_game.h"
#include "experiments/metrics/soundness.h"
#include "experiments/metrics/completeness.h"
#include "experiments/metrics/road.h"
#include "experiments/metrics/invariant.h"
#include "lab/core/error.h"

namespace experiments {

namespace {

template <InsertionDeletion::Kind kind>
MetricInfo insertion_deletion_info(std::string name, std::string summary) {
  return metric_info<InsertionDeletion>(std::move(name), "perturbation", std::move(summary),
                                        "Petsiuk et al. 2018 (after Samek et al. 2016); AttributionLab paper App. G.4, modulo App. F.4; coherency Sec. 3.3, 4.2",
                                        InsertionDeletion::all_variants(kind),
                                        [](InsertionDeletion::Params p) -> std::unique_ptr<Metric> {
                                          return std::make_unique<InsertionDeletion>(kind, std::move(p));
                                        });
}

template <ConfidenceChange::Kind kind>
MetricInfo confidence_info(std::string name, std::string summary, std::string source) {
  return metric_info<ConfidenceChange>(std::move(name), "perturbation", std::move(summary), std::move(source),
                                       ConfidenceChange::all_variants(kind),
                                       [](ConfidenceChange::Params p) -> std::unique_ptr<Metric> {
                                         return std::make_unique<ConfidenceChange>(kind, p);
                                       });
}

template <MaxAvgSensitivity::Kind kind>
MetricInfo sensitivity_info(std::string name, std::string summary, std::string source) {
  return metric_info<MaxAvgSensitivity>(std::move(name), "robustness", std::move(summary), std::move(source),
                                        MaxAvgSensitivity::all_variants(),
                                        [](MaxAvgSensitivity::Params p) -> std::unique_ptr<Metric> {
                                          return std::make_unique<MaxAvgSensitivity>(kind, p);
                                        });
}

std::vector<MetricInfo>& table() {
  using Kind = InsertionDeletion::Kind;
  static std::vector<MetricInfo> metrics = {
      metric_info<GroundTruthMetric>("gt", "ground-truth",
                                     "soft precision/recall/F1 vs positive/negative/overall GT, eq. 17 maps (Sec. 4, F.3, G.3)",
                                     "AttributionLab paper Sec. 4, eq. 17, App. F.3, G.3", GroundTruthMetric::all_variants()),
      metric_info<FaithfulnessTest>("faithfulness-test", "ground-truth",
                                    "pass/fail of Definition 2.1 / eq. 2: mean F1 >= gamma (Sec. 2, 4)",
                                    "AttributionLab paper Definition 2.1, eq. 2", FaithfulnessTest::all_variants()),
      insertion_deletion_info<Kind::kInsertion>(
          "insertion", "AUC of the target score while inserting pixels by attribution (G.4; modulo F.4)"),
      insertion_deletion_info<Kind::kDeletion>(
          "deletion", "AUC of the target score while deleting pixels by attribution (G.4; modulo F.4)"),
      metric_info<SensitivityN>("sensitivity-n", "perturbation",
                                "Pearson of output change vs summed attribution over N (G.5; modulo F.5)",
                                "Ancona et al. 2018; AttributionLab paper App. G.5, modulo App. F.5",
                                SensitivityN::all_variants()),
      metric_info<PixelFlipping>("pixel-flipping", "perturbation",
                                 "AUC of the target logit flipping pixels most-relevant-first (or random: the control)",
                                 "Samek et al. 2016; unified study Sec. 6.2, App. E", PixelFlipping::all_variants()),
      metric_info<ReferencePixelFlipping>("reference-pixel-flipping", "perturbation",
                                          "AUC flipping a random n of the top N pixels (expected Dice n/N)",
                                          "unified study Sec. 6.2.3, Proposition 1, App. F",
                                          ReferencePixelFlipping::all_variants()),
      confidence_info<ConfidenceChange::Kind::kAverageDrop>(
          "average-drop", "100 max(0, y - y')/y, y' the score of x times the (min-max or binarised) map",
          "Chattopadhyay et al. 2018; coherency eq. 1, Sec. 4.5; false-sense Sec. 4.1"),
      confidence_info<ConfidenceChange::Kind::kIncrease>(
          "increase-in-confidence", "100 [y' > y], y' the score of x times the (min-max or binarised) map",
          "Chattopadhyay et al. 2018; coherency eq. 2; false-sense Sec. 4.1 (AI)"),
      confidence_info<ConfidenceChange::Kind::kAverageGain>(
          "average-gain", "100 max(0, y' - y)/(1 - y), y' the score of x times the map",
          "Zhang et al. 2023; false-sense Sec. 4.1, Average Gain (AG)"),
      metric_info<Monotonicity>("monotonicity", "perturbation",
                                "Pearson of each pixel set's saliency with the score of x keeping only that set",
                                "Arya et al. 2019, Nguyen and Martinez 2020; false-sense Sec. 4.1, Monotonicity := Corr(m(i), f(x * m(i))c)",
                                Monotonicity::all_variants()),
      sensitivity_info<MaxAvgSensitivity::Kind::kMax>(
          "max-sensitivity", "max over draws x' in an L-inf ball of ||S(x) - S(x')||, x' re-explained by the method",
          "Yeh et al. 2019; false-sense Sec. 4.2, MS := max over ||x' - x|| <= eps of ||S(x) - S(x')||"),
      sensitivity_info<MaxAvgSensitivity::Kind::kAverage>(
          "avg-sensitivity", "mean over draws x' in an L-inf ball of ||S(x) - S(x')||, x' re-explained by the method",
          "Bhatt et al. 2020; false-sense Sec. 4.2, AS := integral of ||S(x) - S(x')|| p(x') dx', p uniform in the eps-ball"),
      metric_info<Complexity>("complexity", "complexity", "entropy -sum p ln p of p = |S|/sum|S|",
                              "Bhatt et al. 2020; false-sense Sec. 4.3, Complexity := -sum p ln p", Complexity::all_variants()),
      metric_info<EffectiveComplexity>("effective-complexity", "complexity",
                                       "number of pixels whose max-normalised |S| exceeds eps",
                                       "Nguyen and Martinez 2020; false-sense Sec. 4.3, EC := argmin over k of |M(k)|",
                                       EffectiveComplexity::all_variants()),
      metric_info<Sparseness>("sparseness", "complexity", "Gini index of |S| (one-hot: 1 - 1/P)",
                              "Chalasani et al. 2020 (Gini index); false-sense Sec. 4.3, Sec. 5.3 and Table 3", Sparseness::all_variants()),
      metric_info<PointingGame>("pointing-game", "ground-truth",
                                "1 when the map's maximum lies within tolerance pixels of the GT region",
                                "Zhang et al. 2018; unified study Sec. 6.1, App. C (r = hits / samples); coherency Sec. 3.3",
                                PointingGame::all_variants()),
      metric_info<Soundness>("soundness", "perturbation", "attributed mass kept after dropping false increments, LeRF schedule (Alg. 3); exact |A n I|/|A| from GT", "Gao et al. 2024, Definition 4.8, Theorem 4.11, Alg. 1, Alg. 3 (App. E)", Soundness::all_variants()),
      metric_info<Completeness>("completeness", "perturbation", "indicator drop after removing pixels above t x max (Alg. 4); exact |A n I|/|I| from GT", "Gao et al. 2024, Definition 4.9, Theorem 4.12, Alg. 2, Alg. 4 (App. F)", Completeness::all_variants()),
      metric_info<Road>("road", "perturbation", "target score after noisy linear imputation of MoRF/LeRF pixels", "Rong et al. 2022, Sec. 4 (ROAD); Gao et al. 2024 Sec. 5.2", Road::all_variants()),
      metric_info<Invariant>("invariant", "axiom", "relative violation of the sum a method promises (IG completeness, DeepLIFT/DeepSHAP summation-to-delta, LRP conservation), pass under a tolerance", "Sundararajan et al. 2017 Prop. 1; Shrikumar et al. 2017 eq. 1; Bach et al. 2015 eq. 2", Invariant::all_variants()),
  };
  return metrics;
}

}  // namespace

const std::vector<MetricInfo>& registry() { return table(); }

void add_metric(MetricInfo info) {
  LAB_CHECK(info.make != nullptr, "metric '{}' registered without a factory", info.name);
  for (const MetricInfo& m : table())
    if (m.name == info.name) lab::fail_parameter("add_metric: a metric named '{}' is already registered", info.name);
  table().push_back(std::move(info));
}

}  // namespace experiments
