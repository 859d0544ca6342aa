/// @file complexity.h
/// @brief The complexity metrics saliency-false-sense-of-explainability evaluates (Sec. 4.3,
/// Table 3; implementations after Quantus, as the paper's): "complexity" (Bhatt et al. 2020),
/// "effective-complexity" (Nguyen and Martínez 2020) and "sparseness" (Chalasani et al. 2020).
/// They read the map alone (no network), so they share this file. On the channel-summed map S
/// of P pixels, with a_j = |S_j|:
/// - complexity = −Σ_j p_j ln p_j with p_j = a_j / Σ_k a_k (entropy of the fractional
///   contribution; 0 ln 0 = 0). Range [0, ln P]; lower-is-better. Undefined (no row) for a zero map.
/// - effective-complexity = #{ j : a_j / max_k a_k > eps } — Quantus' form of Nguyen and
///   Martínez' "minimum number of retained features": the features whose max-normalised
///   magnitude exceeds eps (default 1e-5). A zero map counts 0. Lower-is-better.
/// - sparseness = Gini index of a: with a_(1) ≤ … ≤ a_(P) sorted ascending,
///   G = Σ_{i=1..P} (2i − P − 1) a_(i) / (P Σ_j a_j). A one-hot map gives 1 − 1/P, a constant map 0.
///   Higher-is-better. Undefined (no row) for a zero map.
/// Rows: variant "value". Tested in tests/experiments/test_metrics_complexity.cpp.
#pragma once

#include <optional>

#include "experiments/metrics/metric.h"

namespace experiments {

/// The three formulas above on `n` values (nullopt where undefined).
std::optional<double> entropy_complexity(const float* attr, int64_t n);
double effective_complexity(const float* attr, int64_t n, double eps);
std::optional<double> gini_sparseness(const float* attr, int64_t n);

/// The settings of Complexity (`-p`; Complexity::Params).
struct ComplexityParams {
  static const lab::Schema<ComplexityParams>& schema();  ///< no parameters
};

class Complexity final : public MetricWith<ComplexityParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "complexity"; }
  std::string family() const override { return "complexity"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"value", Direction::kLowerIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

/// The settings of EffectiveComplexity (`-p`; EffectiveComplexity::Params).
struct EffectiveComplexityParams {
  double eps = 1e-5;
  static const lab::Schema<EffectiveComplexityParams>& schema();
};

class EffectiveComplexity final : public MetricWith<EffectiveComplexityParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "effective-complexity"; }
  std::string family() const override { return "complexity"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"value", Direction::kLowerIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

/// The settings of Sparseness (`-p`; Sparseness::Params).
struct SparsenessParams {
  static const lab::Schema<SparsenessParams>& schema();  ///< no parameters
};

class Sparseness final : public MetricWith<SparsenessParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "sparseness"; }
  std::string family() const override { return "complexity"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants() { return {{"value", Direction::kHigherIsBetter}}; }

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
