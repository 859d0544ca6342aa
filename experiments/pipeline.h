/// @file pipeline.h
/// @brief The two stages every front end shares: the attribute stage (data directory + method +
/// target mode + seed → maps, the maps.json record, completeness gaps, evaluation counts) and the
/// score stage (data + maps → typed result rows and curve points). `attrlab attribute` and
/// `attrlab run` (run.h) both go through them, so their maps, records, input conversions and
/// errors are the same.
///
/// Words used throughout (README, "Experiments and reports"): a **unit** is a group of images
/// handled together (one method call, one metric call, one resumable piece of a run); a **batch**
/// is the largest number of inputs in one network call. Neither changes a result.
///
/// Seeds. Sample i of a method labelled L (the method's registry name when no label is given) is
/// explained with seed sample_seed(seed, L, i) (config.h), so a map depends neither on the unit it
/// ran in nor on the front end that ran it.
///
/// The maps.json record (README, "Attribution methods"): format, method, label, params (the
/// resolved parameters), version, data (the data directory relative to the maps directory),
/// data-manifest {path, env, seed, count, fingerprint}, target ("label", "predicted" or a unit number), seed,
/// context {background, layers, reference-inputs}, shape, evaluations, and per sample {id, map,
/// label, target, convergence-delta?}. It holds no timings, so the same request gives the same
/// record.
/// Tested in tests/cli/test_cmd_attribute.cpp and tests/experiments/test_experiments_run.cpp.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "attributions/method.h"
#include "datasets/data_dir.h"
#include "experiments/metrics/metric.h"
#include "experiments/reuse.h"
#include "experiments/table.h"
#include "lab/nn/network.h"

namespace experiments {

/// The output explained: the designed label, the network's prediction, or a fixed output unit.
struct TargetMode {
  std::string mode = "label";  ///< "label", "predicted" or "unit"
  int64_t unit = -1;

  /// "label", "predicted" or a unit number below `units`; anything else is refused naming `flag`.
  static TargetMode parse(const std::string& text, int64_t units, const std::string& flag);
  /// "label", "predicted", or the unit number.
  nlohmann::json to_json() const;
};

/// What the attribute stage needs besides the data, the network and the method.
struct AttributeSetup {
  std::string label;       ///< the method's label (seeds, records); empty: the method's name
  TargetMode target;
  uint64_t seed = 0;
  int64_t reference = 16;  ///< the first min(reference, data size) samples are reference inputs
  int64_t batch = 0;       ///< largest number of inputs per network call; 0: what fits in 1 GiB
};

/// The maps of samples [begin, end) and what the method reported about them.
struct AttributedUnit {
  int64_t begin = 0;
  int64_t end = 0;
  std::vector<std::string> ids;
  attributions::Batch batch;    ///< inputs, targets, seeds, segments
  attributions::Result result;  ///< maps (N×C×H×W), completeness gaps, evaluations
  nlohmann::json samples;       ///< the maps.json entries of these samples
};

/// The method context of `env`'s task on `net`: the true background, the paper's hook layers,
/// `reference` as the reference inputs, at most `batch` inputs per network call (0: what fits in
/// 1 GiB of activations) and PNG baselines converted by `env`. The attribute stage's context; the
/// Python module builds the same one for inputs given in memory. `env` and `net` must outlive it.
attributions::Context method_context(const datasets::Environment& env, const lab::Network& net, lab::Tensor reference,
                                     int64_t batch);

/// One method bound to a data directory and its network.
class AttributeStage {
 public:
  /// Builds the method's context (background, layers, reference inputs, batch, the conversion of
  /// PNG baselines to inputs). `data`, `net` and `method` must outlive the stage.
  AttributeStage(const datasets::DataDir& data, const lab::Network& net, const attributions::Method& method,
                 AttributeSetup setup);

  /// Explains samples [begin, end) in one method call; maps of the wrong shape or holding NaN or
  /// Inf throw lab::Error.
  AttributedUnit run(int64_t begin, int64_t end) const;
  /// Samples [begin, end) with `maps` an earlier run made for them (reuse.h) instead of a method
  /// call: the same unit as run() would give; none when the maps' entries (ids, labels, targets)
  /// or shape are not what this stage records.
  std::optional<AttributedUnit> reuse(int64_t begin, int64_t end, ReusedUnit maps) const;
  /// Writes <id>.npy (float32 C×H×W) for every sample of `unit` into `dir`.
  void save_maps(const AttributedUnit& unit, const std::filesystem::path& dir) const;
  /// The maps.json record of maps in `maps_dir` (its final place) holding `samples`.
  nlohmann::json record(const std::filesystem::path& maps_dir, const nlohmann::json& samples,
                        int64_t evaluations) const;
  /// Re-explains perturbed copies of a data sample with this stage's method (its context, the
  /// sample's segments and ground truth), for the metrics that need the method (Context::explain).
  Explainer explainer() const;
  /// This stage's method as metrics see it (Context::method): name, params, context, seeds.
  ScoredMethod scored_method() const;
  /// Rows of metric "method", variant "completeness-gap" (methods with completeness; else none).
  std::vector<ResultRow> gap_rows(const std::string& model, const AttributedUnit& unit) const;

  const std::string& label() const { return label_; }
  const attributions::Context& context() const { return context_; }

 private:
  /// Samples [begin, end) ready for the method: inputs, targets, seeds, segments, ground truth.
  AttributedUnit prepare(int64_t begin, int64_t end) const;
  /// The maps.json entries of `unit` (its ids, targets and completeness gaps).
  nlohmann::json sample_entries(const AttributedUnit& unit) const;

  const datasets::DataDir& data_;
  const lab::Network& net_;
  const attributions::Method& method_;
  AttributeSetup setup_;
  std::string label_;
  attributions::Context context_;
  std::map<std::string, int64_t> index_;  ///< sample id → data index
};

/// Typed rows and curve points of one scored unit, and the seconds each metric took.
struct Scores {
  std::vector<ResultRow> rows;    ///< per-sample rows (no "all" rows)
  std::vector<CurveRow> curves;   ///< curves of more than 101 points resampled (resample_curve)
  nlohmann::json metric_seconds = nlohmann::json::object();      ///< wall seconds per metric label
  nlohmann::json metric_cpu_seconds = nlohmann::json::object();  ///< CPU seconds of the process (all threads)
};

/// CPU seconds the process has used so far, all threads together (CLOCK_PROCESS_CPUTIME_ID).
double process_cpu_seconds();

/// Metrics bound to a data directory and its network.
class ScoreStage {
 public:
  /// `unit`: samples per metric call; `batch`: largest number of perturbed inputs per network
  /// call; `seed`: the run seed (sample i is scored with sample_seed(seed, "metrics", i)).
  ScoreStage(const datasets::DataDir& data, const lab::Network& net, std::vector<std::unique_ptr<Metric>> metrics,
             uint64_t seed, int64_t unit, int64_t batch);

  /// Scores the maps `attr` (N×C×H×W or N×H×W) of samples [begin, end) explaining `target`;
  /// `explain` re-explains inputs with the method that made the maps, when it is known.
  Scores score(const std::string& model, const std::string& method, int64_t begin, int64_t end,
               const lab::Tensor& attr, const std::vector<int64_t>& target, const Explainer& explain = {},
               const ScoredMethod& method_record = {}) const;
  /// The same for the data samples `samples` (indices, any order; N = samples.size()).
  Scores score(const std::string& model, const std::string& method, const std::vector<int64_t>& samples,
               const lab::Tensor& attr, const std::vector<int64_t>& target, const Explainer& explain = {},
               const ScoredMethod& method_record = {}) const;
  /// The metrics' own summary rows (sample "all") of the per-sample rows of one (model, method),
  /// and the mean completeness gap.
  std::vector<ResultRow> aggregate(const std::string& model, const std::string& method,
                                   const std::vector<ResultRow>& rows) const;

  const std::vector<std::unique_ptr<Metric>>& metrics() const { return metrics_; }

 private:
  const datasets::DataDir& data_;
  std::vector<std::unique_ptr<Metric>> metrics_;
  uint64_t seed_;
  Context context_;
};

/// Linear resampling of a curve onto `points` evenly spaced x between its first and last x
/// (x must be non-decreasing); curves with at most `points` points are returned unchanged.
void resample_curve(std::vector<double>& x, std::vector<double>& y, size_t points = 101);

}  // namespace experiments
