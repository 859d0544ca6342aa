/// @file single_color_modulo.h
/// @brief The single-color-modulo environment (paper App. D, F.1): gray images of Bézier
/// patches of Bernoulli(0.5) white pixels on black; label = (number of white pixels) mod N.
/// The network is networks::build_single_color_modulo.
///
/// Generation of sample (seed, index), all draws from lab::Rng(seed, index) (lab/core/random.h):
/// 1. layout (datasets/patches.h): `patches` (default 4) patches, shape bezier (closed curves of
///    `anchors` cubic Bézier segments), sizes uniform in [patch_min, patch_max], placed uniformly
///    without overlap, `gap` pixels apart;
/// 2. every patch pixel, in row-major order, draws Bernoulli(0.5): 1 is white (stored 255, network
///    input 1.0), 0 stays black;
/// 3. counts = {s}, s = white pixels; label = s mod N (`modulus`).
/// Ground truth (environment.h): pixel 1 on white pixels, 0 elsewhere; smooth: 1 on every patch
/// region.
///
/// The modulo unit is exact for s <= U = max_input() (networks/single_color_modulo.h, 4,500 by
/// default). So that every image is inside the design, the options must guarantee
/// patches · patch_max² <= U (a patch's pixels lie in its patch_max×patch_max box); options that
/// do not are refused. Options (-o): the model's (size, modulus, accumulator, seed, max-count,
/// kernels) and the layout's: patches (4), patch-max (default min(size/4, ⌊√(U/patches)⌋): 33 at
/// 224, 16 at 64, 8 at 32), patch-min (max(4, patch-max/2)), gap (2), shapes (bezier), anchors (5).
/// Tested in test_environments.cpp.
#pragma once

#include "datasets/environment.h"
#include "networks/single_color_modulo.h"

namespace datasets {

struct SingleColorModuloEnvParams {
  networks::SingleColorModuloParams model;
  LayoutParams layout{.shapes = {ShapeKind::kBezier}};

  /// The model's keys then the layout's with patches (patch-max derived as below); its checks
  /// refuse patches that cannot always fit or could hold more white pixels than U.
  static const lab::Schema<SingleColorModuloEnvParams>& schema();
  /// The sizes left to derive: patch-max = min(size/4, ⌊√(U/patches)⌋), patch-min = max(4, patch-max/2).
  SingleColorModuloEnvParams resolved() const;
};

class SingleColorModuloEnvironment final : public Environment {
 public:
  using Params = SingleColorModuloEnvParams;
  /// Resolves and validates `params`.
  explicit SingleColorModuloEnvironment(SingleColorModuloEnvParams params);
  const SingleColorModuloEnvParams& params() const { return params_; }

  std::string name() const override { return "single-color-modulo"; }
  nlohmann::json options() const override { return Params::schema().to_json(params_); }
  Sample generate(uint64_t seed, int64_t index) const override;
  lab::Network build_network() const override;
  lab::Shape input_shape() const override;
  lab::Tensor to_input(const cv::Mat& image) const override;
  std::vector<float> background() const override { return {0.0f}; }
  int64_t num_classes() const override { return params_.model.modulus; }
  int64_t num_counts() const override { return 1; }
  int64_t target_output(int64_t) const override { return 0; }
  int64_t predicted_label(const float* output_row) const override;
  std::map<std::string, std::string> default_layers() const override;
  int64_t num_patches() const override { return params_.layout.patches; }
  cv::Mat pixel_classes(const cv::Mat& image) const override;
  int64_t label_from_counts(const std::vector<int64_t>& counts) const override;
  lab::Tensor ground_truth(const cv::Mat& image, int64_t label) const override;
  lab::Tensor smooth_ground_truth(const cv::Mat& patches, int64_t label) const override;
  int64_t patch_class(int64_t) const override { return 0; }

 private:
  SingleColorModuloEnvParams params_;
};

}  // namespace datasets
