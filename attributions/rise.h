/// @file rise.h
/// @brief RISE (Petsiuk et al. 2018, "Randomized input sampling for explanation of black-box
/// models"): the importance of a pixel is the expected output over random masks that keep it.
///
/// Mask i: an s_h × s_w grid of cells, each kept with probability p; upsampled with bilinear
/// interpolation (cv::resize, INTER_LINEAR) to (s_h + 1)·c_h × (s_w + 1)·c_w, with c the cell size
/// in pixels, and cropped to H × W at a random shift (δy, δx) uniform in [0, c_h) × [0, c_w), as
/// in the original. The masked input is M_i ⊙ x + (1 − M_i) ⊙ b (b = 0: the original's M ⊙ x),
/// and
///   S(λ) = 1 / (N · p) · Σ_i f_t(M_i ⊙ x + (1 − M_i) ⊙ b) · M_i(λ)      (Petsiuk et al., eq. 6),
/// spread evenly over the input channels.
///
/// Parameters: `masks` N (4000, the original's setting for ResNet-50), `p` (0.5), `cell-size`
/// (pixels, or `auto` = the original's s = 7 cells per side, c = ⌈H/7⌉; an explicit c gives
/// s = ⌈H/c⌉), `baseline` (zero | background | R,G,B | file), `output` probability (default: RISE
/// weighs masks by class probabilities) | logit. Mask i of sample n is a pure function of
/// (Batch::seeds[n], i), so maps do not depend on chunking or threads; masks are made chunk by
/// chunk and never all held at once. Cost: `masks` evaluations per sample.
/// Tested in test_perturbation_rise.cpp: masks lie in [0, 1], have mean p and are a pure
/// function of (seed, index); the map equals eq. 6 recomputed from the masks on a linear model
/// with a non-zero baseline; on a linear model with a smooth w ⊙ x the map correlates with w ⊙ x
/// above 0.9; chunk-size and thread-count invariance.
#pragma once

#include <optional>

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class Rise final : public Method {
 public:
  struct Params {
    int64_t masks = 4000;   ///< N >= 1
    double p = 0.5;         ///< probability of keeping a cell, in (0, 1]
    std::optional<int64_t> cell_size;  ///< pixels per cell side; nullopt = auto (⌈H/7⌉)
    Baseline baseline;
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit Rise(Params params);
  std::string name() const override { return "rise"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

  /// Mask `index` of a sample with seed `seed`, H×W (row-major) values in [0, 1]. Exposed for tests.
  std::vector<float> mask(uint64_t seed, int64_t index, int64_t height, int64_t width) const;

 private:
  Params params_;
};

}  // namespace attributions
