/// @file perturbation.h
/// @brief The perturbation engine shared by Insertion, Deletion and Sensitivity-N (paper App. B,
/// F.4–F.5, G.4–G.5): their common settings (PerturbationParams, nested in each metric's
/// Params), the replacement image, the output read from the network, the ordering of pixels by
/// attribution, the per-sample random streams, and the batched evaluation of independent
/// perturbations of one input. Metrics describe *what* to perturb; this engine decides how the
/// network evaluations are grouped (incremental paths, chunks of full passes) and how many
/// threads a call uses (incremental.h, for_samples) — a metric never sets thread counts itself.
///
/// Parameters (`-p`, shared by insertion, deletion and sensitivity-n; PerturbationParams::schema()):
/// - mode = standard | modulo. standard: the output score of the target (App. G.4–G.5).
///   modulo: App. F.4–F.5 — pixels are perturbed one at a time and a step is *correct* when the
///   predicted label changes between consecutive steps (the modulo result; Context::
///   predicted_label). Derived default: modulo when the data's environment is
///   "single-color-modulo", standard otherwise.
/// - replacement = constant (default) | background | blur | noise: the values a perturbed pixel
///   takes (Deletion, Sensitivity-N) or the canvas pixels are inserted into (Insertion).
///   constant: `value`, one number for every channel or one per channel (default 0, the paper's
///   (0, 0, 0)); background: the task's true background (Context::background); blur: the input
///   blurred by a Gaussian of standard deviation `blur-sigma` pixels (default 5; OpenCV
///   GaussianBlur, kernel side from sigma, reflected borders); noise: independent uniform values
///   in [noise-low, noise-high) per pixel and channel (noise-low 0; noise-high derived: the
///   input maximum, 255 for RGB, 1 for the modulo task), drawn from the sample's stream under
///   `seed`.
/// - output = probability (default) | logit: the score of the target unit after the softmax, or
///   before it. When the network ends with a Softmax layer, probability reads its output and
///   logit the output of the layer before; otherwise logit reads the network output and
///   probability is the softmax of it (computed in double). Unused in modulo mode.
/// - seed (≥ 0, default 0): with each sample's seed, selects the random stream of the sample.
///
/// Ordering: pixels by descending attribution of the channel-summed map, ties by ascending pixel
/// index (h·W + w) — so a constant map perturbs in raster order.
/// Tested through test_metrics_perturbation.cpp and test_metrics_incremental.cpp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lab/core/random.h"
#include "experiments/engine/context.h"
#include "experiments/engine/incremental.h"
#include "lab/core/schema.h"
#include "lab/core/tensor.h"
#include "lab/nn/network.h"

namespace experiments {

enum class PerturbationMode { kStandard, kModulo };
enum class ReplacementKind { kConstant, kBackground, kBlur, kNoise };
enum class OutputKind { kProbability, kLogit };

struct PerturbationParams {
  /// Unset: derived from the data's environment (resolve()).
  std::optional<PerturbationMode> mode;
  ReplacementKind replacement = ReplacementKind::kConstant;
  /// The constant: one value (all channels) or one per channel, network units.
  std::vector<double> value = {0.0};
  /// Gaussian standard deviation in pixels (> 0) for replacement=blur.
  double blur_sigma = 5.0;
  /// Range of replacement=noise (noise-low < noise-high).
  double noise_low = 0.0;
  /// Unset: the data's input maximum (resolve(), else Context::input_max at evaluation).
  std::optional<double> noise_high;
  OutputKind output = OutputKind::kProbability;
  uint64_t seed = 0;

  static const lab::Schema<PerturbationParams>& schema();
  /// Fills the derived defaults from the data.
  void resolve(const MetricSetup& setup);
  /// Whether App. F's modulo mode is on (an unresolved mode is standard).
  bool modulo() const { return mode == PerturbationMode::kModulo; }
};

/// The C×H×W replacement image for input `x` (C×H×W) of a sample with seed `sample_seed`.
lab::Tensor replacement_image(const PerturbationParams& params, const lab::Tensor& x, const Context& context,
                              uint64_t sample_seed);

/// How the score of the target is read from the network.
class OutputReader {
 public:
  OutputReader(const lab::Network& net, OutputKind kind);
  /// Layers to evaluate: [0, end()).
  size_t end() const { return end_; }
  /// The score of unit `target` from one output row of `k` values; a target outside [0, k)
  /// throws lab::Error.
  double score(const float* row, int64_t k, int64_t target) const;

 private:
  size_t end_ = 0;
  bool softmax_ = false;  ///< apply a softmax to the row before reading
};

/// The predicted label of an output row: Context::predicted_label, or argmax when none is given.
int64_t predicted_label(const Context& context, const float* row, int64_t k);

/// Pixel indices by descending attribution, ties by ascending index.
std::vector<int64_t> attribution_order(const float* attr, int64_t n);

/// The evaluator of layers [0, end) with the context's execution knobs.
PathEvaluator path_evaluator(const Context& context, size_t end);

/// Runs body(i) for the samples i in [0, n) of a unit; each call must depend on and write only its
/// own sample's data (its seed stream, its output slot). The engine decides how: when the context
/// evaluates incrementally and allows concurrent samples (Context::concurrent_samples), the
/// runtime has T ≥ 2 threads and n ≥ 2, the samples run concurrently on the T TBB workers, each
/// sample's network calls on ONE OpenMP thread (lab::OmpThreads): an incremental path is
/// thousands of small window calls, on which a team of threads mostly synchronises, so one
/// thread per sample keeps every core busy without oversubscribing them. Otherwise one after the
/// other, each call with the runtime's threads (full passes of large batches). Results never
/// depend on the choice; it is the only place a metric's samples are spread over threads.
void for_samples(const Context& context, int64_t n, const std::function<void(int64_t)>& body);

/// Fills `pixels` with the pixel indices of independent perturbation q (called once per q, in
/// increasing q).
using SubsetSource = std::function<void(int64_t q, std::vector<int64_t>& pixels)>;

/// How evaluate_subsets groups its network evaluations; no choice changes a result on the
/// designed networks (integer and dyadic weights), on others only to float rounding.
struct SubsetPlan {
  /// false: every subset a full forward pass of the whole perturbed input (the reference way);
  /// the two fields below are then unused.
  bool incremental = true;
  /// Subsets of at most this many pixels go on one incremental path (each perturbed pixel by
  /// pixel, read, then restored: 2N cheap steps); -1: subset_path_limit()'s cost model.
  int64_t path_below = -1;
  /// The other subsets' inputs are assembled after the network's leading pixel-wise layers
  /// (lab::pixelwise_cut): the start and the source go through them once, each subset
  /// takes its pixels' activations from the source's, and only the later layers run per subset.
  bool assemble_at_cut = true;
  /// The most inputs per network call (Context::batch).
  int64_t max_batch = 256;
};

/// The plan of a context: incremental and the batch from its execution knobs.
SubsetPlan subset_plan(const Context& context);

/// The largest subset size that costs less on an incremental path (2N one-pixel sub-steps) than
/// as a full pass from `cut` (the activation assembled, layers [cut, end) run), by the cost model
/// in perturbation.cpp.
int64_t subset_path_limit(const lab::Network& net, const PathEvaluator& evaluator, size_t end, size_t cut);

/// What evaluate_subsets did (for benchmarks and tests; results never depend on it).
struct SubsetStats {
  int64_t on_path = 0;     ///< subsets evaluated on the incremental path
  int64_t full = 0;        ///< subsets evaluated as full passes
  size_t cut = 0;          ///< the activation the full passes started from (0 = the input)
  int64_t path_below = 0;  ///< the size limit used for the path
};

/// Outputs of the evaluator's layers on `count` independently perturbed copies of `start`
/// (C×H×W): copy q takes the pixels `subset(q)` (all channels) from `source`. Row q of the
/// count × K result, grouped as `plan` says (full passes batched `max_batch` at a time). The
/// grouping never changes a result on the designed networks.
lab::Tensor evaluate_subsets(const lab::Network& net, const PathEvaluator& evaluator, size_t end,
                             const lab::Tensor& start, const lab::Tensor& source, int64_t count,
                             const SubsetSource& subset, const SubsetPlan& plan, SubsetStats* stats = nullptr);

}  // namespace experiments
