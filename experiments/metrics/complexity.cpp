#include "experiments/metrics/complexity.h"

#include <algorithm>
#include <cmath>

namespace experiments {

std::optional<double> entropy_complexity(const float* attr, int64_t n) {
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) total += std::abs(static_cast<double>(attr[j]));
  if (!(total > 0.0)) return std::nullopt;
  double h = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    const double p = std::abs(static_cast<double>(attr[j])) / total;
    if (p > 0.0) h -= p * std::log(p);
  }
  return h;
}

double effective_complexity(const float* attr, int64_t n, double eps) {
  double top = 0.0;
  for (int64_t j = 0; j < n; ++j) top = std::max(top, std::abs(static_cast<double>(attr[j])));
  if (!(top > 0.0)) return 0.0;
  int64_t count = 0;
  for (int64_t j = 0; j < n; ++j) count += std::abs(static_cast<double>(attr[j])) / top > eps;
  return static_cast<double>(count);
}

std::optional<double> gini_sparseness(const float* attr, int64_t n) {
  std::vector<double> a(static_cast<size_t>(n));
  double total = 0.0;
  for (int64_t j = 0; j < n; ++j) {
    a[static_cast<size_t>(j)] = std::abs(static_cast<double>(attr[j]));
    total += a[static_cast<size_t>(j)];
  }
  if (!(total > 0.0)) return std::nullopt;
  std::sort(a.begin(), a.end());
  double g = 0.0;
  for (int64_t i = 1; i <= n; ++i) g += static_cast<double>(2 * i - n - 1) * a[static_cast<size_t>(i - 1)];
  return g / (static_cast<double>(n) * total);
}

const lab::Schema<ComplexityParams>& ComplexityParams::schema() {
  using Params = ComplexityParams;
  static const lab::Schema<Params> s;
  return s;
}

const lab::Schema<SparsenessParams>& SparsenessParams::schema() {
  using Params = SparsenessParams;
  static const lab::Schema<Params> s;
  return s;
}

const lab::Schema<EffectiveComplexityParams>& EffectiveComplexityParams::schema() {
  using Params = EffectiveComplexityParams;
  static const auto s = lab::Schema<Params>().field(
      "eps", &Params::eps,
      {.range = lab::at_least(0), .help = "a feature counts when its max-normalised |attribution| exceeds eps",
       .source = "Nguyen and Martinez 2020; Quantus eps = 1e-5"});
  return s;
}

namespace {

template <class F>
MetricOutput per_map(const Batch& batch, F value) {
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  for (int64_t i = 0; i < batch.size(); ++i)
    if (const std::optional<double> v = value(batch.attr.data() + i * hw, hw))
      out.rows.push_back({batch.ids[static_cast<size_t>(i)], "value", *v});
  return out;
}

}  // namespace

MetricOutput Complexity::evaluate_batch(const Context&, const Batch& batch) const {
  return per_map(batch, entropy_complexity);
}

MetricOutput EffectiveComplexity::evaluate_batch(const Context&, const Batch& batch) const {
  return per_map(batch, [&](const float* a, int64_t n) -> std::optional<double> {
    return effective_complexity(a, n, params_.eps);
  });
}

MetricOutput Sparseness::evaluate_batch(const Context&, const Batch& batch) const {
  return per_map(batch, gini_sparseness);
}

}  // namespace experiments
