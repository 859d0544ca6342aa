#include "experiments/metrics/max_avg_sensitivity.h"

#include <algorithm>
#include <cmath>

#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"
#include "lab/core/random.h"

namespace experiments {

const lab::Schema<MaxAvgSensitivityParams>& MaxAvgSensitivityParams::schema() {
  using Params = MaxAvgSensitivityParams;
  static const auto s =
      lab::Schema<Params>()
          .field("samples", &Params::samples,
                 {.range = lab::at_least(1), .help = "Monte-Carlo draws x' in the ball, each re-explained",
                  .source = "Quantus: 200 samples (false-sense Sec. 5.3 uses Quantus)"})
          .field("radius", &Params::radius,
                 {.range = lab::above(0),
                  .help = "L-inf radius of the ball as a share of the input maximum (255 RGB, 1 modulo)",
                  .source = "Yeh et al. 2019; Quantus: bound 0.2"})
          .field("normalise", &Params::normalise,
                 {.help = "divide each map by its max |value| before the norm", .source = "Quantus normalise = True"})
          .with(seed_param(&Params::seed, "with each sample's seed, selects the perturbations"));
  return s;
}

MaxAvgSensitivity::MaxAvgSensitivity(Kind kind, Params params) : MetricWith(std::move(params)), kind_(kind) {}

namespace {

void normalise_by_max(float* a, int64_t n) {
  float top = 0.0f;
  for (int64_t p = 0; p < n; ++p) top = std::max(top, std::abs(a[p]));
  if (top > 0.0f)
    for (int64_t p = 0; p < n; ++p) a[p] /= top;
}

}  // namespace

MetricOutput MaxAvgSensitivity::evaluate_batch(const Context& context, const Batch& batch) const {
  if (!context.explain)
    lab::fail("metric {} re-explains perturbed inputs and needs the method that made the maps; it is known in "
              "`attrlab run` and in `attrlab evaluate` for maps whose maps.json names a registry method",
              name());
  MetricOutput out;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const double eps = params_.radius * context.input_max;
  const int64_t m = params_.samples;
  for (int64_t i = 0; i < batch.size(); ++i) {
    const size_t si = static_cast<size_t>(i);
    std::vector<float> base(batch.attr.data() + i * hw, batch.attr.data() + (i + 1) * hw);
    if (params_.normalise) normalise_by_max(base.data(), hw);
    lab::Shape shape = batch.x.shape();
    shape[0] = m;
    lab::Tensor xs(shape);
    const float* x = batch.x.sample(i);
    const int64_t numel = batch.x.sample_numel();
    lab::Rng rng(lab::derive_seed(batch.seeds[si], params_.seed), 3);
    std::vector<uint64_t> seeds(static_cast<size_t>(m));
    for (int64_t j = 0; j < m; ++j) {
      float* dst = xs.sample(j);
      for (int64_t e = 0; e < numel; ++e) dst[e] = x[e] + static_cast<float>(rng.uniform(-eps, eps));
      seeds[static_cast<size_t>(j)] = lab::derive_seed(batch.seeds[si], static_cast<uint64_t>(j));
    }
    const lab::Tensor maps = pixel_map(context.explain(xs, batch.ids[si], batch.target[si], seeds));
    if (maps.rank() != 3 || maps.dim(0) != m || maps.dim(1) * maps.dim(2) != hw)
      lab::fail("metric {}: the method returned maps of shape {} for {} inputs", name(), lab::to_string(maps.shape()), m);
    double top = 0.0, sum = 0.0;
    std::vector<float> other(static_cast<size_t>(hw));
    for (int64_t j = 0; j < m; ++j) {
      std::copy(maps.data() + j * hw, maps.data() + (j + 1) * hw, other.begin());
      if (params_.normalise) normalise_by_max(other.data(), hw);
      double sq = 0.0;
      for (int64_t p = 0; p < hw; ++p) {
        const double d = static_cast<double>(base[static_cast<size_t>(p)]) - other[static_cast<size_t>(p)];
        sq += d * d;
      }
      const double norm = std::sqrt(sq);
      top = std::max(top, norm);
      sum += norm;
    }
    out.rows.push_back({batch.ids[si], "value", kind_ == Kind::kMax ? top : sum / static_cast<double>(m)});
  }
  return out;
}

}  // namespace experiments
