#include "experiments/metrics/faithfulness.h"

#include "lab/core/error.h"

namespace experiments {

const lab::Schema<FaithfulnessTestParams>& FaithfulnessTestParams::schema() {
  using Params = FaithfulnessTestParams;
  static const auto s = lab::Schema<Params>()
                            .field("gamma", &Params::gamma,
                                   {.range = lab::between(0, 1),
                                    .help = "threshold γ: a method passes when the mean F1 is >= gamma",
                                    .source = "Definition 2.1, eq. 2"})
                            .nested(&Params::gt, GroundTruthMetric::Params::schema());
  return s;
}

namespace {

std::vector<std::string> kind_suffixes(GtSource source) {
  std::vector<std::string> out;
  std::vector<bool> flags;
  if (source != GtSource::kSmooth) flags.push_back(false);
  if (source != GtSource::kPixel) flags.push_back(true);
  for (bool smooth : flags)
    for (GtKind kind : kGtKinds) out.push_back(gt_kind_name(kind) + gt_suffix(smooth));
  return out;
}

}  // namespace

std::vector<Variant> FaithfulnessTest::variants() const {
  std::vector<Variant> out;
  for (const std::string& s : kind_suffixes(params_.gt.ground_truth)) {
    out.push_back({"f1-" + s, Direction::kHigherIsBetter});
    out.push_back({"pass-" + s, Direction::kHigherIsBetter});
  }
  return out;
}

std::vector<Variant> FaithfulnessTest::all_variants() {
  return FaithfulnessTest(Params{.gt = {.ground_truth = GtSource::kBoth}}).variants();
}

MetricOutput FaithfulnessTest::evaluate_batch(const Context&, const Batch& batch) const {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  for (int64_t i = 0; i < batch.size(); ++i)
    for (auto [g, smooth] : select_ground_truth(batch, params_.gt.ground_truth, name()))
      for (GtKind kind : kGtKinds) {
        const PrecisionRecall pr = soft_precision_recall(batch.attr.data() + i * hw, g->data() + i * hw, hw, kind);
        if (!pr.defined) continue;
        const std::string suffix = gt_kind_name(kind) + gt_suffix(smooth);
        const std::string& id = batch.ids[static_cast<size_t>(i)];
        out.rows.push_back({id, "f1-" + suffix, pr.f1});
        out.rows.push_back({id, "pass-" + suffix, pr.f1 >= params_.gamma ? 1.0 : 0.0});
      }
  return out;
}

std::vector<MetricRow> FaithfulnessTest::aggregate(const std::vector<MetricRow>& rows) const {
  std::vector<MetricRow> out;
  for (const std::string& s : kind_suffixes(params_.gt.ground_truth)) {
    double sum = 0.0;
    int64_t count = 0;
    for (const MetricRow& r : rows)
      if (r.variant == "f1-" + s && r.sample != kAllSamples) {
        sum += r.value;
        ++count;
      }
    if (count == 0) continue;
    const double mean = sum / static_cast<double>(count);
    out.push_back({kAllSamples, "f1-" + s, mean});
    out.push_back({kAllSamples, "pass-" + s, mean >= params_.gamma ? 1.0 : 0.0});
  }
  return out;
}

AgnosticVerdict model_agnostic_verdict(const std::vector<ModelScore>& scores, double gamma) {
  if (scores.empty()) lab::fail_parameter("the faithfulness test needs at least one model");
  AgnosticVerdict verdict;
  for (const ModelScore& s : scores)
    if (s.mean_f1 < gamma) {
      verdict.pass = false;
      verdict.failed_on.push_back(s.model);
    }
  return verdict;
}

}  // namespace experiments
