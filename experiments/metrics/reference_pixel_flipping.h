/// @file reference_pixel_flipping.h
/// @brief Reference Pixel Flipping (unified-study-of-evaluation-metrics, Sec. 6.2.3, Fig. 5–6,
/// Proposition 1, App. F): metric "reference-pixel-flipping".
///
/// The N = round(reference · P) most relevant pixels (descending channel-summed attribution,
/// ties by ascending index) are the reference set I*_N. A uniformly random permutation of I*_N
/// is drawn from the sample's stream; its first n pixels I_{n,N} are a uniformly random n-subset
/// of I*_N, and they are flipped (all channels) to the replacement (zero or uniform noise, as in
/// pixel-flipping) for n = 0, s, 2s, …, N (s = pixels-per-step). Proposition 1: the expected Dice
/// similarity 2|A∩B|/(|A|+|B|) between I_{n,N} and the top-n set I*_n is n/N — so N = n is
/// Pixel Flipping itself and N = P random masking; in between, the attribution's information is
/// kept while masked pixels are isolated (the paper's confound).
/// Curve: x = n / P, y = the target's logit (default) or probability after flipping I_{n,N};
/// row "auc" = trapezoid area over [0, N/P], lower-is-better (faster decay).
/// Network evaluation: the nested subsets form one cumulative path on the incremental engine.
/// Tested in tests/experiments/test_metrics_unified.cpp (Dice n/N by Monte Carlo).
#pragma once

#include "experiments/metrics/pixel_flipping.h"

namespace experiments {

/// A random permutation of the `reference` most relevant of `n` pixels (attribution_order's
/// first `reference`), drawn from `rng`: its first k entries are a uniformly random k-subset of
/// the reference set.
std::vector<int64_t> reference_order(const float* attr, int64_t n, int64_t reference, lab::Rng& rng);

/// The settings of ReferencePixelFlipping (`-p`; ReferencePixelFlipping::Params).
struct ReferencePixelFlippingParams : FlipSettings {
  /// N / P: the share of pixels in the reference set, in (0, 1].
  double reference = 0.5;
  static const lab::Schema<ReferencePixelFlippingParams>& schema();
};

class ReferencePixelFlipping final : public MetricWith<ReferencePixelFlippingParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "reference-pixel-flipping"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"auc", Direction::kLowerIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
