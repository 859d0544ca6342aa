/// @file method.h
/// @brief The one interface every attribution method implements, and the method registry.
///
/// A method maps a batch of inputs x (N×C×H×W) and target output units to attribution maps
/// shaped like x (Captum's `attribute(x, target, baseline)`, Ancona et al. 2018's notation).
/// Methods work on any lab::Network and know nothing of the designed networks: what they need
/// to know of the task (the true background, the paper's hook layers, data for statistics,
/// designed segments) comes in a Context filled by the caller. Settings are the method's
/// Params (from `-p key=value`); execution knobs (chunk) never change a result.
/// Every method batches its network evaluations into chunks of at most `chunk` inputs.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>

#include "lab/core/options.h"
#include "lab/core/schema.h"
#include "lab/nn/network.h"

namespace attributions {

/// What the caller knows about the model and the task.
struct Context {
  const lab::Network* net = nullptr;
  /// The task's true background per input channel, in network input units ("IG*", "Occlusion*").
  std::vector<float> background;
  /// Named hook layers for methods that work at a layer, e.g. {"gradcam": "accumulator.layers.5",
  /// "iba": "accumulator.layers.7"}; a method's own `layer` parameter overrides these.
  std::map<std::string, std::string> layers;
  /// Inputs representative of the data (N×C×H×W), for statistics such as IBA's activation
  /// mean/std; may be empty when no method needs it.
  lab::Tensor reference_inputs;
  /// Execution knob: the largest batch of inputs per network call (bounds memory).
  int64_t batch = 32;
  /// Converts an 8-bit image (CV_8UC3 RGB or CV_8UC1) to a C×H×W network input, for baselines
  /// given as PNG files (`-p baseline=path.png`); may be empty, and then only .npy files are read.
  std::function<lab::Tensor(const cv::Mat&)> to_input;
};

/// One batch to explain.
struct Batch {
  lab::Tensor x;                ///< N×C×H×W
  std::vector<int64_t> target;  ///< output unit explained, per sample
  /// Per-sample seeds, so a sample's map does not depend on which batch it came in.
  std::vector<uint64_t> seeds;
  /// Optional designed segmentation per sample (CV_32S labels, 0 = background), for `oracle`.
  std::vector<cv::Mat> segments;
  /// Optional sample ids (the data directory's), for methods whose maps come from files.
  std::vector<std::string> ids;
  /// Optional N×H×W pixel ground truth (signed: +1, −1, 0), for the `ground-truth` control.
  lab::Tensor gt;
};

struct Result {
  lab::Tensor attr;  ///< N×C×H×W
  /// Completeness gap Σ attr − (f(x) − f(baseline)) per sample, for methods with completeness
  /// (Integrated Gradients, DeepLIFT, DeepSHAP); empty otherwise.
  std::vector<double> convergence_delta;
  /// Network evaluations spent (forward passes of one input; a forward+backward counts as 2).
  int64_t evaluations = 0;
};

class Method {
 public:
  virtual ~Method() = default;
  virtual std::string name() const = 0;
  /// Every parameter with its resolved value (written into maps.json and result rows).
  virtual nlohmann::json params() const = 0;
  virtual Result attribute(const Context& context, const Batch& batch) const = 0;
};

struct MethodInfo {
  std::string name;
  std::string summary;  ///< one line, with the paper it comes from
  /// The family reports group methods by: "gradient", "propagation", "perturbation",
  /// "optimisation" or "control" (registry.cpp sets it; methods added with add_method() may leave
  /// it empty, shown as "other").
  std::string family;
  std::vector<lab::ParamDoc> params;  ///< from the method's Params::schema()
  /// Reads the method's parameters from `-p` options (each read key is consumed).
  std::function<std::unique_ptr<Method>(lab::Options&)> make;
};

/// Every method, in the order `attrlab methods` lists them: the table of registry.cpp (adding a
/// method there is one line plus its own source file), then the methods given to add_method().
const std::vector<MethodInfo>& registry();
/// Registers a method defined outside the table (e.g. in one file of its own, from a static
/// initializer or at the start of main): it is then made by make_method and listed like the
/// others. Refuses (lab::Error) a name or parameter key not spelled as lower-case words joined by
/// '-', a name already registered, and an entry without a factory. Not for concurrent use with
/// registry(): register before methods are listed or made.
void add_method(MethodInfo info);
/// The named method with `params` applied; unknown names and unknown or impossible parameters
/// throw lab::Error (unknown names list the known ones).
std::unique_ptr<Method> make_method(const std::string& name, lab::Options& params);

/// The documented reduction to one value per pixel used by pixel-level metrics: the sum over
/// channels, N×C×H×W → N×H×W (Ancona et al. 2018 sum the channels; so do the paper's maps).
lab::Tensor reduce_channels(const lab::Tensor& attr);

}  // namespace attributions
