/// @file environment.h
/// @brief An environment: a data generator with exact ground truth together with the
/// hand-weighted network that solves its task (paper Section 3 and App. D, F.1, G.1).
///
/// Each environment is a pure function of (options, seed, index): generate() draws sample
/// `index` from its own random stream (lab::Rng(seed, index), lab/core/random.h), so samples can be made in any order,
/// on any thread, with byte-identical results. Every option is recorded, resolved, by options(),
/// and environment_from_json() rebuilds the identical environment (data settings and network)
/// from that record, which is how every command rebuilds the network from a data directory.
///
/// Environments:
/// - "multi-color-sum" (App. G.1, datasets/multi_color_sum.h): RGB, one patch per target
///   colour, label = the colour with the most pixels; signed ground truth.
/// - "single-color-modulo" (App. F.1, datasets/single_color_modulo.h): gray, Bézier
///   patches of white pixels, label = (number of white pixels) mod N.
/// - the trap zoo (datasets/traps.h): "residual", "reused-relu", "max-pool", "batch-norm",
///   "saturation", "interaction", "position": gray, label = a designed integer score.
///
/// Ground truth. The *pixel* ground truth is the paper's: for multi-color-sum +1 on pixels of the
/// winning colour, -1 on pixels of the other target colours, 0 on background; for
/// single-color-modulo 1 on white pixels, 0 elsewhere. The *smooth* ground truth is the same
/// assignment made per patch region instead of per pixel: every pixel inside a patch's shape
/// (whether its Bernoulli draw gave the colour or the background) takes the value of the patch's
/// colour (+1 for the label's patch, -1 for the others; 1 for every modulo patch), background 0.
/// It is the granularity at which region methods (GradCAM, ExPerturb, IBA; paper Fig. 8) can be
/// right at all, and it contains the pixel ground truth: wherever the pixel ground truth is
/// non-zero, the smooth one has the same value.
/// Tested in test_environments.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "datasets/patches.h"
#include "lab/core/options.h"
#include "lab/core/schema.h"
#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace datasets {

/// One generated sample.
struct Sample {
  std::string id;             ///< zero-padded index, "000000"
  cv::Mat image;              ///< CV_8UC3 RGB (multi-color) or CV_8UC1 0/255 (modulo)
  lab::Tensor gt;             ///< H×W pixel ground truth (signed for multi-color)
  lab::Tensor gt_smooth;      ///< H×W smooth ground truth (per patch region)
  cv::Mat patches;            ///< CV_8UC1: 0 = background, k = inside the k-th patch (1-based)
  std::vector<Patch> layout;  ///< the k-th patch is layout[k-1]
  int64_t label = 0;
  std::vector<int64_t> counts;  ///< designed pixel count per class (modulo: one entry, the white pixels)
};

/// "000042" for index 42 (six digits, more if needed).
std::string sample_id(int64_t index);

class Environment {
 public:
  virtual ~Environment();
  virtual std::string name() const = 0;
  /// Every option (data and model), resolved, as accepted back by environment_from_json().
  virtual nlohmann::json options() const = 0;
  /// Sample `index` (>= 0) under `seed`: a pure function of (options, seed, index).
  virtual Sample generate(uint64_t seed, int64_t index) const = 0;
  /// The hand-weighted network of this environment (built anew on each call).
  virtual lab::Network build_network() const = 0;
  /// One input's shape, C×H×W.
  virtual lab::Shape input_shape() const = 0;
  /// Image side H = W.
  int64_t image_size() const { return input_shape().at(1); }
  /// Channels of the stored image: 3 (RGB) or 1 (gray).
  int image_channels() const { return static_cast<int>(input_shape().at(0)); }
  /// C×H×W network input of an image: RGB 0..255 (multi-color), gray with white = 1 (modulo).
  virtual lab::Tensor to_input(const cv::Mat& image) const = 0;
  /// The true background per channel in network units: (20, 20, 20) or (0).
  virtual std::vector<float> background() const = 0;
  /// Number of labels (0..num_classes()-1): N_C, or the modulus N.
  virtual int64_t num_classes() const = 0;
  /// Entries of Sample::counts.
  virtual int64_t num_counts() const = 0;
  /// The output unit that explains `label`: the label itself (multi-color), 0 (modulo).
  virtual int64_t target_output(int64_t label) const = 0;
  /// The label the network predicts from one output row: argmax, or the rounded output (modulo).
  virtual int64_t predicted_label(const float* output_row) const = 0;
  /// Layers named by the paper for methods on hidden layers (App. F.2, G.2):
  /// {"gradcam", ...}, {"iba", ...}.
  virtual std::map<std::string, std::string> default_layers() const;

  /// Number of patches per image.
  virtual int64_t num_patches() const = 0;
  /// The class of every pixel by its exact value, CV_32SC1: -1 background, else the index into
  /// Sample::counts (the target colour; 0 for a modulo white pixel). An image of the wrong size or
  /// channels, or with a pixel that is neither background nor a class colour, throws lab::Error
  /// saying where.
  virtual cv::Mat pixel_classes(const cv::Mat& image) const = 0;
  /// Pixel count per class (num_counts() entries), from pixel_classes (no network). The traps
  /// (datasets/traps.h) override it with their designed score, which is not a pixel count.
  virtual std::vector<int64_t> count_pixels(const cv::Mat& image) const;
  /// The label that follows from counts; throws lab::Error if none does (a tie).
  virtual int64_t label_from_counts(const std::vector<int64_t>& counts) const = 0;
  /// Pixel ground truth of an image with its label (see the file comment).
  virtual lab::Tensor ground_truth(const cv::Mat& image, int64_t label) const = 0;
  /// Smooth ground truth from the patch-region map and the label (see the file comment).
  virtual lab::Tensor smooth_ground_truth(const cv::Mat& patches, int64_t label) const = 0;
  /// The pixel class patch k (1-based) is drawn in: k-1 (multi-color), 0 (modulo).
  virtual int64_t patch_class(int64_t k) const = 0;
};

/// One registered environment: what `attrlab envs` lists and how `-o` options build it.
struct EnvironmentInfo {
  std::string name;
  std::string summary;                ///< one line: the task
  std::string source;                 ///< the paper's section
  std::vector<lab::ParamDoc> params;  ///< from the environment's Params::schema()
  /// Reads the environment's `-o` keys (each read key is marked) and builds it.
  std::function<std::unique_ptr<Environment>(lab::Options&)> make;
};

/// The entry of an environment class E constructed as E(E::Params), E::Params having a schema().
template <class E>
EnvironmentInfo environment_info(std::string name, std::string summary, std::string source) {
  EnvironmentInfo info;
  info.name = std::move(name);
  info.summary = std::move(summary);
  info.source = std::move(source);
  info.params = E::Params::schema().docs();
  info.make = [](lab::Options& options) -> std::unique_ptr<Environment> {
    return std::make_unique<E>(E::Params::schema().read(options));
  };
  return info;
}

/// Every environment, sorted by name (environment.cpp: one line per environment).
const std::vector<EnvironmentInfo>& environments();
/// Registered environment names, sorted.
std::vector<std::string> environment_names();
/// The environment `name` with settings read from `options` (data and model options); calls
/// options.finish(), so an unknown key is refused (the '_' spelling with the right key). Unknown
/// names throw lab::Error listing the names.
std::unique_ptr<Environment> make_environment(const std::string& name, lab::Options& options);
/// Rebuilds an environment from its options() record (e.g. a data directory's manifest).
std::unique_ptr<Environment> environment_from_json(const std::string& name, const nlohmann::json& options);

}  // namespace datasets
