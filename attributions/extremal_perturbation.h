/// @file extremal_perturbation.h
/// @brief Extremal perturbations (Fong, Patrick & Vedaldi 2019, "Understanding deep networks via
/// extremal perturbations and smooth masks"; paper Section 4.4, App. F.2, G.2): the smooth mask
/// of a fixed area a that best preserves the target output, found by gradient ascent.
///
/// The preservation game, as the authors' TorchRay implementation plays it:
/// - Perturbation: a pyramid of L = `levels` blurred copies y_l = g_{σ_l} * x (cv::GaussianBlur,
///   σ_l = `blur-sigma`·(1 − l/(L−1)), so y_{L−1} = x); a mask value m ∈ [0, 1] picks the level
///   m·(L−1) with linear interpolation between the two nearest: m = 1 keeps x, m = 0 blurs fully.
/// - Smooth masks (their Sec. 3.3): parameters p ∈ [0, 1] on a grid of `step` pixels, ⌈H/step⌉ ×
///   ⌈W/step⌉, all 1 at start; the mask at pixel u is the smooth max (softmax-weighted mean,
///   coldness 20) over the nearby parameters of k(‖u − u_j‖/σ)·p_j, with
///   k(z) = exp(−2·max(z − ½, 0)²) and σ = `mask-sigma`, clamped to [0, 1]; the mask is made on
///   a margin of σ around the image and cropped.
/// - Area constraint (their eq. 4): R_a(m) = ‖vecsort(m) − r_a‖² / |m| with r_a the vector of
///   (1 − a)|m| zeros then ones, over the whole mask (margin included).
/// - Energy E = −f_t(Φ(x; m)) + λ R_a(m), λ = `area-weight` (300) multiplied by
///   `area-weight-growth` (1.0035) after every iteration; `jitter` flips the perturbed input
///   horizontally on even iterations.
/// - Optimiser: SGD with momentum and dampening `momentum` (0.9) and learning rate `lr` (0.01) on
///   p, clamped to [0, 1] after each step, as TorchRay. Its steps are proportional to the
///   gradient, which matters here: on the lab's networks ∂f/∂x is nonzero only within one
///   intensity unit of a designed colour, i.e. for mask values within about 1e-3 of 1, so the
///   reward's gradient lives only where the mask is still almost 1. Adam, which moves every
///   parameter by about its learning rate whatever the size of its gradient, lets the area term
///   push the whole mask out of that band in its first steps and never sees the reward.
/// The map is the mask of the last iteration (in [0, 1], positive only), spread evenly over the
/// input channels. The images of a batch are optimised together: one forward+backward call (in
/// chunks of Context::chunk) per iteration for the whole batch.
/// Defaults: area 0.1 and Gaussian blur of σ = 21 (App. F.2, G.2), levels 8, step 7, mask-sigma 21,
/// 800 iterations (TorchRay's). Cost: 2 evaluations per iteration per sample.
/// Tested in test_perturbation_extremal.cpp: the mask generator's analytic gradient matches finite
/// differences; the area loss is zero exactly at its reference, equals a hand-computed value and
/// has the finite-difference gradient; on a linear model that counts the mass of one square the
/// mask keeps that square and drops an equal distractor; on easy (solid-patch) images of the
/// multi-color-sum network the mask recalls at least half of the winning colour's patch
/// (positive smooth ground truth); chunk-size and thread-count invariance.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class ExtremalPerturbation final : public Method {
 public:
  struct Params {
    double area = 0.1;               ///< preserved fraction a of the mask, in (0, 1)
    double blur_sigma = 21.0;        ///< σ of the strongest blur, > 0
    int64_t levels = 8;              ///< pyramid levels L, >= 2
    int64_t step = 7;                ///< parameter grid step in pixels, >= 1
    double mask_sigma = 21.0;        ///< smoothing σ of the mask in pixels, > 0
    int64_t iterations = 800;        ///< >= 1
    double lr = 0.01;                ///< SGD learning rate, > 0
    double momentum = 0.9;           ///< SGD momentum and dampening, in [0, 1)
    double area_weight = 300.0;      ///< λ at the first iteration, > 0
    double area_weight_growth = 1.0035;  ///< λ factor per iteration, >= 1
    bool jitter = true;
    Output output = Output::kLogit;
    void validate() const;
    static Params from_options(lab::Options& options);
    nlohmann::json to_json() const;
  };
  explicit ExtremalPerturbation(Params params);
  std::string name() const override { return "extremal-perturbation"; }
  nlohmann::json params() const override { return params_.to_json(); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// The smooth-mask generator of Fong et al. for one image size: maps parameters p (grid_h × grid_w)
/// to the full mask (out_h × out_w, margin included) and carries gradients back. Exposed for tests.
class SmoothMask {
 public:
  SmoothMask(int64_t height, int64_t width, int64_t step, double sigma);
  int64_t grid_h() const { return grid_h_; }
  int64_t grid_w() const { return grid_w_; }
  int64_t out_h() const { return out_h_; }
  int64_t out_w() const { return out_w_; }
  /// Top-left offset of the image inside the full mask.
  int64_t margin() const { return margin_; }
  /// Full mask, clamped to [0, 1]; `unclamped` (if given) receives the values before clamping.
  std::vector<double> generate(const std::vector<double>& p, std::vector<double>* unclamped = nullptr) const;
  /// Gradient w.r.t. p of a loss whose gradient w.r.t. the full clamped mask is `grad_mask`.
  std::vector<double> backward(const std::vector<double>& p, const std::vector<double>& unclamped,
                               const std::vector<double>& grad_mask) const;

 private:
  /// Row uy of the full mask, every pixel's taps together: per column block of `step` pixels
  /// (they share their taps' parameters) the parameter index (−1 outside the grid) and value
  /// p_j (0 outside); per pixel (out_w × taps, pixel-major) a_k = w_k·p_j and
  /// exp(coldness·(a_k − max a)), the exponentials computed in one vectorised call (cv::exp).
  struct RowTaps {
    std::vector<double> a, e, value;
    std::vector<int64_t> index;
  };
  void row_taps(const std::vector<double>& p, int64_t uy, RowTaps& row) const;
  int64_t height_, width_, step_;
  int64_t grid_h_, grid_w_, out_h_, out_w_, margin_, padding_, side_, taps_;
  /// Kernel weight of each tap; it depends only on the pixel's phase (uy mod step, ux mod step):
  /// step × step × taps.
  std::vector<double> weights_;
};

/// The area loss R_a(m) = mean((sort(m) − r_a)²) and its gradient w.r.t. m. Exposed for tests.
double area_loss(const std::vector<double>& mask, double area, std::vector<double>* grad);

}  // namespace attributions
