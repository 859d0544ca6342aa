/// @file gradcam.h
/// @brief GradCAM (Selvaraju et al. 2017) and GradCAM++ (Chattopadhyay et al. 2018) at a named
/// layer (paper App. B.1.2, Section 4.4).
///
/// With A = the layer's output (N×K×h×w) and g = ∂f_t/∂A:
///   GradCAM:   α_k = (1/hw) Σ_ij g_kij,                          map = ReLU(Σ_k α_k A_k)
///   GradCAM++: a_kij = g² / (2g² + (Σ_ab A_kab) g³)  (0 where g = 0),
///              α_k = Σ_ij a_kij ReLU(g_kij),                      map = ReLU(Σ_k α_k A_k)
/// (GradCAM++'s closed form for an exponentiated score, written with first derivatives of f_t as
/// the authors' reference code does). The h×w map is resized to the input's H×W with OpenCV's
/// bilinear cv::resize (common.h: upsample_bilinear) and spread over the input channels (each
/// holds map / C), so the documented channel sum (reduce_channels) is exactly the GradCAM map.
///
/// Parameters:
/// - layer: the layer whose output is A; empty (default) = Context::layers["gradcam"], which the
///   environments set as the paper does: `accumulator.layers.5` (App. F.2, G.2). The layer must
///   output N×K×h×w.
/// - relu: on (default, the original method: positive evidence only) | off (signed map).
/// - output: logit (default: Selvaraju et al. take the class score before the softmax) |
///   probability.
/// Cost: one forward and a backward down to the layer per input.
/// Tested in test_gradient_methods.cpp: at a layer whose activations are known by design the
/// map is the designed one; upsampling is OpenCV's bilinear resize.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class GradCam final : public Method {
 public:
  struct Params {
    std::string layer;  ///< empty: Context::layers["gradcam"]
    bool relu = true;
    Output output = Output::kLogit;
    static const lab::Schema<Params>& schema();
  };
  /// plus_plus: GradCAM++ weights instead of GradCAM's.
  GradCam(Params params, bool plus_plus) : params_(std::move(params)), plus_plus_(plus_plus) {
    Params::schema().validate(params_);
  }
  std::string name() const override { return plus_plus_ ? "gradcam-plus-plus" : "gradcam"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo gradcam_info();
  static MethodInfo gradcam_plus_plus_info();

 private:
  Params params_;
  bool plus_plus_;
};

/// The h×w map of GradCAM (plus_plus = false) or GradCAM++ from one sample's activations A and
/// gradients g (both K×h×w), before the ReLU and upsampling. Exposed for the tests.
std::vector<double> gradcam_map(const float* activations, const float* gradients, int64_t channels, int64_t plane,
                                bool plus_plus);

}  // namespace attributions
