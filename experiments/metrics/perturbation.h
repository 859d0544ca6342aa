/// @file perturbation.h
/// @brief What the perturbation metrics (Insertion, Deletion, Sensitivity-N; paper App. B,
/// F.4–F.5, G.4–G.5) share: the replacement image, the output read from the network, the
/// ordering of pixels by attribution, the trapezoid AUC and the per-sample random streams.
///
/// Parameters (`-p`, shared by insertion, deletion and sensitivity-n):
/// - mode = standard | modulo. standard: the output score of the target (App. G.4–G.5).
///   modulo: App. F.4–F.5 — pixels are perturbed one at a time and a step is *correct* when the
///   predicted label changes between consecutive steps (the modulo result; Context::
///   predicted_label). Default: modulo when the data's environment is "single-color-modulo",
///   standard otherwise.
/// - replacement = constant (default) | background | blur | noise: the values a perturbed pixel
///   takes (Deletion, Sensitivity-N) or the canvas pixels are inserted into (Insertion).
///   constant: `value`, one number for every channel or one per channel (default 0, the paper's
///   (0, 0, 0)); background: the task's true background (Context::background); blur: the input
///   blurred by a Gaussian of standard deviation `blur_sigma` pixels (default 5; OpenCV
///   GaussianBlur, kernel side from sigma, reflected borders); noise: independent uniform values
///   in [noise_low, noise_high) per pixel and channel (default [0, input maximum): 255 for RGB,
///   1 for the modulo task), drawn from the sample's stream under `seed`.
/// - output = probability (default) | logit: the score of the target unit after the softmax, or
///   before it. When the network ends with a Softmax layer, probability reads its output and
///   logit the output of the layer before; otherwise logit reads the network output and
///   probability is the softmax of it (computed in double). Unused in modulo mode.
/// - seed (≥ 0, default 0): with each sample's seed, selects the random stream of the sample.
///
/// Ordering: pixels by descending attribution of the channel-summed map, ties by ascending pixel
/// index (h·W + w) — so a constant map perturbs in raster order.
/// Tested through test_metrics_perturbation.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/random.h"
#include "experiments/metrics/metric.h"
#include "lab/core/options.h"
#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace experiments {

enum class PerturbationMode { kStandard, kModulo };
enum class ReplacementKind { kConstant, kBackground, kBlur, kNoise };
enum class OutputKind { kProbability, kLogit };

struct PerturbationParams {
  PerturbationMode mode = PerturbationMode::kStandard;
  ReplacementKind replacement = ReplacementKind::kConstant;
  /// The constant: one value (all channels) or one per channel, network units.
  std::vector<double> value = {0.0};
  /// Gaussian standard deviation in pixels (> 0) for replacement=blur.
  double blur_sigma = 5.0;
  /// Range of replacement=noise, noise_low < noise_high.
  double noise_low = 0.0;
  /// Unset: Context::input_max at evaluation.
  std::optional<double> noise_high;
  OutputKind output = OutputKind::kProbability;
  uint64_t seed = 0;

  void validate() const;
  /// Reads mode, replacement, value, blur_sigma, noise_low, noise_high, output, seed.
  static PerturbationParams from_options(lab::Options& options, const MetricSetup& setup);
  nlohmann::json to_json() const;
};

/// The parameter table rows of the shared keys (for the registry listing).
std::vector<ParamInfo> perturbation_param_info();

/// The C×H×W replacement image for input `x` (C×H×W) of a sample with seed `sample_seed`.
lab::Tensor replacement_image(const PerturbationParams& params, const lab::Tensor& x, const Context& context,
                              uint64_t sample_seed);

/// How the score of the target is read from the network.
class OutputReader {
 public:
  OutputReader(const lab::Network& net, OutputKind kind);
  /// Layers to evaluate: [0, end()).
  size_t end() const { return end_; }
  /// The score of unit `target` from one output row of `k` values; a target outside [0, k)
  /// throws lab::Error.
  double score(const float* row, int64_t k, int64_t target) const;

 private:
  size_t end_ = 0;
  bool softmax_ = false;  ///< apply a softmax to the row before reading
};

/// The predicted label of an output row: Context::predicted_label, or argmax when none is given.
int64_t predicted_label(const Context& context, const float* row, int64_t k);

/// Pixel indices by descending attribution, ties by ascending index.
std::vector<int64_t> attribution_order(const float* attr, int64_t n);

/// Trapezoid area under the points (x_i, y_i), x increasing.
double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace experiments
