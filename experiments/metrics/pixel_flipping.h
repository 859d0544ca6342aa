/// @file pixel_flipping.h
/// @brief Pixel Flipping (Samek et al. 2016) as the unified study of evaluation metrics analyses
/// it (unified-study-of-evaluation-metrics, Sec. 6.2, App. E): metric "pixel-flipping".
///
/// Pixels (all channels) are replaced cumulatively, `pixels-per-step` at a time, in the order of
/// `order`: attribution = most relevant first (descending channel-summed attribution, ties by
/// ascending pixel index, as perturbation.h orders), or random = a uniformly random permutation
/// from the sample's stream (the paper's random-masking benchmark, Fig. 4; it ignores the map).
/// The replaced value is `replacement`: zero (the paper's zeros baseline) or noise (uniform in
/// [0, noise-high) per pixel and channel, noise-high derived from the data's input maximum; the
/// paper's random-noise baseline). With P = H·W pixels and n_k pixels replaced after step k, the
/// curve has the points x_k = n_k / P and
///   indicator = score:    y_k = f_t(x^(k)), the target's logit (default, Sec. 6.2.1: "the
///                         indicator should be the change in predicted score") or probability;
///   indicator = accuracy: y_k = 1 if the predicted label of x^(k) is the target, else 0 (the
///                         indicator App. E shows to be ill-posed even for linear models).
/// Row: the trapezoid AUC of the curve on [0, 1], lower-is-better (a faster decay is better).
/// Variant "auc", with "-accuracy" appended for indicator=accuracy and "-random" for order=random.
/// Network evaluation: one cumulative path per sample on the incremental engine (PathEvaluator;
/// exact, batched, no full forward per step where the network has a spatial prefix).
/// Tested in tests/experiments/test_metrics_unified.cpp (App. E's counterexample exactly).
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "experiments/engine/incremental.h"
#include "experiments/engine/perturbation.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// Values a flipped pixel takes in the unified study's metrics.
enum class FlipReplacement { kZero, kNoise };
enum class FlipOrder { kAttribution, kRandom };
enum class FlipIndicator { kScore, kAccuracy };

/// The C×H×W image the flipped pixels take: zeros, or uniform noise in [0, high) drawn from
/// the stream (sample_seed, seed).
lab::Tensor flip_replacement(FlipReplacement kind, double high, const lab::Tensor& image, uint64_t sample_seed,
                             uint64_t seed);

/// `-p replacement=zero|noise` and `-p noise-high=X|auto` of the flipping metrics: the kind and
/// `high` of flip_replacement (auto: the data's input maximum, resolved when the metric is made).
/// A schema part (lab::Schema::with); `source` is where the metric's paper uses them.
template <class P>
auto flip_replacement_params(FlipReplacement P::*replacement, std::optional<double> P::*noise_high,
                             std::string source) {
  return [replacement, noise_high, source = std::move(source)](lab::Schema<P>& s) {
    s.choice("replacement", replacement, {{FlipReplacement::kZero, "zero"}, {FlipReplacement::kNoise, "noise"}},
             {.help = "value of a flipped pixel: zero, or uniform noise in [0, noise-high)", .source = source});
    s.field("noise-high", noise_high,
            {.range = lab::above(0), .help = "upper end of replacement=noise", .derived = "the input maximum"});
  };
}

/// The settings both flipping metrics have (pixel-flipping, reference-pixel-flipping): the
/// value a flipped pixel takes, the score read, the step and the random stream. Each metric's
/// schema declares their keys in its own order, with its own help and sources (the parts take
/// the metric's Params explicitly: `flip_replacement_params<Params>(&Params::replacement, ...)`).
struct FlipSettings {
  FlipReplacement replacement = FlipReplacement::kZero;
  /// Unset: the data's input maximum (255 RGB, 1 modulo).
  std::optional<double> noise_high;
  OutputKind output = OutputKind::kLogit;
  int64_t pixels_per_step = 1;
  uint64_t seed = 0;
  void resolve(const MetricSetup& setup) {
    if (!noise_high && setup.input_max) noise_high = *setup.input_max;
  }
};

/// The settings of PixelFlipping (`-p`; PixelFlipping::Params).
struct PixelFlippingParams : FlipSettings {
  FlipOrder order = FlipOrder::kAttribution;
  FlipIndicator indicator = FlipIndicator::kScore;
  static const lab::Schema<PixelFlippingParams>& schema();
};

class PixelFlipping final : public MetricWith<PixelFlippingParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "pixel-flipping"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override { return {{variant(), Direction::kLowerIsBetter}}; }
  static std::vector<Variant> all_variants();
  /// The curve of one sample (x: 1×C×H×W or C×H×W, attr: H×W).
  std::vector<CurvePoint> curve(const Context& context, const lab::Tensor& x, const float* attr, int64_t target,
                                const std::string& id, uint64_t seed) const;

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;

 private:
  std::string variant() const;
};

}  // namespace experiments
