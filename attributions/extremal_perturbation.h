/// @file extremal_perturbation.h
/// @brief Extremal perturbations (Fong, Patrick & Vedaldi 2019, "Understanding deep networks via
/// extremal perturbations and smooth masks"; paper Section 4.4, App. F.2, G.2): the smooth mask
/// of a fixed area a that best preserves the target output, found by gradient ascent.
///
/// The preservation game, as the authors' TorchRay implementation plays it:
/// - Perturbation: a pyramid of L = `levels` blurred copies y_l = g_{σ_l} * x (cv::GaussianBlur,
///   σ_l = `blur-sigma`·(1 − l/(L−1)), so y_{L−1} = x); a mask value m ∈ [0, 1] picks the level
///   m·(L−1) with linear interpolation between the two nearest: m = 1 keeps x, m = 0 blurs fully.
///   At m = 1 the interpolation is taken on the top segment [L−2, L−1] (same value, x), so the
///   derivative there is the one-sided (L−1)(y_{L−1} − y_{L−2}); TorchRay's floor index takes the
///   degenerate segment [L−1, L−1] and has no gradient at m = 1.
/// - Smooth masks (their Sec. 3.3): parameters p ∈ [0, 1] on a grid of `step` pixels, ⌈H/step⌉ ×
///   ⌈W/step⌉, all 1 at start; the mask at pixel u is the smooth max (softmax-weighted mean,
///   coldness 20) over the nearby parameters of k(‖u − u_j‖/σ)·p_j, with
///   k(z) = exp(−2·max(z − ½, 0)²) and σ = `mask-sigma`, clamped to [0, 1]; the mask is made on
///   a margin of σ around the image and cropped.
/// - Normalised to reach 1: TorchRay's smooth max is a softmax-weighted mean over the taps, below
///   their maximum, so with every parameter at 1 the mask is only about 0.985 inside the image
///   (at step 7 / σ 21 and at step 2 / σ 6 alike) and no mask can keep a pixel unperturbed. The
///   mask used is m(u) = min(1, S_u(p) / S_u(1)), S_u(1) being the smooth max at p ≡ 1: the
///   game starts from the unperturbed image (m ≡ 1, what p ≡ 1 means) and can preserve pixels
///   exactly. On natural images 1.5% of blur is nothing; on the lab's networks, whose colour
///   detectors respond only within one intensity unit of a designed colour, it moved every
///   pixel of a speckled patch (patch pixels next to background holes) off its colour, so the
///   reward had no gradient anywhere and the area loss alone, its ties broken by position,
///   shaped the mask: every map alike, its maximum on the same rows, wherever the object was.
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
/// chunks of Context::batch) per iteration for the whole batch.
/// Defaults: area 0.1 and Gaussian blur of σ = 21 (App. F.2, G.2), levels 8, step 7, mask-sigma 21,
/// 800 iterations (TorchRay's); these spatial scales are for 224×224 images. Cost: 2 evaluations
/// per iteration per sample; the mask and its gradient add about a tenth of that at 224×224
/// (bench/bench_perturbation.cpp).
/// Tested in test_perturbation_extremal.cpp: a mask pixel against TorchRay's definition computed
/// by hand; the mask generator's analytic gradient matches finite differences, and its float
/// build the double one; the area loss is zero exactly at its reference, equals a hand-computed
/// value and has the finite-difference gradient; on a linear model that counts the mass of one
/// square the mask keeps that square and drops an equal distractor; on easy (solid-patch) images
/// of the multi-color-sum network, wherever the winning patch lies, the mask recalls it and
/// weighs it several times more than the rest of the image; on the generated (speckled) images
/// of the default model the top 5% of each map lies largely on the winning colour, centred on
/// it, and maps of images with patches elsewhere differ (correlation < 0.5); chunk-size and
/// thread-count invariance.
#pragma once

#include <type_traits>
#include <vector>

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
    static const lab::Schema<Params>& schema();
  };
  explicit ExtremalPerturbation(Params params);
  std::string name() const override { return "extremal-perturbation"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// The smooth-mask generator of Fong et al. for one image size: maps parameters p ∈ [0, 1]
/// (grid_h × grid_w) to the full mask (out_h × out_w, margin included) and carries gradients
/// back. Computed in T: float in the method (as TorchRay), double in the gradient test.
///
/// The smooth max is shift-invariant, and every a = w·p lies in [0, 1], so each term is taken as
/// E = exp(c(a − 1)) ∈ [e^−c, 1] (c = 20) with no per-pixel maximum: pixel u's mask is
/// Σ a E / Σ E over its taps. Parameters outside the grid are 0 (TorchRay's zero padding): their
/// taps add e^−c to the denominator, counted once per pixel. Parameter j at grid (iy, ix) reaches
/// the pixels u with u − step·(iy, ix) in a square of span = side·step, and its kernel weight
/// depends only on that offset: one span × span weight patch for every parameter, which holds
/// few distinct weights (461 of 3969 at the defaults: the kernel is radial and flat near 0). So
/// the exponentials are taken once per parameter and distinct weight (cv::exp, in one block per
/// parameter row) and stored by parameter row, weight and parameter column, with zeros around
/// the grid. A mask row is split into its `step` phases (the columns u ≡ q mod step): within one
/// phase, consecutive pixels meet consecutive parameters of a parameter row at the same patch
/// offset (a tap), so a tap is one vector operation over the phase's columns with one weight and
/// no lookup per pixel; the zeros let every tap run over whole vectors (off the grid it adds ±0,
/// which changes no sum: none is ever −0). The forward holds a phase's Σ E and Σ a·E in registers over all its taps, in the order
/// parameter row, then parameter column; the backward holds a tap's two sums for a block of
/// parameter columns in registers over all the mask rows it meets (G and H stored by phase with
/// zeros around), then sums each parameter's patch columns in order. So, whatever the thread
/// count, every value gets the same operations in the same order as the generator of ca0ecf8
/// (byte-identical masks and gradients, test_perturbation_extremal_identity.cpp), the sums loaded
/// and stored once per phase (forward) or tap (backward) instead of at every tap: per call
/// about 0.4 (forward) and 0.25 (backward) of ca0ecf8's CPU at 64×64 (step 2, σ 6) and about
/// 0.6–0.8 and 0.5 at 224×224 (step 7, σ 21), where the forward's time goes to the loads of E
/// (about 9 × 32 rows of 48 values per mask row, from L2) (bench/bench_smooth_mask.cpp).
template <typename T>
class BasicSmoothMask {
 public:
  BasicSmoothMask(int64_t height, int64_t width, int64_t step, double sigma);
  int64_t grid_h() const { return grid_h_; }
  int64_t grid_w() const { return grid_w_; }
  int64_t out_h() const { return out_h_; }
  int64_t out_w() const { return out_w_; }
  /// Top-left offset of the image inside the full mask.
  int64_t margin() const { return margin_; }
  /// What the backward pass needs of a forward pass, and the scratch of both passes (kept so
  /// that an optimisation reusing one State allocates nothing per iteration).
  struct State {
    std::vector<double> p;
    std::vector<T> unclamped, den;  ///< the smooth max before clamping, and Σ E, per pixel
    std::vector<T> table;           ///< E per parameter and distinct weight (cv::exp's blocks)
    std::vector<T> by_class;        ///< the same per parameter row, distinct weight, parameter column (padded)
    std::vector<T> pf;              ///< p in T per parameter row, parameter column (padded)
    std::vector<T> g, h;            ///< scratch of the backward: G and H per mask row, phase, column
  };
  /// Full mask, clamped to [0, 1]; `state` (if given) receives what `backward` needs.
  std::vector<T> generate(const std::vector<double>& p, State* state = nullptr) const;
  /// The same into `mask`, reusing the buffers of `state` and `mask`.
  void generate(const std::vector<double>& p, State& state, std::vector<T>& mask) const;
  /// Gradient w.r.t. p of a loss whose gradient w.r.t. the full clamped mask is `grad_mask`.
  std::vector<double> backward(const State& state, const std::vector<T>& grad_mask) const;
  /// The same into `grad`, with the scratch of `state`.
  void backward(State& state, const std::vector<T>& grad_mask, std::vector<double>& grad) const;

 private:
  void backward(const State& state, const std::vector<T>& grad_mask, std::vector<T>& g, std::vector<T>& h,
                std::vector<double>& grad) const;
  /// E = exp(c(p_j·w − 1)) for every parameter j and distinct weight w: table[j·classes + k],
  /// and by_class[(iy·classes + k)·row_stride + pad + ix] (zeros in the padding); pf the same for p.
  void exponentials(const std::vector<double>& p, State& state) const;
  /// One tap of a phase: patch column t meets parameter column ix = k + d at phase column k.
  struct Tap {
    int64_t q, d, t;
  };
  int64_t height_, width_, step_;
  int64_t grid_h_, grid_w_, out_h_, out_w_, margin_, padding_, side_, span_, offset_;
  int64_t phase_len_;                   ///< columns per phase, ⌈out_w/step⌉ (phase q has fewer at the end)
  std::vector<T> patch_;                ///< span × span kernel weights
  std::vector<int32_t> class_;          ///< span × span: index of the weight among the distinct ones
  std::vector<T> weights_;              ///< the distinct weights
  std::vector<int64_t> in_rows_, in_cols_;  ///< per mask row/column: taps inside the grid
  std::vector<Tap> taps_;               ///< by phase, then d ascending (parameter column order)
  std::vector<int64_t> phase_taps_;     ///< phase q's taps: taps_[phase_taps_[q], phase_taps_[q + 1])
  int64_t lanes_;                       ///< phase_len_ rounded up to whole vectors
  int64_t gw_pad_;                      ///< grid_w_ rounded up to whole vectors
  int64_t pad_, row_stride_;            ///< by_class and pf rows: pad_ zeros, grid_w values, zeros
  std::vector<int64_t> tap_d_;          ///< per tap: d
  std::vector<int64_t> fwd_off_;        ///< per band row ρ, parameter row ky, tap: E's offset (class·row_stride + d)
  std::vector<T> fwd_w_;                ///< the same: the weight
  std::vector<int64_t> col_off_;        ///< per patch column t and row r: E's offset (class·row_stride)
  std::vector<T> col_w_;                ///< the same: the weight
  int64_t g_pad_, seg_;                 ///< G and H per mask row and phase: g_pad_ zeros, the columns, zeros (seg_)
  std::vector<int64_t> phase_cols_;     ///< per phase: its number of mask columns
  T outside_;                           ///< e^−c, the term of a tap outside the grid
};

using SmoothMask = BasicSmoothMask<float>;

/// The area loss R_a(m) = mean((sort(m) − r_a)²) and its gradient w.r.t. m. Only which values
/// fall among the (1 − a)|m| smallest matters (ties broken by position, as a stable sort), so
/// they are selected in linear time rather than sorted. Exposed for tests.
template <typename T>
double area_loss(const std::vector<T>& mask, double area, std::type_identity_t<std::vector<T>>* grad);

}  // namespace attributions
