#include "experiments/metrics/confidence_change.h"

#include <algorithm>
#include <cmath>

#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"

namespace experiments {

std::vector<float> minmax_mask(const float* attr, int64_t n) {
  const auto [lo, hi] = std::minmax_element(attr, attr + n);
  std::vector<float> m(static_cast<size_t>(n), 1.0f);
  if (*hi > *lo)
    for (int64_t p = 0; p < n; ++p) m[static_cast<size_t>(p)] = (attr[p] - *lo) / (*hi - *lo);
  return m;
}

double percentile_of(const float* values, int64_t n, double percentile) {
  LAB_CHECK(n >= 1, "percentile of no values");
  std::vector<float> v(values, values + n);
  std::sort(v.begin(), v.end());
  const double rank = percentile / 100.0 * static_cast<double>(n - 1);
  const auto lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (rank - static_cast<double>(lo)) * (static_cast<double>(v[hi]) - v[lo]);
}

std::vector<float> percentile_mask(const float* attr, int64_t n, double percentile) {
  const double t = percentile_of(attr, n, percentile);
  std::vector<float> m(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) m[static_cast<size_t>(p)] = attr[p] >= t ? 1.0f : 0.0f;
  return m;
}

const lab::Schema<ConfidenceChangeParams>& ConfidenceChangeParams::schema() {
  using Params = ConfidenceChangeParams;
  static const auto s =
      lab::Schema<Params>()
          .choice("maps", &Params::maps,
                  {{ConfidenceMaps::kReal, "real"}, {ConfidenceMaps::kBinarised, "binarised"}, {ConfidenceMaps::kBoth, "both"}},
                  {.help = "mask from the min-max scaled map (real), the percentile-binarised map, or both",
                   .source = "coherency Sec. 3 eq. 1-2 (real), Sec. 4.5 and App. E (binarised)"})
          .field("percentile", &Params::percentile,
                 {.range = lab::between(0, 100),
                  .help = "maps=binarised: keep pixels at or above this percentile of the map",
                  .source = "coherency Sec. 4.5, Table 3: 50th percentile"})
          .with(score_output_param(&Params::output, "score F(.)c: the target's probability, or its logit",
                                   "coherency eq. 1; false-sense Sec. 4.1 (class probabilities)"));
  return s;
}

ConfidenceChange::ConfidenceChange(Kind kind, Params params) : MetricWith(std::move(params)), kind_(kind) {}

std::string ConfidenceChange::name() const {
  switch (kind_) {
    case Kind::kAverageDrop: return "average-drop";
    case Kind::kIncrease: return "increase-in-confidence";
    case Kind::kAverageGain: return "average-gain";
  }
  return "";
}

std::vector<Variant> ConfidenceChange::all_variants(Kind kind) {
  const Direction d = kind == Kind::kAverageDrop ? Direction::kLowerIsBetter : Direction::kHigherIsBetter;
  return {{"percent", d}, {"percent-binarised", d}};
}

std::vector<Variant> ConfidenceChange::variants() const {
  std::vector<Variant> all = all_variants(kind_);
  if (params_.maps == ConfidenceMaps::kReal) return {all[0]};
  if (params_.maps == ConfidenceMaps::kBinarised) return {all[1]};
  return all;
}

std::optional<double> ConfidenceChange::value(double y, double masked) const {
  switch (kind_) {
    case Kind::kAverageDrop: {
      const double drop = std::max(0.0, y - masked);
      if (drop == 0.0) return 0.0;  // also y = 0: nothing can drop
      if (y <= 0.0) return std::nullopt;  // a logit at or below 0: the ratio has no meaning
      return 100.0 * drop / y;
    }
    case Kind::kIncrease: return masked > y ? 100.0 : 0.0;
    case Kind::kAverageGain: {
      const double gain = std::max(0.0, masked - y);
      if (gain == 0.0) return 0.0;  // also y = 1: nothing can be gained
      if (y >= 1.0) return std::nullopt;  // a logit at or above 1: the ratio has no meaning
      return 100.0 * gain / (1.0 - y);
    }
  }
  return std::nullopt;
}

MetricOutput ConfidenceChange::evaluate_batch(const Context& context, const Batch& batch) const {
  const lab::Network& net = *context.net;
  const OutputReader reader(net, params_.output);
  const int64_t n = batch.size(), hw = batch.attr.dim(1) * batch.attr.dim(2), c = batch.x.dim(1);
  const std::vector<Variant> vs = variants();
  const int64_t per = 1 + static_cast<int64_t>(vs.size());  // the input, then one masked copy per variant
  lab::Shape shape = batch.x.shape();
  shape[0] = n * per;
  lab::Tensor inputs(shape, 0.0f);
  const int64_t m = batch.x.sample_numel();
  for (int64_t i = 0; i < n; ++i) {
    const float* x = batch.x.sample(i);
    const float* attr = batch.attr.data() + i * hw;
    std::copy(x, x + m, inputs.sample(i * per));
    for (size_t v = 0; v < vs.size(); ++v) {
      const std::vector<float> mask = vs[v].name == "percent" ? minmax_mask(attr, hw)
                                                               : percentile_mask(attr, hw, params_.percentile);
      float* dst = inputs.sample(i * per + 1 + static_cast<int64_t>(v));
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t p = 0; p < hw; ++p) dst[ch * hw + p] = x[ch * hw + p] * mask[static_cast<size_t>(p)];
    }
  }
  std::vector<double> scores(static_cast<size_t>(n * per));
  const int64_t step = std::max<int64_t>(1, context.batch);
  for (int64_t begin = 0; begin < n * per; begin += step) {
    const int64_t end = std::min(n * per, begin + step);
    const lab::Tensor y = net.forward_range(0, reader.end(), inputs.slice(begin, end));
    const int64_t k = y.sample_numel();
    for (int64_t j = begin; j < end; ++j)
      scores[static_cast<size_t>(j)] = reader.score(y.sample(j - begin), k, batch.target[static_cast<size_t>(j / per)]);
  }
  MetricOutput out;
  for (int64_t i = 0; i < n; ++i)
    for (size_t v = 0; v < vs.size(); ++v)
      if (const auto value = this->value(scores[static_cast<size_t>(i * per)],
                                         scores[static_cast<size_t>(i * per + 1) + v]))
        out.rows.push_back({batch.ids[static_cast<size_t>(i)], vs[v].name, *value});
  return out;
}

}  // namespace experiments
