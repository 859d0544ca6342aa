// The metric registry: one line per metric (metric.h). Parameter tables feed `attrlab metrics`.
#include <memory>

#include "experiments/metrics/faithfulness.h"
#include "experiments/metrics/gt.h"
#include "experiments/metrics/insertion_deletion.h"
#include "experiments/metrics/metric.h"
#include "experiments/metrics/sensitivity_n.h"

namespace experiments {

namespace {

std::vector<ParamInfo> gt_params() {
  return {{"ground_truth", "pixel", "pixel | smooth | both: which ground truth (smooth: per patch region)"}};
}

std::vector<ParamInfo> faithfulness_params() {
  std::vector<ParamInfo> p = {{"gamma", "0.5", "threshold γ of Definition 2.1, in [0, 1]"}};
  for (const ParamInfo& q : gt_params()) p.push_back(q);
  return p;
}

std::vector<ParamInfo> insertion_deletion_params() {
  std::vector<ParamInfo> p = perturbation_param_info();
  p.push_back({"pixels_per_step", "1", "pixels perturbed per step (1: full-resolution curve; modulo needs 1)"});
  return p;
}

std::vector<ParamInfo> sensitivity_params() {
  std::vector<ParamInfo> p = perturbation_param_info();
  p.push_back({"n", "(log schedule)", "explicit subset sizes N, comma-separated, increasing, each <= H*W"});
  p.push_back({"points", "16", "points of the log-spaced schedule from 1 to H*W"});
  p.push_back({"subsets", "100", "random subsets (standard) or orders (modulo) per N, >= 2"});
  return p;
}

template <typename M, typename... Args>
std::unique_ptr<Metric> make(Args&&... args) {
  return std::make_unique<M>(std::forward<Args>(args)...);
}

}  // namespace

std::vector<lab::ParamDoc> docs_from_infos(const std::vector<ParamInfo>& infos) {
  std::vector<lab::ParamDoc> out;
  for (const ParamInfo& p : infos) {
    lab::ParamDoc d;
    d.name = p.name;
    d.default_value = p.default_value;
    d.info.help = p.help;
    out.push_back(std::move(d));
  }
  return out;
}

const std::vector<MetricInfo>& registry() {
  static const std::vector<MetricInfo> table = {
      {"gt", "ground-truth", "soft precision/recall/F1 vs positive/negative/overall GT, eq. 17 maps (Sec. 4, F.3, G.3)",
       "higher is better (all variants)", docs_from_infos(gt_params()),
       [](lab::Options& o, const MetricSetup&) { return make<GroundTruthMetric>(GroundTruthMetric::Params::from_options(o)); }},
      {"faithfulness-test", "ground-truth", "pass/fail of Definition 2.1 / eq. 2: mean F1 >= gamma (Sec. 2, 4)",
       "higher is better (f1-*, pass-*)", docs_from_infos(faithfulness_params()),
       [](lab::Options& o, const MetricSetup&) { return make<FaithfulnessTest>(FaithfulnessTest::Params::from_options(o)); }},
      {"insertion", "perturbation", "AUC of the target score while inserting pixels by attribution (G.4; modulo F.4)",
       "higher is better (auc, auc-modulo)", docs_from_infos(insertion_deletion_params()),
       [](lab::Options& o, const MetricSetup& s) {
         return make<InsertionDeletion>(InsertionDeletion::Kind::kInsertion, InsertionDeletion::Params::from_options(o, s));
       }},
      {"deletion", "perturbation", "AUC of the target score while deleting pixels by attribution (G.4; modulo F.4)",
       "lower is better (auc, auc-modulo)", docs_from_infos(insertion_deletion_params()),
       [](lab::Options& o, const MetricSetup& s) {
         return make<InsertionDeletion>(InsertionDeletion::Kind::kDeletion, InsertionDeletion::Params::from_options(o, s));
       }},
      {"sensitivity-n", "perturbation", "Pearson of output change vs summed attribution over N (G.5; modulo F.5)",
       "higher is better (mean, mean-modulo)", docs_from_infos(sensitivity_params()),
       [](lab::Options& o, const MetricSetup& s) { return make<SensitivityN>(SensitivityN::Params::from_options(o, s)); }},
  };
  return table;
}

}  // namespace experiments
