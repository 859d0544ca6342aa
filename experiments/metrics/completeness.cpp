#include "experiments/metrics/completeness.h"

#include <algorithm>

#include "experiments/engine/perturbation.h"
#include "lab/core/error.h"

namespace experiments {

const lab::Schema<CompletenessParams>& CompletenessParams::schema() {
  using Params = CompletenessParams;
  static const auto s =
      lab::Schema<Params>()
          .field("thresholds", &Params::thresholds,
                 {.range = lab::between(0, 1), .help = "attribution thresholds, relative to the map's maximum",
                  .source = "Alg. 4: T = {0.9, ..., 0.1}"})
          .choice("removed", &Params::removed,
                  {{ThresholdRule::kAbove, "above"}, {ThresholdRule::kAtOrAbove, "at-or-above"}},
                  {.help = "above: remove a > t*max (Alg. 2, 4); at-or-above: a >= t*max (App. F: [t, 1])",
                   .source = "Alg. 4 line 8; App. F"})
          .choice("indicator", &Params::indicator, indicator_names(),
                  {.help = "per-sample performance rho: target probability, logit, or prediction kept (0/1)",
                   .source = "Alg. 4 (accuracy)"})
          .choice("removal", &Params::removal, removal_names(),
                  {.help = "removed pixels take the true background, or ROAD's noisy linear imputation",
                   .source = "Sec. 4.2; Rong et al. 2022"})
          .nested(&Params::imputation, ImputationParams::schema())
          .choice("predictive", &Params::predictive, predictive_names(),
                  {.help = "exact completeness: phi = positive ground truth, or |ground truth|",
                   .source = "Definitions 4.4, 4.9"})
          .check([](const Params& p, const std::string& flag) {
            if (p.thresholds.empty()) lab::fail_value(flag, "thresholds", "", "one or more numbers in [0, 1]");
          });
  return s;
}

std::vector<Variant> Completeness::all_variants() {
  return {{"completeness", Direction::kHigherIsBetter},
          {"completeness-normalised", Direction::kHigherIsBetter},
          {"completeness-exact", Direction::kHigherIsBetter}};
}

std::vector<Variant> Completeness::variants() const {
  std::vector<Variant> out = all_variants();
  if (params_.removal != RemovalKind::kBackground) out.erase(out.begin() + 1);
  return out;
}

std::vector<int64_t> Completeness::removed_counts(const Params& params, const float* attr, int64_t n) {
  double top = 0.0;
  for (int64_t p = 0; p < n; ++p) top = std::max(top, static_cast<double>(attr[p]));
  std::vector<int64_t> counts;
  for (double t : params.thresholds) {
    int64_t count = 0;
    if (top > 0.0) {  // the guard: no positive attribution, nothing removed
      const double cut = t * top;
      for (int64_t p = 0; p < n; ++p) {
        const double a = attr[p];
        count += params.removed == ThresholdRule::kAbove ? a > cut : a >= cut;
      }
    }
    counts.push_back(count);
  }
  return counts;
}

MetricOutput Completeness::evaluate_batch(const Context& context, const Batch& batch) const {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const bool normalised = params_.removal == RemovalKind::kBackground;
  for (int64_t i = 0; i < batch.size(); ++i) {
    const size_t si = static_cast<size_t>(i);
    const float* attr = batch.attr.data() + i * hw;
    const std::vector<int64_t> order = attribution_order(attr, hw);
    std::vector<int64_t> counts = removed_counts(params_, attr, hw);
    if (normalised) counts.push_back(hw);  // s_∅: every pixel removed
    const IndicatorValues rho = indicator_along(context, params_.removal, params_.imputation, params_.indicator,
                                                batch.x.slice(i, i + 1), order, counts, false, batch.target[si],
                                                batch.seeds[si]);
    const size_t nt = params_.thresholds.size();
    const double empty = normalised ? rho.values[nt] : 0.0;
    const bool has_normalised = normalised && rho.original != empty;

    std::vector<double> phi;
    double total = 0.0;
    if (!batch.gt.empty()) {
      phi = predictive_weights(batch.gt.data() + i * hw, hw, params_.predictive == Predictive::kPositive);
      for (double v : phi) total += v;
    }
    const bool has_exact = total > 0.0;

    const std::string& id = batch.ids[si];
    double sum = 0.0, sum_normalised = 0.0, sum_exact = 0.0;
    for (size_t k = 0; k < nt; ++k) {
      const double t = params_.thresholds[k];
      const double drop = rho.original - rho.values[k];
      out.curves.push_back({id, "completeness", t, drop});
      sum += drop;
      if (has_normalised) {
        const double v = drop / (rho.original - empty);
        out.curves.push_back({id, "completeness-normalised", t, v});
        sum_normalised += v;
      }
      if (has_exact) {
        double removed = 0.0;
        for (int64_t r = 0; r < counts[k]; ++r) removed += phi[static_cast<size_t>(order[static_cast<size_t>(r)])];
        out.curves.push_back({id, "completeness-exact", t, removed / total});
        sum_exact += removed / total;
      }
    }
    const double n = static_cast<double>(nt);
    out.rows.push_back({id, "completeness", sum / n});
    if (has_normalised) out.rows.push_back({id, "completeness-normalised", sum_normalised / n});
    if (has_exact) out.rows.push_back({id, "completeness-exact", sum_exact / n});
  }
  return out;
}

}  // namespace experiments
