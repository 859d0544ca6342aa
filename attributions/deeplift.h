/// @file deeplift.h
/// @brief DeepLIFT with the Rescale rule (Shrikumar et al. 2017) and DeepSHAP, its average over
/// a distribution of baselines (Lundberg & Lee 2017; paper Section 4.1, App. B.1.3).
///
/// DeepLIFT: multipliers m = ∂^Δ f_t / ∂^Δ x are carried back under the lab composite
/// `deeplift-rescale` (ReLU: Δy/Δx; the final softmax: the average Jacobian along the segment of
/// logits, see lab/nn/rules.h) against the trace of the reference input x' (the baseline), and
///   attr = (x − x') ⊙ m.
/// Summation-to-delta: Σ attr = f_t(x) − f_t(x') (exactly on ReLU networks, up to the softmax
/// quadrature otherwise); the gap is reported in Result::convergence_delta.
///
/// DeepSHAP: for baselines b_1..b_K, attr = (1/K) Σ_k DeepLIFT(x; b_k), so Σ attr = f_t(x) −
/// (1/K) Σ_k f_t(b_k); the reported gap is against that mean.
/// `-p baselines=`:
/// - zero (default: the paper's all-zero baseline, App. F.2, G.2), background, R,G,B or a
///   .npy/.png file: one baseline (DeepSHAP then equals DeepLIFT with that baseline);
/// - data:K: K inputs drawn without replacement from Context::reference_inputs, drawn per sample
///   from its seed (so reproducible and independent of the batch); `data` takes all of them.
///
/// Which output: probability by default (App. G.2: DeepSHAP's output change is measured after the
/// softmax), or logit. Cost: one forward+backward per input and baseline, plus a forward of each
/// baseline. Tested in test_gradient_methods.cpp: summation-to-delta to 1e-4 relative on the lab's
/// networks; DeepSHAP equals the mean of DeepLIFT over its baselines.
#pragma once

#include <optional>

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class DeepLift final : public Method {
 public:
  struct Params {
    Baseline baseline;
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit DeepLift(Params params) : params_(std::move(params)) { Params::schema().validate(params_); }
  std::string name() const override { return "deeplift"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
};

class DeepShap final : public Method {
 public:
  /// The value of `-p baselines=`.
  struct Baselines {
    /// One fixed baseline (Baseline syntax), used when data_count == 0.
    Baseline fixed;
    /// 0: use `fixed`; K > 0: K random reference inputs; −1: every reference input.
    int64_t data_count = 0;
    /// "zero", "data:8", "data", ...: the text parse() reads back.
    std::string to_string() const;
    /// nullopt when `text` is none of the forms above.
    static std::optional<Baselines> parse(const std::string& text);
  };
  struct Params {
    Baselines baselines;
    Output output = Output::kProbability;
    static const lab::Schema<Params>& schema();
  };
  explicit DeepShap(Params params);
  std::string name() const override { return "deepshap"; }
  nlohmann::json params() const override { return Params::schema().to_json(params_); }
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();
  /// The reference inputs (indices into `available` ones) that `-p baselines=data:K` uses for
  /// the sample explained with `seed`: the first K of a seeded partial shuffle (all of them, in
  /// order, when K ≥ available). The invariant metric re-draws them to check summation-to-delta.
  static std::vector<int64_t> draw_baselines(uint64_t seed, int64_t available, int64_t count);

 private:
  Params params_;
};

}  // namespace attributions
