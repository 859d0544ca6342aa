/// @file sensitivity_n.h
/// @brief Sensitivity-N (Ancona et al. 2018; paper App. B, G.5) and its modulo variant
/// (App. F.5): metric "sensitivity-n".
///
/// Schedule: the paper's N run from 1 up to the image size P = H·W (App. F.5, G.5), but at N = P
/// every subset (every order's prefix) is the whole image, both vectors are constant and ρ is
/// undefined: it carries no information (numpy's corrcoef gives NaN there, which would make the
/// paper's mean over all N undefined), so P is not in the set. N takes `points` values (default
/// 16) log-spaced on [1, P), N_i = min(P − 1, round(P^{i/points})), i = 0 … points − 1,
/// duplicates removed (N = 1 always included); `-p n=1,10,100` gives the values explicitly (each
/// in [1, P)). When the registry makes the metric for a data set, the derived schedule is
/// resolved from the data's image size, so params() records the N used.
///
/// standard mode (App. G.5): for each N, `subsets` (default 100) subsets S of N pixels drawn
/// uniformly without replacement from the sample's stream; the pixels of S (all channels) take
/// the replacement values (perturbation.h, default (0, 0, 0)). Pearson's ρ between the output
/// change f(x) − f(x_S) of the target score (probability or logit) and the summed attribution
/// Σ_{j∈S} a_j of the channel-summed map. The subsets of different N are independent. Small
/// subsets are evaluated incrementally on one path per sample: each subset's pixels are
/// perturbed one per step, the output read, and the pixels restored one per step (2N cheap steps
/// instead of one full pass); larger subsets are full passes, batched, assembled after the
/// network's leading pixel-wise layers (the image and the replacement go through them once). The
/// size limit between the two is the engine's cost model (subset_path_limit in
/// engine/perturbation.h): at 224×224 on multi-color-sum it is N ≤ 83 (README: Speed).
/// modulo mode (App. F.5): `subsets` random orders of all pixels; along each order the pixels are
/// perturbed one at a time (cumulatively, evaluated incrementally with PathEvaluator) and a step
/// is correct when the predicted label changes. For each N, ρ between the number of correct
/// steps among the first N and the summed attribution of those N pixels, over the orders.
///
/// Map-independent work is done once per image: the subsets, the replacement and so the network
/// outputs of the perturbed copies depend on the image, its seed, the target and the parameters,
/// never on the map. The standard mode keeps the target scores of the last images it evaluated
/// (keyed by the network's layer objects, the image, the replacement, the unperturbed output, the
/// seed, the target and the schedule; at most kCachedImages images), so the maps of every further
/// method of the same image cost only the subsets' redraw and attribution sums, with the same values.
///
/// ρ of two vectors of which one is constant (e.g. a constant map) is undefined; it is reported
/// as 0, no linear association being measurable.
/// Rows: variant "mean" (standard) or "mean-modulo" (modulo) = the mean of ρ over the schedule,
/// higher-is-better — the value the ranking uses (App. G.5). Curves: the same variant with
/// x = N and y = ρ(N).
/// Parameters (Params::schema()): n, points, subsets and the shared perturbation settings
/// (engine/perturbation.h, nested). The network evaluations (incremental paths for small
/// subsets, batched full passes for the others) are the engine's evaluate_subsets().
/// Tested in tests/experiments/test_metrics_perturbation.cpp: a map equal to the designed
/// per-pixel effect gives ρ = 1, its negation −1; the modulo ρ of the ground-truth map is 1; the
/// schedule stays below P at every size and an explicit N = P is refused.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "experiments/engine/incremental.h"
#include "experiments/metrics/metric.h"
#include "experiments/engine/perturbation.h"

namespace experiments {

/// The log-spaced schedule above for `pixels` pixels and `points` points (1 gives {1}; P = 1
/// gives an empty schedule).
std::vector<int64_t> log_schedule(int64_t pixels, int64_t points);

/// The settings of SensitivityN (`-p`; SensitivityN::Params).
struct SensitivityNParams {
  PerturbationParams perturbation;
  /// The schedule, increasing values ≥ 1. Unset: log_schedule(H·W, points), resolved from the
  /// data's image size (resolve(), else per batch).
  std::optional<std::vector<int64_t>> n;
  /// Points of the derived log-spaced schedule, ≥ 1.
  int64_t points = 16;
  /// Random subsets (standard) or orders (modulo) per N, ≥ 2.
  int64_t subsets = 100;
  static const lab::Schema<SensitivityNParams>& schema();
  /// Fills the derived defaults from the data (mode, noise-high, the schedule).
  void resolve(const MetricSetup& setup);
};

class SensitivityN final : public MetricWith<SensitivityNParams> {
 public:
  /// Images whose subset scores are kept for the maps of further methods (standard mode).
  static constexpr size_t kCachedImages = 256;

  explicit SensitivityN(Params params);
  std::string name() const override { return "sensitivity-n"; }
  std::string family() const override { return "perturbation"; }
  std::vector<Variant> variants() const override;
  /// Every variant of either mode (the registry's list).
  static std::vector<Variant> all_variants();
  /// The schedule used for images of `pixels` pixels (an explicit value ≥ pixels throws).
  std::vector<int64_t> schedule(int64_t pixels) const;

 protected:
  MetricOutput evaluate_batch(const Context& context, const Batch& batch) const override;

 private:
  std::string variant() const;
  std::vector<CurvePoint> standard_curve(const Context& context, const PathEvaluator& evaluator, const lab::Tensor& x,
                                         const float* attr, int64_t target, const std::string& id,
                                         uint64_t seed) const;
  std::vector<CurvePoint> modulo_curve(const Context& context, const PathEvaluator& evaluator, const lab::Tensor& x,
                                       const float* attr, const std::string& id, uint64_t seed) const;
  struct ScoreCache;
  std::shared_ptr<ScoreCache> cache_;  ///< shared by copies: its entries are keyed by content
};

}  // namespace experiments
