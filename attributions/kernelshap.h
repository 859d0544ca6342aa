/// @file kernelshap.h
/// @brief KernelSHAP (Lundberg & Lee 2017, Theorem 2; paper App. B.1.5): LIME's surrogate over
/// the same superpixels with the Shapley kernel, whose solution is the Shapley values of the
/// game v(S) = f_t(x with the superpixels outside S replaced by the baseline).
///
/// With M superpixels and |z| the size of coalition z, the Shapley kernel is
///   π(z) = (M − 1) / (C(M, |z|) · |z| · (M − |z|)),
/// infinite at z = 0 and z = 1; those two enter as the constraints φ₀ = v(∅) and
/// Σ_k φ_k = v(all) − v(∅) (local accuracy), eliminated exactly by substituting
/// φ_M = Δ − Σ_{k<M} φ_k into the weighted least squares
///   min Σ_z π(z) (v(z) − v(∅) − Σ_k φ_k z_k)².
/// - Exact: when all 2^M − 2 proper coalitions fit in `samples`, every one is evaluated with
///   its kernel weight, and the solution is the Shapley value exactly (Charnes et al. 1988;
///   Lundberg & Lee 2017).
/// - Sampled: otherwise `samples` coalitions are drawn from the kernel itself, size s with
///   probability ∝ (M − 1)/(s(M − s)) and then a uniform subset of that size, each with weight 1
///   (a Monte Carlo estimate of the same objective, consistent as samples grow); with `paired`
///   every draw is followed by its complement (the shap package's variance reduction).
/// The system is solved with Eigen's complete orthogonal decomposition (minimum-norm if a small
/// sample leaves it singular). Every pixel of superpixel k gets φ_k, spread evenly over the input
/// channels. Parameters as LIME's (segmentation keys, baseline, output) plus `samples` (2048,
/// near the shap package's 2M + 2048 for few superpixels) and `paired` (on).
/// Cost: one evaluation per distinct coalition, at most 2 + (2^M − 2 or `samples`) per sample, in
/// chunks of Context::batch (a coalition drawn again reuses its value).
/// Tested in test_perturbation_kernelshap.cpp: with all coalitions enumerated it equals the
/// Shapley values computed by brute force over all subsets (v(S) from the network) on nonlinear
/// models with five superpixels, with and without softmax; with sampling the error falls as the
/// number of samples grows; local accuracy Σφ = f(x) − f(baseline) holds in every case; the
/// regression is exact on an additive game from any spanning set; chunk-size and thread-count
/// invariance.
#pragma once

#include "attributions/common.h"
#include "attributions/method.h"
#include "attributions/segmentation.h"

namespace attributions {

class KernelShap final : public Method {
 public:
  struct Params {
    SegmentationParams segmentation;
    int64_t samples = 2048;  ///< proper coalitions per sample (all of them if 2^M − 2 ≤ samples), >= 2
    bool paired = true;      ///< sample each coalition together with its complement
    Baseline baseline;       ///< value of switched-off superpixels
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit KernelShap(Params params);
  std::string name() const override { return "kernelshap"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

/// Shapley values from coalition values under the Shapley kernel: rows z of `coalitions`
/// (count × features, proper coalitions only), their values v, weights w (kernel weights, or 1
/// for coalitions sampled from the kernel), v(∅) and v(all). Exposed for tests.
std::vector<double> shapley_regression(const std::vector<uint8_t>& coalitions, int64_t features,
                                       const std::vector<double>& v, const std::vector<double>& w, double v_empty,
                                       double v_full);

}  // namespace attributions
