#include "experiments/metrics/soundness.h"

#include <cmath>

#include "experiments/engine/perturbation.h"
#include "lab/core/error.h"

namespace experiments {

const lab::Schema<SoundnessParams>& SoundnessParams::schema() {
  using Params = SoundnessParams;
  static const auto s =
      lab::Schema<Params>()
          .field("mask-first", &Params::mask_first,
                 {.range = lab::between(0, 1), .help = "first mask ratio (share of pixels removed, lowest attribution first)",
                  .source = "Alg. 3: M = {0.99, ..., 0.01}; App. E text: 0.98"})
          .field("mask-last", &Params::mask_last,
                 {.range = lab::between(0, 1), .help = "last mask ratio of the schedule", .source = "Alg. 3"})
          .field("mask-step", &Params::mask_step,
                 {.range = lab::above(0), .help = "decrease of the mask ratio per step", .source = "App. E: 0.01"})
          .field("epsilon", &Params::epsilon,
                 {.range = lab::at_least(0), .help = "an increment is false when the indicator rises by less than this",
                  .source = "Alg. 3 line 16, App. E: 0.01"})
          .choice("false-if", &Params::false_if, {{FalseIf::kLess, "less"}, {FalseIf::kLessEqual, "less-equal"}},
                  {.help = "less: rise < epsilon (Alg. 3); less-equal: rise <= epsilon (reference code)",
                   .source = "Alg. 3 line 16"})
          .choice("update", &Params::update,
                  {{UpdateOrder::kUpdateThenRatio, "update-then-ratio"}, {UpdateOrder::kRatioThenUpdate, "ratio-then-update"}},
                  {.help = "update-then-ratio: a step's false increment counts in its own ratio (Alg. 3); "
                           "ratio-then-update: from the next step on (reference code)",
                   .source = "Alg. 3 lines 16-22"})
          .field("guard", &Params::guard,
                 {.help = "on: a step whose indicator is <= guard-level marks nothing false (reference code)",
                  .source = "reference code (its cls-result-start); not in Alg. 3"})
          .field("guard-level", &Params::guard_level,
                 {.help = "guard=on: the indicator level at or below which no increment is marked false",
                  .source = "reference code (its cls-result-start)"})
          .field("stabilizer", &Params::stabilizer,
                 {.range = lab::at_least(0), .help = "added to the ratio's denominator (reference code: 1e-6)",
                  .source = "Alg. 3 line 22"})
          .choice("indicator", &Params::indicator, indicator_names(),
                  {.help = "per-sample performance rho: target probability, logit, or prediction kept (0/1)",
                   .source = "Alg. 3 (accuracy); reference code's prediction-score mode",
                   .derived = "correct on single-color-modulo data, else probability"})
          .choice("removal", &Params::removal, removal_names(),
                  {.help = "removed pixels take the true background, or ROAD's noisy linear imputation",
                   .source = "Sec. 4.2; Rong et al. 2022"})
          .nested(&Params::imputation, ImputationParams::schema())
          .choice("predictive", &Params::predictive, predictive_names(),
                  {.help = "exact soundness: I = pixels with positive ground truth, or with non-zero ground truth",
                   .source = "Definitions 4.4, 4.8"})
          .check([](const Params& p, const std::string& flag) {
            if (p.mask_last > p.mask_first)
              lab::fail_value(flag, "mask-last", lab::option_text(p.mask_last),
                              "a number <= mask-first = " + lab::option_text(p.mask_first));
          });
  return s;
}

void SoundnessParams::resolve(const MetricSetup& setup) {
  imputation.resolve(setup);
  if (!indicator) indicator = setup.env == "single-color-modulo" ? Indicator::kCorrect : Indicator::kProbability;
}

std::vector<Variant> Soundness::all_variants() {
  return {{"soundness", Direction::kHigherIsBetter}, {"soundness-exact", Direction::kHigherIsBetter}};
}

std::vector<int64_t> Soundness::schedule(const Params& params, int64_t pixels) {
  std::vector<int64_t> kept;
  for (int64_t i = 0;; ++i) {
    const double m = params.mask_first - static_cast<double>(i) * params.mask_step;
    if (m < params.mask_last - 1e-9) break;
    const int64_t masked = static_cast<int64_t>(std::floor(static_cast<double>(pixels) * m + 1e-9));
    kept.push_back(pixels - std::clamp<int64_t>(masked, 0, pixels));
  }
  return kept;
}

std::vector<double> Soundness::estimate(const Params& params, const std::vector<double>& indicator,
                                        const std::vector<double>& increment_mass, const std::vector<double>& kept_mass) {
  LAB_CHECK(indicator.size() == increment_mass.size() && indicator.size() == kept_mass.size(), "{} {} {}",
            indicator.size(), increment_mass.size(), kept_mass.size());
  std::vector<double> q;
  double previous = 0.0;  // Alg. 3 line 6: s_0 = 0
  double false_mass = 0.0;
  auto ratio = [&](size_t i) {
    const double denominator = kept_mass[i] + params.stabilizer;
    return denominator > 0.0 ? (kept_mass[i] - false_mass) / denominator : 0.0;
  };
  for (size_t i = 0; i < indicator.size(); ++i) {
    const double rise = indicator[i] - previous;
    const bool is_false = params.false_if == FalseIf::kLess ? rise < params.epsilon : rise <= params.epsilon;
    const bool guarded = params.guard && indicator[i] <= params.guard_level;
    if (params.update == UpdateOrder::kRatioThenUpdate) q.push_back(ratio(i));
    if (is_false && !guarded) false_mass += increment_mass[i];
    if (params.update == UpdateOrder::kUpdateThenRatio) q.push_back(ratio(i));
    previous = indicator[i];
  }
  return q;
}

MetricOutput Soundness::evaluate_batch(const Context& context, const Batch& batch) const {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const std::vector<int64_t> kept = schedule(params_, hw);
  if (kept.empty()) return out;
  for (int64_t i = 0; i < batch.size(); ++i) {
    const size_t si = static_cast<size_t>(i);
    const float* attr = batch.attr.data() + i * hw;
    const std::vector<double> eta = positive_normalised(attr, hw);
    const std::vector<int64_t> order = attribution_order(attr, hw);
    const IndicatorValues rho = indicator_along(context, params_.removal, params_.imputation, params_.indicator.value_or(Indicator::kProbability),
                                                batch.x.slice(i, i + 1), order, kept, true, batch.target[si],
                                                batch.seeds[si]);

    // η mass of each increment and kept set; the predictive part of the kept set.
    const bool exact = !batch.gt.empty();
    const std::vector<double> phi =
        exact ? predictive_weights(batch.gt.data() + i * hw, hw, params_.predictive == Predictive::kPositive) : std::vector<double>();
    std::vector<double> increment(kept.size()), kept_mass(kept.size()), exact_q(kept.size());
    double mass = 0.0, predictive_mass = 0.0;
    int64_t done = 0;
    for (size_t k = 0; k < kept.size(); ++k) {
      const double before = mass;
      for (; done < kept[k]; ++done) {
        const int64_t p = order[static_cast<size_t>(done)];
        mass += eta[static_cast<size_t>(p)];
        if (exact && phi[static_cast<size_t>(p)] > 0.0) predictive_mass += eta[static_cast<size_t>(p)];
      }
      // A schedule never shrinks the kept set; a repeated count adds nothing.
      increment[k] = mass - before;
      kept_mass[k] = mass;
      exact_q[k] = mass > 0.0 ? predictive_mass / mass : 0.0;
    }
    const std::vector<double> q = estimate(params_, rho.values, increment, kept_mass);

    const std::string& id = batch.ids[si];
    double sum = 0.0, sum_exact = 0.0;
    for (size_t k = 0; k < kept.size(); ++k) {
      const double x = static_cast<double>(kept[k]) / static_cast<double>(hw);
      out.curves.push_back({id, "soundness", x, q[k]});
      if (exact) out.curves.push_back({id, "soundness-exact", x, exact_q[k]});
      out.curves.push_back({id, "indicator", x, rho.values[k]});
      sum += q[k];
      sum_exact += exact_q[k];
    }
    const double steps = static_cast<double>(kept.size());
    out.rows.push_back({id, "soundness", sum / steps});
    if (exact) out.rows.push_back({id, "soundness-exact", sum_exact / steps});
  }
  return out;
}

}  // namespace experiments
