#include "experiments/metrics/reference_pixel_flipping.h"

#include <algorithm>
#include <cmath>

#include "experiments/metrics/curve.h"
#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"
#include "lab/core/random.h"

namespace experiments {

std::vector<int64_t> reference_order(const float* attr, int64_t n, int64_t reference, lab::Rng& rng) {
  LAB_CHECK(reference >= 1 && reference <= n, "reference {} of {} pixels", reference, n);
  std::vector<int64_t> order = attribution_order(attr, n);
  order.resize(static_cast<size_t>(reference));
  for (int64_t i = reference - 1; i > 0; --i)
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(rng.uniform_int(0, i))]);
  return order;
}

const lab::Schema<ReferencePixelFlippingParams>& ReferencePixelFlippingParams::schema() {
  using Params = ReferencePixelFlippingParams;
  static const auto s =
      lab::Schema<Params>()
          .field("reference", &Params::reference,
                 {.range = [] {
                   lab::Range r = lab::between(0, 1);
                   r.min_open = true;
                   return r;
                 }(),
                  .help = "N/P: share of the most relevant pixels the flipped ones are drawn from",
                  .source = "unified study Sec. 6.2.3, Fig. 6: N = 15k..30k of 50k pixels"})
          .with(flip_replacement_params<Params>(&Params::replacement, &Params::noise_high, "unified study Fig. 4, 6"))
          .with(score_output_param<Params>(&Params::output, "score read: the target logit, or its probability",
                                           "unified study Fig. 6(b)"))
          .with(pixels_per_step_param<Params>(&Params::pixels_per_step, "step of n, the number of flipped pixels"))
          .with(seed_param<Params>(&Params::seed, "with each sample's seed, selects the random subsets and noise"));
  return s;
}

MetricOutput ReferencePixelFlipping::evaluate_batch(const Context& context, const Batch& batch) const {
  const lab::Network& net = *context.net;
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  const int64_t reference = std::clamp<int64_t>(std::llround(params_.reference * static_cast<double>(hw)), 1, hw);
  const OutputReader reader(net, params_.output);
  const PathEvaluator evaluator = path_evaluator(context, reader.end());
  return score_samples(context, batch.size(), [&](int64_t i, MetricOutput& slot) {
    const size_t si = static_cast<size_t>(i);
    const lab::Tensor image = batch.x.slice(i, i + 1).reshaped(batch.x.sample_shape());
    lab::Rng rng(lab::derive_seed(batch.seeds[si], params_.seed), 2);
    PerturbationPath path;
    path.start = image;
    path.source = flip_replacement(params_.replacement, params_.noise_high.value_or(context.input_max), image,
                                   batch.seeds[si], params_.seed);
    path.order = reference_order(batch.attr.data() + i * hw, hw, reference, rng);
    path.step_ends = uniform_steps(reference, params_.pixels_per_step);
    const lab::Tensor outputs = evaluator.run(path);
    const int64_t k = outputs.dim(1);
    add_auc_curve(slot, path_curve(path, hw, batch.ids[si], "auc", [&](int64_t s) {
                    return reader.score(outputs.sample(s), k, batch.target[si]);
                  }));
  });
}

}  // namespace experiments
