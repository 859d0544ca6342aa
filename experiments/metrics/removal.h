/// @file removal.h
/// @brief What the soundness and completeness metrics (soundness.h, completeness.h; Gao et al.
/// 2024, Sec. 4–5, App. E–F) share: how pixels are removed, the per-sample performance
/// indicator ρ, and the indicator of an input along a removal schedule.
///
/// Removal (`removal`):
/// - background (default): a removed pixel takes the task's true background (Context::
///   background): in the designed networks this is exact absence — a background pixel contributes
///   nothing to any count — so no imputation is needed and nothing leaks out of the distribution.
///   The inputs of a schedule are nested (each keeps or removes a prefix of the attribution
///   order), so they form one PerturbationPath (engine/incremental.h), evaluated incrementally
///   when its steps change small regions (the steps' bounding rectangles cover on average at
///   most a quarter of the image) and with a full batched forward pass per step otherwise — the
///   incremental path gains nothing when a step's pixels spread over the whole image (as 1% of the
///   pixels by attribution order usually do). The choice depends on the path only.
/// - road: the paper's choice for real data (Sec. 4.2: "linear imputation (Rong et al., 2022) is
///   used ... to mitigate OOD effects"): removed pixels are filled by noisy linear imputation
///   (engine/imputation.h). Each input is then its own image: full forward passes, batched
///   Context::batch at a time. Removing every pixel is refused there (nothing to impute from).
///
/// Indicator ρ of one sample (`indicator`), on the network output of the perturbed input:
/// - probability: the target's probability (the reference code's prediction-score mode, which
///   decides per sample);
/// - logit: the target's logit (before the softmax);
/// - correct: 1 when the predicted label equals the label predicted on the unperturbed input,
///   else 0 — the paper's Accuracy on a data set of one sample (the designed networks predict
///   every unperturbed sample correctly, so this is accuracy against the true label).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "experiments/engine/context.h"
#include "experiments/engine/imputation.h"
#include "lab/core/schema.h"
#include "lab/core/tensor.h"

namespace experiments {

enum class RemovalKind { kBackground, kRoad };
enum class Indicator { kProbability, kLogit, kCorrect };
/// Which pixels the exact values call predictive: positive pixel ground truth, or non-zero.
enum class Predictive { kPositive, kOverall };

/// {value, name} pairs for Schema::choice.
const std::vector<std::pair<RemovalKind, std::string>>& removal_names();
const std::vector<std::pair<Indicator, std::string>>& indicator_names();
const std::vector<std::pair<Predictive, std::string>>& predictive_names();

/// The indicator along one schedule.
struct IndicatorValues {
  double original = 0.0;        ///< ρ on the unperturbed input
  std::vector<double> values;   ///< ρ per requested count, in the order given
};

/// ρ of the inputs made from `x` (C×H×W) by the pixel order `order` (all H·W pixels): for each
/// count n of `counts` (any order, repeats allowed, 0 ≤ n ≤ H·W), `keep` = true keeps the first n
/// pixels of the order and removes the others (soundness, LeRF); `keep` = false removes the first
/// n and keeps the others (completeness, MoRF). Removed pixels take the background or the noisy
/// linear imputation (noise stream of count n under (imputation.seed, sample_seed)).
IndicatorValues indicator_along(const Context& context, RemovalKind removal, const ImputationParams& imputation,
                                Indicator indicator, const lab::Tensor& x, const std::vector<int64_t>& order,
                                const std::vector<int64_t>& counts, bool keep, int64_t target, uint64_t sample_seed);

/// The positive part of a map, divided by its maximum (the reference code's attribution maps lie
/// in [0, 1]; the paper's η ≥ 0, App. G.1 clips negative attribution to zero). All zeros when
/// the map has no positive value.
std::vector<double> positive_normalised(const float* attr, int64_t n);

/// The predictive weight φ of each pixel from the pixel ground truth: max(g, 0) for
/// `positive_only`, |g| otherwise.
std::vector<double> predictive_weights(const float* gt, int64_t n, bool positive_only);

}  // namespace experiments
