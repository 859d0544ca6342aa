/// @file lime.h
/// @brief LIME (Ribeiro et al. 2016, "Why should I trust you?"; paper Section 4.2, App. G.2, K):
/// a weighted linear surrogate of f_t over superpixels switched on and off.
///
/// The image is cut into M superpixels (segmentation.h; quickshift by default, App. G.2). A
/// coalition z ∈ {0,1}^M keeps superpixel k where z_k = 1 and replaces it by the baseline where
/// z_k = 0. As the reference implementation (lime_image) does: sample 0 is z = 1 (the image
/// itself), the other `samples` − 1 draw every z_k from Bernoulli(0.5); each is weighted by
///   π(z) = sqrt(exp(−d(z)² / width²)),   d(z) = cosine distance(z, 1) = 1 − sqrt(|z| / M)
/// (d = 1 for z = 0); and the surrogate g(z) = β₀ + Σ_k β_k z_k is fitted by weighted ridge
/// regression with an unpenalised intercept (scikit-learn's Ridge with sample weights):
///   β = argmin Σ_i π_i (f_t(z_i) − β₀ − β·z_i)² + α ‖β‖²,
/// solved in closed form on the π-weighted centred data with Eigen. Every pixel of superpixel k
/// gets β_k (spread evenly over the input channels, so the channel sum is β_k).
///
/// Parameters: segmentation and its own keys (segmentation.h); `samples` (1000, lime_image's
/// num_samples); `kernel-width` (0.25, lime_image's); `alpha` (1, Ridge's default); `baseline`
/// for switched-off superpixels (zero | background | R,G,B | file; Captum's default is zero);
/// `output` probability (default: LIME explains class probabilities) | logit.
/// Random draws: per sample from Batch::seeds (lab::Rng, lab/core/random.h), so a map depends only on its
/// sample and seed. Cost: one evaluation per distinct coalition, at most `samples` (and 2^M) per
/// sample, in chunks of Context::batch (a coalition drawn again reuses its value).
/// Tested in test_perturbation_lime.cpp: weighted_ridge is exact on additive data without
/// penalty and equals the normal equations with one; with the `oracle` segmentation on the
/// multi-color-sum network the unpenalised logit surrogate is exactly logit_scale × the winning
/// count on the winning patch and 0 elsewhere, and by default (probability, ridge) the winning
/// patch has the largest weight, the other colours negative ones and the background none;
/// reproducible by seed, a sample's map independent of its batch; chunk-size and thread-count
/// invariance; every segmentation key listed, another algorithm's key refused.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"
#include "attributions/segmentation.h"

namespace attributions {

class Lime final : public Method {
 public:
  struct Params {
    SegmentationParams segmentation;
    int64_t samples = 1000;     ///< coalitions per sample (the first is the image itself), >= 2
    double kernel_width = 0.25;  ///< width of the exponential kernel on cosine distance, > 0
    double alpha = 1.0;         ///< ridge penalty, >= 0
    Baseline baseline;          ///< value of switched-off superpixels
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit Lime(Params params);
  std::string name() const override { return "lime"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// Weighted ridge regression with an unpenalised intercept: rows z (count × features, 0/1),
/// targets y, weights w > 0, penalty alpha. Returns β (features values); `intercept` receives β₀.
/// Exposed for tests.
std::vector<double> weighted_ridge(const std::vector<uint8_t>& z, int64_t features, const std::vector<double>& y,
                                   const std::vector<double>& w, double alpha, double* intercept = nullptr);

}  // namespace attributions
