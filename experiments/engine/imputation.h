/// @file imputation.h
/// @brief Noisy linear imputation of removed pixels (ROAD: Rong et al. 2022, "A Consistent and
/// Efficient Evaluation Strategy for Attribution Methods", Sec. 4; used by the soundness and
/// completeness metrics of Gao et al. 2024, Sec. 4.2) and its parameters.
///
/// Each removed pixel i is the weighted mean of its in-image 8-neighbours j (diagonal weight
/// 1/12, direct weight 1/6; the eight weights sum to 1):
///   x_i = Σ_j w_ij x_j / Σ_j w_ij,
/// where a neighbour j is a kept pixel (its known value) or another removed pixel (an unknown).
/// Moving the unknowns to the left gives, per channel, the sparse system M x = b with
///   M_ii = Σ_j w_ij (in-image neighbours),  M_ij = −w_ij (removed neighbours),
///   b_i = Σ_{kept neighbours j} w_ij v_j.
/// M is symmetric (the weights are symmetric in the offset) and diagonally dominant, strictly in
/// every row next to a kept pixel; every connected group of removed pixels touches a kept pixel
/// unless all pixels are removed, so M is positive definite and Eigen's SimplicialLDLT solves it
/// (one factorisation shared by the channels, in double). All pixels removed has no solution:
/// lab::Error. Then N(0, σ²) noise is added to every removed value of every channel (ROAD's
/// noise = 0.01 on its inputs), from lab::Rng streams fixed by (seed, stream): deterministic at any
/// thread count. Normals are drawn by Box–Muller from lab::Rng::uniform (written out, so every
/// compiler gives the same numbers).
///
/// Parameters (ImputationParams::schema(), nested in road, soundness and completeness):
/// - noise ≥ 0: σ in network input units. Derived default 0.01 × the input maximum (ROAD's 0.01
///   on a [0, 1] scale: 2.55 for RGB 0..255, 0.01 for the modulo task).
/// - seed ≥ 0: with each sample's seed, selects the noise stream of the sample.
/// Tested in tests/experiments/test_metrics_road.cpp: every imputed pixel equals the weighted mean
/// of its neighbours before noise to 1e-5, borders included; the noise has the requested spread.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "experiments/engine/context.h"
#include "lab/core/random.h"
#include "lab/core/schema.h"
#include "lab/core/tensor.h"

namespace experiments {

struct ImputationParams {
  /// σ of the noise in network units; unset: 0.01 × the input maximum (resolve(), else
  /// Context::input_max at evaluation).
  std::optional<double> noise;
  uint64_t seed = 0;
  static const lab::Schema<ImputationParams>& schema();
  void resolve(const MetricSetup& setup);
  /// σ used for `context`.
  double sigma(const Context& context) const;
};

/// ROAD's neighbour weight of the offset (dy, dx) ∈ {−1, 0, 1}², (0, 0) excluded: 1/12 diagonal,
/// 1/6 direct.
double road_weight(int dy, int dx);

/// The C×H×W image `x` with the pixels flagged in `removed` (H·W flags, 1 = removed) replaced by
/// the linear imputation (no noise). Kept pixels are copied unchanged.
lab::Tensor impute_linear(const lab::Tensor& x, const std::vector<uint8_t>& removed);

/// impute_linear() plus N(0, sigma²) noise on every removed pixel and channel, drawn from
/// lab::Rng(seed, stream).
lab::Tensor impute_noisy_linear(const lab::Tensor& x, const std::vector<uint8_t>& removed, double sigma,
                                uint64_t seed, uint64_t stream);

/// One standard normal draw (Box–Muller on two uniforms of `rng`; the cosine branch only).
double standard_normal(lab::Rng& rng);

}  // namespace experiments
