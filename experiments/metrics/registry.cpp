// The metric registry: one line per metric (metric.h); outside code adds its own with add_metric().
#include <memory>

#include "experiments/metrics/faithfulness.h"
#include "experiments/metrics/gt.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/metric.h"
#include "experiments/metrics/sensitivity_n.h"
#include "experiments/metrics/soundness.h"
#include "experiments/metrics/completeness.h"
#include "experiments/metrics/road.h"
#include "lab/core/error.h"

namespace experiments {

namespace {

template <InsertionDeletion::Kind kind>
MetricInfo insertion_deletion_info(std::string name, std::string summary) {
  return metric_info<InsertionDeletion>(std::move(name), "perturbation", std::move(summary),
                                        "Samek et al. 2016; paper App. G.4, modulo App. F.4",
                                        InsertionDeletion::all_variants(kind),
                                        [](InsertionDeletion::Params p) -> std::unique_ptr<Metric> {
                                          return std::make_unique<InsertionDeletion>(kind, std::move(p));
                                        });
}

std::vector<MetricInfo>& table() {
  using Kind = InsertionDeletion::Kind;
  static std::vector<MetricInfo> metrics = {
      metric_info<GroundTruthMetric>("gt", "ground-truth",
                                     "soft precision/recall/F1 vs positive/negative/overall GT, eq. 17 maps (Sec. 4, F.3, G.3)",
                                     "paper Sec. 4, eq. 17, App. F.3, G.3", GroundTruthMetric::all_variants()),
      metric_info<FaithfulnessTest>("faithfulness-test", "ground-truth",
                                    "pass/fail of Definition 2.1 / eq. 2: mean F1 >= gamma (Sec. 2, 4)",
                                    "paper Definition 2.1, eq. 2", FaithfulnessTest::all_variants()),
      insertion_deletion_info<Kind::kInsertion>(
          "insertion", "AUC of the target score while inserting pixels by attribution (G.4; modulo F.4)"),
      insertion_deletion_info<Kind::kDeletion>(
          "deletion", "AUC of the target score while deleting pixels by attribution (G.4; modulo F.4)"),
      metric_info<SensitivityN>("sensitivity-n", "perturbation",
                                "Pearson of output change vs summed attribution over N (G.5; modulo F.5)",
                                "Ancona et al. 2018; paper App. G.5, modulo App. F.5",
                                SensitivityN::all_variants()),
      metric_info<Soundness>("soundness", "perturbation", "attributed mass kept after dropping false increments, LeRF schedule (Alg. 3); exact |A n I|/|A| from GT", "Gao et al. 2024, Definition 4.8, Theorem 4.11, Alg. 1, Alg. 3 (App. E)", Soundness::all_variants()),
      metric_info<Completeness>("completeness", "perturbation", "indicator drop after removing pixels above t x max (Alg. 4); exact |A n I|/|I| from GT", "Gao et al. 2024, Definition 4.9, Theorem 4.12, Alg. 2, Alg. 4 (App. F)", Completeness::all_variants()),
      metric_info<Road>("road", "perturbation", "target score after noisy linear imputation of MoRF/LeRF pixels", "Rong et al. 2022, Sec. 4 (ROAD); Gao et al. 2024 Sec. 5.2", Road::all_variants()),
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
