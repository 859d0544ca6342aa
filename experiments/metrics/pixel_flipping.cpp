#include "experiments/metrics/pixel_flipping.h"

#include <algorithm>
#include <numeric>

#include "experiments/metrics/curve.h"
#include "experiments/metrics/param_parts.h"
#include "lab/core/error.h"
#include "lab/core/random.h"

namespace experiments {

lab::Tensor flip_replacement(FlipReplacement kind, double high, const lab::Tensor& image, uint64_t sample_seed,
                             uint64_t seed) {
  const lab::Shape shape = image.rank() == 4 ? image.sample_shape() : image.shape();
  lab::Tensor out(shape, 0.0f);
  if (kind == FlipReplacement::kNoise) {
    if (!(high > 0.0)) lab::fail_parameter("-p noise-high={} must be above 0", high);
    lab::Rng rng(lab::derive_seed(sample_seed, seed), 0);
    for (float& v : out.values()) v = static_cast<float>(rng.uniform(0.0, high));
  }
  return out;
}

const lab::Schema<PixelFlippingParams>& PixelFlippingParams::schema() {
  using Params = PixelFlippingParams;
  static const auto s =
      lab::Schema<Params>()
          .choice("order", &Params::order, {{FlipOrder::kAttribution, "attribution"}, {FlipOrder::kRandom, "random"}},
                  {.help = "attribution: most relevant first; random: the random-masking control",
                   .source = "unified study Sec. 6.2, Fig. 4"})
          .with(flip_replacement_params<Params>(&Params::replacement, &Params::noise_high,
                                                "unified study Sec. 6.2.3, Fig. 4 (zeros and random-noise baselines)"))
          .with(score_output_param<Params>(&Params::output, "score read: the target logit, or its probability",
                                           "unified study Sec. 6.2: the predicted score f(x)t"))
          .choice("indicator", &Params::indicator,
                  {{FlipIndicator::kScore, "score"}, {FlipIndicator::kAccuracy, "accuracy"}},
                  {.help = "curve of the target score, or of 1[predicted label = target]",
                   .source = "unified study Sec. 6.2.1, App. E"})
          .with(pixels_per_step_param<Params>(&Params::pixels_per_step, "pixels flipped per step", "Samek et al. 2016"))
          .with(seed_param<Params>(&Params::seed, "with each sample's seed, selects the random order and noise"));
  return s;
}

std::string PixelFlipping::variant() const {
  std::string v = "auc";
  if (params_.indicator == FlipIndicator::kAccuracy) v += "-accuracy";
  if (params_.order == FlipOrder::kRandom) v += "-random";
  return v;
}

std::vector<Variant> PixelFlipping::all_variants() {
  return {{"auc", Direction::kLowerIsBetter},
          {"auc-accuracy", Direction::kLowerIsBetter},
          {"auc-random", Direction::kLowerIsBetter},
          {"auc-accuracy-random", Direction::kLowerIsBetter}};
}

std::vector<CurvePoint> PixelFlipping::curve(const Context& context, const lab::Tensor& x, const float* attr,
                                             int64_t target, const std::string& id, uint64_t seed) const {
  const lab::Network& net = *context.net;
  const lab::Tensor image = x.rank() == 4 ? x.reshaped(x.sample_shape()) : x;
  const int64_t hw = image.dim(1) * image.dim(2);
  const OutputReader reader(net, params_.output);
  const bool accuracy = params_.indicator == FlipIndicator::kAccuracy;
  const PathEvaluator evaluator = path_evaluator(context, accuracy ? net.size() : reader.end());

  PerturbationPath path;
  path.start = image;
  path.source = flip_replacement(params_.replacement, params_.noise_high.value_or(context.input_max), image, seed,
                                 params_.seed);
  if (params_.order == FlipOrder::kAttribution) {
    path.order = attribution_order(attr, hw);
  } else {
    path.order.resize(static_cast<size_t>(hw));
    std::iota(path.order.begin(), path.order.end(), int64_t{0});
    lab::Rng rng(lab::derive_seed(seed, params_.seed), 1);
    for (int64_t i = hw - 1; i > 0; --i)
      std::swap(path.order[static_cast<size_t>(i)], path.order[static_cast<size_t>(rng.uniform_int(0, i))]);
  }
  path.step_ends = uniform_steps(hw, params_.pixels_per_step);
  const lab::Tensor outputs = evaluator.run(path);
  const int64_t k = outputs.dim(1);
  return path_curve(path, hw, id, variant(), [&](int64_t s) {
    return accuracy ? (predicted_label(context, outputs.sample(s), k) == target ? 1.0 : 0.0)
                    : reader.score(outputs.sample(s), k, target);
  });
}

MetricOutput PixelFlipping::evaluate_batch(const Context& context, const Batch& batch) const {
  const int64_t hw = batch.attr.dim(1) * batch.attr.dim(2);
  return score_samples(context, batch.size(), [&](int64_t i, MetricOutput& slot) {
    const size_t si = static_cast<size_t>(i);
    add_auc_curve(slot, curve(context, batch.x.slice(i, i + 1), batch.attr.data() + i * hw, batch.target[si],
                              batch.ids[si], batch.seeds[si]));
  });
}

}  // namespace experiments
