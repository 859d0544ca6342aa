/// @file iba.h
/// @brief Information Bottleneck Attribution, per-sample bottleneck (Schulz, Sixt, Tombari &
/// Landgraf 2020, "Restricting the flow: information bottlenecks for attribution"; paper
/// Section 4.4, App. F.2, G.2).
///
/// At a hidden layer with activations R (C×h×w per sample) the bottleneck replaces R by
///   Z = λ ⊙ R + (1 − λ) ⊙ ε,   ε ~ N(μ_R, σ_R²),   λ = smooth(sigmoid(α)),
/// with μ_R, σ_R the per-element mean and standard deviation of R over Context::reference_inputs
/// (σ_R clamped below by `min-std`), and elements that are zero on at least 1 − `active-threshold`
/// of the reference inputs switched off (Z = 0 there, no capacity), as in the authors' code.
/// `smooth` is a Gaussian of σ = `smooth-sigma` elements over h×w (kernel 2·round(2σ)+1, reflected
/// borders). With r = (R − μ_R)/σ_R, the information passed per element is the closed-form
///   C = KL(N(λr, (1 − λ)²) ‖ N(0, 1)) = −½ (1 + log (1 − λ)² − (λr)² − (1 − λ)²)     (eq. 4/5),
/// and α (initialised to `init-alpha`) minimises, by Adam with learning rate `lr` over
/// `iterations` steps with `samples` noise draws per step,
///   L = L_model + β · mean(C),
/// where L_model is the cross-entropy −log softmax(logits/T)_t (the authors', T = `temperature`
/// = 1) when the network
/// ends with a softmax, and (f_t(Z) − f_t(R))² otherwise (a regressor such as the modulo network,
/// whose output has no softmax: keeping the output is what "the prediction" means there);
/// `loss` = auto | cross-entropy | squared-error overrides. The attribution is the capacity of the
/// last step summed over channels in bits, scaled by (h·w)/(H·W) and upsampled bilinearly to the
/// input (the authors' heatmap), spread evenly over the input channels; it is never negative.
///
/// `temperature`: the paper's β = 20 weighs the information loss against a cross-entropy of
/// logits equal to the pixel counts; the lab's multi-color-sum logits are `logit-scale` × counts
/// (2^-8), so T = logit-scale restores the paper's objective exactly (softmax(z/T) = softmax of
/// the counts), where β = 20 at T = 1 makes the bottleneck drop nearly everything (README).
/// The layer is `-p layer=NAME`, by default Context::layers["iba"] (the paper's
/// accumulator.layers.7 for multi-color-sum, accumulator.layers.11 for modulo). Defaults: β = 20
/// (App. F.2, G.2; the authors' default is 10), 10 iterations, 10 samples, lr 1, init-alpha 5,
/// smooth-sigma 1, min-std 0.01, active-threshold 0.01 (the authors'). All samples and noise draws
/// of a batch go through the network together, in chunks of Context::batch; noise is drawn from
/// each sample's seed. Cost: a forward of the reference inputs and of the batch to the layer, then
/// 2 × samples evaluations per iteration per sample (forward from the layer and backward to it).
/// The statistics are kept for later calls with the same network, layer and reference inputs
/// (then only two reference inputs are run, to recognise the network).
/// Tested in test_perturbation_iba.cpp: the analytic gradient of the loss w.r.t. α matches finite
/// differences on a small network, for both losses; the map is non-negative and the evaluations
/// are counted; on easy images of the multi-color-sum network (logits = counts, the balance β = 20
/// was chosen for; README) the map recalls at least half of the winning colour's patch (positive
/// smooth ground truth) and puts most of its mass there; missing layer or reference inputs are
/// refused; chunk-size and thread-count invariance.
#pragma once

#include <memory>
#include <mutex>

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class Iba final : public Method {
 public:
  struct Params {
    std::string layer;                 ///< empty = Context::layers["iba"]
    double beta = 20.0;                ///< weight of the information loss, >= 0
    double temperature = 1.0;          ///< T of the cross-entropy −log softmax(z/T), > 0
    int64_t iterations = 10;           ///< Adam steps, >= 1
    int64_t samples = 10;              ///< noise draws per step, >= 1
    double lr = 1.0;                   ///< Adam learning rate, > 0
    double init_alpha = 5.0;           ///< initial α (λ ≈ 0.993)
    double smooth_sigma = 1.0;         ///< σ of the smoothing of λ in elements, >= 0 (0 = none)
    double min_std = 0.01;             ///< lower bound of σ_R, > 0
    double active_threshold = 0.01;    ///< elements nonzero on at most this fraction are off, in [0, 1)
    std::string loss = "auto";         ///< auto | cross-entropy | squared-error
    static const lab::Schema<Params>& schema();
  };
  explicit Iba(Params params);
  std::string name() const override { return "iba"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

  /// The bottleneck objective of one sample at given α, with its gradient w.r.t. α, for fixed
  /// noise draws (`noise`: samples × C×h×w standard normals). Exposed for the gradient test.
  struct Objective {
    double loss = 0;
    std::vector<double> grad;  ///< ∂loss/∂α
  };
  Objective objective(const Context& context, const lab::Tensor& x1, int64_t target, const std::vector<double>& alpha,
                      const std::vector<float>& noise) const;

  /// The per-element activation statistics at the layer. Those of the last call are reused while
  /// the network (recognised by its activations at the layer on two reference inputs), the layer
  /// and the reference inputs are unchanged: estimating them is a forward of every reference
  /// input, and the attribute command calls the method batch after batch with the same ones.
  /// Reuse never changes a result.
  struct Statistics {
    uint64_t key = 0;
    std::vector<double> mean, std;
    std::vector<uint8_t> active;
  };
  /// The cached statistics if `key` matches, else those `estimate` fills (then cached).
  std::shared_ptr<const Statistics> statistics(uint64_t key, const std::function<void(Statistics&)>& estimate) const;

 private:
  Params params_;
  mutable std::mutex mutex_;
  mutable std::shared_ptr<const Statistics> statistics_;
};

}  // namespace attributions
