/// @file controls.h
/// @brief Control "methods": maps that ignore the network (App. F.2 and the metric papers'
/// controls), and post-processed maps of any method.
///
/// - `random`: every value (each channel of each pixel, like a uniform random tensor shaped like
///   the input) drawn from U(0, 1), from the sample's own seed (lab::Rng), so a map is
///   reproducible by seed and independent of the batch it came in.
/// - `constant`: every value `value` (paper: 1.0).
/// - `fake-cam`: every value `value` (1.0) except the top-left pixel, 0 in every channel — the
///   uninformed map of Poppi et al. 2021 used by saliency-false-sense-of-explainability (Sec. 5).
/// - `ground-truth`: the sample's designed pixel ground truth (+1, −1, 0) in channel 0, the other
///   channels 0, so the channel sum every metric reads is exactly the ground truth. It reads
///   Batch::gt, which the attribute stage fills from the data directory (a batch without it is
///   refused).
/// - `blurred` (`-p base=METHOD -p blur-sigma=5`, METHOD's own `-p` keys alongside): METHOD's maps,
///   each channel blurred by a Gaussian of standard deviation blur-sigma pixels (OpenCV
///   GaussianBlur, kernel side from sigma, reflected borders) — the coherency paper's way to make
///   sparse maps coarse (Sec. 4.4). Blurring is linear, so the channel sum is blurred too.
/// - `binarised` (`-p base=METHOD -p binarise-percentile=50`): 1 in channel 0 where METHOD's
///   channel-summed map is ≥ its binarise-percentile-th percentile (numpy's linear
///   interpolation), else 0; other channels 0 (coherency Sec. 4.5, App. E).
/// The wrappers are methods of their own, built the way SmoothGrad wraps a method (`base`,
/// default saliency), so they go wherever a method goes (`attrlab attribute`, study configs, the
/// methods table, the re-explaining metrics) without a second mechanism: the factory reads `base`
/// and its own key, then makes METHOD from the remaining `-p` keys through the registry (unknown
/// keys are refused as METHOD's). params() records METHOD's parameters under "base-params", as
/// SmoothGrad does. A wrapper cannot wrap itself, and a METHOD parameter named like the
/// wrapper's key is refused.
/// Only the wrapped method evaluates the network. Tested in test_gradient_methods.cpp (random,
/// constant) and test_controls.cpp (fake-cam, ground-truth, blurred, binarised).
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class RandomMap final : public Method {
 public:
  struct Params {
    static const lab::Schema<Params>& schema();  ///< no parameters
  };
  explicit RandomMap(Params params) : params_(params) {}
  std::string name() const override { return "random"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class ConstantMap final : public Method {
 public:
  struct Params {
    double value = 1.0;
    static const lab::Schema<Params>& schema();
  };
  explicit ConstantMap(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "constant"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class FakeCam final : public Method {
 public:
  struct Params {
    double value = 1.0;
    static const lab::Schema<Params>& schema();
  };
  explicit FakeCam(Params params) : params_(params) { Params::schema().validate(params_); }
  std::string name() const override { return "fake-cam"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class GroundTruthMap final : public Method {
 public:
  struct Params {
    static const lab::Schema<Params>& schema();  ///< no parameters
  };
  explicit GroundTruthMap(Params params) : params_(params) {}
  std::string name() const override { return "ground-truth"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// `blurred` and `binarised`: another method's maps, post-processed.
class PostProcessed final : public Method {
 public:
  enum class Kind { kBlurred, kBinarised };
  struct Params {
    std::string base = "saliency";
    double blur_sigma = 5.0;
    double binarise_percentile = 50.0;
  };
  struct BlurParams : Params {
    static const lab::Schema<Params>& schema();
  };
  struct BinariseParams : Params {
    static const lab::Schema<Params>& schema();
  };
  PostProcessed(Kind kind, Params params, std::unique_ptr<Method> inner);
  std::string name() const override { return kind_ == Kind::kBlurred ? "blurred" : "binarised"; }
  nlohmann::json params() const override;
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo blurred_info();
  static MethodInfo binarised_info();

 private:
  const lab::Schema<Params>& schema() const;
  Kind kind_;
  Params params_;
  std::unique_ptr<Method> inner_;
};

}  // namespace attributions
