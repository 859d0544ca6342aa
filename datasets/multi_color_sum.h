/// @file multi_color_sum.h
/// @brief The multi-color-sum environment (paper Section 3, App. G.1): RGB images of one
/// Bernoulli patch per target colour on a (20, 20, 20) background; label = the colour with the
/// most pixels; signed ground truth. The network is networks::build_multi_color_sum.
///
/// Generation of sample (seed, index), all draws from lab::Rng(seed, index) (lab/core/random.h):
/// 1. layout (datasets/patches.h): N_C = `colors` patches, shapes uniform in `shapes` (default
///    triangle, square, circle), sizes uniform in [patch_min, patch_max], placed uniformly
///    without overlap, `gap` pixels apart; patch k (1-based) carries target colour k-1
///    (networks::palette()[k-1]);
/// 2. every pixel of patch k, in row-major order, draws Bernoulli(0.5): 1 leaves the background,
///    0 sets colour k-1 (App. G.1);
/// 3. counts[c] = pixels of colour c; label = argmax counts. If the maximum is shared, steps 1-2
///    are drawn again from the continuing stream, so every label is unique (the network's
///    argmax is then the label).
/// Ground truth (environment.h): pixel +1 on the label's colour, -1 on the other colours,
/// 0 background; smooth: the same per patch region.
///
/// Options (-o): the model's (networks/multi_color_sum.h: size, colors, background, redundant,
/// ude, ude-strength, accumulator, seed, logit-scale, kernels) and the layout's: patch-max
/// (default size/4), patch-min (default max(4, patch-max/2)), gap (2), shapes
/// (triangle,square,circle), anchors (5, for bezier shapes). Patches that cannot always fit are
/// refused (LayoutParams::validate).
/// Tested in test_environments.cpp.
#pragma once

#include "datasets/environment.h"
#include "networks/multi_color_sum.h"

namespace datasets {

struct MultiColorSumEnvParams {
  networks::MultiColorSumParams model;
  LayoutParams layout;  ///< layout.patches = model.colors (not an option)

  /// The model's keys then the layout's (patch-max derived as size/4); its check refuses patches
  /// that cannot always fit.
  static const lab::Schema<MultiColorSumEnvParams>& schema();
  /// patches = colors, and the sizes left to derive: patch-max = size/4, patch-min = max(4, patch-max/2).
  MultiColorSumEnvParams resolved() const;
};

class MultiColorSumEnvironment final : public Environment {
 public:
  using Params = MultiColorSumEnvParams;
  /// Resolves and validates `params`.
  explicit MultiColorSumEnvironment(MultiColorSumEnvParams params);
  const MultiColorSumEnvParams& params() const { return params_; }

  std::string name() const override { return "multi-color-sum"; }
  nlohmann::json options() const override { return Params::schema().to_json(params_); }
  Sample generate(uint64_t seed, int64_t index) const override;
  lab::Network build_network() const override;
  lab::Shape input_shape() const override;
  lab::Tensor to_input(const cv::Mat& image) const override;
  std::vector<float> background() const override;
  int64_t num_classes() const override { return params_.model.colors; }
  int64_t num_counts() const override { return params_.model.colors; }
  int64_t target_output(int64_t label) const override { return label; }
  int64_t predicted_label(const float* output_row) const override;
  std::map<std::string, std::string> default_layers() const override;
  int64_t num_patches() const override { return params_.model.colors; }
  cv::Mat pixel_classes(const cv::Mat& image) const override;
  int64_t label_from_counts(const std::vector<int64_t>& counts) const override;
  lab::Tensor ground_truth(const cv::Mat& image, int64_t label) const override;
  lab::Tensor smooth_ground_truth(const cv::Mat& patches, int64_t label) const override;
  int64_t patch_class(int64_t k) const override { return k - 1; }

 private:
  MultiColorSumEnvParams params_;
  std::vector<networks::Rgb> colors_;
};

}  // namespace datasets
