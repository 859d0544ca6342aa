/// @file rank.h
/// @brief Rankings of attribution methods and correlation coefficients (paper Section 5,
/// Tables 2, 3, 5): Pearson, Spearman with average ranks for ties, point-biserial, and the
/// Spearman correlation of every metric's ranking with the ground-truth F1 ranking.
///
/// Conventions. average_ranks() gives 1-based ranks in ascending order, tied values sharing the
/// mean of the positions they occupy (textbook fractional ranking). ranking() orders methods by
/// a metric's direction: rank 1 is the best method (the highest value of a higher-is-better
/// variant, the lowest of a lower-is-better one). Spearman's ρ is Pearson's r of the average
/// ranks, exact with ties. A correlation involving a constant vector is undefined and returned
/// as 0 (no association measurable). Vectors must have equal sizes ≥ 2 (else lab::Error).
/// Because each metric is ranked in its own direction, a lower-is-better metric (Deletion)
/// that agrees with the ground truth correlates positively, as in the paper's tables.
/// Tested in tests/experiments/test_rank.cpp against textbook examples with ties.
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "experiments/metrics/metric.h"

namespace experiments {

/// The value of a coefficient, rank or mean that is undefined (too few images, a constant
/// vector, a method without rows), as the meta-evaluation and the report's tables write it.
inline constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

/// Pearson's correlation coefficient r (0 when either vector is constant).
double pearson(const std::vector<double>& x, const std::vector<double>& y);
/// 1-based ascending ranks, ties averaged.
std::vector<double> average_ranks(const std::vector<double>& values);
/// Ranks of methods under a metric: 1 = best according to `direction`, ties averaged.
std::vector<double> ranking(const std::vector<double>& values, Direction direction);
/// Spearman's ρ: Pearson's r of the average ranks.
double spearman(const std::vector<double>& x, const std::vector<double>& y);
/// Point-biserial correlation of a dichotomous variable (`group`, both values present) with a
/// continuous one: (M₁ − M₀) / s · √(n₁ n₀ / n²), s the population standard deviation of
/// `values` — equal to Pearson's r with the groups coded 0/1.
double point_biserial(const std::vector<bool>& group, const std::vector<double>& values);

/// One method's summary value of one metric variant.
struct SummaryRow {
  std::string method;
  std::string metric;
  std::string variant;
  double value = 0.0;
};

/// The values of one metric variant for every method, aligned with `methods`.
struct MethodScores {
  std::string metric;
  std::string variant;
  Direction direction = Direction::kHigherIsBetter;
  std::vector<double> values;
};

/// The values of (metric, variant) for `methods`, in that order; a missing or repeated value
/// throws lab::Error naming the method.
MethodScores collect_scores(const std::vector<SummaryRow>& rows, const std::vector<std::string>& methods,
                            const std::string& metric, const std::string& variant, Direction direction);

/// A metric's ranking of the methods and its Spearman ρ with the reference ranking.
struct RankCorrelation {
  std::string metric;
  std::string variant;
  std::vector<double> ranking;  ///< 1 = best, aligned with the methods
  double spearman = 0.0;
};

/// For every entry of `scores`: its ranking and the Spearman ρ between it and the ranking of
/// `reference` (the ground-truth F1 in the paper: overall GT for the modulo task, positive GT
/// for multi-color-sum).
std::vector<RankCorrelation> rank_correlations(const std::vector<MethodScores>& scores, const MethodScores& reference);

}  // namespace experiments

namespace experiments {

/// A statistic over images with its bootstrap percentile interval.
struct BootstrapInterval {
  double value = 0.0;  ///< the statistic on all images
  double lo = 0.0;     ///< lower end of the percentile interval
  double hi = 0.0;     ///< upper end
  int resamples = 0;
  double level = 0.95;
};

/// The percentile bootstrap over images (Efron & Tibshirani 1993, ch. 13): `statistic` is
/// evaluated on all n images (indices 0..n−1) for `value`, then on `resamples` resamples of n
/// indices drawn uniformly with replacement; lo and hi are the (1 − level)/2 and (1 + level)/2
/// quantiles of the resampled values (linear interpolation between order statistics, the
/// "type 7" rule). Deterministic: the draws come from std::mt19937_64 seeded with `seed`, each
/// index a 64-bit draw modulo n after rejecting draws above the largest multiple of n (no library
/// distribution, whose algorithm varies), so every platform gives the same interval. Needs n ≥ 1 and resamples ≥ 1 (else lab::Error).
/// Tested in test_rank.cpp: identical rankings give [1, 1]; a hand-enumerated two-image case.
BootstrapInterval bootstrap(int64_t n, const std::function<double(const std::vector<int64_t>& images)>& statistic,
                            int resamples, uint64_t seed, double level = 0.95);

/// The per-method means over the resampled `images` of `per_image` (methods × images).
std::vector<double> resampled_means(const std::vector<std::vector<double>>& per_image, const std::vector<int64_t>& images);

}  // namespace experiments
