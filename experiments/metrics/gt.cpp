#include "experiments/metrics/gt.h"

#include <cmath>

#include "lab/core/error.h"

namespace experiments {

std::string gt_kind_name(GtKind kind) {
  switch (kind) {
    case GtKind::kPositive: return "positive";
    case GtKind::kNegative: return "negative";
    case GtKind::kOverall: return "overall";
  }
  return "";
}

std::string gt_suffix(bool smooth) { return smooth ? "-smooth" : ""; }

PrecisionRecall soft_precision_recall(const float* attr, const float* gt, int64_t n, GtKind kind) {
  double overlap = 0.0, attr_mass = 0.0, gt_mass = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    double a = attr[j], g = gt[j];
    switch (kind) {
      case GtKind::kPositive:
        a = std::max(a, 0.0);
        g = std::max(g, 0.0);
        break;
      case GtKind::kNegative:
        a = -std::min(a, 0.0);
        g = -std::min(g, 0.0);
        break;
      case GtKind::kOverall:
        a = std::abs(a);
        g = std::abs(g);
        break;
    }
    overlap += a * g;
    attr_mass += a;
    gt_mass += g;
  }
  PrecisionRecall out;
  out.defined = gt_mass > 0.0;
  if (!out.defined) return out;
  out.precision = attr_mass > 0.0 ? overlap / attr_mass : 0.0;
  out.recall = overlap / gt_mass;
  const double sum = out.precision + out.recall;
  out.f1 = sum > 0.0 ? 2.0 * out.precision * out.recall / sum : 0.0;
  return out;
}

const lab::Schema<GroundTruthMetricParams>& GroundTruthMetricParams::schema() {
  using Params = GroundTruthMetricParams;
  static const auto s = lab::Schema<Params>().choice(
      "ground-truth", &Params::ground_truth,
      {{GtSource::kPixel, "pixel"}, {GtSource::kSmooth, "smooth"}, {GtSource::kBoth, "both"}},
      {.help = "which ground truth: per pixel, per patch region (smooth), or both", .source = "Sec. 4, App. F.3"});
  return s;
}

namespace {

std::vector<bool> smooth_flags(GtSource source) {
  switch (source) {
    case GtSource::kPixel: return {false};
    case GtSource::kSmooth: return {true};
    case GtSource::kBoth: return {false, true};
  }
  return {};
}

}  // namespace

std::vector<Variant> GroundTruthMetric::variants() const {
  std::vector<Variant> out;
  for (bool smooth : smooth_flags(params_.ground_truth))
    for (GtKind kind : kGtKinds)
      for (const char* q : {"precision", "recall", "f1"})
        out.push_back({std::string(q) + "-" + gt_kind_name(kind) + gt_suffix(smooth), Direction::kHigherIsBetter});
  return out;
}

std::vector<Variant> GroundTruthMetric::all_variants() {
  return GroundTruthMetric(Params{.ground_truth = GtSource::kBoth}).variants();
}

std::vector<std::pair<const lab::Tensor*, bool>> select_ground_truth(const Batch& batch, GtSource source,
                                                                     const std::string& metric) {
  std::vector<std::pair<const lab::Tensor*, bool>> out;
  for (bool smooth : smooth_flags(source)) {
    const lab::Tensor& g = smooth ? batch.gt_smooth : batch.gt;
    if (g.empty())
      lab::fail("metric {} needs the {} ground truth, which the data does not provide", metric,
                smooth ? "smooth" : "pixel");
    out.emplace_back(&g, smooth);
  }
  return out;
}

MetricOutput GroundTruthMetric::evaluate_batch(const Context&, const Batch& batch) const {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  for (int64_t i = 0; i < batch.size(); ++i)
    for (auto [g, smooth] : select_ground_truth(batch, params_.ground_truth, name()))
      for (GtKind kind : kGtKinds) {
        const PrecisionRecall pr = soft_precision_recall(batch.attr.data() + i * hw, g->data() + i * hw, hw, kind);
        if (!pr.defined) continue;
        const std::string suffix = "-" + gt_kind_name(kind) + gt_suffix(smooth);
        const std::string& id = batch.ids[static_cast<size_t>(i)];
        out.rows.push_back({id, "precision" + suffix, pr.precision});
        out.rows.push_back({id, "recall" + suffix, pr.recall});
        out.rows.push_back({id, "f1" + suffix, pr.f1});
      }
  return out;
}

}  // namespace experiments
