/// @file road.h
/// @brief ROAD, Remove And Debias (Rong et al. 2022, Sec. 4; used by Gao et al. 2024 Sec. 5.2 and
/// compared in the coherency study, Sec. 3): metric "road".
///
/// For each removal fraction f of `fractions` (ROAD's percentiles 10, 20, …, 90 %), ⌊f·P⌋ pixels
/// of the P = H·W pixels are removed — MoRF: the first of the attribution order (highest
/// attribution, ties by pixel index; perturbation.h), LeRF: the last — and filled by noisy linear
/// imputation (engine/imputation.h: each removed pixel the weighted mean of its 8-neighbours,
/// 1/12 diagonal and 1/6 direct, a sparse system solved with Eigen, then N(0, σ²) noise). The
/// count is of pixels, not a percentile of values, so every map removes the same number.
/// The curves are the target's score (`output`: probability, ROAD's confidence, or logit) on the
/// imputed inputs: y_MoRF(f) and y_LeRF(f). Rows:
///   "morf" = mean_f y_MoRF(f)   lower-is-better (removing the relevant pixels first should hurt)
///   "lerf" = mean_f y_LeRF(f)   higher-is-better
///   "combined" = (lerf − morf) / 2   higher-is-better (ROAD's ROADCombined)
/// Curves: "morf" and "lerf", x = f. Noise streams: one per (seed, sample seed) and per
/// (order, count), so the result is the same at any thread count and unit size.
/// Network evaluation: every imputed input differs from the image in all its removed pixels, so
/// the incremental path does not apply; the 2·|fractions| inputs of a sample run as full forward
/// passes, Context::batch per call.
/// Parameters: Params::schema(). Tested in tests/experiments/test_metrics_road.cpp.
#pragma once

#include "experiments/engine/imputation.h"
#include "experiments/engine/perturbation.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// The settings of Road (`-p`; Road::Params).
struct RoadParams {
  std::vector<double> fractions = {0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9};
  OutputKind output = OutputKind::kProbability;
  ImputationParams imputation;
  static const lab::Schema<RoadParams>& schema();
  void resolve(const MetricSetup& setup) { imputation.resolve(setup); }
};

class Road final : public MetricWith<RoadParams> {
 public:
  using MetricWith::MetricWith;
  std::string name() const override { return "road"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override { return all_variants(); }
  static std::vector<Variant> all_variants();

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;
};

}  // namespace experiments
