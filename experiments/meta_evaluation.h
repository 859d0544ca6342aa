/// @file meta_evaluation.h
/// @brief Meta-evaluation of metrics from a run's per-image rows (results.csv): internal
/// consistency, inter-metric reliability and agreement with the truth (Vandersmissen & Oramas,
/// "On the coherency of quantitative evaluation of visual explanations", Sections 3.4, 4.2, 4.3;
/// after Tomsett et al. 2020's sanity checks for saliency metrics).
///
/// A *measure* is one variant of one metric (`metric/variant`, e.g. road/morf) with its direction.
/// Its per-image scores for (model, method) are the rows with that model, method, metric and
/// variant and a sample other than "all"; non-finite values are left out, and two measures are
/// compared on the images where both have a finite value.
///
/// Orientation. Before any correlation every measure is turned higher-is-better: a
/// lower-is-better measure's scores are negated (a binary one's groups swapped). So two metrics
/// that agree on which explanation is better correlate positively, whatever their directions (the
/// paper's "we first fix the ordering of both metrics to the same ordering").
///
/// Pairwise coefficient of measures a and b for one method, over the n images both score:
/// - Spearman's ρ of the oriented scores (rank.h spearman(): Pearson's r of average ranks);
/// - the point-biserial r_pb = (M₁ − M₀)/s·√(n₁n₀/n²) (rank.h point_biserial()) when exactly one of
///   them is binary (takes exactly two distinct values on those images: a Pointing Game hit 0/1,
///   an Increase in Confidence 0/100) and `allow_point_biserial`: the binary one gives the groups
///   (group 1 = its better value), the other its oriented values (the paper's Pointing Game rows);
///   when both are binary, Spearman's ρ (equal to Pearson's φ of the two dichotomies);
/// - undefined (NaN) when n < 2 or either is constant on those images: no association is
///   measurable, and it is left out of the averages (their `methods` counts what entered).
///
/// internal_consistency(): the configurations of one metric (several measures), Spearman only,
/// per pair the mean over methods of ρ across images (paper Table 1).
/// reliability(): every pair of measures, per method and the mean over methods (paper Table 2).
/// A measure with no row at all on the model is refused (lab::Error naming it): a misspelt variant.
/// agreement_with_truth(): per measure, the methods ranked by their mean score over the images
/// (rank 1 = best in the measure's direction, ties averaged), Spearman's ρ against the ranking by
/// the reference measure (the ground-truth F1) and its percentile bootstrap interval over images
/// (rank.h bootstrap() with `seed` for every measure: both rankings recomputed from the resampled
/// per-method means). It uses the images every method scores under both measures.
/// Tested in tests/experiments/test_meta_evaluation.cpp on hand-computed cases.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/metrics/metric.h"
#include "experiments/rank.h"
#include "experiments/table.h"

namespace experiments {

/// One variant of one metric, named in tables by `label` ("metric/variant" when empty).
struct MetricVariant {
  std::string label;
  std::string metric;
  std::string variant;
  Direction direction = Direction::kHigherIsBetter;

  std::string name() const { return label.empty() ? metric + "/" + variant : label; }
};

/// Which coefficient a pair used.
enum class Coefficient { kSpearman, kPointBiserial };
/// "spearman" or "point-biserial".
std::string coefficient_name(Coefficient coefficient);

/// One pairwise coefficient over images.
struct PairCorrelation {
  double value = 0.0;  ///< NaN when undefined (fewer than 2 images, or a constant score)
  Coefficient coefficient = Coefficient::kSpearman;
  int64_t images = 0;  ///< images scored by both measures
};

/// The per-image scores of `measure` for (model, method), in row order: sample ids and values
/// (finite values only; none where the metric is undefined for every image, e.g. complexity of
/// an all-zero map).
struct ImageScores {
  std::vector<std::string> samples;
  std::vector<double> values;
};
ImageScores image_scores(const std::vector<ResultRow>& rows, const std::string& model, const std::string& method,
                         const MetricVariant& measure);

/// True when the values take exactly two distinct values.
bool is_binary(const std::vector<double>& values);

/// The oriented coefficient of two measures' scores (see the file comment), on the samples both
/// hold.
PairCorrelation correlate(const ImageScores& a, Direction direction_a, const ImageScores& b, Direction direction_b,
                          bool allow_point_biserial);

/// A symmetric matrix of coefficients between measures: per method, and their mean.
struct CorrelationMatrix {
  std::string model;
  std::vector<std::string> measures;  ///< labels, the rows and columns
  std::vector<std::string> methods;
  /// per_method[m][i][j]: method m, measures i and j (the diagonal is 1 when defined).
  std::vector<std::vector<std::vector<PairCorrelation>>> per_method;
  /// mean[i][j]: mean over the methods where defined (NaN when none); count[i][j] how many.
  std::vector<std::vector<double>> mean;
  std::vector<std::vector<int64_t>> count;
};

/// Internal consistency: Spearman's ρ between configurations of one metric, averaged over methods.
CorrelationMatrix internal_consistency(const std::vector<ResultRow>& rows, const std::string& model,
                                       const std::vector<std::string>& methods, const std::vector<MetricVariant>& configs);
/// Inter-metric reliability: Spearman's ρ (point-biserial when one measure is binary), per method
/// and averaged over methods.
CorrelationMatrix reliability(const std::vector<ResultRow>& rows, const std::string& model,
                              const std::vector<std::string>& methods, const std::vector<MetricVariant>& measures);

/// One measure's agreement with the reference ranking.
struct Agreement {
  std::string measure;
  std::vector<double> means;    ///< per method, over the common images; NaN for a method left out
  std::vector<double> ranking;  ///< 1 = best (among the methods kept); NaN for a method left out
  BootstrapInterval rho;        ///< Spearman's ρ with the reference ranking and its interval (NaN: undefined)
  int64_t images = 0;           ///< images every kept method scores under both measures
  int64_t methods = 0;          ///< methods kept: those with a score under both measures
};

struct TruthAgreement {
  std::string model;
  std::vector<std::string> methods;
  std::string reference;
  std::vector<double> reference_means;
  std::vector<double> reference_ranking;
  std::vector<Agreement> measures;
};

/// Agreement with the truth on one model: see the file comment. A method without any finite
/// score under a measure is left out of that measure's comparison (both rankings are then over
/// the methods kept); with fewer than 2 methods or no common image the measure's ρ is NaN. Needs
/// ≥ 2 methods, and rows of every measure on the model (else lab::Error naming it).
TruthAgreement agreement_with_truth(const std::vector<ResultRow>& rows, const std::string& model,
                                    const std::vector<std::string>& methods, const std::vector<MetricVariant>& measures,
                                    const MetricVariant& reference, int resamples, uint64_t seed, double level = 0.95);

/// The matrix in long form, one line per method and unordered pair (i < j), then the "mean" lines:
/// columns model, method, measure-a, measure-b, coefficient, value, images (a mean line: the
/// number of methods averaged in `images`, coefficient "mean").
Table correlation_long_table(const CorrelationMatrix& matrix, const std::string& id, const std::string& title);
/// The mean matrix as a square table: first column the measure, then one column per measure.
Table correlation_square_table(const CorrelationMatrix& matrix, const std::string& id, const std::string& title,
                               int decimals = 2);

}  // namespace experiments
