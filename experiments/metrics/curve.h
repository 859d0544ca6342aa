/// @file curve.h
/// @brief What the metrics that score curves along cumulative perturbation paths share
/// (insertion, deletion, pixel-flipping, reference-pixel-flipping; score_samples also
/// sensitivity-n and monotonicity): one output slot per sample, the curve of a path, and its
/// trapezoid AUC row.
///
/// A path's curve has one point per state s = 0..K of the path (the start, then after each of
/// its K steps): x_s = n_s / P, the share of the P pixels perturbed after step s (x_0 = 0), and
/// y_s the metric's reading of that state. Its row is the trapezoid area under the points:
///   AUC = Σ_s (x_s − x_{s−1}) (y_{s−1} + y_s) / 2.
/// Tested through the metrics that use it (tests/experiments/test_metrics_perturbation.cpp,
/// test_metrics_unified.cpp: hand-checked curves and AUCs).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "experiments/engine/incremental.h"
#include "experiments/metrics/metric.h"

namespace experiments {

/// Trapezoid area under the points (x_i, y_i), x increasing.
double trapezoid_auc(const std::vector<double>& x, const std::vector<double>& y);

/// Runs body(i, slot) for the samples i in [0, n) through for_samples (engine/perturbation.h:
/// the engine may run them concurrently), each writing only its own slot, then appends the slots
/// in sample order: the output does not depend on how the samples were spread over threads.
MetricOutput score_samples(const Context& context, int64_t n,
                           const std::function<void(int64_t i, MetricOutput& slot)>& body);

/// The curve of `path` over `pixels` pixels for sample `id`: the point of state s has
/// x = (pixels perturbed after step s) / pixels and y = y_of(s), called in increasing s from 0 to
/// path.steps().
std::vector<CurvePoint> path_curve(const PerturbationPath& path, int64_t pixels, const std::string& id,
                                   const std::string& variant, const std::function<double(int64_t s)>& y_of);

/// Appends `points` (one sample's curve of one variant, in increasing x) to out.curves, and the
/// row {sample, variant, trapezoid AUC of the points} to out.rows. An empty curve (undefined for
/// the sample) appends nothing.
void add_auc_curve(MetricOutput& out, std::vector<CurvePoint> points);

}  // namespace experiments
