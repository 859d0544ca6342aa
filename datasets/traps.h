/// @file traps.h
/// @brief The trap zoo's environments: gray images of Bernoulli(0.5) white pixels in patches, scored
/// by the designed networks of networks/traps.h, with the exact contribution of every pixel as
/// ground truth.
///
/// Generation of sample (seed, index), all draws from lab::Rng(seed, index): a layout
/// (datasets/patches.h; `patches` patches, default 4, sizes in [patch-min, patch-max], default
/// patch-max = size/4), then every patch pixel in row-major order draws Bernoulli(0.5): 1 is white
/// (stored 255, network input 1.0), 0 stays black. counts = {score(x)}, label = score(x): the
/// network's output, exactly (predicted label = the rounded output; classes 0..S²).
///
/// Ground truth. For every trap the score is a sum of per-pixel or per-cell terms, so each
/// pixel's exact contribution is defined without choice: its Shapley value in the game "pixels
/// present, absent pixels black" (equal to x_p·∂score/∂x_p summed along any path for the separable
/// traps). With w_p = 1 if pixel p is white, else 0:
/// - residual, reused-relu, batch-norm, saturation:  gt_p = w_p              (score = Σ_p w_p)
/// - max-pool:     gt_p = w_p / k(p), k(p) = white pixels of p's 2×2 cell  (score = Σ_cells [k > 0];
///                 the tied white pixels of a cell share its 1 equally)
/// - interaction:  gt_p = 1/2 if p and its pair partner (column 2j ↔ 2j+1) are both white, else 0
///                 (score = Σ_pairs w_{2j} w_{2j+1}; one white pixel of a pair contributes nothing)
/// - position:     gt_p = w_p if column(p) < S/2, else 0  (score = white pixels of the left half)
/// Σ_p gt_p = score for every image. The smooth ground truth applies the same rule to patch
/// regions: 1 on every patch-region pixel that can contribute (for position, those of the left
/// half), 0 elsewhere.
/// Options (-o): size (32, even), patches (4), patch-max (size/4), patch-min, gap, shapes, anchors.
/// Tested in tests/datasets/test_traps.cpp.
#pragma once

#include "datasets/environment.h"
#include "networks/traps.h"

namespace datasets {

struct TrapEnvParams {
  networks::TrapParams model;
  LayoutParams layout;

  /// The model's key (size) then the layout's with patches; refuses patches that cannot always fit.
  static const lab::Schema<TrapEnvParams>& schema();
  /// patch-max = size/4 and patch-min = max(4, patch-max/2) where not given.
  TrapEnvParams resolved() const;
};

class TrapEnvironment final : public Environment {
 public:
  using Params = TrapEnvParams;
  /// `trap` is one of networks::trap_names(); resolves and validates `params`.
  TrapEnvironment(std::string trap, TrapEnvParams params);
  const TrapEnvParams& params() const { return params_; }

  std::string name() const override { return trap_; }
  nlohmann::json options() const override { return Params::schema().to_json(params_); }
  Sample generate(uint64_t seed, int64_t index) const override;
  lab::Network build_network() const override;
  lab::Shape input_shape() const override { return {1, params_.model.size, params_.model.size}; }
  lab::Tensor to_input(const cv::Mat& image) const override;
  std::vector<float> background() const override { return {0.0f}; }
  int64_t num_classes() const override { return params_.model.size * params_.model.size + 1; }
  int64_t num_counts() const override { return 1; }
  int64_t target_output(int64_t) const override { return 0; }
  int64_t predicted_label(const float* output_row) const override;
  std::map<std::string, std::string> default_layers() const override;
  int64_t num_patches() const override { return params_.layout.patches; }
  cv::Mat pixel_classes(const cv::Mat& image) const override;
  /// {score(image)}: the designed score (the file comment), not a pixel count.
  std::vector<int64_t> count_pixels(const cv::Mat& image) const override;
  int64_t label_from_counts(const std::vector<int64_t>& counts) const override;
  lab::Tensor ground_truth(const cv::Mat& image, int64_t label) const override;
  lab::Tensor smooth_ground_truth(const cv::Mat& patches, int64_t label) const override;
  int64_t patch_class(int64_t) const override { return 0; }

  /// The designed score of a binary image, computed directly from its pixels (no network).
  int64_t score(const cv::Mat& image) const;

 private:
  std::string trap_;
  TrapEnvParams params_;
};

/// The registry entries of the seven traps (environment.cpp lists them).
std::vector<EnvironmentInfo> trap_environment_infos();

}  // namespace datasets
