/// @file smoothgrad.h
/// @brief SmoothGrad (Smilkov et al. 2017, paper App. B.1.1): any attribution method averaged
/// over noisy copies of the input.
///
///   attr(x) = (1/n) Σ_{k=1..n} base(x + ε_k),   ε_k ~ N(0, σ²),   σ = noise · (max x − min x),
/// with the range taken per input (Smilkov et al.'s "noise level" σ / (x_max − x_min); they find
/// 10–20% best). The wrapped method is named by `-p base=` (default saliency) and every `-p` key
/// that SmoothGrad does not know is the base method's (e.g. `-p base=integrated-gradients -p
/// steps=20`); `attrlab methods` lists the default base's parameters from its schema after
/// SmoothGrad's own, and params() records the base's resolved parameters under "base-params". The k-th
/// noisy copy of sample n has the derived seed lab::derive_seed(seed_n, k): its noise comes from that
/// seed's stream (lab::Rng) and it is explained with that seed (for stochastic base methods), so
/// copies are independent of batching and thread count. Noisy copies are explained in batches of
/// at most Context::batch inputs, so memory stays bounded.
/// Cost: n times the base method. Tested in test_gradient_methods.cpp: with noise=0 it equals the
/// base method; it equals the hand-computed average over the same noise on a linear model.
#pragma once

#include <memory>

#include "attributions/common.h"
#include "attributions/method.h"

namespace attributions {

class SmoothGrad final : public Method {
 public:
  struct Params {
    std::string base = "saliency";
    int64_t samples = 50;  ///< n ≥ 1
    double noise = 0.15;   ///< σ as a fraction of the input's value range, ≥ 0
    /// base, samples and noise; the base method reads the other keys (SmoothGrad::info).
    static const lab::Schema<Params>& schema();
  };
  SmoothGrad(Params params, std::unique_ptr<Method> base);
  std::string name() const override { return "smoothgrad"; }
  nlohmann::json params() const override;
  Result attribute(const Context& context, const Batch& batch) const override;
  static MethodInfo info();

 private:
  Params params_;
  std::unique_ptr<Method> base_;
};

}  // namespace attributions
